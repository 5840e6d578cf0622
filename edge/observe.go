package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/session"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/logctx"
)

// What the edge tells operators about the data path: every HTTP request
// gets a request id (logged on each line of its work); every client request
// gets a span, a count by method, server and outcome, and a debug line;
// every tools/call an audit event, sent to the control plane over Sync; and
// every request to an upstream a span of its own, a timing and a place in
// the upstream's in-flight count. The W3C trace context a client sends (the
// traceparent and tracestate HTTP headers, or the same keys in a request's
// _meta, as the 2026-07-28 revision has it) is continued, and passed on to
// upstreams in _meta (and, by edge/upstream, in the HTTP headers of remote
// servers).

// tracerName names the edge's tracer (the instrumentation scope).
const tracerName = "github.com/atrax-mcp/atrax/edge"

// actionToolCall is the audit action of a tool call.
const actionToolCall = "tool.call"

// maxAuditError bounds the error text an audit event keeps.
const maxAuditError = 256

// w3c reads and writes traceparent and tracestate.
var w3c = propagation.TraceContext{}

// Span options, made once.
var (
	serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// observer instruments the data path.
type observer struct {
	tracer  trace.Tracer
	metrics *edgeMetrics
	// audit receives one event per tools/call.
	audit func(*atraxv1.AuditEvent)
	// auditArgs records the arguments of tool calls (audit.toolArguments).
	auditArgs bool
	log       *slog.Logger
}

// withRequest gives each HTTP request a request id, the client's
// X-Request-Id when it is a sane one, and answers with it; and puts the
// trace context of the traceparent and tracestate headers, if any, in the
// request's context.
func withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !logctx.ValidRequestID(id) {
			id = logctx.NewRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := logctx.WithRequestID(r.Context(), id)
		ctx = w3c.Extract(ctx, propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// callContext carries the request id and the client's trace context of the
// HTTP request r over to ctx, the context a session's call runs on
// (downstream.Options.CallContext).
func callContext(ctx context.Context, r *http.Request) context.Context {
	rc := r.Context()
	if id := logctx.RequestID(rc); id != "" {
		ctx = logctx.WithRequestID(ctx, id)
	}
	if sc := trace.SpanContextFromContext(rc); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// traceFromMeta continues the trace context a request carries in its
// _meta, which wins over the HTTP headers' (it belongs to this message).
func traceFromMeta(ctx context.Context, params json.RawMessage) context.Context {
	if !bytes.Contains(params, []byte(`"traceparent"`)) {
		return ctx // the common case, without decoding anything
	}
	meta := jsonrpc.Meta(params)
	var parent, state string
	if json.Unmarshal(meta["traceparent"], &parent) != nil || parent == "" {
		return ctx
	}
	if raw, ok := meta["tracestate"]; ok {
		_ = json.Unmarshal(raw, &state)
	}
	return w3c.Extract(ctx, propagation.MapCarrier{"traceparent": parent, "tracestate": state})
}

// withTraceMeta returns params with the trace context of ctx in _meta
// (traceparent, and tracestate when there is one), replacing what the
// client put there.
func withTraceMeta(ctx context.Context, params json.RawMessage) json.RawMessage {
	c := propagation.MapCarrier{}
	w3c.Inject(ctx, c)
	if c["traceparent"] == "" {
		return params
	}
	f, err := jsonrpc.Fields(params)
	if err != nil {
		return params
	}
	meta, err := jsonrpc.Fields(f["_meta"])
	if err != nil {
		return params
	}
	meta["traceparent"] = json.RawMessage(strconv.Quote(c["traceparent"]))
	delete(meta, "tracestate")
	if ts := c["tracestate"]; ts != "" {
		meta["tracestate"] = json.RawMessage(strconv.Quote(ts))
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return params
	}
	f["_meta"] = mb
	out, err := json.Marshal(f)
	if err != nil {
		return params
	}
	return out
}

// callNote is filled in by the server that a client request is routed to
// (serverRef.Call), for the request's count, span and audit event.
type callNote struct {
	ref atomic.Pointer[serverRef]
}

type noteKey struct{}

// noteServer records, on the client request of ctx, that ref serves it. The
// first server called is the one recorded.
func noteServer(ctx context.Context, ref *serverRef) {
	if n, ok := ctx.Value(noteKey{}).(*callNote); ok {
		n.ref.CompareAndSwap(nil, ref)
	}
}

// observed is the router as the downstream transports see it: each request
// observed.
type observed struct {
	o *observer
	r *router.Router
}

var _ downstream.Dispatcher = (*observed)(nil)

func (d *observed) Initialize(ctx context.Context, s *session.Session, params json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	_, span := d.o.startSpan(ctx, s, protocol.MethodInitialize, params)
	res, jerr := d.r.Initialize(s, params)
	out := outcomeOK
	if jerr != nil {
		out = outcomeError
	}
	d.o.metrics.local.inc(methodOf(protocol.MethodInitialize), out)
	if span.IsRecording() {
		// The version is the one just negotiated.
		if v := s.Version(); v != "" {
			span.SetAttributes(attribute.String("mcp.protocol.version", v))
		}
		if jerr != nil {
			setErrorStatus(span, jerr)
		}
	}
	span.End()
	return res, jerr
}

func (d *observed) Handle(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	ctx, span, note, start := d.o.begin(ctx, s, req)
	resp := d.r.Handle(ctx, s, req)
	d.o.end(ctx, span, s, req, resp, note, start)
	return resp
}

func (d *observed) Listen(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	ctx, span, note, start := d.o.begin(ctx, s, req)
	resp := d.r.Listen(ctx, s, req)
	d.o.end(ctx, span, s, req, resp, note, start)
	return resp
}

// HandleNotification gives a client's notification (cancellation, roots
// changed, progress) a span of its own, so that a trace shows a call
// cancelled by its client.
func (d *observed) HandleNotification(ctx context.Context, s *session.Session, n *jsonrpc.Request) {
	ctx, span := d.o.startSpan(ctx, s, n.Method, n.Params)
	d.r.HandleNotification(ctx, s, n)
	span.End()
}

func (d *observed) Tool(name string) (json.RawMessage, bool) { return d.r.Tool(name) }

// begin starts the observation of a client request: its span, child of the
// client's trace context when it sent one.
func (o *observer) begin(ctx context.Context, s *session.Session, req *jsonrpc.Request) (context.Context, trace.Span, *callNote, time.Time) {
	start := time.Now()
	note := &callNote{}
	ctx = context.WithValue(ctx, noteKey{}, note)
	ctx, span := o.startSpan(ctx, s, req.Method, req.Params)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("jsonrpc.request.id", string(jsonrpc.MarshalID(req.ID))))
	}
	return ctx, span, note, start
}

// startSpan starts the span of a message from the client of s, a child of
// the client's trace context (from _meta, else from the HTTP headers
// already in ctx).
func (o *observer) startSpan(ctx context.Context, s *session.Session, method string, params json.RawMessage) (context.Context, trace.Span) {
	ctx = traceFromMeta(ctx, params)
	ctx, span := o.tracer.Start(ctx, method, serverSpan...)
	if span.IsRecording() {
		describe(span, method, params)
		var attrs []attribute.KeyValue
		if s.ID != "" {
			attrs = append(attrs, attribute.String("mcp.session.id", s.ID))
		}
		if v := s.Version(); v != "" {
			attrs = append(attrs, attribute.String("mcp.protocol.version", v))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// end counts, ends the span, audits and logs a client request.
func (o *observer) end(ctx context.Context, span trace.Span, s *session.Session, req *jsonrpc.Request, resp *jsonrpc.Response, note *callNote, start time.Time) {
	dur := time.Since(start)
	var tr toolResult
	if req.Method == protocol.MethodToolsCall {
		tr = readToolResult(resp)
	}
	out := outcomeOf(resp, tr)
	counters, server := o.metrics.local, ""
	if ref := note.ref.Load(); ref != nil {
		counters, server = ref.m.requests, ref.name
	}
	counters.inc(methodOf(req.Method), out)
	if span.IsRecording() {
		if server != "" {
			span.SetAttributes(attribute.String("atrax.server", server))
		}
		setStatus(span, resp, nil, out)
	}
	span.End()
	if req.Method == protocol.MethodToolsCall {
		o.auditToolCall(ctx, s, req, server, resp, out, tr, start, dur)
	}
	if o.log.Enabled(ctx, slog.LevelDebug) {
		o.log.DebugContext(ctx, "mcp request", "method", req.Method, "server", server, "outcome", out.String(), "duration", dur)
	}
}

// describe names a span after the method and what it targets
// ("tools/call echo") and sets the attributes of the MCP semantic
// conventions.
func describe(span trace.Span, method string, params json.RawMessage) {
	attrs := []attribute.KeyValue{attribute.String("mcp.method.name", method)}
	switch method {
	case protocol.MethodToolsCall, protocol.MethodPromptsGet:
		if name, ok := jsonrpc.StringField(params, "name"); ok {
			span.SetName(method + " " + name)
			key := "gen_ai.tool.name"
			if method == protocol.MethodPromptsGet {
				key = "gen_ai.prompt.name"
			}
			attrs = append(attrs, attribute.String(key, name))
		}
	case protocol.MethodResourcesRead, protocol.MethodResourcesSubscribe, protocol.MethodResourcesUnsubscribe:
		if uri, ok := jsonrpc.StringField(params, "uri"); ok {
			attrs = append(attrs, attribute.String("mcp.resource.uri", uri))
		}
	}
	span.SetAttributes(attrs...)
}

// setStatus marks a span failed for an error or an error answer.
func setStatus(span trace.Span, resp *jsonrpc.Response, err error, out outcome) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return
	}
	if e := jsonrpc.WireError(resp); e != nil {
		setErrorStatus(span, e)
		return
	}
	if out == outcomeToolError {
		span.SetAttributes(attribute.String("error.type", "tool_error"))
		span.SetStatus(codes.Error, "the tool returned an error result")
	}
}

// setErrorStatus marks a span failed with a JSON-RPC error.
func setErrorStatus(span trace.Span, e *jsonrpc.Error) {
	span.SetAttributes(attribute.String("error.type", strconv.FormatInt(e.Code, 10)), attribute.Int64("rpc.jsonrpc.error_code", e.Code))
	span.SetStatus(codes.Error, e.Message)
}

// toolResult is what a tools/call result says of itself.
type toolResult struct {
	IsError    bool   `json:"isError"`
	ResultType string `json:"resultType"`
}

func readToolResult(resp *jsonrpc.Response) toolResult {
	var tr toolResult
	if resp == nil || resp.Error != nil {
		return tr
	}
	if bytes.Contains(resp.Result, []byte(`"isError"`)) || bytes.Contains(resp.Result, []byte(`"resultType"`)) {
		_ = json.Unmarshal(resp.Result, &tr)
	}
	return tr
}

func outcomeOf(resp *jsonrpc.Response, tr toolResult) outcome {
	if e := jsonrpc.WireError(resp); e != nil {
		switch e.Code {
		case jsonrpc.CodeRequestCancelled:
			return outcomeCancelled
		case jsonrpc.CodeRequestTimeout:
			return outcomeTimeout
		}
		return outcomeError
	}
	if tr.IsError {
		return outcomeToolError
	}
	return outcomeOK
}

// auditToolCall sends the audit event of one tools/call: who called which
// tool of which server, how it ended and how long it took. Arguments only
// when the config asks for them; results never.
func (o *observer) auditToolCall(ctx context.Context, s *session.Session, req *jsonrpc.Request, server string, resp *jsonrpc.Response, out outcome, tr toolResult, start time.Time, dur time.Duration) {
	if o.audit == nil {
		return
	}
	// Only the name (and the arguments, when asked for) are read: params
	// are not decoded on the way of every call.
	tool, _ := jsonrpc.StringField(req.Params, "name")
	actor := "unknown"
	if s.Principal != nil {
		actor = s.Principal.Subject
	}
	ev := &atraxv1.AuditEvent{
		Time:      timestamppb.New(start),
		Actor:     actor,
		Action:    actionToolCall,
		Server:    server,
		Tool:      tool,
		Outcome:   "ok",
		Duration:  durationpb.New(dur),
		RequestId: logctx.RequestID(ctx),
		Details:   map[string]string{"transport": s.Transport},
	}
	if v := s.Version(); v != "" {
		ev.Details["protocol_version"] = v
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		ev.Details["trace_id"] = sc.TraceID().String()
	}
	if tr.ResultType != "" && tr.ResultType != "complete" {
		ev.Details["result_type"] = tr.ResultType
	}
	switch out {
	case outcomeOK:
	case outcomeToolError:
		ev.Outcome, ev.Error = "error", "the tool returned an error result"
	default:
		ev.Outcome = "error"
		if e := jsonrpc.WireError(resp); e != nil {
			ev.Error = truncate(e.Message, maxAuditError)
		}
	}
	if out != outcomeOK {
		// How it failed, as the metrics' outcome label says: the tool
		// (tool_error), the gateway or server (error), the client
		// (cancelled) or time (timeout).
		ev.Details["reason"] = out.String()
	}
	if o.auditArgs {
		if args, ok := jsonrpc.TopField(req.Params, "arguments"); ok {
			ev.Details["arguments"] = string(args)
		}
	}
	o.audit(ev)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// upstreamCall is one request to an upstream being observed.
type upstreamCall struct {
	span  trace.Span
	m     serverMetrics
	start time.Time
}

// startUpstream starts observing a request to the upstream server: its span
// (a child of the client request's), its trace context in the request's
// _meta, its place in the in-flight count.
func (o *observer) startUpstream(ctx context.Context, server string, m serverMetrics, method string, params json.RawMessage) (context.Context, json.RawMessage, upstreamCall) {
	ctx, span := o.tracer.Start(ctx, method, clientSpan...)
	if span.IsRecording() {
		describe(span, method, params)
		span.SetAttributes(attribute.String("atrax.server", server))
	}
	if span.SpanContext().IsValid() {
		params = withTraceMeta(ctx, params)
	}
	m.inflight.Inc()
	return ctx, params, upstreamCall{span: span, m: m, start: time.Now()}
}

// end records the answer (or the failure) of the request.
func (c upstreamCall) end(resp *jsonrpc.Response, err error) {
	c.m.inflight.Dec()
	c.m.duration.Observe(time.Since(c.start).Seconds())
	if c.span.IsRecording() {
		setStatus(c.span, resp, err, outcomeOK)
	}
	c.span.End()
}
