package logctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/atrax-mcp/atrax/internal/logctx"
)

func TestHandlerAddsRequestAndTrace(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logctx.NewHandler(slog.NewJSONHandler(&buf, nil))).With("part", "test")

	log.Info("no request")
	ctx := logctx.WithRequestID(context.Background(), "req-1")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 1},
		SpanID:     trace.SpanID{0x00, 0xf0, 2},
		TraceFlags: trace.FlagsSampled,
	})
	log.InfoContext(trace.ContextWithSpanContext(ctx, sc), "in a request")

	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if _, ok := first["request_id"]; ok {
		t.Errorf("a line without a request has a request_id: %v", first)
	}
	if second["request_id"] != "req-1" || second["part"] != "test" {
		t.Errorf("line = %v, want request_id req-1 and part test", second)
	}
	if second["trace_id"] != sc.TraceID().String() || second["span_id"] != sc.SpanID().String() {
		t.Errorf("line = %v, want trace %s span %s", second, sc.TraceID(), sc.SpanID())
	}
}

func TestRequestIDs(t *testing.T) {
	a, b := logctx.NewRequestID(), logctx.NewRequestID()
	if len(a) != 16 || a == b || !logctx.ValidRequestID(a) {
		t.Errorf("NewRequestID() = %q, %q: want two different valid 16-digit ids", a, b)
	}
	for id, want := range map[string]bool{
		"abc-123_X.y:z":                        true,
		"":                                     false,
		"has space":                            false,
		"new\nline":                            false,
		string(bytes.Repeat([]byte("a"), 129)): false,
	} {
		if got := logctx.ValidRequestID(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}
