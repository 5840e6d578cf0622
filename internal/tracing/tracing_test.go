package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/atrax-mcp/atrax/internal/tracing"
)

// clearEnv unsets every variable FromEnv decides by.
func clearEnv(t *testing.T) {
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	} {
		t.Setenv(k, "")
	}
}

func TestFromEnvNothingSet(t *testing.T) {
	clearEnv(t)
	tp, shutdown, err := tracing.FromEnv(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Errorf("FromEnv without OTEL_* = %T, want the no-op provider", tp)
	}
}

func TestFromEnvExportsOTLP(t *testing.T) {
	clearEnv(t)
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)

	tp, shutdown, err := tracing.FromEnv(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "one")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown (flush): %v", err)
	}
	if posts.Load() == 0 {
		t.Errorf("no OTLP/HTTP export reached %s/v1/traces", srv.URL)
	}
}

func TestFromEnvErrors(t *testing.T) {
	for _, c := range []struct{ key, value string }{
		{"OTEL_TRACES_EXPORTER", "zipkin"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
	} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv(c.key, c.value)
		if _, _, err := tracing.FromEnv(context.Background(), "test"); err == nil {
			t.Errorf("%s=%s: no error", c.key, c.value)
		}
	}
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	tp, _, err := tracing.FromEnv(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Errorf("OTEL_SDK_DISABLED=true gave %T, want the no-op provider", tp)
	}
}
