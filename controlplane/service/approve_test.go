package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/service"
	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
)

// approvalEnv is a ServerService over a registry with a pinned server
// "gh" (from the config file) and an unpinned one, and a fleet the test
// fills with edge reports.
type approvalEnv struct {
	s     *service.Servers
	st    store.Store
	fleet *fleet.Fleet
	ctx   context.Context
}

func newApprovalEnv(t *testing.T) *approvalEnv {
	t.Helper()
	st := openStore(t)
	r, err := registry.Open(context.Background(), registry.Options{
		Store: st,
		Config: []config.Server{
			{Name: "gh", URL: "https://gh.example.com/mcp", PinTools: true},
			{Name: "plain", URL: "https://plain.example.com/mcp"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := fleet.New(fleet.Options{})
	return &approvalEnv{
		s:     &service.Servers{Registry: r, Audit: &service.Auditor{Store: st}, Fleet: f},
		st:    st,
		fleet: f,
		ctx:   authn.NewContext(context.Background(), &authn.Principal{Subject: "static:ops", Scopes: []string{authn.ScopeAdmin}}),
	}
}

// report makes edge report server gh's tools: name → digest, "!" before a
// digest marking it pending.
func (e *approvalEnv) report(edge string, tools map[string]string) {
	e.fleet.Connect(&atraxv1.EdgeHello{EdgeId: edge})
	u := &atraxv1.UpstreamStatus{Name: "gh", State: "running"}
	for name, d := range tools {
		pending := strings.HasPrefix(d, "!")
		u.ToolPins = append(u.ToolPins, &atraxv1.ToolPin{Name: name, Digest: strings.TrimPrefix(d, "!"), Pending: pending})
		if pending {
			u.PendingTools = append(u.PendingTools, name)
		}
	}
	e.fleet.Report(edge, &atraxv1.EdgeReport{Upstreams: []*atraxv1.UpstreamStatus{u}})
}

func (e *approvalEnv) approve(t *testing.T, tools ...string) (*atraxv1.ApproveServerToolsResponse, error) {
	t.Helper()
	return e.s.ApproveServerTools(e.ctx, &atraxv1.ApproveServerToolsRequest{Name: "gh", Tools: tools})
}

func (e *approvalEnv) approved(t *testing.T) map[string]string {
	t.Helper()
	resp, err := e.s.GetServer(e.ctx, &atraxv1.GetServerRequest{Name: "gh"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetServer().GetApprovedTools()
}

func wantCode(t *testing.T, err error, code codes.Code, sub string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), sub) {
		t.Errorf("err = %v, want %v containing %q", err, code, sub)
	}
}

func TestApproveServerTools(t *testing.T) {
	e := newApprovalEnv(t)

	// Nothing to approve from: no edge runs the server.
	_, err := e.approve(t)
	wantCode(t, err, codes.FailedPrecondition, "no connected edge reports the tools")

	// Two edges see "search" changed; "read" is as they first saw it.
	e.report("edge-a", map[string]string{"search": "!s2", "read": "r1"})
	e.report("edge-b", map[string]string{"search": "!s2", "read": "r1"})
	resp, err := e.approve(t, "search")
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	// The first approval records what the edges serve too: the set is
	// whole, so that a tool added later is new to every edge.
	want := map[string]string{"search": "s2", "read": "r1"}
	if diff := cmp.Diff(want, e.approved(t)); diff != "" {
		t.Errorf("approved (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"read", "search"}, resp.GetApproved()); diff != "" {
		t.Errorf("response approved (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, resp.GetServer().GetApprovedTools()); diff != "" {
		t.Errorf("response server (-want +got):\n%s", diff)
	}

	// Approving what is approved changes nothing.
	e.report("edge-a", map[string]string{"search": "s2", "read": "r1"})
	e.report("edge-b", map[string]string{"search": "s2", "read": "r1"})
	resp, err = e.approve(t)
	if err != nil || len(resp.GetApproved()) != 0 {
		t.Errorf("approve again = %v, %v; want nothing approved", resp.GetApproved(), err)
	}

	// The edges disagree on a definition: refused, nothing changes.
	e.report("edge-a", map[string]string{"search": "s2", "read": "!r2", "delete": "!d1"})
	e.report("edge-b", map[string]string{"search": "s2", "read": "!r3", "delete": "!d1"})
	_, err = e.approve(t, "read")
	wantCode(t, err, codes.FailedPrecondition, `2 different definitions of tool "read"`)
	_, err = e.approve(t, "nope")
	wantCode(t, err, codes.FailedPrecondition, `no connected edge reports a tool "nope"`)
	// Only the named tool is approved.
	if _, err := e.approve(t, "delete"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"search": "s2", "read": "r1", "delete": "d1"}, e.approved(t)); diff != "" {
		t.Errorf("approved (-want +got):\n%s", diff)
	}

	// A server without pinTools has nothing to approve.
	_, err = e.s.ApproveServerTools(e.ctx, &atraxv1.ApproveServerToolsRequest{Name: "plain"})
	wantCode(t, err, codes.FailedPrecondition, "pinTools false")
	_, err = e.s.ApproveServerTools(e.ctx, &atraxv1.ApproveServerToolsRequest{Name: "nope"})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.s.ApproveServerTools(e.ctx, &atraxv1.ApproveServerToolsRequest{})
	wantCode(t, err, codes.InvalidArgument, "")

	// Every attempt is audited, with the tools approved.
	events, _, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: "tool.approve"})
	if err != nil {
		t.Fatal(err)
	}
	var okTools []string
	for _, ev := range events {
		if ev.GetActor() != "static:ops" {
			t.Errorf("actor %q", ev.GetActor())
		}
		if ev.GetOutcome() == "ok" && ev.GetDetails()["tools"] != "" {
			okTools = append(okTools, ev.GetDetails()["tools"])
		}
	}
	if diff := cmp.Diff([]string{"delete", "read,search"}, okTools); diff != "" {
		t.Errorf("audited approvals, newest first (-want +got):\n%s", diff)
	}
	if len(events) < 7 {
		t.Errorf("%d approval events audited, want every attempt", len(events))
	}
}

// Approvals are state, not definition: they survive a restart, a change of
// the server's definition through the API, and cannot be set by a client.
func TestApprovedToolsReadOnly(t *testing.T) {
	e := newApprovalEnv(t)
	api := &atraxv1.Server{Name: "api", Url: "https://api.example.com/mcp", PinTools: true,
		ApprovedTools: map[string]string{"x": "forged"}}
	created, err := e.s.CreateServer(e.ctx, &atraxv1.CreateServerRequest{Server: api})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.GetServer().GetApprovedTools()) != 0 {
		t.Errorf("a client set approvedTools: %v", created.GetServer().GetApprovedTools())
	}
	e.fleet.Connect(&atraxv1.EdgeHello{EdgeId: "edge-a"})
	e.fleet.Report("edge-a", &atraxv1.EdgeReport{Upstreams: []*atraxv1.UpstreamStatus{{
		Name: "api", ToolPins: []*atraxv1.ToolPin{{Name: "x", Digest: "x1", Pending: true}},
	}}})
	if _, err := e.s.ApproveServerTools(e.ctx, &atraxv1.ApproveServerToolsRequest{Name: "api"}); err != nil {
		t.Fatal(err)
	}
	upd, err := e.s.UpdateServer(e.ctx, &atraxv1.UpdateServerRequest{Server: &atraxv1.Server{
		Name: "api", Url: "https://api2.example.com/mcp", PinTools: true, ApprovedTools: map[string]string{"x": "forged"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"x": "x1"}, upd.GetServer().GetApprovedTools()); diff != "" {
		t.Errorf("approvals after PUT (-want +got):\n%s", diff)
	}
	_, err = e.s.UpdateServer(e.ctx, &atraxv1.UpdateServerRequest{
		Server:     &atraxv1.Server{Name: "api", ApprovedTools: map[string]string{"x": "forged"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"approved_tools"}},
	})
	wantCode(t, err, codes.InvalidArgument, "read-only")

	// A config server keeps its approvals over a restart of the registry.
	e.report("edge-a", map[string]string{"search": "!s2"})
	if _, err := e.approve(t); err != nil {
		t.Fatal(err)
	}
	r, err := registry.Open(context.Background(), registry.Options{
		Store:  e.st,
		Config: []config.Server{{Name: "gh", URL: "https://gh.example.com/mcp", PinTools: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := r.Get("gh")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&atraxv1.Server{ApprovedTools: map[string]string{"search": "s2"}}, &atraxv1.Server{ApprovedTools: gh.GetApprovedTools()}, protocmp.Transform()); diff != "" {
		t.Errorf("approvals after reopening (-want +got):\n%s", diff)
	}
}

// TestApproveThroughAnyReplica: with a shared store, the reports of the
// edges connected to other replicas count, so an admin may approve
// through a replica that holds none of them; an approval is refused while
// those reports cannot be read.
func TestApproveThroughAnyReplica(t *testing.T) {
	e := newApprovalEnv(t)
	others := &edgeRecords{recs: []*atraxv1.EdgeStatus{{
		EdgeId: "edge-b", Connected: true, Replica: "cp-2:4001",
		Upstreams: []*atraxv1.UpstreamStatus{{
			Name: "gh", State: "running", PendingTools: []string{"search"},
			ToolPins: []*atraxv1.ToolPin{{Name: "search", Digest: "s2", Pending: true}, {Name: "read", Digest: "r1"}},
		}},
	}}}
	e.fleet = fleet.New(fleet.Options{Replica: "cp-1:4001", Shared: others})
	e.s.Fleet = e.fleet

	if _, err := e.approve(t, "search"); err != nil {
		t.Fatalf("approve through the replica without the edge: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"search": "s2", "read": "r1"}, e.approved(t)); diff != "" {
		t.Errorf("approved (-want +got):\n%s", diff)
	}

	// This replica's edge disagrees with the other replica's: refused.
	others.recs[0].Upstreams[0].ToolPins = []*atraxv1.ToolPin{{Name: "delete", Digest: "d1", Pending: true}}
	e.report("edge-a", map[string]string{"delete": "!d2"})
	_, err := e.approve(t)
	wantCode(t, err, codes.FailedPrecondition, `2 different definitions of tool "delete"`)

	// The other replicas' reports cannot be read: refused, though this
	// replica's edge reports the tool.
	others.err = errors.New("etcd out of reach")
	_, err = e.approve(t, "delete")
	wantCode(t, err, codes.Unavailable, "try again")
	if diff := cmp.Diff(map[string]string{"search": "s2", "read": "r1"}, e.approved(t)); diff != "" {
		t.Errorf("approved after the refusals (-want +got):\n%s", diff)
	}
}
