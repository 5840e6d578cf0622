package watch_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atrax-mcp/atrax/edge/watch"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// An edge follows the control plane until it is told to stop; while the
// control plane is away it keeps serving the last snapshot it applied.
func ExampleWatcher() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	conn, err := grpc.NewClient("127.0.0.1:4001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	w := watch.New(watch.Options{
		Client: atraxv1.NewEdgeServiceClient(conn),
		Token:  "edge-token",
		Hello:  &atraxv1.EdgeHello{EdgeId: "edge-1", Address: "127.0.0.1:4000"},
		Apply: func(s *atraxv1.Snapshot) {
			log.Printf("snapshot %d: %d servers", s.GetVersion(), len(s.GetServers()))
		},
	})
	// Report and Audit may be called from anywhere, connected or not.
	w.Report(&atraxv1.EdgeReport{})
	w.Audit(&atraxv1.AuditEvent{Action: "tools/call"})
	_ = w.Run(ctx)
}
