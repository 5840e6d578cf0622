package boltstore

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// openTemp opens a new store in a temporary directory and closes it at the
// end of the test.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "atrax.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func server(name string) *atraxv1.Server {
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

func signingKey(t *testing.T, id string, created time.Time) store.SigningKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return store.SigningKey{ID: id, Private: priv, Created: created}
}

func sealKey(id string, created time.Time) store.SealKey {
	k := make([]byte, 32)
	copy(k, id)
	return store.SealKey{ID: id, Key: k, Created: created}
}

// must returns a function that fails the test on an error and otherwise
// returns the revision: must(t)(s.Revision(ctx)).
func must(t *testing.T) func(rev int64, err error) int64 {
	t.Helper()
	return func(rev int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
}

func TestOpenCreatesDirectoryAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "atrax")
	path := filepath.Join(dir, "atrax.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != c.want {
			t.Errorf("mode of %s = %v, want %v", c.path, got, c.want)
		}
	}
	rev, err := s.Revision(t.Context())
	if err != nil || rev != 0 {
		t.Errorf("Revision of a new store = %d, %v; want 0, nil", rev, err)
	}
}

func TestServers(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)

	if _, err := s.GetServer(ctx, "memory"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetServer of a missing server: err = %v, want ErrNotFound", err)
	}
	got, err := s.ListServers(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListServers of an empty store = %v, %v", got, err)
	}

	rev := must(t)(s.PutServers(ctx, []*atraxv1.Server{server("memory"), server("everything")}, nil))
	if rev != 1 {
		t.Errorf("first PutServers revision = %d, want 1", rev)
	}
	got, err = s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []*atraxv1.Server{server("everything"), server("memory")} // by name
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("ListServers (-want +got):\n%s", diff)
	}

	// Returned messages are the caller's to change.
	got[0].Description = "changed"
	one, err := s.GetServer(ctx, "everything")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(server("everything"), one, protocmp.Transform()); diff != "" {
		t.Errorf("GetServer after changing a listed message (-want +got):\n%s", diff)
	}
	one.Description = "changed too"

	// Replace one, delete the other.
	replaced := server("memory")
	replaced.Disabled = true
	replaced.State = "stopped"
	rev = must(t)(s.PutServers(ctx, []*atraxv1.Server{replaced}, []string{"everything"}))
	if rev != 2 {
		t.Errorf("second PutServers revision = %d, want 2", rev)
	}
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
}

func TestPutServersInvalid(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	must(t)(s.PutServers(ctx, []*atraxv1.Server{server("a")}, nil))

	tests := []struct {
		name     string
		put      []*atraxv1.Server
		del      []string
		notFound bool
		wantText string
	}{
		{"missing delete", []*atraxv1.Server{server("b")}, []string{"a", "ghost"}, true, `"ghost"`},
		{"deleted twice", nil, []string{"a", "a"}, true, `"a"`},
		{"put and delete", []*atraxv1.Server{server("a")}, []string{"a"}, false, `"a" is both put and deleted`},
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
			if diff := cmp.Diff([]*atraxv1.Server{server("a")}, got, protocmp.Transform()); diff != "" {
				t.Errorf("servers changed by a failed PutServers (-want +got):\n%s", diff)
			}
			if rev := must(t)(s.Revision(ctx)); rev != 1 {
				t.Errorf("revision after a failed PutServers = %d, want 1", rev)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 123456789, time.UTC)

	k2 := signingKey(t, "k2", t0.Add(time.Hour))
	k1 := signingKey(t, "k1", t0)
	k3 := signingKey(t, "k3", t0.Add(time.Hour)) // same time as k2: by ID
	for _, k := range []store.SigningKey{k2, k3, k1} {
		must(t)(s.PutSigningKey(ctx, k))
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
	k1b := signingKey(t, "k1", t0.Add(2*time.Hour))
	must(t)(s.PutSigningKey(ctx, k1b))
	must(t)(s.DeleteSigningKey(ctx, "k2"))
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

	s2 := sealKey("s2", t0.Add(time.Minute))
	s1 := sealKey("s1", t0)
	must(t)(s.PutSealKey(ctx, s2))
	must(t)(s.PutSealKey(ctx, s1))
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
	before := must(t)(s.Revision(ctx))
	for _, tt := range invalid {
		if _, err := tt.put(); err == nil {
			t.Errorf("%s: stored, want an error", tt.name)
		}
	}
	if rev := must(t)(s.Revision(ctx)); rev != before {
		t.Errorf("revision after invalid puts = %d, want %d", rev, before)
	}
}

func TestRevisionGrowsWithEveryWrite(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	t0 := time.Now()
	writes := []struct {
		name  string
		write func() (int64, error)
	}{
		{"PutServers", func() (int64, error) { return s.PutServers(ctx, []*atraxv1.Server{server("a")}, nil) }},
		{"PutServers delete", func() (int64, error) { return s.PutServers(ctx, nil, []string{"a"}) }},
		{"PutSigningKey", func() (int64, error) { return s.PutSigningKey(ctx, signingKey(t, "k", t0)) }},
		{"DeleteSigningKey", func() (int64, error) { return s.DeleteSigningKey(ctx, "k") }},
		{"PutSealKey", func() (int64, error) { return s.PutSealKey(ctx, sealKey("s", t0)) }},
		{"Revoke", func() (int64, error) { return s.Revoke(ctx, "jti", t0.Add(-time.Hour)) }},
		{"PruneRevocations", func() (int64, error) { _, rev, err := s.PruneRevocations(ctx, t0); return rev, err }},
	}
	var want int64
	for _, w := range writes {
		want++
		rev, err := w.write()
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if rev != want {
			t.Errorf("%s returned revision %d, want %d", w.name, rev, want)
		}
		if got := must(t)(s.Revision(ctx)); got != want {
			t.Errorf("Revision after %s = %d, want %d", w.name, got, want)
		}
	}
	if err := s.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "server.create"}}); err != nil {
		t.Fatal(err)
	}
	if got := must(t)(s.Revision(ctx)); got != want {
		t.Errorf("Revision after AppendAudit = %d, want %d (unchanged)", got, want)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 5, time.UTC)

	must(t)(s.PutServers(ctx, []*atraxv1.Server{server("a"), server("b")}, nil))
	sk := signingKey(t, "k1", t0)
	must(t)(s.PutSigningKey(ctx, sk))
	seal := sealKey("s1", t0)
	must(t)(s.PutSealKey(ctx, seal))
	must(t)(s.Revoke(ctx, "jti-1", t0.Add(time.Hour)))
	events := []*atraxv1.AuditEvent{{Id: "e1", Time: timestamppb.New(t0), Action: "server.create", Server: "a"}}
	if err := s.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if rev := must(t)(s.Revision(ctx)); rev != 4 {
		t.Errorf("Revision after reopen = %d, want 4", rev)
	}
	servers, err := s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*atraxv1.Server{server("a"), server("b")}, servers, protocmp.Transform()); diff != "" {
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
	if rev := must(t)(s.Revoke(ctx, "jti-2", t0)); rev != 5 {
		t.Errorf("first write after reopen returned revision %d, want 5", rev)
	}
}

// editMeta opens the file with bbolt directly and lets fn damage it.
func editMeta(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesUnknownFiles(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(tx *bolt.Tx) error
		tooNew    bool
		wantTexts []string
	}{
		{
			name: "newer schema",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 2))
			},
			tooNew:    true,
			wantTexts: []string{"has schema version 2; this atrax supports up to 1: upgrade atrax"},
		},
		{
			name:      "meta missing",
			edit:      func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) },
			wantTexts: []string{"damaged", `"meta"`},
		},
		{
			name:      "schema missing",
			edit:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySchema) },
			wantTexts: []string{"damaged", "schema version"},
		},
		{
			name:      "schema malformed",
			edit:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("1")) },
			wantTexts: []string{"damaged", "schema version"},
		},
		{
			name: "schema zero",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 0))
			},
			wantTexts: []string{"damaged", "schema version 0"},
		},
		{
			name:      "revision missing",
			edit:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyRevision) },
			wantTexts: []string{"damaged", "revision"},
		},
		{
			name:      "bucket missing",
			edit:      func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketAudit) },
			wantTexts: []string{"damaged", `"audit"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "atrax.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			editMeta(t, path, tt.edit)

			s, err = Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if got := errors.Is(err, store.ErrSchemaTooNew); got != tt.tooNew {
				t.Errorf("errors.Is(%v, ErrSchemaTooNew) = %v, want %v", err, got, tt.tooNew)
			}
			for _, want := range append(tt.wantTexts, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	s, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second Open of an open file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("errors.Is(%v, ErrLocked) = false", err)
	}
	for _, want := range []string{path, "in use by another atrax process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v; the timeout was not applied", d)
	}
}

func TestCloseAndContext(t *testing.T) {
	s, _ := openTemp(t)

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Revision(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Revision with a canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.PutServers(canceled, []*atraxv1.Server{server("a")}, nil); !errors.Is(err, context.Canceled) {
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
		"PutServers":       func() error { _, err := s.PutServers(ctx, []*atraxv1.Server{server("a")}, nil); return err },
		"SigningKeys":      func() error { _, err := s.SigningKeys(ctx); return err },
		"PutSigningKey":    func() error { _, err := s.PutSigningKey(ctx, signingKey(t, "k", time.Now())); return err },
		"DeleteSigningKey": func() error { _, err := s.DeleteSigningKey(ctx, "k"); return err },
		"SealKeys":         func() error { _, err := s.SealKeys(ctx); return err },
		"PutSealKey":       func() error { _, err := s.PutSealKey(ctx, sealKey("s", time.Now())); return err },
		"Revoke":           func() error { _, err := s.Revoke(ctx, "j", time.Now()); return err },
		"Revocations":      func() error { _, err := s.Revocations(ctx); return err },
		"PruneRevocations": func() error { _, _, err := s.PruneRevocations(ctx, time.Now()); return err },
		"AppendAudit":      func() error { return s.AppendAudit(ctx, []*atraxv1.AuditEvent{{Action: "x"}}) },
		"ListAudit":        func() error { _, _, err := s.ListAudit(ctx, store.AuditQuery{}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func TestRevocations(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

	n, rev, err := s.PruneRevocations(ctx, now)
	if err != nil || n != 0 || rev != 0 {
		t.Errorf("PruneRevocations of nothing = %d, %d, %v; want 0, 0, nil", n, rev, err)
	}
	must(t)(s.Revoke(ctx, "old", now.Add(-time.Hour)))
	must(t)(s.Revoke(ctx, "older", now.Add(-48*time.Hour)))
	must(t)(s.Revoke(ctx, "now", now)) // not before now: kept
	must(t)(s.Revoke(ctx, "later", now.Add(time.Nanosecond)))
	if _, err := s.Revoke(ctx, "", now); err == nil {
		t.Error("Revoke with an empty jti succeeded")
	}

	n, rev, err = s.PruneRevocations(ctx, now)
	if err != nil || n != 2 || rev != 5 {
		t.Errorf("PruneRevocations = %d, %d, %v; want 2, 5, nil", n, rev, err)
	}
	got, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"now": now, "later": now.Add(time.Nanosecond)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Revocations after prune (-want +got):\n%s", diff)
	}

	// Nothing left to prune: the revision stays.
	n, rev, err = s.PruneRevocations(ctx, now)
	if err != nil || n != 0 || rev != 5 {
		t.Errorf("second PruneRevocations = %d, %d, %v; want 0, 5, nil", n, rev, err)
	}
	if got := must(t)(s.Revision(ctx)); got != 5 {
		t.Errorf("Revision after an empty prune = %d, want 5", got)
	}
}

func TestAppendAudit(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)

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
func auditFixture(t *testing.T, s *Store, n int) []*atraxv1.AuditEvent {
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

func TestListAudit(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
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

func TestListAuditLimitCap(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
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

func TestListAuditMalformedCursor(t *testing.T) {
	s, _ := openTemp(t)
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

func TestConcurrentUse(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	const workers, writes = 8, 8

	var wg sync.WaitGroup
	revs := make(chan int64, workers*writes*2)
	errs := make(chan error, workers*writes*8)
	for w := range workers {
		wg.Go(func() {
			for i := range writes {
				name := fmt.Sprintf("w%d-%d", w, i)
				rev, err := s.PutServers(ctx, []*atraxv1.Server{server(name)}, nil)
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
	for rev := range revs {
		if seen[rev] {
			t.Errorf("revision %d returned twice", rev)
		}
		seen[rev] = true
	}
	total := int64(workers * writes * 2)
	if got := must(t)(s.Revision(ctx)); got != total || len(seen) != int(total) {
		t.Errorf("final revision %d with %d distinct ones returned; want %d", got, len(seen), total)
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

// helperEnv names the data file for TestHelperProcess.
const helperEnv = "BOLTSTORE_TEST_HELPER_PATH"

// TestHelperProcess is not a test: TestWriteSurvivesKill runs the test
// binary again with helperEnv set, and then this opens the store, writes a
// server, says "written" and waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process of TestWriteSurvivesKill")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutServers(context.Background(), []*atraxv1.Server{server("durable")}, nil); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("written\n")
	time.Sleep(time.Minute) // killed long before
}

func TestWriteSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	path := filepath.Join(t.TempDir(), "atrax.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	written := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "written" {
				written <- true
				return
			}
		}
		written <- false
	}()
	select {
	case ok := <-written:
		if !ok {
			t.Fatal("helper process ended without writing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not write within 30s")
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait() // the lock goes with the process

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer s.Close()
	got, err := s.GetServer(t.Context(), "durable")
	if err != nil {
		t.Fatalf("GetServer after kill: %v", err)
	}
	if diff := cmp.Diff(server("durable"), got, protocmp.Transform()); diff != "" {
		t.Errorf("server after kill (-want +got):\n%s", diff)
	}
	if rev := must(t)(s.Revision(t.Context())); rev != 1 {
		t.Errorf("Revision after kill = %d, want 1", rev)
	}
}

func TestOpenExistingFiles(t *testing.T) {
	t.Run("empty file is new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "atrax.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("Open of an empty file: %v", err)
		}
		defer s.Close()
		if rev := must(t)(s.Revision(t.Context())); rev != 0 {
			t.Errorf("Revision = %d, want 0", rev)
		}
	})
	t.Run("not a data file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "atrax.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("not bolt\n", 2000)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open of a text file succeeded")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	})
}
