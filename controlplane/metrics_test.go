package controlplane_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/atrax-mcp/atrax/controlplane"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/metrics/metricstest"
)

const token = "controlplane-metrics-token"

// TestMetrics scrapes the control plane's /metrics after known RPCs and
// checks the counts: RPCs by method and code, token verifications by
// result, edges connected, servers in the registry.
func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"dataDir": %q,
		"mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp", "disabled": true}},
	}`, token, filepath.Join(dir, "data"))), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Run(ctx, controlplane.Options{Config: cfg, Listener: lis, MetricsListener: mlis})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controlplane.Run: %v", err)
		}
	})

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	rctx, rcancel := context.WithTimeout(authed, 10*time.Second)
	defer rcancel()

	status := atraxv1.NewStatusServiceClient(conn)
	servers := atraxv1.NewServerServiceClient(conn)
	for range 2 {
		if _, err := status.GetHealth(rctx, &atraxv1.GetHealthRequest{}); err != nil {
			t.Fatalf("GetHealth: %v", err)
		}
	}
	if _, err := servers.ListServers(context.Background(), &atraxv1.ListServersRequest{}); err == nil {
		t.Fatal("ListServers without a token succeeded")
	}
	bad := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer wrong")
	if _, err := servers.ListServers(bad, &atraxv1.ListServersRequest{}); err == nil {
		t.Fatal("ListServers with a bad token succeeded")
	}
	if _, err := servers.CreateServer(rctx, &atraxv1.CreateServerRequest{Server: &atraxv1.Server{Name: "api", Url: "http://127.0.0.1:9/mcp"}}); err != nil {
		t.Fatalf("CreateServer: %v", err)
	}
	if _, err := servers.ListServers(rctx, &atraxv1.ListServersRequest{}); err != nil {
		t.Fatalf("ListServers: %v", err)
	}

	// One edge connects.
	sync, err := atraxv1.NewEdgeServiceClient(conn).Sync(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sync.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Hello{Hello: &atraxv1.EdgeHello{EdgeId: "edge-1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sync.Recv(); err != nil {
		t.Fatalf("first snapshot: %v", err)
	}

	base := "http://" + mlis.Addr().String() + "/metrics"
	m := metricstest.Scrape(t, base, token)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.StatusService_GetHealth_FullMethodName, "code": "OK"}, 2},
		{"atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.ServerService_ListServers_FullMethodName, "code": "Unauthenticated"}, 2},
		{"atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.ServerService_ListServers_FullMethodName, "code": "OK"}, 1},
		{"atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.ServerService_CreateServer_FullMethodName, "code": "OK"}, 1},
		// The Sync stream is counted when it ends.
		{"atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.EdgeService_Sync_FullMethodName}, 0},
		// Each RPC that carried the token (public ones too) and the scrape.
		{"atrax_token_verifications_total", map[string]string{"result": "ok"}, 6},
		{"atrax_token_verifications_total", map[string]string{"result": "no_token"}, 1},
		{"atrax_token_verifications_total", map[string]string{"result": "invalid"}, 1},
		{"atrax_controlplane_edges_connected", nil, 1},
		{"atrax_controlplane_ready", nil, 1},
		{"atrax_controlplane_servers", nil, 2},
	} {
		if got := m.Value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if m["go_goroutines"] == nil {
		t.Errorf("no Go runtime metrics")
	}

	// The edge goes: its stream is counted, and it is no longer connected.
	if err := sync.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := sync.Recv(); err != nil {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = metricstest.Scrape(t, base, token)
		if m.Value("atrax_controlplane_edges_connected", nil) == 0 &&
			m.Value("atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.EdgeService_Sync_FullMethodName, "code": "OK"}) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the edge left: edges_connected %v, Sync OK %v", m.Value("atrax_controlplane_edges_connected", nil),
				m.Value("atrax_controlplane_rpcs_total", map[string]string{"method": atraxv1.EdgeService_Sync_FullMethodName}))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Without a token: 401.
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", resp.StatusCode)
	}
}
