package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

// replica is a registry on a store several replicas share, kept up to date
// by the store's watch as the control plane keeps it.
type replica struct {
	reg   *registry.Registry
	store *etcdstore.Store
}

// openReplica opens a store on the cluster and a registry with the config
// servers cfg, and applies the store's watch to it until the test ends.
func openReplica(t *testing.T, c *etcdtest.Cluster, prefix string, cfg ...config.Server) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	from, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, registry.Options{Store: st, Config: cfg, AllowCommands: config.AllowCommands{All: true}})
	if err != nil {
		t.Fatalf("registry.Open: %v", err)
	}
	events, err := st.Watch(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			reg.Apply(ev)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return &replica{reg: reg, store: st}
}

// names lists the registry's servers.
func (r *replica) names() []string {
	list, _ := r.reg.List()
	var out []string
	for _, s := range list {
		out = append(out, s.GetName())
	}
	return out
}

// waitFor waits until cond holds of the registry.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextChange reads one change a watcher got.
func nextChange(t *testing.T, ch <-chan registry.Change) registry.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10s")
	}
	return registry.Change{}
}

// TestSharedStoreReplicas checks that a change made through one replica
// reaches the other's registry and watchers, in order, whichever replica
// made it.
func TestSharedStoreReplicas(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	a := openReplica(t, c, "/replicas", httpConfig("cfg"))
	b := openReplica(t, c, "/replicas", httpConfig("cfg"))

	_, version, changes, _, stop := b.reg.Watch()
	defer stop()
	if _, err := a.reg.Create(ctx, &atraxv1.Server{Name: "api", Url: "https://mcp.example.com/api"}); err != nil {
		t.Fatal(err)
	}
	got := nextChange(t, changes)
	if got.Event != registry.EventCreated || got.Server.GetName() != "api" || got.Version <= version {
		t.Errorf("B's watcher got %s %q at %d (after %d); want api created later", got.Event, got.Server.GetName(), got.Version, version)
	}
	if _, err := b.reg.Update(ctx, &atraxv1.Server{Name: "api", Description: "changed on B"}, []string{"description"}); err != nil {
		t.Fatalf("Update on B of a server created on A: %v", err)
	}
	got2 := nextChange(t, changes)
	if got2.Event != registry.EventUpdated || got2.Server.GetDescription() != "changed on B" || got2.Version <= got.Version {
		t.Errorf("B's watcher got %s %q at %d; want the update later than %d", got2.Event, got2.Server.GetDescription(), got2.Version, got.Version)
	}
	waitFor(t, "A sees B's update", func() bool {
		s, err := a.reg.Get("api")
		return err == nil && s.GetDescription() == "changed on B"
	})
	if _, err := a.reg.SetState(ctx, "cfg", false); err != nil {
		t.Fatal(err)
	}
	if err := a.reg.Delete(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B sees the stop and the delete", func() bool {
		s, err := b.reg.Get("cfg")
		return err == nil && s.GetState() == registry.StateStopped && slices.Equal(b.names(), []string{"cfg"})
	})
	for _, want := range []string{registry.EventUpdated, registry.EventDeleted} {
		if c := nextChange(t, changes); c.Event != want {
			t.Errorf("B's watcher got %s %q, want %s", c.Event, c.Server.GetName(), want)
		}
	}
	// Both replicas hold the same registry.
	la, _ := a.reg.List()
	lb, _ := b.reg.List()
	if diff := cmp.Diff(la, lb, protocmp.Transform()); diff != "" {
		t.Errorf("registries differ (-A +B):\n%s", diff)
	}
}

// TestSharedStoreRaces writes through two replicas at once: a name created
// on both exists once, and writes of different servers all land (those
// that lost a race are tried again once the registry caught up).
func TestSharedStoreRaces(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	a := openReplica(t, c, "/races")
	b := openReplica(t, c, "/races")

	var wg sync.WaitGroup
	var mu sync.Mutex
	var created, exists int
	for i, r := range []*replica{a, b, a, b} {
		wg.Go(func() {
			_, err := r.reg.Create(ctx, &atraxv1.Server{Name: "same", Url: fmt.Sprintf("https://mcp.example.com/%d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, registry.ErrExists):
				exists++
			default:
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	if created != 1 || exists != 3 {
		t.Errorf("four creates of one name: %d created, %d already existing; want 1 and 3", created, exists)
	}

	const each = 8
	for i, r := range []*replica{a, b} {
		for j := range each {
			wg.Go(func() {
				if _, err := r.reg.Create(ctx, &atraxv1.Server{Name: fmt.Sprintf("r%d-%d", i, j), Url: "https://mcp.example.com/x"}); err != nil {
					t.Errorf("Create on replica %d: %v", i, err)
				}
			})
		}
	}
	wg.Wait()
	for _, r := range []*replica{a, b} {
		waitFor(t, "every server on both replicas", func() bool { return len(r.names()) == 2*each+1 })
	}
	stored, err := a.store.ListServers(ctx)
	if err != nil || len(stored) != 2*each+1 {
		t.Errorf("store holds %d servers, %v; want %d", len(stored), err, 2*each+1)
	}
}

// TestApplyReset checks that a Reset event (the watch lost its history)
// replaces the registry whole and tells watchers what changed.
func TestApplyReset(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := openReplica(t, c, "/reset", httpConfig("cfg"))
	if _, err := a.reg.Create(t.Context(), &atraxv1.Server{Name: "gone", Url: "https://mcp.example.com/gone"}); err != nil {
		t.Fatal(err)
	}
	list, _ := a.reg.List()
	_, version, changes, _, stop := a.reg.Watch()
	defer stop()

	kept := list[0] // cfg, as it is
	added := &atraxv1.Server{Name: "added", Url: "https://mcp.example.com/added", Source: registry.SourceAPI}
	a.reg.Apply(store.Event{Revision: version + 100, Reset: true, Servers: []*atraxv1.Server{kept, added}})

	var got []string
	for range 2 {
		ch := nextChange(t, changes)
		if ch.Version < version {
			t.Errorf("change %s %q at version %d, before %d", ch.Event, ch.Server.GetName(), ch.Version, version)
		}
		got = append(got, ch.Event+" "+ch.Server.GetName())
	}
	if want := []string{"deleted gone", "created added"}; !slices.Equal(got, want) {
		t.Errorf("changes after a Reset = %q, want %q", got, want)
	}
	if names := a.names(); !slices.Equal(names, []string{"cfg", "added"}) {
		t.Errorf("registry after a Reset = %v, want [cfg added]", names)
	}
	if got := a.reg.Applied(); got != version+100 {
		t.Errorf("Applied after a Reset = %d, want %d", got, version+100)
	}
}
