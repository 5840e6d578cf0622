package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/atrax-mcp/atrax/edge"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/cptest"
	"github.com/atrax-mcp/atrax/internal/metrics/metricstest"
)

// The edge's observability, end to end in one process: a fake control
// plane (cptest), an MCP server from go-sdk behind an httptest server, and
// the edge between them and a client speaking streamable HTTP (2025-11-25)
// or the stateless revision (2026-07-28) on the wire.

const token = "observe-test-token"

// waitFor bounds every wait of these tests.
const waitFor = 10 * time.Second

// upstream is an MCP server with two tools, echo and fail, that records
// the trace context of every tools/call it receives.
type upstream struct {
	URL string
	srv *httptest.Server

	mu    sync.Mutex
	calls []seenCall
}

// seenCall is what the upstream saw of one tools/call.
type seenCall struct {
	header string // the traceparent header
	meta   string // _meta.traceparent
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	type text struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fail"}, func(_ context.Context, _ *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "failed"}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Meta struct {
						Traceparent string `json:"traceparent"`
					} `json:"_meta"`
				} `json:"params"`
			}
			if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
				u.mu.Lock()
				u.calls = append(u.calls, seenCall{header: r.Header.Get("traceparent"), meta: msg.Params.Meta.Traceparent})
				u.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	u.URL = u.srv.URL
	return u
}

func (u *upstream) seen() []seenCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenCall(nil), u.calls...)
}

// gateway is an edge in front of one upstream, named "up".
type gateway struct {
	base string
	cp   *cptest.Server
}

// startEdge runs an edge with the config cfg (JWCC; its controlPlane is
// filled in) until the test ends.
func startEdge(t *testing.T, cfg string, tp trace.TracerProvider) *gateway {
	t.Helper()
	cp := cptest.New(t)
	cfg = strings.Replace(cfg, "CONTROL_PLANE", cp.Addr, 1)
	c, err := config.Parse([]byte(cfg), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- edge.Run(ctx, edge.Options{Config: c, Listener: lis, TracerProvider: tp, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge.Run: %v", err)
		}
	})
	return &gateway{base: "http://" + lis.Addr().String(), cp: cp}
}

// configWith is a token-auth config with extra top-level keys.
func configWith(extra string) string {
	return fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"controlPlane": {"address": "CONTROL_PLANE"},
		%s
	}`, token, extra)
}

// serve makes the control plane's snapshot name one server at url.
func (g *gateway) serve(version int64, url string) {
	g.cp.SetSnapshot(&atraxv1.Snapshot{
		Version:     version,
		Servers:     []*atraxv1.Server{{Name: "up", Url: url, TransportType: "http", State: "running"}},
		Namespacing: &atraxv1.Namespacing{Mode: "always", Separator: "__", Conflict: "first-wins"},
	})
}

// ready polls /ready until its status is want and returns its last body.
func (g *gateway) ready(t *testing.T, want int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		resp, err := http.Get(g.base + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready: status %d, want %d; body %v", resp.StatusCode, want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reply is a JSON-RPC answer as the client got it.
type reply struct {
	Status int
	Header http.Header
	Result map[string]any
	Error  *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	}
}

// post sends one JSON-RPC message to /mcp and returns the answer (from
// JSON or from the last SSE event).
func (g *gateway) post(t *testing.T, msg map[string]any, headers map[string]string) reply {
	t.Helper()
	msg["jsonrpc"] = "2.0"
	body, _ := json.Marshal(msg)
	req, _ := http.NewRequest(http.MethodPost, g.base+"/mcp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := reply{Status: resp.StatusCode, Header: resp.Header}
	data, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = []byte(d)
			}
		}
	}
	_ = json.Unmarshal(data, &out)
	return out
}

// session is a streamable HTTP (2025-11-25) client session.
type session struct {
	g  *gateway
	id string
	n  int
}

func (g *gateway) session(t *testing.T) *session {
	t.Helper()
	r := g.post(t, map[string]any{"id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"},
	}}, map[string]string{"Authorization": "Bearer " + token})
	if r.Status != http.StatusOK || r.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: status %d, result %v, error %v", r.Status, r.Result, r.Error)
	}
	s := &session{g: g, id: r.Header.Get("Mcp-Session-Id"), n: 1}
	s.notify(t, "notifications/initialized")
	return s
}

func (s *session) headers(extra map[string]string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token, "Mcp-Session-Id": s.id, "MCP-Protocol-Version": "2025-11-25"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func (s *session) notify(t *testing.T, method string) {
	t.Helper()
	if r := s.g.post(t, map[string]any{"method": method}, s.headers(nil)); r.Status != http.StatusAccepted {
		t.Fatalf("%s: status %d", method, r.Status)
	}
}

// call sends a request of the session, with extra headers.
func (s *session) call(t *testing.T, method string, params map[string]any, extra map[string]string) reply {
	t.Helper()
	s.n++
	msg := map[string]any{"id": s.n, "method": method}
	if params != nil {
		msg["params"] = params
	}
	return s.g.post(t, msg, s.headers(extra))
}

func tool(name, text string) map[string]any {
	return map[string]any{"name": name, "arguments": map[string]any{"text": text}}
}

// statelessCall sends a 2026-07-28 tools/call with meta in its _meta.
func (g *gateway) statelessCall(t *testing.T, name string, meta map[string]any) reply {
	t.Helper()
	m := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
	}
	for k, v := range meta {
		m[k] = v
	}
	params := tool(name, "stateless")
	params["_meta"] = m
	return g.post(t, map[string]any{"id": 9, "method": "tools/call", "params": params}, map[string]string{
		"Authorization": "Bearer " + token, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name,
	})
}

func parseTraceparent(t *testing.T, tp string) (trace.TraceID, trace.SpanID) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent %q is not version-trace-span-flags", tp)
	}
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return tid, sid
}

// TestTraceAcrossUpstream: a client's traceparent continues through the
// edge to the upstream, as one trace: the edge's span of the client
// request is a child of the client's span, its span of the upstream call a
// child of that, and the upstream receives the upstream span's context in
// the traceparent header and in _meta. The 2026-07-28 client's _meta
// traceparent works the same way.
func TestTraceAcrossUpstream(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	up := startUpstream(t)
	g := startEdge(t, configWith(""), tp)
	g.serve(1, up.URL)
	g.ready(t, http.StatusOK)

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const clientSpan = "00f067aa0ba902b7"
	s := g.session(t)
	r := s.call(t, "tools/call", tool("up__echo", "hi"), map[string]string{"traceparent": "00-" + clientTrace + "-" + clientSpan + "-01"})
	if r.Error != nil || r.Result == nil {
		t.Fatalf("tools/call: %v %v", r.Result, r.Error)
	}
	checkTrace(t, exp, up, clientTrace, clientSpan, 0)

	// The stateless revision: the trace context in _meta.
	const metaTrace = "0af7651916cd43dd8448eb211c80319c"
	const metaSpan = "b7ad6b7169203331"
	exp.Reset()
	r = g.statelessCall(t, "up__echo", map[string]any{"traceparent": "00-" + metaTrace + "-" + metaSpan + "-01"})
	if r.Error != nil || r.Result == nil {
		t.Fatalf("stateless tools/call: status %d %v %v", r.Status, r.Result, r.Error)
	}
	checkTrace(t, exp, up, metaTrace, metaSpan, 1)
}

// TestTraceInitializeAndNotifications: initialize and the client's
// notifications get server spans too, children of the client's trace
// context, so that a trace shows how a session began and what the client
// told the edge (a cancellation, changed roots).
func TestTraceInitializeAndNotifications(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	up := startUpstream(t) // before the edge, so that it is closed after
	g := startEdge(t, configWith(""), tp)
	g.serve(1, up.URL)
	g.ready(t, http.StatusOK)

	const clientTrace = "5bf92f3577b34da6a3ce929d0e0e4736"
	traceparent := func(span string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + token, "traceparent": "00-" + clientTrace + "-" + span + "-01"}
	}
	r := g.post(t, map[string]any{"id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"},
	}}, traceparent("00f067aa0ba902b1"))
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != http.StatusOK || sid == "" {
		t.Fatalf("initialize: status %d, result %v, error %v", r.Status, r.Result, r.Error)
	}
	h := traceparent("00f067aa0ba902b2")
	h["Mcp-Session-Id"], h["MCP-Protocol-Version"] = sid, "2025-11-25"
	if r := g.post(t, map[string]any{"method": "notifications/roots/list_changed"}, h); r.Status != http.StatusAccepted {
		t.Fatalf("notification: status %d", r.Status)
	}
	// A failed initialize is a failed span.
	r = g.post(t, map[string]any{"id": 1, "method": "initialize", "params": []any{1}}, traceparent("00f067aa0ba902b3"))
	if r.Error == nil {
		t.Fatalf("initialize with array params: status %d, result %v", r.Status, r.Result)
	}

	wantTrace, _ := trace.TraceIDFromHex(clientTrace)
	type want struct {
		name, parent string
		attrs        map[string]string
		failed       bool
	}
	for _, w := range []want{
		{"initialize", "00f067aa0ba902b1", map[string]string{"mcp.method.name": "initialize", "mcp.protocol.version": "2025-11-25", "mcp.session.id": sid}, false},
		{"notifications/roots/list_changed", "00f067aa0ba902b2", map[string]string{"mcp.method.name": "notifications/roots/list_changed", "mcp.session.id": sid}, false},
		{"initialize", "00f067aa0ba902b3", map[string]string{"mcp.method.name": "initialize", "rpc.jsonrpc.error_code": "-32602"}, true},
	} {
		wantParent, _ := trace.SpanIDFromHex(w.parent)
		var got *tracetest.SpanStub
		spans := exp.GetSpans()
		for i := range spans {
			if sp := &spans[i]; sp.Name == w.name && sp.Parent.SpanID() == wantParent {
				got = sp
			}
		}
		if got == nil {
			t.Errorf("no span %q with parent %s among %d spans", w.name, w.parent, len(spans))
			continue
		}
		if got.SpanKind != trace.SpanKindServer || got.SpanContext.TraceID() != wantTrace || !got.Parent.IsRemote() {
			t.Errorf("span %q: kind %v trace %s remote parent %v", w.name, got.SpanKind, got.SpanContext.TraceID(), got.Parent.IsRemote())
		}
		attrs := map[string]string{}
		for _, kv := range got.Attributes {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range w.attrs {
			if attrs[k] != v {
				t.Errorf("span %q: %s = %q, want %q (all: %v)", w.name, k, attrs[k], v, attrs)
			}
		}
		if failed := got.Status.Code == codes.Error; failed != w.failed {
			t.Errorf("span %q: status %v, want failed=%v", w.name, got.Status, w.failed)
		}
	}
}

// checkTrace checks the spans of one tools/call of up__echo and the
// upstream's call number n.
func checkTrace(t *testing.T, exp *tracetest.InMemoryExporter, up *upstream, traceHex, parentHex string, n int) {
	t.Helper()
	wantTrace, _ := trace.TraceIDFromHex(traceHex)
	wantParent, _ := trace.SpanIDFromHex(parentHex)
	var server, client *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		switch sp := &spans[i]; {
		case sp.Name == "tools/call up__echo" && sp.SpanKind == trace.SpanKindServer:
			server = sp
		case sp.Name == "tools/call echo" && sp.SpanKind == trace.SpanKindClient:
			client = sp
		}
	}
	if server == nil || client == nil {
		var names []string
		for _, sp := range spans {
			names = append(names, fmt.Sprintf("%s (%v)", sp.Name, sp.SpanKind))
		}
		t.Fatalf("want a server span \"tools/call up__echo\" and a client span \"tools/call echo\"; have %v", names)
	}
	if server.SpanContext.TraceID() != wantTrace || server.Parent.SpanID() != wantParent || !server.Parent.IsRemote() {
		t.Errorf("request span: trace %s parent %s, want trace %s parent %s (the client's, remote)",
			server.SpanContext.TraceID(), server.Parent.SpanID(), wantTrace, wantParent)
	}
	if client.SpanContext.TraceID() != wantTrace || client.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("upstream span: trace %s parent %s, want trace %s parent %s (the request span)",
			client.SpanContext.TraceID(), client.Parent.SpanID(), wantTrace, server.SpanContext.SpanID())
	}
	var attrs = map[string]string{}
	for _, kv := range server.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["mcp.method.name"] != "tools/call" || attrs["gen_ai.tool.name"] != "up__echo" || attrs["atrax.server"] != "up" {
		t.Errorf("request span attributes = %v", attrs)
	}
	seen := up.seen()
	if len(seen) <= n {
		t.Fatalf("the upstream saw %d tools/call, want at least %d", len(seen), n+1)
	}
	for what, tp := range map[string]string{"traceparent header": seen[n].header, "_meta.traceparent": seen[n].meta} {
		if tp == "" {
			t.Errorf("the upstream got no %s", what)
			continue
		}
		tid, sid := parseTraceparent(t, tp)
		if tid != wantTrace || sid != client.SpanContext.SpanID() {
			t.Errorf("upstream %s = %s, want trace %s span %s (the edge's upstream span)", what, tp, wantTrace, client.SpanContext.SpanID())
		}
	}
}

// TestMetrics scrapes /metrics after known traffic and checks the counts.
func TestMetrics(t *testing.T) {
	up := startUpstream(t)
	g := startEdge(t, configWith(""), nil)
	g.serve(1, up.URL)
	g.ready(t, http.StatusOK)

	verified := 0 // requests whose token was checked and valid
	s := g.session(t)
	verified += 2 // initialize, notifications/initialized
	for i := range 3 {
		if r := s.call(t, "tools/call", tool("up__echo", fmt.Sprint(i)), nil); r.Error != nil {
			t.Fatalf("echo: %v", r.Error)
		}
	}
	if r := s.call(t, "tools/call", tool("up__fail", "x"), nil); r.Result["isError"] != true {
		t.Fatalf("fail: %v %v", r.Result, r.Error)
	}
	if r := s.call(t, "tools/call", tool("up__nope", "x"), nil); r.Error == nil {
		t.Fatalf("an unknown tool answered %v", r.Result)
	}
	if r := s.call(t, "tools/list", nil, nil); r.Error != nil {
		t.Fatalf("tools/list: %v", r.Error)
	}
	verified += 6
	// One initialize without a token, one with a bad one.
	initialize := func() map[string]any {
		return map[string]any{"id": 1, "method": "initialize", "params": map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}}}
	}
	if r := g.post(t, initialize(), nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("no token: status %d", r.Status)
	}
	if r := g.post(t, initialize(), map[string]string{"Authorization": "Bearer wrong"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("bad token: status %d", r.Status)
	}
	verified++ // the scrape's own token
	m := metricstest.Scrape(t, g.base+"/metrics", token)

	type series struct {
		name   string
		labels map[string]string
		want   float64
	}
	for _, c := range []series{
		{"atrax_mcp_requests_total", map[string]string{"method": "initialize", "server": "", "outcome": "ok"}, 1},
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/call", "server": "up", "outcome": "ok"}, 3},
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/call", "server": "up", "outcome": "tool_error"}, 1},
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/call", "server": "", "outcome": "error"}, 1},
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/list", "server": "", "outcome": "ok"}, 1},
		{"atrax_mcp_requests_total", nil, 7},
		{"atrax_upstream_call_duration_seconds", map[string]string{"server": "up"}, 4},
		{"atrax_upstream_inflight_calls", map[string]string{"server": "up"}, 0},
		{"atrax_upstream_state", map[string]string{"server": "up", "state": "running"}, 1},
		{"atrax_upstream_state", map[string]string{"server": "up"}, 1},
		{"atrax_upstream_restarts_total", map[string]string{"server": "up"}, 0},
		{"atrax_mcp_sessions", map[string]string{"transport": "streamable", "era": "2025-11-25"}, 1},
		{"atrax_token_verifications_total", map[string]string{"result": "ok"}, float64(verified)},
		{"atrax_token_verifications_total", map[string]string{"result": "no_token"}, 1},
		{"atrax_token_verifications_total", map[string]string{"result": "invalid"}, 1},
		{"atrax_token_verifications_total", map[string]string{"result": "expired"}, 0},
		{"atrax_edge_snapshot_version", nil, 1},
		{"atrax_edge_control_plane_connected", nil, 1},
	} {
		if got := m.Value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"atrax_upstream_inflight_calls", "atrax_upstream_restarts_total", "go_goroutines", "process_open_fds"} {
		if m[name] == nil {
			t.Errorf("no %s in /metrics", name)
		}
	}

	// /metrics needs a token by default.
	resp, err := http.Get(g.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: status %d, want 401", resp.StatusCode)
	}
}

// TestMetricsAccess: http.metrics "public" serves without a token, "off"
// not at all.
func TestMetricsAccess(t *testing.T) {
	for _, c := range []struct {
		access      string
		token       string
		wantNoToken int
	}{
		{"public", "", http.StatusOK},
		{"off", token, http.StatusUnauthorized},
	} {
		t.Run(c.access, func(t *testing.T) {
			g := startEdge(t, configWith(fmt.Sprintf(`"http": {"metrics": %q},`, c.access)), nil)
			resp, err := http.Get(g.base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.wantNoToken {
				t.Errorf("GET /metrics without a token: %d, want %d", resp.StatusCode, c.wantNoToken)
			}
			if c.access == "off" {
				req, _ := http.NewRequest(http.MethodGet, g.base+"/metrics", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("GET /metrics with a token while off: %d, want 404", resp.StatusCode)
				}
			}
		})
	}
}

// TestReady follows /ready through an edge's life: no snapshot, a server
// that cannot start, a server that runs, a server that went away.
func TestReady(t *testing.T) {
	up := startUpstream(t)
	g := startEdge(t, configWith(""), nil)

	body := g.ready(t, http.StatusServiceUnavailable)
	if body["status"] != "not ready" || !strings.Contains(fmt.Sprint(body["reason"]), "no snapshot") {
		t.Errorf("before any snapshot: %v", body)
	}

	// A server nobody answers for.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	g.serve(1, deadURL)
	deadline := time.Now().Add(waitFor)
	for {
		body = g.ready(t, http.StatusServiceUnavailable)
		if body["snapshotVersion"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot 1 not applied: %v", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	nr, _ := body["notRunning"].([]any)
	if len(nr) != 1 || nr[0].(map[string]any)["name"] != "up" {
		t.Errorf("with a dead server: notRunning = %v, want up", body["notRunning"])
	}

	// The server comes up.
	g.serve(2, up.URL)
	body = g.ready(t, http.StatusOK)
	if body["status"] != "ready" || body["servers"].(map[string]any)["up"] != "running" || body["notRunning"] != nil {
		t.Errorf("with a running server: %v", body)
	}

	// It moves where nobody answers.
	g.serve(3, deadURL)
	body = g.ready(t, http.StatusServiceUnavailable)
	if body["servers"].(map[string]any)["up"] == "running" {
		t.Errorf("after the server went away: %v", body)
	}
}

// TestAuditToolCalls: every tools/call becomes one audit event sent to the
// control plane, without its arguments unless audit.toolArguments says so.
func TestAuditToolCalls(t *testing.T) {
	for _, withArgs := range []bool{false, true} {
		t.Run(fmt.Sprintf("toolArguments=%v", withArgs), func(t *testing.T) {
			up := startUpstream(t)
			g := startEdge(t, configWith(fmt.Sprintf(`"audit": {"toolArguments": %v},`, withArgs)), nil)
			g.serve(1, up.URL)
			g.ready(t, http.StatusOK)
			s := g.session(t)
			s.call(t, "tools/call", tool("up__echo", "secret-ish"), map[string]string{"X-Request-Id": "req-echo-1"})
			s.call(t, "tools/call", tool("up__fail", "x"), nil)
			s.call(t, "tools/call", tool("up__nope", "x"), nil)
			s.call(t, "tools/list", nil, nil) // not audited

			events := g.cp.WaitAudit(t, 3, waitFor)
			type ev struct{ Actor, Action, Server, Tool, Outcome string }
			var got []ev
			for _, e := range events {
				got = append(got, ev{e.GetActor(), e.GetAction(), e.GetServer(), e.GetTool(), e.GetOutcome()})
				if e.GetDuration() == nil || e.GetTime() == nil || e.GetRequestId() == "" {
					t.Errorf("event without duration, time or request id: %v", e)
				}
				_, hasArgs := e.GetDetails()["arguments"]
				if hasArgs != withArgs {
					t.Errorf("event details %v: arguments recorded = %v, want %v", e.GetDetails(), hasArgs, withArgs)
				}
			}
			want := []ev{
				{"static:default", "tool.call", "up", "up__echo", "ok"},
				{"static:default", "tool.call", "up", "up__fail", "error"},
				{"static:default", "tool.call", "", "up__nope", "error"},
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("audit events:\n got %v\nwant %v", got, want)
			}
			if events[0].GetRequestId() != "req-echo-1" {
				t.Errorf("the echo call's request id = %q, want the client's X-Request-Id", events[0].GetRequestId())
			}
			if withArgs && events[0].GetDetails()["arguments"] != `{"text":"secret-ish"}` {
				t.Errorf("arguments = %q", events[0].GetDetails()["arguments"])
			}
			if events[2].GetError() == "" {
				t.Errorf("the failed call records no error: %v", events[2])
			}
			for i, reason := range []string{"", "tool_error", "error"} {
				if got := events[i].GetDetails()["reason"]; got != reason {
					t.Errorf("event %d (%s): reason %q, want %q", i, events[i].GetTool(), got, reason)
				}
			}
			time.Sleep(100 * time.Millisecond)
			if n := len(g.cp.Audit()); n != 3 {
				t.Errorf("%d audit events, want 3 (tools/list is not audited)", n)
			}
		})
	}
}

// TestRequestID: every answer carries X-Request-Id, the client's when it
// sent a sane one.
func TestRequestID(t *testing.T) {
	g := startEdge(t, configWith(""), nil)
	for _, c := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"bad id with spaces", ""},
		{"", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/health", nil)
		if c.sent != "" {
			req.Header.Set("X-Request-Id", c.sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if c.want != "" && got != c.want || c.want == "" && (got == "" || got == c.sent) {
			t.Errorf("X-Request-Id %q answered %q", c.sent, got)
		}
	}
}
