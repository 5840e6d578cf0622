package edge_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The console is served only when the config says ui.enabled; then its
// pages carry their policy, its API knows the edge's tokens and groups the
// router's lists by server, and /mcp takes requests from the console's own
// origin.

func TestConsoleOff(t *testing.T) {
	up := startUpstream(t) // first, so that it ends after the edge
	g := startEdge(t, configWith(`"http": {"allowedHosts": ["gw.test"]}`), nil)
	g.serve(1, up.URL)
	g.ready(t, http.StatusOK)
	// /ui/ is one more unknown path: 401 without a token, 404 with one.
	if code, _ := get(t, g.base+"/ui/", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /ui/ without a token: %d, want 401", code)
	}
	for _, path := range []string{"/ui/", "/ui/login", "/ui/api/session", "/ui/static/console.js"} {
		if code, _ := get(t, g.base+path, token); code != http.StatusNotFound {
			t.Errorf("GET %s with a token: %d, want 404", path, code)
		}
	}
	if code := ownOrigin(t, g.base); code != http.StatusForbidden {
		t.Errorf("/mcp from the edge's own origin, without the console: %d, want 403", code)
	}
}

func TestConsoleOn(t *testing.T) {
	up := startUpstream(t)
	g := startEdge(t, configWith(`"ui": {"enabled": true}, "http": {"allowedHosts": ["gw.test"]}`), nil)
	g.serve(1, up.URL)
	g.ready(t, http.StatusOK)

	resp, err := http.Get(g.base + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("GET /ui/login: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if code, _ := get(t, g.base+"/ui/api/session", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /ui/api/session without a token: %d, want 401", code)
	}
	code, body := get(t, g.base+"/ui/api/session", token)
	if code != http.StatusOK || !strings.Contains(body, `"subject":"static:default"`) || !strings.Contains(body, `"admin":true`) {
		t.Errorf("GET /ui/api/session: %d %s", code, body)
	}

	// The owners of the upstream's tools, once its list is in.
	want := map[string]string{"up__echo": "up", "up__fail": "up"}
	var got map[string]map[string]string
	for deadline := time.Now().Add(waitFor); ; {
		code, body := get(t, g.base+"/ui/api/owners", token)
		if code != http.StatusOK {
			t.Fatalf("GET /ui/api/owners: %d %s", code, body)
		}
		got = nil
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if cmp.Equal(want, got["tools"]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got["tools"]); diff != "" {
		t.Errorf("owners of the tools (-want +got):\n%s", diff)
	}

	if code := ownOrigin(t, g.base); code != http.StatusOK {
		t.Errorf("/mcp from the edge's own origin, with the console: %d, want 200", code)
	}
}

// ownOrigin sends a stateless server/discover to /mcp as the console's
// page on http://gw.test does, and returns the status.
func ownOrigin(t *testing.T, base string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	req.Host = "gw.test"
	req.Header.Set("Origin", "http://gw.test")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "server/discover")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
