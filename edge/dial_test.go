package edge

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// replica is a gRPC server on 127.0.0.1 with grpc.health.v1, its own
// status for the server ("") and one service named for it, so that a
// client can tell which replica answered.
type replica struct {
	addr   string
	health *health.Server
	stop   func()
}

func startReplica(t *testing.T, name string) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return &replica{addr: lis.Addr().String(), health: h, stop: srv.Stop}
}

// answering returns which of replicas "one" and "two" answers an RPC
// on client: the one that knows the service "one", or the other.
func answering(t *testing.T, client healthpb.HealthClient) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "one"})
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return "one"
		case codes.NotFound:
			return "two"
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control plane answered within 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDialControlPlaneFailsOver dials three addresses, one of which never
// answers: calls reach the replicas that do, and once one stops, only the
// other; with none left, they fail cleanly.
func TestDialControlPlaneFailsOver(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	one, two := startReplica(t, "one"), startReplica(t, "two")

	conn, err := dialControlPlane([]string{deadAddr, one.addr, two.addr}, insecure.NewCredentials())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	first := answering(t, client)
	stopped := map[string]*replica{"one": one, "two": two}[first]
	stopped.stop()
	for range 10 {
		if got := answering(t, client); got == first {
			t.Fatalf("after %s stopped, it still answered", first)
		}
	}
	one.stop()
	two.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a call with no control plane up: err = %v, want Unavailable", err)
	}
}

// TestDialControlPlanePrefersHealthy: a replica that reports itself not
// serving (it cannot reach its store) gets no calls while another one is
// healthy, and gets them again once it is healthy again; with none
// healthy, calls fail at once.
func TestDialControlPlanePrefersHealthy(t *testing.T) {
	one, two := startReplica(t, "one"), startReplica(t, "two")
	conn, err := dialControlPlane([]string{one.addr, two.addr}, insecure.NewCredentials())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	// until calls have reached the replica want (in turn with the other, or
	// alone), or fails after 10s.
	until := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for answering(t, client) != want {
			if time.Now().After(deadline) {
				t.Fatalf("no call reached %s within 10s", want)
			}
		}
	}
	until("one")
	until("two")

	one.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	until("two")
	for range 20 {
		if got := answering(t, client); got != "two" {
			t.Fatalf("a call reached %s, which reports itself not serving", got)
		}
	}

	two.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if status.Code(err) == codes.Unavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with no replica healthy: err = %v, want Unavailable", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	one.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	until("one")
	for range 20 {
		if got := answering(t, client); got != "one" {
			t.Fatalf("a call reached %s, which reports itself not serving", got)
		}
	}
}
