package controlplane_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atrax-mcp/atrax/controlplane"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tracing"
)

// TestRPCSpans: an RPC made with the client handler the edge uses (its
// Sync stream and REST gateway) carries the caller's trace to the control
// plane, whose span of the RPC is a child of the caller's client span;
// health checks, which edges make all the time, get no span.
func TestRPCSpans(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{"auth": {"type": "none"}, "dataDir": %q}`, filepath.Join(t.TempDir(), "data"))), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	served := tracetest.NewInMemoryExporter()
	cpTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(served))
	callerExp := tracetest.NewInMemoryExporter()
	callerTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(callerExp))

	r := startPlane(t, controlplane.Options{Config: cfg, TracerProvider: cpTP})
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(tracing.GRPCClient(callerTP)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if _, err := healthpb.NewHealthClient(conn).Check(rctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health check: %v", err)
	}
	rctx, parent := callerTP.Tracer("test").Start(rctx, "REST GET /status")
	if _, err := atraxv1.NewStatusServiceClient(conn).GetStatus(rctx, &atraxv1.GetStatusRequest{}); err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
	parent.End()

	var client trace.SpanContext
	for _, s := range callerExp.GetSpans() {
		if s.Name == "atrax.v1.StatusService/GetStatus" && s.SpanKind == trace.SpanKindClient {
			client = s.SpanContext
		}
	}
	if !client.IsValid() {
		t.Fatalf("the caller made no client span of GetStatus: %v", callerExp.GetSpans().Snapshots())
	}
	// The server's span ends after the client has its answer.
	within(t, "the control plane's span of GetStatus", func() bool {
		for _, s := range served.GetSpans() {
			if s.Name == "atrax.v1.StatusService/GetStatus" {
				return true
			}
		}
		return false
	})
	var got []string
	found := false
	for _, s := range served.GetSpans() {
		got = append(got, s.Name)
		if s.Name == "atrax.v1.StatusService/GetStatus" {
			found = true
			if s.SpanKind != trace.SpanKindServer || s.SpanContext.TraceID() != parent.SpanContext().TraceID() || s.Parent.SpanID() != client.SpanID() || !s.Parent.IsRemote() {
				t.Errorf("served span: kind %v trace %s parent %s (remote %v); want server, trace %s, parent %s (remote)",
					s.SpanKind, s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), parent.SpanContext().TraceID(), client.SpanID())
			}
		}
		if s.Name == "grpc.health.v1.Health/Check" {
			t.Errorf("a health check got a span")
		}
	}
	if !found {
		t.Errorf("no span of GetStatus on the control plane; spans: %v", got)
	}
}
