package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool definitions that change under a running server: a stdio server
// (test/fixtures/changing) rewrites its "fetch" tool's description once a
// marker file appears and sends list_changed. Behind a server with
// pinTools the changed tool is hidden (lists and calls), logged, audited
// as tool.changed and reported in /status until an admin approves it
// (POST /servers/NAME/approve); behind a server without it, the change is
// served, and still logged and audited.

const pinToken = "pin-e2e-token-0123456789abcdef"

// bearer adds a token to every request of an HTTP client.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// sdkSession connects a go-sdk client (streamable HTTP) to the edge; it
// signals changed on every notifications/tools/list_changed.
func sdkSession(t *testing.T, base string, changed chan<- struct{}) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "pin-e2e", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	tr := &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: bearer{pinToken, http.DefaultTransport}}}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	s, err := c.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// toolDescriptions lists the tools: visible name → description.
func toolDescriptions(t *testing.T, s *mcp.ClientSession) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	out := map[string]string{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool.Description
	}
	return out
}

// callText calls a tool and returns its text, or the error.
func callText(t *testing.T, s *mcp.ClientSession, name string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", b.String())
	}
	return b.String(), nil
}

// pendingOf returns what /status says edge p holds back of server name.
func pendingOf(t *testing.T, p *proc, name string) []string {
	t.Helper()
	r := httpDo(t, http.MethodGet, p.HTTP+"/status", "", "")
	var st struct {
		Edges []struct {
			EdgeID    string `json:"edgeId"`
			Upstreams []struct {
				Name         string   `json:"name"`
				PendingTools []string `json:"pendingTools"`
			} `json:"upstreams"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	for _, e := range st.Edges {
		if e.EdgeID != p.EdgeID {
			continue
		}
		for _, u := range e.Upstreams {
			if u.Name == name {
				return u.PendingTools
			}
		}
	}
	return nil
}

// auditOf returns the tool.changed events of server name in the audit log.
func auditOf(t *testing.T, p *proc, server string) []map[string]any {
	t.Helper()
	body := mustStatus(t, http.StatusOK, http.MethodGet, p.HTTP+"/audit?action=tool.changed&server="+server, pinToken, "").JSON(t)
	evs, _ := body["events"].([]any)
	var out []map[string]any
	for _, e := range evs {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// waitChanged waits for list_changed.
func waitChanged(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(pollTimeout):
		t.Fatalf("no tools/list_changed %s", what)
	}
}

func TestPinTools(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pinnedMarker, looseMarker := filepath.Join(dir, "pinned-changes"), filepath.Join(dir, "loose-changes")
	bin := fixture(t, "changing")
	cfg := fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"mcpServers": {
			"pinned": {"command": %q, "args": ["-marker", %q], "pinTools": true},
			"loose": {"command": %q, "args": ["-marker", %q]},
		},
	}`, pinToken, bin, pinnedMarker, bin, looseMarker)
	p := startAtraxIn(t, dir, "serve", cfg, nil)
	waitUpstreams(t, p, "pinned", "loose")

	changed := make(chan struct{}, 1)
	s := sdkSession(t, p.HTTP, changed)
	const before = "Fetch a URL and return its text."
	tools := toolDescriptions(t, s)
	for _, name := range []string{"pinned__fetch", "pinned__stable", "loose__fetch", "loose__stable"} {
		if _, ok := tools[name]; !ok {
			t.Fatalf("tools before the change = %v, want %s", tools, name)
		}
	}
	if tools["pinned__fetch"] != before {
		t.Fatalf("pinned__fetch = %q", tools["pinned__fetch"])
	}

	// The pinned server's tool changes: hidden from lists and calls.
	touch := func(path string) {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch(pinnedMarker)
	waitChanged(t, changed, "after the pinned server changed its tool")
	if !poll(pollTimeout, func() bool { _, ok := toolDescriptions(t, s)["pinned__fetch"]; return !ok }) {
		t.Fatalf("the changed tool is still listed: %v", toolDescriptions(t, s))
	}
	tools = toolDescriptions(t, s)
	if _, ok := tools["pinned__stable"]; !ok {
		t.Errorf("the unchanged tool of the pinned server went too: %v", tools)
	}
	if out, err := callText(t, s, "pinned__fetch"); err == nil {
		t.Errorf("the hidden tool was called: %q", out)
	}
	if out, err := callText(t, s, "pinned__stable"); err != nil || out != "stable" {
		t.Errorf("pinned__stable = %q, %v", out, err)
	}
	// Logged, reported and audited.
	if _, err := p.waitLogFrom(0, func(m map[string]any) bool {
		return strings.HasPrefix(str(m["msg"]), "tool definition changed") && m["server"] == "pinned" && m["tool"] == "fetch" && m["pinned"] == true
	}, pollTimeout); err != nil {
		t.Errorf("no log of the change: %v", err)
	}
	if !poll(pollTimeout, func() bool { return slices.Equal(pendingOf(t, p, "pinned"), []string{"fetch"}) }) {
		t.Errorf("/status pendingTools of pinned = %v, want [fetch]", pendingOf(t, p, "pinned"))
	}
	if !poll(pollTimeout, func() bool { return len(auditOf(t, p, "pinned")) == 1 }) {
		t.Fatalf("tool.changed events of pinned = %v, want one", auditOf(t, p, "pinned"))
	}
	ev := auditOf(t, p, "pinned")[0]
	details, _ := ev["details"].(map[string]any)
	if ev["tool"] != "fetch" || ev["outcome"] != "denied" || details["pinned"] != "true" || details["change"] != "changed" || str(details["digest"]) == str(details["previous"]) {
		t.Errorf("tool.changed event = %v", ev)
	}

	// The unpinned server's change is served, and audited too.
	touch(looseMarker)
	waitChanged(t, changed, "after the loose server changed its tool")
	if !poll(pollTimeout, func() bool { return toolDescriptions(t, s)["loose__fetch"] != before }) {
		t.Errorf("loose__fetch kept its old description")
	}
	if out, err := callText(t, s, "loose__fetch"); err != nil || out != "fetch v2" {
		t.Errorf("loose__fetch = %q, %v; want the new definition served", out, err)
	}
	if !poll(pollTimeout, func() bool { evs := auditOf(t, p, "loose"); return len(evs) == 1 && evs[0]["outcome"] == "ok" }) {
		t.Errorf("tool.changed events of loose = %v", auditOf(t, p, "loose"))
	}
	mustStatus(t, http.StatusConflict, http.MethodPost, p.HTTP+"/servers/loose/approve", pinToken, `{}`)

	// An admin approves: the new definition is served again.
	resp := mustStatus(t, http.StatusOK, http.MethodPost, p.HTTP+"/servers/pinned/approve", pinToken, `{"tools": ["fetch"]}`).JSON(t)
	approved, _ := resp["approved"].([]any)
	if fmt.Sprint(approved) != "[fetch stable]" {
		t.Errorf("approved = %v, want fetch (asked) and stable (trusted, recorded by the first approval)", approved)
	}
	waitChanged(t, changed, "after the approval")
	if !poll(pollTimeout, func() bool { _, ok := toolDescriptions(t, s)["pinned__fetch"]; return ok }) {
		t.Fatalf("the approved tool is not listed: %v", toolDescriptions(t, s))
	}
	if d := toolDescriptions(t, s)["pinned__fetch"]; d == before {
		t.Errorf("pinned__fetch = %q, want the approved new definition", d)
	}
	if out, err := callText(t, s, "pinned__fetch"); err != nil || out != "fetch v2" {
		t.Errorf("pinned__fetch after approval = %q, %v", out, err)
	}
	if !poll(pollTimeout, func() bool { return len(pendingOf(t, p, "pinned")) == 0 }) {
		t.Errorf("/status pendingTools after approval = %v", pendingOf(t, p, "pinned"))
	}
	srv := mustStatus(t, http.StatusOK, http.MethodGet, p.HTTP+"/servers/pinned", pinToken, "").JSON(t)
	if at, _ := srv["approvedTools"].(map[string]any); len(at) != 2 || str(at["fetch"]) != str(details["digest"]) {
		t.Errorf("approvedTools = %v, want fetch at %v and stable", srv["approvedTools"], details["digest"])
	}
}
