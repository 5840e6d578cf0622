package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	"github.com/atrax-mcp/atrax/controlplane/store/storetest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

var (
	server = storetest.Server
	must   = storetest.Must
)

// prefixes makes every store of a test its own prefix.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("/test-%d", prefixes.Add(1)) }

// open opens a store on the cluster under prefix, closed when the test ends.
func open(t *testing.T, c *etcdtest.Cluster, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{Endpoints: c.Endpoints(), Prefix: prefix, ElectionTTL: 2 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore runs the store conformance suite shared with boltstore against
// a one-member etcd, each case under a prefix of its own.
func TestStore(t *testing.T) {
	c := etcdtest.Start(t, 1)
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return open(t, c, newPrefix()) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			return open(t, c, s.(*Store).prefix)
		},
		ErrClosed: ErrClosed,
	})
}

func TestPrefixesAreSeparate(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	a := open(t, c, "/atrax")
	b := open(t, c, "/atrax-b/") // the trailing slash is ignored
	must(t)(a.PutServers(ctx, []*atraxv1.Server{server("only-a")}, nil))
	must(t)(a.Revoke(ctx, "jti", time.Now().Add(time.Hour)))
	if got, err := b.ListServers(ctx); err != nil || len(got) != 0 {
		t.Errorf("ListServers under another prefix = %v, %v; want none", got, err)
	}
	if got, err := b.Revocations(ctx); err != nil || len(got) != 0 {
		t.Errorf("Revocations under another prefix = %v, %v; want none", got, err)
	}
	if rev, err := b.Revision(ctx); err != nil || rev != 0 {
		t.Errorf("Revision under another prefix = %d, %v; want 0", rev, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := rawClient(t, c)
	if _, err := cli.Put(t.Context(), "/future/schema", "2"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), Options{Endpoints: c.Endpoints(), Prefix: "/future"})
	if err == nil {
		s.Close()
		t.Fatal("Open of a prefix with schema 2 succeeded")
	}
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "upgrade atrax") {
		t.Errorf("Open: err = %v, want ErrSchemaTooNew saying to upgrade", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	s, err := Open(t.Context(), Options{Endpoints: []string{"http://" + addr}, Timeout: 500 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("Open of an etcd that is not there succeeded")
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Open: err = %v, want ErrUnavailable naming %s", err, addr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v; the timeout was not applied", d)
	}
}

func rawClient(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestConditionalWrites(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	prefix := newPrefix()
	a, b := open(t, c, prefix), open(t, c, prefix)

	base := must(t)(a.PutServersIf(ctx, 0, []*atraxv1.Server{server("x")}, nil))
	// Writes other than servers do not conflict.
	must(t)(b.Revoke(ctx, "jti", time.Now().Add(time.Hour)))
	next := must(t)(a.PutServersIf(ctx, base, []*atraxv1.Server{server("y")}, nil))

	// b last read the servers at base: its write must not land.
	_, err := b.PutServersIf(ctx, base, []*atraxv1.Server{server("z")}, []string{"x"})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutServersIf after another write: err = %v, want ErrConflict", err)
	}
	got, err := a.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*atraxv1.Server{server("x"), server("y")}, got, protocmp.Transform()); diff != "" {
		t.Errorf("servers after a refused write (-want +got):\n%s", diff)
	}
	// Up to date, it lands; a missing deletion is still ErrNotFound.
	if _, err := b.PutServersIf(ctx, next, nil, []string{"ghost"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutServersIf deleting a missing server: err = %v, want ErrNotFound", err)
	}
	must(t)(b.PutServersIf(ctx, next, []*atraxv1.Server{server("z")}, []string{"x"}))

	// Two replicas create the first keys at once: one of each wins.
	var wg sync.WaitGroup
	var signing, seal atomic.Int32
	for i, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			ok, _, err := s.PutFirstSigningKey(ctx, storetest.SigningKey(t, fmt.Sprintf("k%d", i), time.Now()))
			if err != nil {
				t.Error(err)
			}
			if ok {
				signing.Add(1)
			}
			ok, _, err = s.PutFirstSealKey(ctx, storetest.SealKey(fmt.Sprintf("s%d", i), time.Now()))
			if err != nil {
				t.Error(err)
			}
			if ok {
				seal.Add(1)
			}
		})
	}
	wg.Wait()
	keys, _ := a.SigningKeys(ctx)
	seals, _ := a.SealKeys(ctx)
	if signing.Load() != 1 || seal.Load() != 1 || len(keys) != 1 || len(seals) != 1 {
		t.Errorf("first keys stored %d signing and %d seal times, %d and %d kept; want 1 each",
			signing.Load(), seal.Load(), len(keys), len(seals))
	}
}

// collect reads events until one with revision rev or later has arrived.
func collect(t *testing.T, ch <-chan store.Event, rev int64) []store.Event {
	t.Helper()
	var out []store.Event
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch ended after %d events, before revision %d", len(out), rev)
			}
			out = append(out, ev)
			if ev.Revision >= rev {
				return out
			}
		case <-timeout:
			t.Fatalf("revision %d not watched within 20s; got %d events", rev, len(out))
		}
	}
}

func TestWatch(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	prefix := newPrefix()
	a, b := open(t, c, prefix), open(t, c, prefix)
	t0 := time.Now()

	from := must(t)(b.Revision(ctx))
	ch, err := b.Watch(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	r1 := must(t)(a.PutServers(ctx, []*atraxv1.Server{server("x"), server("y")}, nil))
	if err := a.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "server.create"}}); err != nil {
		t.Fatal(err)
	}
	r2 := must(t)(a.PutServers(ctx, nil, []string{"x"}))
	r3 := must(t)(a.PutSigningKey(ctx, storetest.SigningKey(t, "k", t0)))
	r4 := must(t)(a.Revoke(ctx, "jti", t0.Add(time.Hour)))

	got := collect(t, ch, r4)
	want := []store.Event{
		{Revision: r1, Servers: []*atraxv1.Server{server("x"), server("y")}},
		{Revision: r2, Deleted: []string{"x"}},
		{Revision: r3, Keys: true},
		{Revision: r4, Revocations: true},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestWatchAcrossMemberLoss stops one member of three while a watch may be
// on it and writes go on: the watch resumes on another member and misses
// nothing.
func TestWatchAcrossMemberLoss(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := t.Context()
	prefix := newPrefix()
	eps := c.Endpoints()
	writer, err := Open(ctx, Options{Endpoints: eps[2:], Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	watcher, err := Open(ctx, Options{Endpoints: eps[:2], Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	ch, err := watcher.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var revs []int64
	write := func(i int) {
		t.Helper()
		// A write may fail while the cluster settles; it is then not
		// confirmed, and tried again.
		for attempt := 0; ; attempt++ {
			rev, err := writer.PutServers(ctx, []*atraxv1.Server{server(fmt.Sprintf("s%03d", i))}, nil)
			if err == nil {
				revs = append(revs, rev)
				return
			}
			if attempt == 20 {
				t.Fatalf("write %d: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range 20 {
		write(i)
	}
	c.Members[0].Stop()
	for i := 20; i < 40; i++ {
		write(i)
	}
	got := collect(t, ch, revs[len(revs)-1])
	var gotRevs []int64
	var names []string
	for _, ev := range got {
		if ev.Reset {
			t.Fatalf("a Reset event at revision %d: nothing was compacted", ev.Revision)
		}
		gotRevs = append(gotRevs, ev.Revision)
		for _, s := range ev.Servers {
			names = append(names, s.GetName())
		}
	}
	if !slices.Equal(gotRevs, revs) {
		t.Errorf("watched revisions %v, want the written ones %v", gotRevs, revs)
	}
	if len(names) != 40 || !slices.IsSorted(names) {
		t.Errorf("watched servers %v, want s000 to s039 in order", names)
	}
}

func TestWatchAfterCompaction(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	prefix := newPrefix()
	a, b := open(t, c, prefix), open(t, c, prefix)

	old := must(t)(b.Revision(ctx))
	must(t)(a.PutServers(ctx, []*atraxv1.Server{server("x"), server("y")}, nil))
	must(t)(a.PutServers(ctx, nil, []string{"x"}))
	last := must(t)(a.Revoke(ctx, "jti", time.Now().Add(time.Hour)))
	if _, err := rawClient(t, c).Compact(ctx, last); err != nil {
		t.Fatal(err)
	}

	ch, err := b.Watch(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, ch, last)
	want := []store.Event{{Revision: last, Reset: true, Keys: true, Revocations: true, Servers: []*atraxv1.Server{server("y")}}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("events after a compaction (-want +got):\n%s", diff)
	}
	// And on from there.
	rev := must(t)(a.PutServers(ctx, []*atraxv1.Server{server("z")}, nil))
	got = collect(t, ch, rev)
	if len(got) != 1 || got[0].Reset || len(got[0].Servers) != 1 || got[0].Servers[0].GetName() != "z" {
		t.Errorf("event after the Reset = %+v, want z created", got)
	}
}

func TestWatchEndsWithStore(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := open(t, c, newPrefix())
	ch, err := s.Watch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case _, ok := <-ch:
		if ok {
			for range ch {
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch still open 10s after Close")
	}
	if _, err := s.Watch(t.Context(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close: err = %v, want ErrClosed", err)
	}
}

func TestElect(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	prefix := newPrefix()
	a, b := open(t, c, prefix), open(t, c, prefix)

	leadA, resignA, err := a.Elect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		lead   context.Context
		resign func()
		err    error
	}
	bResult := make(chan result, 1)
	go func() {
		l, r, err := b.Elect(ctx)
		bResult <- result{l, r, err}
	}()
	select {
	case <-bResult:
		t.Fatal("a second replica was elected while the first leads")
	case <-time.After(500 * time.Millisecond):
	}

	resignA()
	if leadA.Err() == nil {
		t.Error("the leader's context is alive after resign")
	}
	var rb result
	select {
	case rb = <-bResult:
	case <-time.After(10 * time.Second):
		t.Fatal("the second replica was not elected within 10s of the first resigning")
	}
	if rb.err != nil {
		t.Fatal(rb.err)
	}
	// A leader whose store closes loses its leadership, and the other
	// takes over.
	aAgain := make(chan result, 1)
	go func() {
		l, r, err := a.Elect(ctx)
		aAgain <- result{l, r, err}
	}()
	b.Close()
	select {
	case <-rb.lead.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("leadership of a closed store did not end within 10s")
	}
	rb.resign()
	select {
	case ra := <-aAgain:
		if ra.err != nil {
			t.Fatal(ra.err)
		}
		ra.resign()
	case <-time.After(10 * time.Second):
		t.Fatal("the first replica was not elected again within 10s")
	}
	if _, _, err := b.Elect(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Elect after Close: err = %v, want ErrClosed", err)
	}
}
