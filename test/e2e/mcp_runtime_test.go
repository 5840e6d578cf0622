package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMCPRuntimeServers adds a remote server through the REST API while
// clients are connected, then removes it: each client is told with
// notifications/tools/list_changed, and its next tools/list shows the new
// tools, then no longer shows them. A remote server needs no
// controlPlane.allowCommands.
func TestMCPRuntimeServers(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	remote, err := pe.StartEverything(ctx, "streamableHttp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = remote.Stop() })
	cfg := mcpConfig(t, "", mcpServer{"memory", mcpStdioDef(pe.MemoryStdio(t.TempDir()+"/memory.jsonl"), nil, nil)})
	g := startMCPGateway(t, pe, cfg, "memory")

	clients := []*mcpClient{
		mcpConnect(t, pe, mcpPlan{Transport: "streamable", URL: g.HTTP + "/mcp", Token: mcpAdminToken, Name: "rt-streamable"}),
		mcpConnect(t, pe, mcpPlan{Transport: "sse", URL: g.HTTP + "/sse", Token: mcpAdminToken, TokenIn: "query", Name: "rt-sse"}),
	}
	for _, c := range clients {
		tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools")
		if !slices.Contains(tools, "memory__read_graph") || slices.ContainsFunc(tools, func(n string) bool { return strings.HasPrefix(n, "extra__") }) {
			t.Fatalf("%s: tools/list before the server is added: %v", c.name, tools)
		}
	}
	hasExtra := func(tools []string) bool { return slices.Contains(tools, "extra__echo") }

	const changed = "notifications/tools/list_changed"
	seen := map[*mcpClient]int{}
	for _, c := range clients {
		seen[c] = len(c.notifications(changed))
	}
	mustStatus(t, http.StatusOK, "POST", g.HTTP+"/servers", mcpAdminToken, `{"name": "extra", "url": "`+remote.URL+`"}`)
	for _, c := range clients {
		tools := mcpAwaitToolsChange(t, c, seen[c], hasExtra)
		if !slices.Contains(tools, "memory__read_graph") {
			t.Errorf("%s: memory's tools went when extra came: %v", c.name, tools)
		}
		if got := mcpText(t, c.ok(mcpOp{"op": "callTool", "name": "extra__echo", "arguments": map[string]any{"message": "new"}})); got != "Echo: new" {
			t.Errorf("%s: extra__echo: got %q", c.name, got)
		}
	}

	for _, c := range clients {
		seen[c] = len(c.notifications(changed))
	}
	mustStatus(t, http.StatusOK, "DELETE", g.HTTP+"/servers/extra", mcpAdminToken, "")
	for _, c := range clients {
		tools := mcpAwaitToolsChange(t, c, seen[c], func(tools []string) bool {
			return !slices.ContainsFunc(tools, func(n string) bool { return strings.HasPrefix(n, "extra__") })
		})
		if !slices.Contains(tools, "memory__read_graph") {
			t.Errorf("%s: memory's tools went with extra: %v", c.name, tools)
		}
		if ev := c.do(mcpOp{"op": "callTool", "name": "extra__echo", "arguments": map[string]any{"message": "gone"}}); ev.OK {
			t.Errorf("%s: extra__echo after the server was removed answered %s", c.name, ev.Result)
		}
	}
}

// mcpAwaitToolsChange waits for notifications/tools/list_changed beyond
// the first seen ones of c, lists the tools after each, and returns the
// first list that want accepts. The test fails if none comes within
// mcpWaitTimeout: a change that reaches the lists but is never announced
// fails too, since only an announcement leads to a new listing.
func mcpAwaitToolsChange(t *testing.T, c *mcpClient, seen int, want func([]string) bool) []string {
	t.Helper()
	const method = "notifications/tools/list_changed"
	deadline := time.Now().Add(mcpWaitTimeout)
	var tools []string
	for {
		if !poll(time.Until(deadline), func() bool { return len(c.notifications(method)) > seen }) {
			t.Fatalf("%s: no (further) %s within %v; last tools/list: %v", c.name, method, mcpWaitTimeout, tools)
		}
		seen = len(c.notifications(method))
		tools = mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools")
		if want(tools) {
			return tools
		}
	}
}
