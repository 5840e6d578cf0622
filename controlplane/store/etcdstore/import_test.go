package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	"github.com/atrax-mcp/atrax/controlplane/store/storetest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// auditEvents is how many events the source of TestImport holds: more
// than a page of ListAudit and than a transaction holds.
const auditEvents = 2100

// filledBolt returns a boltstore filled through the store API.
func filledBolt(t *testing.T) store.Store {
	t.Helper()
	ctx := t.Context()
	src, err := boltstore.Open(filepath.Join(t.TempDir(), "atrax.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	pinned := storetest.Server("pinned")
	pinned.PinTools, pinned.ApprovedTools = true, map[string]string{"search": "s1"}
	must(t)(src.PutServers(ctx, []*atraxv1.Server{server("memory"), server("everything"), pinned}, nil))
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	must(t)(src.PutSigningKey(ctx, storetest.SigningKey(t, "k1", t0)))
	must(t)(src.PutSigningKey(ctx, storetest.SigningKey(t, "k2", t0.Add(time.Hour))))
	must(t)(src.PutSealKey(ctx, storetest.SealKey("s1", t0)))
	must(t)(src.Revoke(ctx, "jti-1", t0.Add(24*time.Hour)))
	must(t)(src.Revoke(ctx, "jti-2", time.Now().Add(time.Hour).Round(0)))
	var events []*atraxv1.AuditEvent
	for i := range auditEvents {
		events = append(events, &atraxv1.AuditEvent{
			Time:    timestamppb.New(t0.Add(time.Duration(i/3) * time.Millisecond)), // threes share a time
			Actor:   "static:ops",
			Action:  []string{"server.create", "tool.call"}[i%2],
			Outcome: "ok",
			Details: map[string]string{"i": fmt.Sprint(i)},
		})
	}
	if err := src.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	return src
}

// allAudit reads the whole audit log of s, page by page.
func allAudit(t *testing.T, s store.Store, q store.AuditQuery) []*atraxv1.AuditEvent {
	t.Helper()
	var out []*atraxv1.AuditEvent
	for {
		page, next, err := s.ListAudit(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		q.Cursor = next
	}
}

// TestImport copies a boltstore into an empty prefix and reads everything
// back through a store opened there.
func TestImport(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	src := filledBolt(t)

	n, err := Import(ctx, Options{Endpoints: c.Endpoints(), Prefix: "/moved"}, src)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if diff := cmp.Diff(Imported{Servers: 3, SigningKeys: 2, SealKeys: 1, Revocations: 2, AuditEvents: auditEvents}, n); diff != "" {
		t.Errorf("Import counts (-want +got):\n%s", diff)
	}

	dst := open(t, c, "/moved")
	if rev := must(t)(dst.Revision(ctx)); rev == 0 {
		t.Error("Revision of the imported store = 0, want the revision of its last write")
	}
	check := func(what string, read func(store.Store) (any, error)) {
		t.Helper()
		want, err := read(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := read(dst)
		if err != nil {
			t.Fatalf("%s from etcd: %v", what, err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s (-bolt +etcd):\n%s", what, diff)
		}
	}
	check("servers", func(s store.Store) (any, error) { return s.ListServers(ctx) })
	check("signing keys", func(s store.Store) (any, error) { return s.SigningKeys(ctx) })
	check("seal keys", func(s store.Store) (any, error) { return s.SealKeys(ctx) })
	check("revocations", func(s store.Store) (any, error) { return s.Revocations(ctx) })
	for _, q := range []store.AuditQuery{{Limit: 1000}, {Action: "tool.call", Limit: 333}} {
		check(fmt.Sprintf("audit log %+v", q), func(s store.Store) (any, error) { return allAudit(t, s, q), nil })
	}
	// The imported store goes on as any other.
	must(t)(dst.PutServersIf(ctx, must(t)(dst.Revision(ctx)), []*atraxv1.Server{server("after")}, []string{"memory"}))

	// A prefix that holds keys is refused, and left as it was.
	before := must(t)(dst.Revision(ctx))
	if _, err := Import(ctx, Options{Endpoints: c.Endpoints(), Prefix: "/moved"}, src); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Import into a used prefix: err = %v, want ErrNotEmpty", err)
	}
	if rev := must(t)(dst.Revision(ctx)); rev != before {
		t.Errorf("revision after a refused import = %d, want %d", rev, before)
	}
}

// failingSource fails the audit pages after the first, or blocks the
// second until release is closed.
type failingSource struct {
	store.Store
	once    sync.Once
	reading chan struct{} // closed when the second page is asked for
	release chan struct{} // nil: fail at once
}

func (f *failingSource) ListAudit(ctx context.Context, q store.AuditQuery) ([]*atraxv1.AuditEvent, string, error) {
	if q.Cursor == "" {
		return f.Store.ListAudit(ctx, q)
	}
	f.once.Do(func() { close(f.reading) })
	if f.release == nil {
		return nil, "", errors.New("disk on fire")
	}
	<-f.release
	return f.Store.ListAudit(ctx, q)
}

// TestImportIsWholeOrNothing: while an import runs, Open refuses the
// prefix; one that fails part way leaves nothing behind.
func TestImportIsWholeOrNothing(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	src := filledBolt(t)
	count := func(prefix string) int64 {
		resp, err := rawClient(t, c).Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}

	f := &failingSource{Store: src, reading: make(chan struct{})}
	_, err := Import(ctx, Options{Endpoints: c.Endpoints(), Prefix: "/failed"}, f)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "deleted again") {
		t.Errorf("Import with a failing source: err = %v, want the cause and that the copy was deleted", err)
	}
	if n := count("/failed"); n != 0 {
		t.Errorf("%d keys left under the prefix of a failed import, want none", n)
	}

	f = &failingSource{Store: src, reading: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := Import(ctx, Options{Endpoints: c.Endpoints(), Prefix: "/running"}, f)
		done <- err
	}()
	<-f.reading
	if count("/running") == 0 {
		t.Error("nothing written before the second page of the audit log; the test sees no partial copy")
	}
	if _, err := Open(ctx, Options{Endpoints: c.Endpoints(), Prefix: "/running"}); err == nil || !strings.Contains(err.Error(), "has not finished") {
		t.Errorf("Open during an import: err = %v, want a refusal saying the import has not finished", err)
	}
	close(f.release)
	if err := <-done; err != nil {
		t.Fatalf("Import: %v", err)
	}
	open(t, c, "/running")
}
