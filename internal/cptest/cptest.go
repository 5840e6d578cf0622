// Package cptest is a minimal control plane for edge tests: a gRPC server
// on 127.0.0.1:0 that serves EdgeService.Sync through the API in gen/ only.
// It sends the snapshot a test sets (and each one it sets later) to every
// edge connected, and keeps the audit events and reports the edges send.
// It checks no token.
//
//	cp := cptest.New(t)
//	cp.SetSnapshot(&atraxv1.Snapshot{Version: 1, Servers: servers})
//	// run an edge with controlPlane.address = cp.Addr
//	events := cp.WaitAudit(t, 1, 5*time.Second)
package cptest

import (
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Server is the fake control plane.
type Server struct {
	atraxv1.UnimplementedEdgeServiceServer
	// Addr is the gRPC address edges dial.
	Addr string

	mu      sync.Mutex
	snap    *atraxv1.Snapshot
	audit   []*atraxv1.AuditEvent
	reports []*atraxv1.EdgeReport
	changed chan struct{} // closed and replaced on every change
}

// New starts a server that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: lis.Addr().String(), changed: make(chan struct{})}
	srv := grpc.NewServer()
	atraxv1.RegisterEdgeServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s
}

// SetSnapshot makes snap the snapshot sent to every edge. Edges apply a
// snapshot only if its version is newer than the last they applied.
func (s *Server) SetSnapshot(snap *atraxv1.Snapshot) {
	s.mu.Lock()
	s.snap = proto.Clone(snap).(*atraxv1.Snapshot)
	s.changedLocked()
	s.mu.Unlock()
}

// Audit returns the audit events received so far, oldest first.
func (s *Server) Audit() []*atraxv1.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}

// Reports returns the reports received so far, oldest first.
func (s *Server) Reports() []*atraxv1.EdgeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports)
}

// WaitAudit waits until n audit events have come, and returns them; it
// fails the test after timeout.
func (s *Server) WaitAudit(t testing.TB, n int, timeout time.Duration) []*atraxv1.AuditEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, changed := slices.Clone(s.audit), s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d audit events within %v, want %d: %v", len(got), timeout, n, got)
		}
	}
}

func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Sync implements atraxv1.EdgeServiceServer.
func (s *Server) Sync(stream atraxv1.EdgeService_SyncServer) error {
	if _, err := stream.Recv(); err != nil { // the hello
		return err
	}
	readErr := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				readErr <- err
				return
			}
			s.mu.Lock()
			switch m := msg.GetMessage().(type) {
			case *atraxv1.SyncRequest_Audit:
				s.audit = append(s.audit, m.Audit.GetEvents()...)
			case *atraxv1.SyncRequest_Report:
				s.reports = append(s.reports, m.Report)
			}
			s.changedLocked()
			s.mu.Unlock()
		}
	}()
	var sent *atraxv1.Snapshot
	for {
		s.mu.Lock()
		snap, changed := s.snap, s.changed
		s.mu.Unlock()
		if snap != nil && snap != sent {
			if err := stream.Send(&atraxv1.SyncResponse{Snapshot: snap}); err != nil {
				return err
			}
			sent = snap
		}
		select {
		case <-changed:
		case err := <-readErr:
			return err
		case <-stream.Context().Done():
			return nil
		}
	}
}
