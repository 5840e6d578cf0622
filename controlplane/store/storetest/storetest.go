// Package storetest is the conformance suite of store.Store: every
// implementation (boltstore, etcdstore) runs the same table of behaviours
// from its own tests with Run, so that the registry and the issuer can rely
// on the contract whichever store is configured.
package storetest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Harness says how to get the store under test.
type Harness struct {
	// Open returns a new, empty store, closed when the test ends (Close is
	// idempotent, so a test may close it first).
	Open func(t *testing.T) store.Store
	// Reopen returns the store again over the data of s, which the caller
	// has closed: what a restart of the process sees.
	Reopen func(t *testing.T, s store.Store) store.Store
	// ErrClosed is the error every method returns after Close.
	ErrClosed error
	// DenseRevisions says that every write adds exactly one to the
	// revision (boltstore). Otherwise revisions only grow (etcdstore,
	// whose revision is etcd's).
	DenseRevisions bool
}

// Run runs the suite, one subtest per behaviour.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"NewStore", testNewStore},
		{"Servers", testServers},
		{"PutServersInvalid", testPutServersInvalid},
		{"Keys", testKeys},
		{"RevisionGrowsWithEveryWrite", testRevisionGrows},
		{"ReopenKeepsEverything", testReopen},
		{"CloseAndContext", testCloseAndContext},
		{"Revocations", testRevocations},
		{"AppendAudit", testAppendAudit},
		{"ListAudit", testListAudit},
		{"ListAuditLimitCap", testListAuditLimitCap},
		{"ListAuditMalformedCursor", testListAuditMalformedCursor},
		{"ConcurrentUse", testConcurrentUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, h) })
	}
}

// Server returns a server definition with every kind of field set.
func Server(name string) *atraxv1.Server {
	return &atraxv1.Server{
		Name:    name,
		Command: "npx",
		Args:    []string{"-y", "@modelcontextprotocol/server-" + name},
		Env:     map[string]string{"A": "1", "B": "2"},
		Tags:    []string{"t1"},
		Tools:   &atraxv1.ToolFilter{},
		State:   "running",
	}
}

// SigningKey returns a new Ed25519 signing key.
func SigningKey(t testing.TB, id string, created time.Time) store.SigningKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return store.SigningKey{ID: id, Private: priv, Created: created}
}

// SealKey returns a 32-byte seal key derived from id.
func SealKey(id string, created time.Time) store.SealKey {
	k := make([]byte, 32)
	copy(k, id)
	return store.SealKey{ID: id, Key: k, Created: created}
}

// Must returns a function that fails the test on an error and otherwise
// returns the revision: Must(t)(s.Revision(ctx)).
func Must(t testing.TB) func(rev int64, err error) int64 {
	t.Helper()
	return func(rev int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
}

// next checks that a write moved the revision from prev to got: by exactly
// one for dense revisions, forward otherwise.
func (h Harness) next(t *testing.T, what string, prev, got int64) {
	t.Helper()
	switch {
	case h.DenseRevisions && got != prev+1:
		t.Errorf("%s: revision %d, want %d", what, got, prev+1)
	case got <= prev:
		t.Errorf("%s: revision %d, want more than %d", what, got, prev)
	}
}

func testNewStore(t *testing.T, h Harness) {
	s := h.Open(t)
	rev, err := s.Revision(t.Context())
	if err != nil || rev != 0 {
		t.Errorf("Revision of a new store = %d, %v; want 0, nil", rev, err)
	}
}

func testServers(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)

	if _, err := s.GetServer(ctx, "memory"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetServer of a missing server: err = %v, want ErrNotFound", err)
	}
	got, err := s.ListServers(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListServers of an empty store = %v, %v", got, err)
	}

	rev1 := Must(t)(s.PutServers(ctx, []*atraxv1.Server{Server("memory"), Server("everything")}, nil))
	h.next(t, "first PutServers", 0, rev1)
	got, err = s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []*atraxv1.Server{Server("everything"), Server("memory")} // by name
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("ListServers (-want +got):\n%s", diff)
	}

	// Returned messages are the caller's to change.
	got[0].Description = "changed"
	one, err := s.GetServer(ctx, "everything")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Server("everything"), one, protocmp.Transform()); diff != "" {
		t.Errorf("GetServer after changing a listed message (-want +got):\n%s", diff)
	}
	one.Description = "changed too"

	// Replace one, delete the other.
	replaced := Server("memory")
	replaced.Disabled = true
	replaced.State = "stopped"
	rev2 := Must(t)(s.PutServers(ctx, []*atraxv1.Server{replaced}, []string{"everything"}))
	h.next(t, "second PutServers", rev1, rev2)
	got, err = s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*atraxv1.Server{replaced}, got, protocmp.Transform()); diff != "" {
		t.Errorf("ListServers after replace and delete (-want +got):\n%s", diff)
	}
	if _, err := s.GetServer(ctx, "everything"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetServer of a deleted server: err = %v, want ErrNotFound", err)
	}

	// A name given twice in put: the last wins.
	twice := Server("memory")
	twice.Description = "second"
	Must(t)(s.PutServers(ctx, []*atraxv1.Server{Server("memory"), twice}, nil))
	if one, err := s.GetServer(ctx, "memory"); err != nil || one.GetDescription() != "second" {
		t.Errorf("GetServer after a put naming it twice = %v, %v; want the second", one, err)
	}
}

func testPutServersInvalid(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	rev := Must(t)(s.PutServers(ctx, []*atraxv1.Server{Server("a")}, nil))

	tests := []struct {
		name     string
		put      []*atraxv1.Server
		del      []string
		notFound bool
		wantText string
	}{
		{"missing delete", []*atraxv1.Server{Server("b")}, []string{"a", "ghost"}, true, `"ghost"`},
		{"deleted twice", nil, []string{"a", "a"}, true, `"a"`},
		{"put and delete", []*atraxv1.Server{Server("a")}, []string{"a"}, false, `"a" is both put and deleted`},
		{"nil server", []*atraxv1.Server{nil}, nil, false, "nil"},
		{"empty name", []*atraxv1.Server{{Command: "x"}}, nil, false, "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PutServers(ctx, tt.put, tt.del)
			if err == nil {
				t.Fatal("PutServers succeeded, want an error")
			}
			if got := errors.Is(err, store.ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			// Nothing written.
			got, err := s.ListServers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]*atraxv1.Server{Server("a")}, got, protocmp.Transform()); diff != "" {
				t.Errorf("servers changed by a failed PutServers (-want +got):\n%s", diff)
			}
			if got := Must(t)(s.Revision(ctx)); got != rev {
				t.Errorf("revision after a failed PutServers = %d, want %d", got, rev)
			}
		})
	}
}

func testKeys(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 123456789, time.UTC)

	k2 := SigningKey(t, "k2", t0.Add(time.Hour))
	k1 := SigningKey(t, "k1", t0)
	k3 := SigningKey(t, "k3", t0.Add(time.Hour)) // same time as k2: by ID
	for _, k := range []store.SigningKey{k2, k3, k1} {
		Must(t)(s.PutSigningKey(ctx, k))
	}
	got, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.SigningKey{k1, k2, k3}, got); diff != "" {
		t.Errorf("SigningKeys (-want +got):\n%s", diff)
	}
	if !got[0].Public().Equal(k1.Public()) {
		t.Error("public key of a stored key differs")
	}

	// Replace by ID, delete, delete again.
	k1b := SigningKey(t, "k1", t0.Add(2*time.Hour))
	Must(t)(s.PutSigningKey(ctx, k1b))
	Must(t)(s.DeleteSigningKey(ctx, "k2"))
	if _, err := s.DeleteSigningKey(ctx, "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSigningKey of a missing key: err = %v, want ErrNotFound", err)
	}
	got, err = s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.SigningKey{k3, k1b}, got); diff != "" {
		t.Errorf("SigningKeys after replace and delete (-want +got):\n%s", diff)
	}

	s2 := SealKey("s2", t0.Add(time.Minute))
	s1 := SealKey("s1", t0)
	Must(t)(s.PutSealKey(ctx, s2))
	Must(t)(s.PutSealKey(ctx, s1))
	seals, err := s.SealKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.SealKey{s1, s2}, seals); diff != "" {
		t.Errorf("SealKeys (-want +got):\n%s", diff)
	}

	invalid := []struct {
		name string
		put  func() (int64, error)
	}{
		{"signing key without ID", func() (int64, error) { return s.PutSigningKey(ctx, store.SigningKey{Private: k1.Private}) }},
		{"short signing key", func() (int64, error) {
			return s.PutSigningKey(ctx, store.SigningKey{ID: "x", Private: k1.Private[:10]})
		}},
		{"seal key without ID", func() (int64, error) { return s.PutSealKey(ctx, store.SealKey{Key: s1.Key}) }},
		{"short seal key", func() (int64, error) { return s.PutSealKey(ctx, store.SealKey{ID: "x", Key: s1.Key[:16]}) }},
	}
	before := Must(t)(s.Revision(ctx))
	for _, tt := range invalid {
		if _, err := tt.put(); err == nil {
			t.Errorf("%s: stored, want an error", tt.name)
		}
	}
	if rev := Must(t)(s.Revision(ctx)); rev != before {
		t.Errorf("revision after invalid puts = %d, want %d", rev, before)
	}
}

func testRevisionGrows(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	t0 := time.Now()
	writes := []struct {
		name  string
		write func() (int64, error)
	}{
		{"PutServers", func() (int64, error) { return s.PutServers(ctx, []*atraxv1.Server{Server("a")}, nil) }},
		{"PutServers delete", func() (int64, error) { return s.PutServers(ctx, nil, []string{"a"}) }},
		{"PutSigningKey", func() (int64, error) { return s.PutSigningKey(ctx, SigningKey(t, "k", t0)) }},
		{"DeleteSigningKey", func() (int64, error) { return s.DeleteSigningKey(ctx, "k") }},
		{"PutSealKey", func() (int64, error) { return s.PutSealKey(ctx, SealKey("s", t0)) }},
		{"Revoke", func() (int64, error) { return s.Revoke(ctx, "jti", t0.Add(-time.Hour)) }},
		{"PruneRevocations", func() (int64, error) { _, rev, err := s.PruneRevocations(ctx, t0); return rev, err }},
	}
	var prev int64
	for _, w := range writes {
		rev, err := w.write()
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		h.next(t, w.name, prev, rev)
		if got := Must(t)(s.Revision(ctx)); got != rev {
			t.Errorf("Revision after %s = %d, want %d", w.name, got, rev)
		}
		prev = rev
	}
	if err := s.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "server.create"}}); err != nil {
		t.Fatal(err)
	}
	if got := Must(t)(s.Revision(ctx)); got != prev {
		t.Errorf("Revision after AppendAudit = %d, want %d (unchanged)", got, prev)
	}
}

func testReopen(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 5, time.UTC)

	Must(t)(s.PutServers(ctx, []*atraxv1.Server{Server("a"), Server("b")}, nil))
	sk := SigningKey(t, "k1", t0)
	Must(t)(s.PutSigningKey(ctx, sk))
	seal := SealKey("s1", t0)
	Must(t)(s.PutSealKey(ctx, seal))
	last := Must(t)(s.Revoke(ctx, "jti-1", t0.Add(time.Hour)))
	events := []*atraxv1.AuditEvent{{Id: "e1", Time: timestamppb.New(t0), Action: "server.create", Server: "a"}}
	if err := s.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = h.Reopen(t, s)
	defer s.Close()
	if rev := Must(t)(s.Revision(ctx)); rev != last {
		t.Errorf("Revision after reopen = %d, want %d", rev, last)
	}
	servers, err := s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*atraxv1.Server{Server("a"), Server("b")}, servers, protocmp.Transform()); diff != "" {
		t.Errorf("servers after reopen (-want +got):\n%s", diff)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.SigningKey{sk}, keys); diff != "" {
		t.Errorf("signing keys after reopen (-want +got):\n%s", diff)
	}
	seals, err := s.SealKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.SealKey{seal}, seals); diff != "" {
		t.Errorf("seal keys after reopen (-want +got):\n%s", diff)
	}
	revs, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]time.Time{"jti-1": t0.Add(time.Hour)}, revs); diff != "" {
		t.Errorf("revocations after reopen (-want +got):\n%s", diff)
	}
	audit, _, err := s.ListAudit(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(events, audit, protocmp.Transform()); diff != "" {
		t.Errorf("audit after reopen (-want +got):\n%s", diff)
	}
	// The revision keeps growing from where it was.
	h.next(t, "first write after reopen", last, Must(t)(s.Revoke(ctx, "jti-2", t0)))
}

func testCloseAndContext(t *testing.T, h Harness) {
	s := h.Open(t)

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Revision(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Revision with a canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.PutServers(canceled, []*atraxv1.Server{Server("a")}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("PutServers with a canceled context: err = %v, want context.Canceled", err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	calls := map[string]func() error{
		"Revision":         func() error { _, err := s.Revision(ctx); return err },
		"ListServers":      func() error { _, err := s.ListServers(ctx); return err },
		"GetServer":        func() error { _, err := s.GetServer(ctx, "a"); return err },
		"PutServers":       func() error { _, err := s.PutServers(ctx, []*atraxv1.Server{Server("a")}, nil); return err },
		"SigningKeys":      func() error { _, err := s.SigningKeys(ctx); return err },
		"PutSigningKey":    func() error { _, err := s.PutSigningKey(ctx, SigningKey(t, "k", time.Now())); return err },
		"DeleteSigningKey": func() error { _, err := s.DeleteSigningKey(ctx, "k"); return err },
		"SealKeys":         func() error { _, err := s.SealKeys(ctx); return err },
		"PutSealKey":       func() error { _, err := s.PutSealKey(ctx, SealKey("s", time.Now())); return err },
		"Revoke":           func() error { _, err := s.Revoke(ctx, "j", time.Now()); return err },
		"Revocations":      func() error { _, err := s.Revocations(ctx); return err },
		"PruneRevocations": func() error { _, _, err := s.PruneRevocations(ctx, time.Now()); return err },
		"AppendAudit":      func() error { return s.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "x"}}) },
		"ListAudit":        func() error { _, _, err := s.ListAudit(ctx, store.AuditQuery{}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, h.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want %v", name, err, h.ErrClosed)
		}
	}
}

func testRevocations(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

	n, rev, err := s.PruneRevocations(ctx, now)
	if err != nil || n != 0 || rev != 0 {
		t.Errorf("PruneRevocations of nothing = %d, %d, %v; want 0, 0, nil", n, rev, err)
	}
	Must(t)(s.Revoke(ctx, "old", now.Add(-time.Hour)))
	Must(t)(s.Revoke(ctx, "older", now.Add(-48*time.Hour)))
	Must(t)(s.Revoke(ctx, "now", now)) // not before now: kept
	before := Must(t)(s.Revoke(ctx, "later", now.Add(time.Nanosecond)))
	if _, err := s.Revoke(ctx, "", now); err == nil {
		t.Error("Revoke with an empty jti succeeded")
	}

	n, rev, err = s.PruneRevocations(ctx, now)
	if err != nil || n != 2 {
		t.Errorf("PruneRevocations = %d, %d, %v; want 2, a revision, nil", n, rev, err)
	}
	h.next(t, "PruneRevocations", before, rev)
	got, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"now": now, "later": now.Add(time.Nanosecond)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Revocations after prune (-want +got):\n%s", diff)
	}

	// Nothing left to prune: the revision stays.
	n, rev2, err := s.PruneRevocations(ctx, now)
	if err != nil || n != 0 || rev2 != rev {
		t.Errorf("second PruneRevocations = %d, %d, %v; want 0, %d, nil", n, rev2, err, rev)
	}
	if got := Must(t)(s.Revision(ctx)); got != rev {
		t.Errorf("Revision after an empty prune = %d, want %d", got, rev)
	}
}

func testAppendAudit(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)

	in := []*atraxv1.AuditEvent{{Action: "tool.call", Tool: "echo"}, {Id: "given", Action: "tool.call"}}
	inCopy := []*atraxv1.AuditEvent{proto.CloneOf(in[0]), proto.CloneOf(in[1])}
	before := time.Now()
	if err := s.AppendAudit(ctx, in); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(inCopy, in, protocmp.Transform()); diff != "" {
		t.Errorf("AppendAudit changed its argument (-before +after):\n%s", diff)
	}
	got, next, err := s.ListAudit(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || next != "" {
		t.Fatalf("ListAudit = %d events, cursor %q; want 2 and no cursor", len(got), next)
	}
	ids := map[string]bool{}
	for _, ev := range got {
		if ev.GetId() != "given" && len(ev.GetId()) != 32 {
			t.Errorf("event ID %q: want 32 hex digits", ev.GetId())
		}
		ids[ev.GetId()] = true
		if ev.Time == nil || ev.Time.AsTime().Before(before.Add(-time.Second)) || ev.Time.AsTime().After(time.Now()) {
			t.Errorf("event %q time %v: want about now", ev.GetId(), ev.GetTime())
		}
	}
	if !ids["given"] || len(ids) != 2 {
		t.Errorf("event IDs %v: want \"given\" and one generated", ids)
	}

	if err := s.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "ok"}, nil}); err == nil {
		t.Error("AppendAudit with a nil event succeeded")
	}
	far := &atraxv1.AuditEvent{Time: timestamppb.New(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))}
	if err := s.AppendAudit(ctx, []*atraxv1.AuditEvent{far}); err == nil {
		t.Error("AppendAudit of an event in the year 3000 succeeded")
	}
	if got, _, _ := s.ListAudit(ctx, store.AuditQuery{}); len(got) != 2 {
		t.Errorf("failed appends left %d events, want 2", len(got))
	}
}

// auditFixture appends n events with varied fields, some sharing a time and
// one before 1970, and returns them oldest first.
func auditFixture(t *testing.T, s store.Store, n int) []*atraxv1.AuditEvent {
	t.Helper()
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	actors := []string{"admin", "static:ci", "client-1"}
	actions := []string{"server.create", "tool.call", "token.issue", "tool.call"}
	servers := []string{"memory", "everything", ""}
	outcomes := []string{"ok", "ok", "error", "denied", "ok"}
	var events []*atraxv1.AuditEvent
	for i := range n {
		at := t0.Add(time.Duration(i/2) * time.Second) // pairs share a time
		if i == 0 {
			at = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)
		}
		ev := &atraxv1.AuditEvent{
			Id:      fmt.Sprintf("e%02d", i),
			Time:    timestamppb.New(at),
			Actor:   actors[i%len(actors)],
			Action:  actions[i%len(actions)],
			Server:  servers[i%len(servers)],
			Outcome: outcomes[i%len(outcomes)],
		}
		if ev.Action == "tool.call" {
			ev.Tool = []string{"echo", "add"}[i%2]
		}
		events = append(events, ev)
	}
	// Append out of time order and in several batches: order comes from
	// the times, then from the order of appending.
	for _, batch := range [][]*atraxv1.AuditEvent{events[n/2:], events[:n/2]} {
		if err := s.AppendAudit(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	return events
}

func testListAudit(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	events := auditFixture(t, s, 41)
	t0 := events[1].Time.AsTime()
	at := func(i int) time.Time { return events[i].Time.AsTime() }

	tests := []struct {
		name  string
		q     store.AuditQuery
		match func(ev *atraxv1.AuditEvent) bool
	}{
		{"all", store.AuditQuery{}, func(*atraxv1.AuditEvent) bool { return true }},
		{"actor", store.AuditQuery{Actor: "static:ci"}, func(ev *atraxv1.AuditEvent) bool { return ev.Actor == "static:ci" }},
		{"action", store.AuditQuery{Action: "tool.call"}, func(ev *atraxv1.AuditEvent) bool { return ev.Action == "tool.call" }},
		{"server", store.AuditQuery{Server: "memory"}, func(ev *atraxv1.AuditEvent) bool { return ev.Server == "memory" }},
		{"tool", store.AuditQuery{Tool: "add"}, func(ev *atraxv1.AuditEvent) bool { return ev.Tool == "add" }},
		{"outcome", store.AuditQuery{Outcome: "denied"}, func(ev *atraxv1.AuditEvent) bool { return ev.Outcome == "denied" }},
		{"since inclusive", store.AuditQuery{Since: at(10)}, func(ev *atraxv1.AuditEvent) bool { return !ev.Time.AsTime().Before(at(10)) }},
		{"until exclusive", store.AuditQuery{Until: at(10)}, func(ev *atraxv1.AuditEvent) bool { return ev.Time.AsTime().Before(at(10)) }},
		{"since and until", store.AuditQuery{Since: at(5), Until: at(30)}, func(ev *atraxv1.AuditEvent) bool {
			t := ev.Time.AsTime()
			return !t.Before(at(5)) && t.Before(at(30))
		}},
		{"until before 1970", store.AuditQuery{Until: t0}, func(ev *atraxv1.AuditEvent) bool { return ev.Id == "e00" }},
		{"since after all", store.AuditQuery{Since: t0.Add(time.Hour)}, func(*atraxv1.AuditEvent) bool { return false }},
		{"combined", store.AuditQuery{Action: "tool.call", Outcome: "ok", Since: at(4)}, func(ev *atraxv1.AuditEvent) bool {
			return ev.Action == "tool.call" && ev.Outcome == "ok" && !ev.Time.AsTime().Before(at(4))
		}},
		{"no match", store.AuditQuery{Actor: "nobody"}, func(*atraxv1.AuditEvent) bool { return false }},
	}
	for _, tt := range tests {
		var want []*atraxv1.AuditEvent
		for _, ev := range slices.Backward(events) {
			if tt.match(ev) {
				want = append(want, ev)
			}
		}
		for _, limit := range []int{0, 1, 3, 7, len(want), 1000, 5000} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				q := tt.q
				q.Limit = limit
				pageSize := limit
				if limit <= 0 {
					pageSize = 100
				}
				var got []*atraxv1.AuditEvent
				for pages := 0; ; pages++ {
					if pages > len(events)+1 {
						t.Fatal("pagination does not end")
					}
					page, next, err := s.ListAudit(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > pageSize {
						t.Fatalf("page of %d events, limit %d", len(page), limit)
					}
					got = append(got, page...)
					if next == "" {
						break
					}
					if len(page) != pageSize {
						t.Fatalf("short page (%d of %d) with a next cursor", len(page), pageSize)
					}
					q.Cursor = next
				}
				if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
					t.Errorf("events over all pages (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func testListAuditLimitCap(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	events := make([]*atraxv1.AuditEvent, 1001)
	for i := range events {
		events[i] = &atraxv1.AuditEvent{Action: "tool.call"}
	}
	if err := s.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {1000, 1000}, {1001, 1000}} {
		got, next, err := s.ListAudit(ctx, store.AuditQuery{Limit: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want || next == "" {
			t.Errorf("limit %d: %d events, cursor %q; want %d and a cursor", c.limit, len(got), next, c.want)
		}
	}
}

func testListAuditMalformedCursor(t *testing.T, h Harness) {
	s := h.Open(t)
	for _, cursor := range []string{"not base64!", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		_, _, err := s.ListAudit(t.Context(), store.AuditQuery{Cursor: cursor})
		if !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("cursor %q: errors.Is(%v, ErrInvalidCursor) = false", cursor, err)
		}
		if err == nil || !strings.Contains(err.Error(), "cursor") || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("cursor %q: err = %v, want one naming a malformed cursor", cursor, err)
		}
	}
}

func testConcurrentUse(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	const workers, writes = 8, 8

	var wg sync.WaitGroup
	revs := make(chan int64, workers*writes*2)
	errs := make(chan error, workers*writes*8)
	for w := range workers {
		wg.Go(func() {
			for i := range writes {
				name := fmt.Sprintf("w%d-%d", w, i)
				rev, err := s.PutServers(ctx, []*atraxv1.Server{Server(name)}, nil)
				errs <- err
				revs <- rev
				rev, err = s.Revoke(ctx, name, time.Now().Add(time.Hour))
				errs <- err
				revs <- rev
				errs <- s.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "server.create", Server: name}})
				_, err = s.GetServer(ctx, name)
				errs <- err
				_, err = s.ListServers(ctx)
				errs <- err
				_, _, err = s.ListAudit(ctx, store.AuditQuery{Server: name})
				errs <- err
				_, err = s.Revision(ctx)
				errs <- err
				_, err = s.Revocations(ctx)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(revs)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[int64]bool{}
	var highest int64
	for rev := range revs {
		if seen[rev] {
			t.Errorf("revision %d returned twice", rev)
		}
		seen[rev] = true
		highest = max(highest, rev)
	}
	total := int64(workers * writes * 2)
	final := Must(t)(s.Revision(ctx))
	if len(seen) != int(total) || final != highest || (h.DenseRevisions && final != total) {
		t.Errorf("final revision %d with %d distinct ones returned (highest %d); want %d distinct, the highest last", final, len(seen), highest, total)
	}
	servers, err := s.ListServers(ctx)
	if err != nil || len(servers) != workers*writes {
		t.Errorf("ListServers = %d servers, %v; want %d", len(servers), err, workers*writes)
	}
	audit, _, err := s.ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil || len(audit) != workers*writes {
		t.Errorf("ListAudit = %d events, %v; want %d", len(audit), err, workers*writes)
	}
}
