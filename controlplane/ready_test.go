package controlplane_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

// within polls cond every 20ms until it holds, or fails the test after
// 20s: a bound that only catches a hang.
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func etcdConfig(t *testing.T, endpoint, prefix string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"store": {"etcd": {"endpoints": [%q], "prefix": %q}},
	}`, token, endpoint, prefix)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncAs opens a Sync stream to r as edge id and waits for its first
// snapshot.
func syncAs(t *testing.T, ctx context.Context, r *replica, id string) atraxv1.EdgeService_SyncClient {
	t.Helper()
	s, err := atraxv1.NewEdgeServiceClient(r.conn).Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Hello{Hello: &atraxv1.EdgeHello{EdgeId: id}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatalf("edge %s: first snapshot: %v", id, err)
	}
	return s
}

// port is the port r listens on, as its edges' records end.
func (r *replica) port(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(r.conn.Target())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestReplicasListEveryEdge: GetStatus on either of two replicas lists the
// edges connected to both, each with the replica that holds its stream;
// an edge that leaves one replica leaves the list.
func TestReplicasListEveryEdge(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := etcdConfig(t, c.Endpoints()[0], "/edges")
	a, b := startReplica(t, cfg), startReplica(t, cfg)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 60*time.Second)
	defer cancel()
	syncAs(t, ctx, a, "edge-a")
	sctx, leave := context.WithCancel(ctx)
	syncAs(t, sctx, b, "edge-b")

	// edges returns edge id → the port of its replica, as r lists them.
	edges := func(r *replica) map[string]string {
		st, err := atraxv1.NewStatusServiceClient(r.conn).GetStatus(ctx, &atraxv1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, e := range st.GetEdges() {
			if e.GetConnected() {
				_, port, _ := net.SplitHostPort(e.GetReplica())
				out[e.GetEdgeId()] = port
			}
		}
		return out
	}
	want := map[string]string{"edge-a": a.port(t), "edge-b": b.port(t)}
	for name, r := range map[string]*replica{"A": a, "B": b} {
		within(t, "replica "+name+" lists both edges", func() bool {
			got := edges(r)
			return len(got) == 2 && got["edge-a"] == want["edge-a"] && got["edge-b"] == want["edge-b"]
		})
	}

	leave()
	within(t, "replica A forgets edge-b once it left replica B", func() bool {
		_, ok := edges(a)["edge-b"]
		return !ok
	})
}

// TestApproveThroughEitherReplica: the tools an edge of replica B holds
// back (pinTools) can be approved through replica A, which learns them
// from B's edge records.
func TestApproveThroughEitherReplica(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := etcdConfig(t, c.Endpoints()[0], "/approve")
	a, b := startReplica(t, cfg), startReplica(t, cfg)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 60*time.Second)
	defer cancel()
	if _, err := atraxv1.NewServerServiceClient(a.conn).CreateServer(ctx, &atraxv1.CreateServerRequest{Server: &atraxv1.Server{
		Name: "docs", Url: "https://docs.example.com/mcp", PinTools: true,
	}}); err != nil {
		t.Fatal(err)
	}
	s := syncAs(t, ctx, b, "edge-b")
	if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Report{Report: &atraxv1.EdgeReport{
		Upstreams: []*atraxv1.UpstreamStatus{{
			Name: "docs", State: "running", PendingTools: []string{"search"},
			ToolPins: []*atraxv1.ToolPin{{Name: "search", Digest: "s2", Pending: true}},
		}},
	}}}); err != nil {
		t.Fatal(err)
	}

	servers := atraxv1.NewServerServiceClient(a.conn)
	var resp *atraxv1.ApproveServerToolsResponse
	within(t, "approval through replica A", func() bool {
		var err error
		resp, err = servers.ApproveServerTools(ctx, &atraxv1.ApproveServerToolsRequest{Name: "docs"})
		if status.Code(err) == codes.FailedPrecondition && strings.Contains(err.Error(), "no connected edge reports") {
			return false // B has not written edge-b's report yet
		}
		if err != nil {
			t.Fatalf("approve through A: %v", err)
		}
		return true
	})
	if got := resp.GetServer().GetApprovedTools(); len(got) != 1 || got["search"] != "s2" {
		t.Errorf("approved tools = %v, want search: s2", got)
	}
}

// TestNotReadyWithoutEtcd cuts one of two replicas off from etcd: it
// becomes not ready (grpc.health.v1 NOT_SERVING for the server, while the
// liveness service stays SERVING; GetHealth "degraded" naming etcd) and
// ends its edge's stream and refuses new ones, while the other stays
// ready; once it reaches etcd again it is ready again.
func TestNotReadyWithoutEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cut := etcdtest.NewProxy(t, c.Members[0])
	a := startReplica(t, etcdConfig(t, cut.URL, "/ready"))
	b := startReplica(t, etcdConfig(t, c.Endpoints()[0], "/ready"))
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 60*time.Second)
	defer cancel()
	health := func(r *replica, service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	getHealth := func(r *replica) *atraxv1.GetHealthResponse {
		h, err := atraxv1.NewStatusServiceClient(r.conn).GetHealth(ctx, &atraxv1.GetHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ready := func(what string, r *replica) {
		t.Helper()
		within(t, what+": ready", func() bool { return health(r, "") == healthpb.HealthCheckResponse_SERVING })
		if h := getHealth(r); h.GetStatus() != "ok" || h.GetReason() != "" {
			t.Errorf("%s: GetHealth %v, want ok", what, h)
		}
	}
	ready("A with etcd", a)
	ready("B with etcd", b)
	stream := syncAs(t, ctx, a, "edge-a")

	cut.Pause()
	within(t, "A cut off from etcd: not ready", func() bool { return health(a, "") == healthpb.HealthCheckResponse_NOT_SERVING })
	if s := health(a, "liveness"); s != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("A cut off from etcd: liveness %v, want SERVING", s)
	}
	if h := getHealth(a); h.GetStatus() != "degraded" || !strings.Contains(h.GetReason(), "etcd") {
		t.Errorf("A cut off from etcd: GetHealth %v, want degraded with a reason naming etcd", h)
	}
	// Its edge's stream ends, and a new one is refused.
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "etcd") {
			t.Errorf("A cut off from etcd: Sync ended with %v, want UNAVAILABLE naming etcd", err)
		}
		break
	}
	s, err := atraxv1.NewEdgeServiceClient(a.conn).Sync(ctx)
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("A cut off from etcd: a new Sync got %v, want UNAVAILABLE", err)
	}
	// The other replica serves on.
	if health(b, "") != healthpb.HealthCheckResponse_SERVING {
		t.Error("B not ready while A alone is cut off")
	}
	syncAs(t, ctx, b, "edge-a")

	cut.Resume()
	ready("A with etcd back", a)
	syncAs(t, ctx, a, "edge-a2")
}
