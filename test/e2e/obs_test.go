package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/internal/metrics/metricstest"
	"github.com/atrax-mcp/atrax/test/e2e/peers"
)

// Observability of the real binary: tool calls in the audit log (GET
// /audit), /metrics on the edge and on the control plane's metrics
// address, /ready through a server's life, and request ids and trace ids
// on log lines and audit events.

// obsSession is a streamable HTTP (2025-11-25) client session, on the wire.
type obsSession struct {
	t    *testing.T
	base string
	id   string
	n    int
}

func obsConnect(t *testing.T, base string) *obsSession {
	t.Helper()
	r := mustStatus(t, http.StatusOK, "POST", base+"/mcp", adminToken,
		`{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "obs", "version": "1"}}}`,
		"Accept", "application/json, text/event-stream")
	s := &obsSession{t: t, base: base, id: r.Header.Get("Mcp-Session-Id"), n: 1}
	if s.id == "" {
		t.Fatalf("initialize: no Mcp-Session-Id; body %s", r.Body)
	}
	mustStatus(t, http.StatusAccepted, "POST", base+"/mcp", adminToken, `{"jsonrpc": "2.0", "method": "notifications/initialized"}`, s.headers()...)
	return s
}

func (s *obsSession) headers(extra ...string) []string {
	return append([]string{"Accept", "application/json, text/event-stream", "Mcp-Session-Id", s.id, "MCP-Protocol-Version", "2025-11-25"}, extra...)
}

// callTool calls a tool and returns the JSON-RPC response (from JSON or the
// SSE stream's last event); extra are more headers.
func (s *obsSession) callTool(name string, extra ...string) map[string]any {
	s.t.Helper()
	s.n++
	body := fmt.Sprintf(`{"jsonrpc": "2.0", "id": %d, "method": "tools/call", "params": {"name": %q, "arguments": {}}}`, s.n, name)
	r := mustStatus(s.t, http.StatusOK, "POST", s.base+"/mcp", adminToken, body, s.headers(extra...)...)
	data := r.Body
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(r.Body))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = []byte(d)
			}
		}
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		s.t.Fatalf("tools/call %s: %v\n%s", name, err, r.Body)
	}
	return m
}

// obsReady polls /ready until it answers want, and returns the body.
func obsReady(t *testing.T, base string, want int) map[string]any {
	t.Helper()
	var last *response
	if !poll(pollTimeout, func() bool {
		last = httpDo(t, "GET", base+"/ready", "", "")
		return last.Status == want
	}) {
		t.Fatalf("/ready: %d, want %d; body %s", last.Status, want, last.Body)
	}
	return last.JSON(t)
}

// TestObservability runs `atrax serve` in front of go-sdk's everything
// server over stdio and checks what an operator sees of known traffic.
func TestObservability(t *testing.T) {
	t.Parallel()
	bin := everythingServer(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := adminEnv()
	env["ATRAX_LOG_LEVEL"] = "debug"
	cfg := tokenConfig(fmt.Sprintf(`"controlPlane": {"metricsAddress": %q},
  "mcpServers": {"ev": {"command": %q}},`, metricsAddr, peers.EverythingServerStdio(bin).Command))
	p := startAtrax(t, "serve", cfg, env)

	// Ready once the server runs.
	body := obsReady(t, p.HTTP, http.StatusOK)
	if body["status"] != "ready" || body["servers"].(map[string]any)["ev"] != "running" {
		t.Errorf("/ready: %v", body)
	}

	// Known traffic: two calls that work, one the tool fails, one of a
	// tool that does not exist.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	s := obsConnect(t, p.HTTP)
	if res := s.callTool("ev__test_simple_text", "X-Request-Id", "obs-call-1", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"); res["result"] == nil {
		t.Fatalf("test_simple_text: %v", res)
	}
	s.callTool("ev__test_simple_text")
	if res := s.callTool("ev__test_error_handling"); res["result"].(map[string]any)["isError"] != true {
		t.Fatalf("test_error_handling: %v", res)
	}
	if res := s.callTool("ev__no_such_tool"); res["error"] == nil {
		t.Fatalf("an unknown tool answered: %v", res)
	}

	// The audit log has the four calls, newest first, without arguments.
	var events []map[string]any
	if !poll(pollTimeout, func() bool {
		b := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/audit?action=tool.call", adminToken, "").JSON(t)
		list, _ := b["events"].([]any)
		events = events[:0]
		for _, e := range list {
			events = append(events, e.(map[string]any))
		}
		return len(events) >= 4
	}) {
		t.Fatalf("tool.call audit events: %v, want 4", events)
	}
	type ev struct{ Actor, Server, Tool, Outcome string }
	var got []ev
	for _, e := range events {
		got = append(got, ev{str(e["actor"]), str(e["server"]), str(e["tool"]), str(e["outcome"])})
		if e["duration"] == nil || e["edgeId"] != p.EdgeID || e["requestId"] == nil {
			t.Errorf("audit event without duration, edge or request id: %v", e)
		}
		if d, _ := e["details"].(map[string]any); d["arguments"] != nil {
			t.Errorf("audit event records arguments: %v", e)
		}
	}
	want := []ev{
		{"static:default", "", "ev__no_such_tool", "error"},
		{"static:default", "ev", "ev__test_error_handling", "error"},
		{"static:default", "ev", "ev__test_simple_text", "ok"},
		{"static:default", "ev", "ev__test_simple_text", "ok"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GET /audit?action=tool.call, newest first:\n got %v\nwant %v", got, want)
	}
	first := events[len(events)-1]
	if first["requestId"] != "obs-call-1" || first["details"].(map[string]any)["trace_id"] != traceID {
		t.Errorf("the first call's event: requestId %v, details %v; want obs-call-1 and trace %s", first["requestId"], first["details"], traceID)
	}

	// The first call's log lines carry its request id and trace.
	var logged bool
	for _, l := range p.Logs() {
		if l["msg"] == "mcp request" && l["request_id"] == "obs-call-1" && l["trace_id"] == traceID && l["server"] == "ev" {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no \"mcp request\" debug line with request_id obs-call-1 and trace_id %s", traceID)
	}

	// The edge's metrics count the traffic.
	m := metricstest.Scrape(t, p.HTTP+"/metrics", adminToken)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/call", "server": "ev", "outcome": "ok"}, 2},
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/call", "server": "ev", "outcome": "tool_error"}, 1},
		{"atrax_mcp_requests_total", map[string]string{"method": "tools/call", "server": "", "outcome": "error"}, 1},
		{"atrax_mcp_requests_total", map[string]string{"method": "initialize"}, 1},
		{"atrax_upstream_call_duration_seconds", map[string]string{"server": "ev"}, 3},
		{"atrax_upstream_inflight_calls", map[string]string{"server": "ev"}, 0},
		{"atrax_upstream_state", map[string]string{"server": "ev", "state": "running"}, 1},
		{"atrax_mcp_sessions", map[string]string{"transport": "streamable", "era": "2025-11-25"}, 1},
		{"atrax_edge_control_plane_connected", nil, 1},
	} {
		if got := m.Value(c.name, c.labels); got != c.want {
			t.Errorf("edge %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// The control plane's, on its own address: one more REST ListServers
	// is one more RPC.
	cpMetrics := "http://" + metricsAddr + "/metrics"
	mustStatus(t, http.StatusUnauthorized, "GET", cpMetrics, "", "")
	list := map[string]string{"method": "/atrax.v1.ServerService/ListServers", "code": "OK"}
	before := metricstest.Scrape(t, cpMetrics, adminToken)
	mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", adminToken, "")
	after := metricstest.Scrape(t, cpMetrics, adminToken)
	if b, a := before.Value("atrax_controlplane_rpcs_total", list), after.Value("atrax_controlplane_rpcs_total", list); a != b+1 {
		t.Errorf("ListServers OK: %v before one GET /servers, %v after", b, a)
	}
	for name, want := range map[string]float64{"atrax_controlplane_edges_connected": 1, "atrax_controlplane_servers": 1} {
		if got := after.Value(name, nil); got != want {
			t.Errorf("control plane %s = %v, want %v", name, got, want)
		}
	}

	// Readiness follows the servers that should run: none once ev is
	// stopped; not ready with one that cannot start; ready again without.
	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/servers/ev/stop", adminToken, "")
	if b := obsReady(t, p.HTTP, http.StatusOK); len(b["servers"].(map[string]any)) != 0 {
		t.Errorf("/ready with ev stopped: %v", b)
	}
	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/servers", adminToken,
		fmt.Sprintf(`{"name": "broken", "url": "http://127.0.0.1:%d/mcp"}`, freePort(t)), "X-Request-Id", "obs-change-1")
	b := obsReady(t, p.HTTP, http.StatusServiceUnavailable)
	if nr, _ := b["notRunning"].([]any); len(nr) != 1 || nr[0].(map[string]any)["name"] != "broken" {
		t.Errorf("/ready with a broken server: %v", b)
	}
	mustStatus(t, http.StatusOK, "DELETE", p.HTTP+"/servers/broken", adminToken, "")
	obsReady(t, p.HTTP, http.StatusOK)

	// A change made through REST is audited under its request id.
	created := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/audit?action=server.create&server="+url.QueryEscape("broken"), adminToken, "").JSON(t)
	if evs, _ := created["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["requestId"] != "obs-change-1" {
		t.Errorf("server.create of broken: %v, want one event with requestId obs-change-1", created)
	}
}
