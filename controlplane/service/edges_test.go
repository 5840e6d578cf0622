package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/service"
	"github.com/atrax-mcp/atrax/controlplane/snapshot"
	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// syncStream is the server side of a Sync stream driven by the test:
// messages put on in are received (closing in is the edge's EOF), and what
// the service sends arrives on out.
type syncStream struct {
	grpc.ServerStream
	ctx context.Context
	in  chan *atraxv1.SyncRequest
	out chan *atraxv1.SyncResponse
}

func newSyncStream(ctx context.Context) *syncStream {
	return &syncStream{ctx: ctx, in: make(chan *atraxv1.SyncRequest, 8), out: make(chan *atraxv1.SyncResponse, 8)}
}

func (s *syncStream) Context() context.Context { return s.ctx }

func (s *syncStream) Recv() (*atraxv1.SyncRequest, error) {
	select {
	case m, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

func (s *syncStream) Send(m *atraxv1.SyncResponse) error {
	select {
	case s.out <- m:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

type edgesEnv struct {
	edges    *service.Edges
	version  atomic.Int64
	pub      *snapshot.Publisher
	fleet    *fleet.Fleet
	store    store.Store
	stopping chan struct{}
}

func newEdges(t *testing.T) *edgesEnv {
	t.Helper()
	e := &edgesEnv{fleet: fleet.New(fleet.Options{}), store: openStore(t), stopping: make(chan struct{})}
	e.version.Store(1)
	pub, err := snapshot.NewPublisher(func() (*atraxv1.Snapshot, error) {
		return &atraxv1.Snapshot{Version: e.version.Load()}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.pub = pub
	e.edges = &service.Edges{Snapshots: pub, Fleet: e.fleet, Store: e.store, Logger: slog.New(slog.DiscardHandler), Stopping: e.stopping}
	return e
}

// sync runs Sync on s and returns its result channel.
func (e *edgesEnv) sync(s *syncStream) <-chan error {
	done := make(chan error, 1)
	go func() { done <- e.edges.Sync(s) }()
	return done
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Sync did not return")
	}
	return nil
}

func snapshotVersion(t *testing.T, s *syncStream) int64 {
	t.Helper()
	select {
	case m := <-s.out:
		return m.GetSnapshot().GetVersion()
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot sent")
	}
	return 0
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hello(id string) *atraxv1.SyncRequest {
	return &atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Hello{Hello: &atraxv1.EdgeHello{EdgeId: id}}}
}

func TestSyncRefusesWithoutHello(t *testing.T) {
	for name, first := range map[string]*atraxv1.SyncRequest{
		"report first":     {Message: &atraxv1.SyncRequest_Report{Report: &atraxv1.EdgeReport{}}},
		"hello without id": hello(""),
		"empty message":    {},
	} {
		e := newEdges(t)
		s := newSyncStream(context.Background())
		s.in <- first
		if err := result(t, e.sync(s)); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: Sync = %v, want InvalidArgument", name, err)
		}
		if edges := e.fleet.Edges(); len(edges) != 0 {
			t.Errorf("%s: fleet lists %v", name, edges)
		}
	}
}

func TestSync(t *testing.T) {
	e := newEdges(t)
	s := newSyncStream(context.Background())
	s.in <- hello("edge-1")
	done := e.sync(s)

	if v := snapshotVersion(t, s); v != 1 {
		t.Errorf("first snapshot version %d, want 1", v)
	}
	if edges := e.fleet.Edges(); len(edges) != 1 || !edges[0].GetConnected() {
		t.Errorf("fleet after hello = %v, want edge-1 connected", edges)
	}

	e.version.Store(2)
	if err := e.pub.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if v := snapshotVersion(t, s); v != 2 {
		t.Errorf("snapshot after Rebuild: version %d, want 2", v)
	}

	s.in <- &atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Report{Report: &atraxv1.EdgeReport{
		SnapshotVersion: 2, Upstreams: []*atraxv1.UpstreamStatus{{Name: "memory"}},
	}}}
	eventually(t, "report in the fleet", func() bool {
		edges := e.fleet.Edges()
		return len(edges) == 1 && edges[0].GetSnapshotVersion() == 2 && len(edges[0].GetUpstreams()) == 1
	})

	// Audit events are stored under the edge that sent them, whatever
	// they claimed.
	s.in <- &atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Audit{Audit: &atraxv1.AuditBatch{Events: []*atraxv1.AuditEvent{
		{Action: "tools/call", EdgeId: "someone-else"},
	}}}}
	var events []*atraxv1.AuditEvent
	eventually(t, "audit event stored", func() bool {
		var err error
		events, _, err = e.store.ListAudit(context.Background(), store.AuditQuery{})
		return err == nil && len(events) == 1
	})
	if events[0].GetEdgeId() != "edge-1" || events[0].GetAction() != "tools/call" {
		t.Errorf("stored event = %v, want tools/call from edge-1", events[0])
	}

	// A second hello ends the stream.
	s.in <- hello("edge-1")
	if err := result(t, done); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Sync after a second hello = %v, want InvalidArgument", err)
	}
	if edges := e.fleet.Edges(); len(edges) != 1 || edges[0].GetConnected() {
		t.Errorf("fleet after the stream ended = %v, want edge-1 disconnected", edges)
	}
}

func TestSyncEnds(t *testing.T) {
	t.Run("edge closes", func(t *testing.T) {
		e := newEdges(t)
		s := newSyncStream(context.Background())
		s.in <- hello("edge-1")
		done := e.sync(s)
		snapshotVersion(t, s)
		close(s.in)
		if err := result(t, done); err != nil {
			t.Errorf("Sync after the edge's EOF = %v, want nil", err)
		}
		if e.fleet.Edges()[0].GetConnected() {
			t.Error("edge still connected")
		}
	})
	t.Run("edge goes away", func(t *testing.T) {
		e := newEdges(t)
		ctx, cancel := context.WithCancel(context.Background())
		s := newSyncStream(ctx)
		s.in <- hello("edge-1")
		done := e.sync(s)
		snapshotVersion(t, s)
		cancel()
		result(t, done)
		if e.fleet.Edges()[0].GetConnected() {
			t.Error("edge still connected")
		}
	})
	t.Run("control plane stops", func(t *testing.T) {
		e := newEdges(t)
		s := newSyncStream(context.Background())
		s.in <- hello("edge-1")
		done := e.sync(s)
		snapshotVersion(t, s)
		close(e.stopping)
		if err := result(t, done); status.Code(err) != codes.Unavailable {
			t.Errorf("Sync when the control plane stops = %v, want Unavailable", err)
		}
	})
	t.Run("no first message", func(t *testing.T) {
		e := newEdges(t)
		s := newSyncStream(context.Background())
		close(s.in)
		if err := result(t, e.sync(s)); err != io.EOF {
			t.Errorf("Sync without a first message = %v, want io.EOF", err)
		}
	})
}

// notReady is a Ready func the test flips.
type notReady struct {
	mu      sync.Mutex
	err     error
	changed chan struct{}
}

func newNotReady() *notReady { return &notReady{changed: make(chan struct{})} }

func (r *notReady) State() (<-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed, r.err
}

func (r *notReady) set(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	close(r.changed)
	r.changed = make(chan struct{})
}

// TestSyncNotReady: a control plane that cannot reach its store ends its
// edges' streams and refuses new ones, until it can again.
func TestSyncNotReady(t *testing.T) {
	e := newEdges(t)
	r := newNotReady()
	e.edges.Ready = r.State
	s := newSyncStream(context.Background())
	s.in <- hello("edge-1")
	done := e.sync(s)
	snapshotVersion(t, s)

	r.set(errors.New("cannot reach etcd"))
	err := result(t, done)
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "cannot reach etcd") {
		t.Errorf("Sync when the control plane is no longer ready = %v, want Unavailable naming etcd", err)
	}
	if e.fleet.Edges()[0].GetConnected() {
		t.Error("edge still connected")
	}
	s = newSyncStream(context.Background())
	s.in <- hello("edge-1")
	if err := result(t, e.sync(s)); status.Code(err) != codes.Unavailable {
		t.Errorf("Sync while not ready = %v, want Unavailable", err)
	}

	r.set(nil)
	s = newSyncStream(context.Background())
	s.in <- hello("edge-1")
	e.sync(s)
	snapshotVersion(t, s)
	if !e.fleet.Edges()[0].GetConnected() {
		t.Error("edge not connected once the control plane is ready again")
	}
}
