// Package logctx carries a request's id through a context and onto every
// log line written for the request: middleware (HTTP on the edge, gRPC on
// the control plane) gives each request an id with WithRequestID, and a
// logger whose handler is wrapped by NewHandler adds request_id, and the
// trace_id and span_id of the span in the context, to each record logged
// with that context (InfoContext, ErrorContext, ...).
//
//	log := slog.New(logctx.NewHandler(slog.NewJSONHandler(os.Stderr, nil)))
//	ctx = logctx.WithRequestID(ctx, "4bf92f3577b34da6")
//	log.InfoContext(ctx, "tool call") // ... "request_id":"4bf92f3577b34da6"
package logctx

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
)

type requestIDKey struct{}

// MetadataKey is the gRPC metadata key that carries a request id from the
// edge's REST gateway to the control plane; HTTP's X-Request-Id.
const MetadataKey = "x-request-id"

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a fresh request id: 16 hexadecimal digits. It is
// unique enough to find a request's lines in the logs, not a secret.
func NewRequestID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// ValidRequestID reports whether id, taken from a client (X-Request-Id),
// is safe to log and pass on: 1 to 128 characters of A-Z a-z 0-9 and
// "-", "_", ".", ":".
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Handler adds the request id and the trace of a record's context to the
// record, then passes it to the handler it wraps.
type Handler struct {
	next slog.Handler
}

// NewHandler wraps next. Wrapping a Handler again returns it unchanged.
func NewHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(*Handler); ok {
		return h
	}
	return &Handler{next: next}
}

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds request_id, trace_id and span_id when ctx has them.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := RequestID(ctx); id != "" {
			r.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns the wrapped handler with attrs, wrapped.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns the wrapped handler with the group, wrapped.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name)}
}
