package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/service"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

func TestStatus(t *testing.T) {
	ctx := context.Background()
	r, err := registry.Open(ctx, registry.Options{
		Store: openStore(t),
		Config: []config.Server{
			{Name: "memory", Command: "npx", Env: map[string]string{"TOKEN": "secret-value"}, Description: "notes"},
			{Name: "docs", URL: "https://docs.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer secret-value"}, Disabled: true},
			{Name: "legacy", TransportType: "sse", URL: "https://old.example.com/sse"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := fleet.New(fleet.Options{})
	defer f.Connect(&atraxv1.EdgeHello{EdgeId: "edge-1"})()
	started := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s := &service.Status{Registry: r, Fleet: f, Version: "v1.2.3", Started: started}

	health, err := s.GetHealth(ctx, &atraxv1.GetHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&atraxv1.GetHealthResponse{Status: "ok", Component: "controlplane", Version: "v1.2.3"}, health, protocmp.Transform()); diff != "" {
		t.Errorf("GetHealth (-want +got):\n%s", diff)
	}

	got, err := s.GetStatus(ctx, &atraxv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, version := r.List()
	want := &atraxv1.GetStatusResponse{
		Status: "ok", Version: "v1.2.3", StartTime: timestamppb.New(started), RegistryVersion: version,
		Servers: []*atraxv1.ServerStatus{
			{Name: "memory", TransportType: "stdio", Source: "config", State: "running", Description: "notes"},
			{Name: "docs", TransportType: "http", Source: "config", State: "stopped", Disabled: true},
			{Name: "legacy", TransportType: "sse", Source: "config", State: "running"},
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreFields(&atraxv1.GetStatusResponse{}, "edges")); diff != "" {
		t.Errorf("GetStatus (-want +got):\n%s", diff)
	}
	if len(got.GetEdges()) != 1 || got.GetEdges()[0].GetEdgeId() != "edge-1" {
		t.Errorf("GetStatus edges = %v, want edge-1", got.GetEdges())
	}
}

// edgeRecords is a fleet.Shared that holds another replica's edges, or
// fails.
type edgeRecords struct {
	recs []*atraxv1.EdgeStatus
	err  error
}

func (e *edgeRecords) SetEdges(context.Context, []*atraxv1.EdgeStatus) error { return nil }
func (e *edgeRecords) ListEdges(context.Context) ([]*atraxv1.EdgeStatus, error) {
	return e.recs, e.err
}

// TestStatusOfAFleet: GetStatus lists the edges of other control planes
// sharing the store, and says it is degraded when it cannot; so does
// GetHealth when the control plane cannot reach its store.
func TestStatusOfAFleet(t *testing.T) {
	ctx := context.Background()
	r, err := registry.Open(ctx, registry.Options{Store: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	others := &edgeRecords{recs: []*atraxv1.EdgeStatus{{EdgeId: "edge-2", Connected: true, Replica: "cp-2:4001"}}}
	f := fleet.New(fleet.Options{Replica: "cp-1:4001", Shared: others})
	defer f.Connect(&atraxv1.EdgeHello{EdgeId: "edge-1"})()
	var notReady error
	s := &service.Status{Registry: r, Fleet: f, Ready: func() error { return notReady }}

	edges := func(st *atraxv1.GetStatusResponse) map[string]string {
		out := map[string]string{}
		for _, e := range st.GetEdges() {
			out[e.GetEdgeId()] = e.GetReplica()
		}
		return out
	}
	got, err := s.GetStatus(ctx, &atraxv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"edge-1": "cp-1:4001", "edge-2": "cp-2:4001"}, edges(got)); got.GetStatus() != "ok" || diff != "" {
		t.Errorf("GetStatus: status %q, edges (-want +got):\n%s", got.GetStatus(), diff)
	}

	others.err = errors.New("store unavailable (etcd: dial tcp 10.0.0.9:2379: connection refused)")
	got, err = s.GetStatus(ctx, &atraxv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != "degraded" || !cmp.Equal(edges(got), map[string]string{"edge-1": "cp-1:4001"}) || strings.Contains(got.GetReason(), "10.0.0.9") {
		t.Errorf("GetStatus when the others' edges cannot be read: %q (%s), edges %v; want degraded, edge-1, no address", got.GetStatus(), got.GetReason(), edges(got))
	}

	others.err = nil
	notReady = errors.New("cannot reach etcd")
	got, err = s.GetStatus(ctx, &atraxv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != "degraded" || !strings.Contains(got.GetReason(), "cannot reach etcd") || !cmp.Equal(edges(got), map[string]string{"edge-1": "cp-1:4001"}) {
		t.Errorf("GetStatus when not ready: %q (%s), edges %v; want degraded naming etcd, edge-1", got.GetStatus(), got.GetReason(), edges(got))
	}
	health, err := s.GetHealth(ctx, &atraxv1.GetHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if health.GetStatus() != "degraded" || health.GetReason() != "cannot reach etcd" {
		t.Errorf("GetHealth when not ready = %v, want degraded: cannot reach etcd", health)
	}
}

func TestListAuditEvents(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var events []*atraxv1.AuditEvent
	for i, action := range []string{"server.create", "tools/call", "tools/call"} {
		events = append(events, &atraxv1.AuditEvent{Time: timestamppb.New(t0.Add(time.Duration(i) * time.Minute)), Action: action, Actor: "static:ops", Outcome: "ok"})
	}
	if err := st.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	a := &service.AuditLog{Store: st}

	for _, tt := range []struct {
		req   *atraxv1.ListAuditEventsRequest
		field string
	}{
		{&atraxv1.ListAuditEventsRequest{PageSize: -1}, "page_size"},
		{&atraxv1.ListAuditEventsRequest{PageSize: 1001}, "page_size"},
		{&atraxv1.ListAuditEventsRequest{PageToken: "not-a-token"}, "page_token"},
	} {
		_, err := a.ListAuditEvents(ctx, tt.req)
		if status.Code(err) != codes.InvalidArgument || !cmp.Equal(violations(err), []string{tt.field}) {
			t.Errorf("ListAuditEvents(%v) = %v, want InvalidArgument on %s", tt.req, err, tt.field)
		}
	}

	resp, err := a.ListAuditEvents(ctx, &atraxv1.ListAuditEventsRequest{Action: "tools/call", PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEvents()) != 1 || resp.GetNextPageToken() == "" {
		t.Fatalf("first page = %v, want one event and a next page", resp)
	}
	next, err := a.ListAuditEvents(ctx, &atraxv1.ListAuditEventsRequest{Action: "tools/call", PageSize: 1, PageToken: resp.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.GetEvents()) != 1 || next.GetEvents()[0].GetId() == resp.GetEvents()[0].GetId() {
		t.Errorf("second page = %v, want the other tools/call event", next)
	}

	// The time range is start-inclusive, end-exclusive.
	ranged, err := a.ListAuditEvents(ctx, &atraxv1.ListAuditEventsRequest{
		StartTime: timestamppb.New(t0.Add(time.Minute)), EndTime: timestamppb.New(t0.Add(2 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ranged.GetEvents()) != 1 || !ranged.GetEvents()[0].GetTime().AsTime().Equal(t0.Add(time.Minute)) {
		t.Errorf("ranged = %v, want the event at t0+1m", ranged.GetEvents())
	}
}
