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

// healthServer serves grpc.health.v1 on 127.0.0.1 with one service named
// name, so that a client can tell which server answered.
func healthServer(t *testing.T, name string) (addr string, stop func()) {
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
	return lis.Addr().String(), srv.Stop
}

// TestDialControlPlaneFailsOver dials three addresses, one of which never
// answers: calls reach a replica that does, and once that replica stops,
// the other one.
func TestDialControlPlaneFailsOver(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	addr1, stop1 := healthServer(t, "one")
	addr2, stop2 := healthServer(t, "two")

	conn, err := dialControlPlane([]string{deadAddr, addr1, addr2}, insecure.NewCredentials())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	// which returns the name of the server that answers, retrying (as the
	// Sync stream does) for up to 10s.
	which := func() string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err1 := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "one"})
				cancel()
				if err1 == nil {
					return "one"
				}
				return "two"
			}
			cancel()
			if time.Now().After(deadline) {
				t.Fatalf("no control plane answered within 10s: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := which()
	stops := map[string]func(){"one": stop1, "two": stop2}
	stops[first]()
	if second := which(); second == first {
		t.Fatalf("after %s stopped, %s still answered", first, second)
	}
	// With none left, calls fail cleanly.
	stop1()
	stop2()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a call with no control plane up: err = %v, want Unavailable", err)
	}
}
