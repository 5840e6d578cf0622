package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client of the stateless revision (2026-07-28), speaking the wire
// itself: each request names its revision and capabilities in _meta and
// mirrors method and name in headers, so it can send any request to any
// edge.

const stateless = "2026-07-28"

// otherToken is a second principal's static token.
const otherToken = "e2e-other-principal-token-5b2e"

type statelessReply struct {
	Status int
	Result map[string]any
	Error  *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	// Notifications came before the answer (an SSE response).
	Notifications []map[string]any
}

// statelessCall sends one request to base+"/mcp" and returns its answer.
func statelessCall(t *testing.T, base, token, method string, params map[string]any, caps map[string]any) statelessReply {
	t.Helper()
	out, err := statelessDo(base, token, method, params, caps)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// statelessDo is statelessCall for any goroutine: a request that gets no
// HTTP answer, or an answer that is not JSON, is an error.
func statelessDo(base, token, method string, params map[string]any, caps map[string]any) (statelessReply, error) {
	if params == nil {
		params = map[string]any{}
	}
	if caps == nil {
		caps = map[string]any{}
	}
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    stateless,
		"io.modelcontextprotocol/clientCapabilities": caps,
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "e2e-stateless", "version": "1"},
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	req, err := http.NewRequest("POST", base+"/mcp", bytes.NewReader(body))
	if err != nil {
		return statelessReply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", stateless)
	req.Header.Set("Mcp-Method", method)
	if name, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", name)
	}
	if uri, ok := params["uri"].(string); ok {
		req.Header.Set("Mcp-Name", uri)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return statelessReply{}, fmt.Errorf("%s to %s: %v", method, base, err)
	}
	defer resp.Body.Close()
	out := statelessReply{Status: resp.StatusCode}
	var frames [][]byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				frames = append(frames, []byte(d))
			}
		}
	} else {
		b, _ := io.ReadAll(resp.Body)
		frames = append(frames, b)
	}
	for _, f := range frames {
		var m map[string]any
		if err := json.Unmarshal(f, &m); err != nil {
			return out, fmt.Errorf("%s: frame %q is not JSON", method, f)
		}
		if _, isNote := m["method"]; isNote {
			out.Notifications = append(out.Notifications, m)
			continue
		}
		var r struct {
			Result map[string]any `json:"result"`
			Error  *struct {
				Code    int64           `json:"code"`
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			} `json:"error"`
		}
		_ = json.Unmarshal(f, &r)
		out.Result, out.Error = r.Result, r.Error
	}
	return out, nil
}

// edgePair runs a control plane and two edges in front of the given
// servers.
func edgePair(t *testing.T, servers string) (a, b *proc) {
	t.Helper()
	cfg := func(cp string) string {
		return fmt.Sprintf(`{
			"auth": {"type": "token", "options": {"token": %q, "tokens": [{"name": "other", "token": %q, "servers": ["*"], "tools": ["*"]}]}},
			"controlPlane": {"address": %q},
			"namespacing": {"mode": "never"},
			"mcpServers": %s
		}`, adminToken, otherToken, cp, servers)
	}
	cp := startAtrax(t, "controlplane", cfg("127.0.0.1:0"), nil)
	a = startAtrax(t, "edge", cfg(cp.GRPC), nil)
	b = startAtrax(t, "edge", cfg(cp.GRPC), nil)
	return a, b
}

// TestStatelessAcrossEdges: a 2026-07-28 client sends its requests to two
// edges in turn, with a stateless server behind them, and sees one
// server: discovery, lists and calls agree, and an input_required round
// trip started on one edge finishes on the other.
func TestStatelessAcrossEdges(t *testing.T) {
	t.Parallel()
	a, b := edgePair(t, `{"everything": `+statelessEverything(t)+`}`)
	waitUpstreams(t, a, "everything")
	waitUpstreams(t, b, "everything")
	edges := []*proc{a, b}

	var names [2][]string
	for i, e := range edges {
		r := statelessCall(t, e.HTTP, adminToken, "server/discover", nil, nil)
		if r.Error != nil || r.Status != 200 {
			t.Fatalf("discover on edge %d: %d %+v", i, r.Status, r.Error)
		}
		if vs, _ := r.Result["supportedVersions"].([]any); len(vs) == 0 || vs[0] != stateless {
			t.Errorf("discover on edge %d: supportedVersions %v, want %s first", i, r.Result["supportedVersions"], stateless)
		}
		l := statelessCall(t, e.HTTP, adminToken, "tools/list", nil, nil)
		if l.Error != nil {
			t.Fatalf("tools/list on edge %d: %+v", i, l.Error)
		}
		for _, tool := range l.Result["tools"].([]any) {
			names[i] = append(names[i], tool.(map[string]any)["name"].(string))
		}
		if l.Result["cacheScope"] != "private" || l.Result["resultType"] != "complete" {
			t.Errorf("tools/list on edge %d: cacheScope %v, resultType %v; want private, complete", i, l.Result["cacheScope"], l.Result["resultType"])
		}
	}
	if fmt.Sprint(names[0]) != fmt.Sprint(names[1]) || len(names[0]) == 0 {
		t.Fatalf("the edges list different tools:\n%v\n%v", names[0], names[1])
	}

	// Started on edge a, finished on edge b.
	caps := map[string]any{"elicitation": map[string]any{}}
	call := map[string]any{"name": "test_input_required_result_elicitation", "arguments": map[string]any{}}
	r1 := statelessCall(t, a.HTTP, adminToken, "tools/call", call, caps)
	if r1.Error != nil || r1.Result["resultType"] != "input_required" {
		t.Fatalf("first round on edge a: %+v %+v, want input_required", r1.Result, r1.Error)
	}
	state, _ := r1.Result["requestState"].(string)
	inputs, _ := r1.Result["inputRequests"].(map[string]any)
	if state == "" || len(inputs) != 1 {
		t.Fatalf("first round: requestState %q, inputRequests %v", state, inputs)
	}
	answers := map[string]any{}
	for key := range inputs {
		answers[key] = map[string]any{"action": "accept", "content": map[string]any{"name": "Ada"}}
	}
	retry := map[string]any{"name": call["name"], "arguments": map[string]any{}, "inputResponses": answers, "requestState": state}
	r2 := statelessCall(t, b.HTTP, adminToken, "tools/call", retry, caps)
	if r2.Error != nil || r2.Result["resultType"] != "complete" || !strings.Contains(fmt.Sprint(r2.Result["content"]), "Ada") {
		t.Fatalf("second round on edge b: %+v %+v, want a complete result greeting Ada", r2.Result, r2.Error)
	}

	// Sealed state is the principal's: another token cannot use it.
	r3 := statelessCall(t, b.HTTP, otherToken, "tools/call", retry, caps)
	if r3.Error == nil || r3.Error.Code != -32602 || r3.Status != 400 {
		t.Errorf("state replayed by another token: %d %+v %+v, want 400 with -32602", r3.Status, r3.Result, r3.Error)
	}
	// And tampering shows.
	tampered := map[string]any{"name": call["name"], "arguments": map[string]any{}, "inputResponses": answers, "requestState": state[:len(state)-2] + "AA"}
	if r4 := statelessCall(t, a.HTTP, adminToken, "tools/call", tampered, caps); r4.Error == nil || r4.Error.Code != -32602 {
		t.Errorf("tampered state: %+v %+v, want -32602", r4.Result, r4.Error)
	}
}

// TestStatelessHeldCallOtherEdge: with a session-era server (stdio), the
// call held for a stateless client lives on the edge that holds the
// server's connection. The other edge says so, clearly, and the client
// can start again; the holding edge finishes the call.
func TestStatelessHeldCallOtherEdge(t *testing.T) {
	t.Parallel()
	bin := everythingServer(t)
	a, b := edgePair(t, fmt.Sprintf(`{"everything": {"command": %q}}`, bin))
	waitUpstreams(t, a, "everything")
	waitUpstreams(t, b, "everything")

	caps := map[string]any{"elicitation": map[string]any{}}
	call := map[string]any{"name": "test_input_required_result_elicitation", "arguments": map[string]any{}}
	r1 := statelessCall(t, a.HTTP, adminToken, "tools/call", call, caps)
	if r1.Error != nil || r1.Result["resultType"] != "input_required" {
		t.Fatalf("first round on edge a: %+v %+v", r1.Result, r1.Error)
	}
	state := r1.Result["requestState"].(string)
	answers := map[string]any{}
	for key := range r1.Result["inputRequests"].(map[string]any) {
		answers[key] = map[string]any{"action": "accept", "content": map[string]any{"name": "Grace"}}
	}
	retry := map[string]any{"name": call["name"], "arguments": map[string]any{}, "inputResponses": answers, "requestState": state}

	rb := statelessCall(t, b.HTTP, adminToken, "tools/call", retry, caps)
	if rb.Error == nil || rb.Status != 400 || !strings.Contains(rb.Error.Message, a.EdgeID) || !strings.Contains(rb.Error.Message, "retry the request from the start") {
		t.Errorf("retry on the other edge: %d %+v, want 400 naming edge %s and telling to start again", rb.Status, rb.Error, a.EdgeID)
	}
	ra := statelessCall(t, a.HTTP, adminToken, "tools/call", retry, caps)
	if ra.Error != nil || !strings.Contains(fmt.Sprint(ra.Result["content"]), "Grace") {
		t.Errorf("retry on the holding edge: %+v %+v, want a result greeting Grace", ra.Result, ra.Error)
	}
}

// TestStatelessErrors: the revision's errors and HTTP statuses, through
// the gateway.
func TestStatelessErrors(t *testing.T) {
	t.Parallel()
	a, _ := edgePair(t, `{"everything": `+statelessEverything(t)+`}`)
	waitUpstreams(t, a, "everything")
	tests := []struct {
		method     string
		params     map[string]any
		wantStatus int
		wantCode   int64
	}{
		{"ping", nil, 404, -32601},
		{"initialize", nil, 404, -32601},
		{"logging/setLevel", map[string]any{"level": "info"}, 404, -32601},
		{"no/such/method", nil, 404, -32601},
		{"tools/call", map[string]any{"name": "no_such_tool", "arguments": map[string]any{}}, 400, -32602},
	}
	for _, tt := range tests {
		r := statelessCall(t, a.HTTP, adminToken, tt.method, tt.params, nil)
		if r.Status != tt.wantStatus || r.Error == nil || r.Error.Code != tt.wantCode {
			t.Errorf("%s: HTTP %d, error %+v; want HTTP %d, code %d", tt.method, r.Status, r.Error, tt.wantStatus, tt.wantCode)
		}
	}
	// No token: 401 before anything else.
	if r := statelessCall(t, a.HTTP, "", "tools/list", nil, nil); r.Status != 401 {
		t.Errorf("no token: HTTP %d, want 401", r.Status)
	}
	// GET and DELETE have no session to act on.
	for _, m := range []string{"GET", "DELETE"} {
		req, _ := http.NewRequest(m, a.HTTP+"/mcp", nil)
		req.Header.Set("MCP-Protocol-Version", stateless)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /mcp (stateless): HTTP %d, want 405", m, resp.StatusCode)
		}
	}
}

// TestBridgeInputRequired: a session-era client (the TypeScript SDK over
// streamable HTTP) calls a tool of a stateless server that answers
// input_required. The edge asks the client with a real elicitation/create
// request on its session, and calls the server again with the answer.
func TestBridgeInputRequired(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	a, _ := edgePair(t, `{"everything": `+statelessEverything(t)+`}`)
	waitUpstreams(t, a, "everything")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := pe.Command(ctx, "clients/bridge.mjs", a.HTTP+"/mcp", adminToken, "test_input_required_result_elicitation", "Barbara")
	cmd.Dir = pe.Dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bridge client: %v\n%s", err, out)
	}
	var got struct {
		Result struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"result"`
		Asked           []string `json:"asked"`
		ProtocolVersion string   `json:"protocolVersion"`
		Error           string   `json:"error"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
		t.Fatalf("bridge client printed %q: %v", out, err)
	}
	if len(got.Asked) != 1 {
		t.Errorf("the client was asked %d times (%q), want once", len(got.Asked), got.Asked)
	}
	if len(got.Result.Content) == 0 || !strings.Contains(got.Result.Content[0].Text, "Barbara") {
		t.Errorf("result %+v, want a greeting with the answer the client gave", got.Result)
	}
	if strings.HasPrefix(got.ProtocolVersion, "2026") {
		t.Errorf("the client negotiated %s; the test needs a session-era client", got.ProtocolVersion)
	}
}
