package etcdstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

func edge(id string, version int64) *atraxv1.EdgeStatus {
	return &atraxv1.EdgeStatus{EdgeId: id, Connected: true, SnapshotVersion: version, Replica: "cp:4001"}
}

// waitEdges polls s.ListEdges until it holds exactly the edge ids want
// (with the snapshot versions given, when not 0), or fails after 20s.
func waitEdges(t *testing.T, s *Store, what string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := s.ListEdges(t.Context())
		ok := err == nil && len(got) == len(want)
		for _, e := range got {
			v, found := want[e.GetEdgeId()]
			ok = ok && found && (v == 0 || v == e.GetSnapshotVersion())
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: ListEdges = %v, %v; want %v", what, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEdges sets the edge records of three processes sharing a prefix:
// each lists every one's; a record set again replaces the last; and they
// vanish with their process, at once when it closes, after the lease when
// it is cut off.
func TestEdges(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := t.Context()
	prefix := newPrefix()
	a, b, gone := open(t, c, prefix), open(t, c, prefix), open(t, c, prefix)
	rev := must(t)(a.Revision(ctx))

	if err := a.SetEdges(ctx, []*atraxv1.EdgeStatus{edge("e1", 1), edge("e2", 1)}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetEdges(ctx, []*atraxv1.EdgeStatus{edge("e3", 1)}); err != nil {
		t.Fatal(err)
	}
	if err := gone.SetEdges(ctx, []*atraxv1.EdgeStatus{edge("e4", 1)}); err != nil {
		t.Fatal(err)
	}
	waitEdges(t, b, "three processes' edges", map[string]int64{"e1": 1, "e2": 1, "e3": 1, "e4": 1})
	if got := must(t)(b.Revision(ctx)); got != rev {
		t.Errorf("Revision after edge records = %d, want %d: they are not state", got, rev)
	}

	if err := a.SetEdges(ctx, []*atraxv1.EdgeStatus{edge("e1", 2)}); err != nil {
		t.Fatal(err)
	}
	waitEdges(t, b, "e1 set again, e2 left", map[string]int64{"e1": 2, "e3": 1, "e4": 1})

	// A record that etcd lost with its lease is written again.
	a.edges.mu.Lock()
	lease := a.edges.lease
	a.edges.mu.Unlock()
	if _, err := rawClient(t, c).Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	waitEdges(t, b, "after the lease was revoked behind its back", map[string]int64{"e1": 2, "e3": 1, "e4": 1})

	// Closed, its records vanish at once; cut off (its client closed, as
	// if it died), after its lease (2s here).
	a.Close()
	waitEdges(t, b, "after a closed", map[string]int64{"e3": 1, "e4": 1})
	gone.cli.Close()
	waitEdges(t, b, "after the third was cut off", map[string]int64{"e3": 1})

	if err := b.SetEdges(ctx, []*atraxv1.EdgeStatus{{EdgeId: "a/b"}}); err == nil {
		t.Error("SetEdges with an edge id holding a / succeeded")
	}
	if err := a.SetEdges(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetEdges after Close: err = %v, want ErrClosed", err)
	}
}

// TestCheck checks a store while its one etcd member runs, is stopped and
// runs again.
func TestCheck(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := open(t, c, newPrefix())
	check := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		return s.Check(ctx)
	}
	if err := check(); err != nil {
		t.Fatalf("Check with etcd up: %v", err)
	}
	m := c.Members[0]
	m.Stop()
	if err := check(); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Check with etcd stopped: err = %v, want ErrUnavailable", err)
	}
	c.Restart(t, m)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Check after etcd restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Close()
	if err := check(); !errors.Is(err, ErrClosed) {
		t.Errorf("Check after Close: err = %v, want ErrClosed", err)
	}
}
