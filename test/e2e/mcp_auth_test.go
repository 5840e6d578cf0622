package e2e

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// mcpInitialize is an initialize request of a streamable HTTP client.
const mcpInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-raw","version":"1"}}}`

// mcpToolsList is a tools/list request.
const mcpToolsList = `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`

// mcpRaw sends one request with headers (name, value pairs; "Host" sets
// the Host header) and returns the response with at most 64 KiB of its
// body: an SSE stream that stays open is cut there, or when callTimeout
// passes.
func mcpRaw(t testing.TB, method, url, body string, headers ...string) *response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b []byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A stream: the status and headers are what the tests look at.
		b = []byte{}
	} else {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mcpPost is a streamable HTTP POST with the headers a client sends.
func mcpPost(t testing.TB, url, body string, headers ...string) *response {
	t.Helper()
	return mcpRaw(t, "POST", url, body, append([]string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream"}, headers...)...)
}

// TestMCPAuth checks who may use the MCP endpoints: no token is refused
// with a challenge, a session belongs to the token that opened it, and a
// token's scopes narrow the servers and tools it sees and calls. It also
// checks the DNS rebinding guard (Host and Origin).
func TestMCPAuth(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	cfg := mcpConfig(t, "",
		mcpServer{"everything", mcpStdioDef(pe.EverythingStdio(), nil, nil)},
		mcpServer{"memory", mcpStdioDef(pe.MemoryStdio(t.TempDir()+"/memory.jsonl"), nil, nil)},
	)
	g := startMCPGateway(t, pe, cfg, "everything", "memory")

	t.Run("no-token", func(t *testing.T) {
		t.Parallel()
		for _, r := range []struct {
			what string
			resp *response
		}{
			{"GET /sse", mcpRaw(t, "GET", g.HTTP+"/sse", "", "Accept", "text/event-stream")},
			{"POST /mcp initialize", mcpPost(t, g.HTTP+"/mcp", mcpInitialize)},
		} {
			if r.resp.Status != http.StatusUnauthorized {
				t.Errorf("%s without a token: got %d, want 401; body %s", r.what, r.resp.Status, r.resp.Body)
			}
			if ch := r.resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("%s without a token: WWW-Authenticate %q, want a Bearer challenge", r.what, ch)
			}
		}
		for _, r := range []struct {
			what string
			resp *response
		}{
			{"GET /sse", mcpRaw(t, "GET", g.HTTP+"/sse", "", "Accept", "text/event-stream", "Authorization", "Bearer not-a-token")},
			{"GET /sse?token=", mcpRaw(t, "GET", g.HTTP+"/sse?token=not-a-token", "", "Accept", "text/event-stream")},
			{"POST /mcp initialize", mcpPost(t, g.HTTP+"/mcp", mcpInitialize, "Authorization", "Bearer not-a-token")},
		} {
			if r.resp.Status != http.StatusUnauthorized {
				t.Errorf("%s with a wrong token: got %d, want 401; body %s", r.what, r.resp.Status, r.resp.Body)
			}
			if ch := r.resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("%s with a wrong token: WWW-Authenticate %q, want a Bearer challenge with error=\"invalid_token\"", r.what, ch)
			}
		}
		// The SDK's clients cannot connect either.
		for _, transport := range []string{"sse", "streamable"} {
			c, fatal := mcpTryConnect(t, pe, g.plan(transport, "", ""))
			if fatal == nil {
				t.Errorf("%s client without a token connected (session %q)", transport, c.SessionID())
				continue
			}
			if !strings.Contains(fatal.Message, "401") && (fatal.Code == nil || *fatal.Code != 401) {
				t.Errorf("%s client without a token: got %q, want a 401", transport, fatal.Message)
			}
		}
	})

	t.Run("streamable-session-of-another-token", func(t *testing.T) {
		t.Parallel()
		c := mcpConnect(t, pe, g.plan("streamable", mcpAdminToken, "header"))
		sid := c.SessionID()
		if sid == "" {
			t.Fatal("the streamable client has no Mcp-Session-Id")
		}
		url := g.HTTP + "/mcp"
		for _, tc := range []struct {
			what string
			resp *response
		}{
			{"POST, another full token", mcpPost(t, url, mcpToolsList, "Mcp-Session-Id", sid, "Authorization", "Bearer "+mcpOtherToken)},
			{"POST, another token in ?token=", mcpPost(t, url+"?token="+mcpOtherToken, mcpToolsList, "Mcp-Session-Id", sid)},
			{"POST, a scoped token", mcpPost(t, url, mcpToolsList, "Mcp-Session-Id", sid, "Authorization", "Bearer "+mcpEchoToken)},
			{"GET stream, another token", mcpRaw(t, "GET", url, "", "Accept", "text/event-stream", "Mcp-Session-Id", sid, "Authorization", "Bearer "+mcpOtherToken)},
			{"DELETE, another token", mcpRaw(t, "DELETE", url, "", "Mcp-Session-Id", sid, "Authorization", "Bearer "+mcpOtherToken)},
		} {
			if tc.resp.Status != http.StatusForbidden {
				t.Errorf("%s: got %d, want 403; body %s", tc.what, tc.resp.Status, tc.resp.Body)
			}
		}
		if r := mcpPost(t, url, mcpToolsList, "Mcp-Session-Id", sid); r.Status != http.StatusUnauthorized {
			t.Errorf("POST without a token to a streamable session: got %d, want 401; body %s", r.Status, r.Body)
		}
		// The session survived all that, for its own token.
		if tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools"); !slices.Contains(tools, "everything__echo") {
			t.Errorf("after the refusals the owner's tools/list lacks everything__echo: %v", tools)
		}
		if r := mcpPost(t, url, mcpToolsList, "Mcp-Session-Id", sid, "Authorization", "Bearer "+mcpAdminToken); r.Status != http.StatusOK {
			t.Errorf("POST with the owner's token: got %d, want 200; body %s", r.Status, r.Body)
		}
	})

	t.Run("legacy-session-of-another-token", func(t *testing.T) {
		t.Parallel()
		// Opened with ?token=: the SDK posts its messages without it.
		c := mcpConnect(t, pe, g.plan("sse", mcpAdminToken, "query"))
		sid := c.SessionID()
		if sid == "" {
			t.Fatal("the legacy client has no sessionId")
		}
		msg := g.HTTP + "/message?sessionId=" + sid
		for _, tc := range []struct {
			what string
			resp *response
		}{
			{"another token in the header", mcpRaw(t, "POST", msg, mcpToolsList, "Content-Type", "application/json", "Authorization", "Bearer "+mcpOtherToken)},
			{"another token in ?token=", mcpRaw(t, "POST", msg+"&token="+mcpOtherToken, mcpToolsList, "Content-Type", "application/json")},
			{"a scoped token", mcpRaw(t, "POST", msg, mcpToolsList, "Content-Type", "application/json", "Authorization", "Bearer "+mcpMemoryToken)},
		} {
			if tc.resp.Status != http.StatusForbidden {
				t.Errorf("POST /message with %s: got %d, want 403; body %s", tc.what, tc.resp.Status, tc.resp.Body)
			}
		}
		if r := mcpRaw(t, "POST", msg, mcpToolsList, "Content-Type", "application/json", "Authorization", "Bearer not-a-token"); r.Status != http.StatusUnauthorized {
			t.Errorf("POST /message with an invalid token: got %d, want 401", r.Status)
		}
		if tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools"); !slices.Contains(tools, "memory__read_graph") {
			t.Errorf("after the refusals the owner's tools/list lacks memory__read_graph: %v", tools)
		}
	})

	t.Run("tool-scope", func(t *testing.T) {
		t.Parallel()
		for _, transport := range []string{"sse", "streamable"} {
			c := mcpConnect(t, pe, g.plan(transport, mcpEchoToken, "header"))
			if tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools"); !slices.Equal(tools, []string{"everything__echo"}) {
				t.Errorf("%s: tools/list for a token scoped to everything__echo: got %v, want only it", transport, tools)
			}
			if prompts := mcpNames(t, c.ok(mcpOp{"op": "listPrompts"}), "prompts"); len(prompts) != 0 {
				t.Errorf("%s: prompts/list for a token scoped to everything__echo: got %v, want none", transport, prompts)
			}
			if got := mcpText(t, c.ok(mcpOp{"op": "callTool", "name": "everything__echo", "arguments": map[string]any{"message": "in scope"}})); got != "Echo: in scope" {
				t.Errorf("%s: everything__echo: got %q", transport, got)
			}
			for _, name := range []string{"everything__get-env", "memory__read_graph"} {
				// Out of scope looks like unknown: -32602.
				ev := c.do(mcpOp{"op": "callTool", "name": name, "expect": map[string]any{"ok": false, "code": -32602}})
				if ev.Unexpected != "" {
					t.Errorf("%s: %s out of the token's scope: %s: %s", transport, name, ev.Unexpected, ev)
				}
			}
			if ev := c.do(mcpOp{"op": "getPrompt", "name": "everything__simple-prompt"}); ev.OK {
				t.Errorf("%s: a prompt out of the token's scope answered %s", transport, ev.Result)
			}
			c.close()
		}
	})

	t.Run("server-scope", func(t *testing.T) {
		t.Parallel()
		c := mcpConnect(t, pe, g.plan("streamable", mcpMemoryToken, "query"))
		tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools")
		if !slices.Contains(tools, "memory__read_graph") {
			t.Errorf("tools/list for a token scoped to memory lacks memory__read_graph: %v", tools)
		}
		for _, n := range tools {
			if !strings.HasPrefix(n, "memory__") {
				t.Errorf("tools/list for a token scoped to memory shows %q", n)
			}
		}
		if got := mcpNames(t, c.ok(mcpOp{"op": "listPrompts"}), "prompts"); len(got) != 0 {
			t.Errorf("prompts/list for a token scoped to memory: got %v, want none (only everything has prompts)", got)
		}
		if got := mcpNames(t, c.ok(mcpOp{"op": "listResources"}), "resources"); !slices.Equal(got, []string{"memory://knowledge-graph"}) {
			t.Errorf("resources/list for a token scoped to memory: got %v, want only memory's memory://knowledge-graph", got)
		}
		if got := mcpNames(t, c.ok(mcpOp{"op": "listResourceTemplates"}), "resourceTemplates"); len(got) != 0 {
			t.Errorf("resources/templates/list for a token scoped to memory: got %v, want none (only everything has templates)", got)
		}
		c.ok(mcpOp{"op": "callTool", "name": "memory__read_graph"})
		if ev := c.do(mcpOp{"op": "callTool", "name": "everything__echo", "arguments": map[string]any{"message": "x"}}); ev.OK {
			t.Errorf("everything__echo for a token scoped to memory answered %s", ev.Result)
		}
		if ev := c.do(mcpOp{"op": "readResource", "uri": mcpStaticDoc}); ev.OK {
			t.Errorf("resources/read of everything's %s for a token scoped to memory answered %s", mcpStaticDoc, ev.Result)
		}
		// A URI of everything's template would be read by everything.
		if ev := c.do(mcpOp{"op": "readResource", "uri": "demo://resource/dynamic/text/7"}); ev.OK {
			t.Errorf("resources/read of a URI of everything's template for a token scoped to memory answered %s", ev.Result)
		}
	})

	t.Run("host-and-origin", func(t *testing.T) {
		t.Parallel()
		auth := []string{"Authorization", "Bearer " + mcpAdminToken}
		for _, tc := range []struct {
			what string
			resp *response
		}{
			{"POST /mcp, Origin evil", mcpPost(t, g.HTTP+"/mcp", mcpInitialize, append(auth, "Origin", "http://evil.example")...)},
			{"GET /sse, Origin evil", mcpRaw(t, "GET", g.HTTP+"/sse", "", append(auth, "Accept", "text/event-stream", "Origin", "http://evil.example")...)},
			{"POST /message, Origin evil", mcpRaw(t, "POST", g.HTTP+"/message?sessionId=x", mcpToolsList, append(auth, "Content-Type", "application/json", "Origin", "http://evil.example")...)},
			{"POST /mcp, Host evil", mcpPost(t, g.HTTP+"/mcp", mcpInitialize, append(auth, "Host", "evil.example")...)},
			{"GET /sse, Host evil", mcpRaw(t, "GET", g.HTTP+"/sse", "", append(auth, "Accept", "text/event-stream", "Host", "evil.example:80")...)},
		} {
			if tc.resp.Status != http.StatusForbidden {
				t.Errorf("%s: got %d, want 403; body %s", tc.what, tc.resp.Status, tc.resp.Body)
			}
			if got := tc.resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("%s: Access-Control-Allow-Origin %q on a refusal", tc.what, got)
			}
		}
		// A loopback origin and host are fine (and get CORS headers).
		origin := strings.Replace(g.HTTP, "127.0.0.1", "localhost", 1)
		r := mcpPost(t, g.HTTP+"/mcp", mcpInitialize, append(auth, "Origin", origin)...)
		if r.Status != http.StatusOK {
			t.Errorf("POST /mcp with Origin %s: got %d, want 200; body %s", origin, r.Status, r.Body)
		}
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("POST /mcp with Origin %s: Access-Control-Allow-Origin %q", origin, got)
		}
		// An SDK client sending a foreign Origin is refused too.
		plan := g.plan("streamable", mcpAdminToken, "header")
		plan.Headers = map[string]string{"Origin": "http://evil.example"}
		if c, fatal := mcpTryConnect(t, pe, plan); fatal == nil {
			t.Errorf("an SDK client with Origin http://evil.example connected (session %q)", c.SessionID())
		} else if (fatal.Code == nil || *fatal.Code != http.StatusForbidden) && !strings.Contains(fatal.Message, "not allowed") {
			t.Errorf("SDK client with Origin http://evil.example: got %s, want a 403", fatal)
		}
	})
}
