package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/atrax-mcp/atrax/test/e2e/peers"
)

// The servers of the full gateway: server-everything and server-memory
// over stdio, server-everything in its sse and streamableHttp modes as
// remote servers.
const (
	// mcpStaticDoc is a resource of every server-everything, by its URI.
	mcpStaticDoc = "demo://resource/static/document/instructions.md"
	// mcpDynamicText is the resource template of server-everything.
	mcpDynamicText = "demo://resource/dynamic/text/{resourceId}"
	// mcpWhoVar is an environment variable of the stdio everything server,
	// which its get-env tool shows.
	mcpWhoVar = "ATRAX_E2E_WHO"
)

// mcpFullGateway is a gateway with four upstreams.
type mcpFullGateway struct {
	*mcpGateway
	ssePort, httpPort string // the ports of the remote servers (their PORT)
}

// startMCPFullGateway starts the remote everything servers and a gateway in
// front of them and of everything and memory over stdio, with the default
// namespacing (always, "__"): prefixes everything, memory, esse, ehttp.
func startMCPFullGateway(t *testing.T) *mcpFullGateway {
	t.Helper()
	pe := installPeers(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	remotes := map[string]*peers.Server{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, mode := range []string{"sse", "streamableHttp"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := pe.StartEverything(ctx, mode)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			remotes[mode] = srv
		}()
	}
	wg.Wait()
	for _, srv := range remotes {
		t.Cleanup(func() { _ = srv.Stop() })
	}
	if len(errs) > 0 {
		t.Fatalf("start remote server-everything: %v", errs)
	}
	everything := mcpStdioDef(pe.EverythingStdio(), nil, map[string]any{"env": map[string]string{mcpWhoVar: "stdio-everything"}})
	memory := mcpStdioDef(pe.MemoryStdio(t.TempDir()+"/memory.jsonl"), nil, nil)
	cfg := mcpConfig(t, "",
		mcpServer{"everything", everything},
		mcpServer{"memory", memory},
		mcpServer{"esse", map[string]any{"type": "sse", "url": remotes["sse"].URL}},
		mcpServer{"ehttp", map[string]any{"type": "http", "url": remotes["streamableHttp"].URL}},
	)
	g := startMCPGateway(t, pe, cfg, "everything", "memory", "esse", "ehttp")
	port := func(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
	return &mcpFullGateway{mcpGateway: g, ssePort: port(remotes["sse"].Addr), httpPort: port(remotes["streamableHttp"].Addr)}
}

// TestMCPGateway drives one gateway of four real servers with SDK clients:
// merged lists, calls routed by prefix, progress, subscriptions, and
// concurrent clients whose request ids collide.
func TestMCPGateway(t *testing.T) {
	t.Parallel()
	g := startMCPFullGateway(t)

	for _, transport := range []string{"sse", "streamable"} {
		for _, tokenIn := range []string{"header", "query"} {
			t.Run(transport+"/token-in-"+tokenIn, func(t *testing.T) {
				t.Parallel()
				plan := g.plan(transport, mcpAdminToken, tokenIn)
				plan.Name = transport + "-" + tokenIn
				c := mcpConnect(t, g.pe, plan)
				if c.SessionID() == "" {
					t.Errorf("the client has no session id")
				}
				mcpCheckLists(t, c)
				mcpCheckRouting(t, g, c, plan.Name)
				mcpCheckProgress(t, c)
				c.close()
			})
		}
	}
	t.Run("subscriptions", func(t *testing.T) {
		t.Parallel()
		mcpCheckSubscriptions(t, g)
	})
	t.Run("colliding-request-ids", func(t *testing.T) {
		t.Parallel()
		mcpCheckCollidingIDs(t, g)
	})
}

// mcpCheckLists: the lists of all four servers come merged, tools and
// prompts prefixed with their server's name and "__", resource URIs as the
// servers gave them.
func mcpCheckLists(t *testing.T, c *mcpClient) {
	t.Helper()
	tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools")
	want := []string{
		"everything__echo", "everything__get-env", "everything__trigger-long-running-operation",
		"memory__read_graph", "memory__create_entities",
		"esse__echo", "esse__get-env", "ehttp__echo", "ehttp__get-env",
	}
	if m := mcpMissing(tools, want...); len(m) > 0 {
		t.Errorf("tools/list lacks %v; got %v", m, tools)
	}
	for _, n := range tools {
		if !mcpHasPrefix(n, "everything__", "memory__", "esse__", "ehttp__") {
			t.Errorf("tools/list: %q has no server prefix", n)
		}
		if len(n) > 64 {
			t.Errorf("tools/list: %q is longer than 64 characters", n)
		}
	}
	if m := mcpMissing(tools, "echo", "read_graph"); len(m) != 2 {
		t.Errorf("tools/list has unprefixed names: %v", tools)
	}

	prompts := mcpNames(t, c.ok(mcpOp{"op": "listPrompts"}), "prompts")
	if m := mcpMissing(prompts, "everything__simple-prompt", "everything__args-prompt", "esse__simple-prompt", "ehttp__simple-prompt"); len(m) > 0 {
		t.Errorf("prompts/list lacks %v; got %v", m, prompts)
	}
	for _, n := range prompts {
		if !mcpHasPrefix(n, "everything__", "esse__", "ehttp__") {
			t.Errorf("prompts/list: %q has no server prefix", n)
		}
	}

	resources := mcpNames(t, c.ok(mcpOp{"op": "listResources"}), "resources")
	if m := mcpMissing(resources, mcpStaticDoc, "memory://knowledge-graph"); len(m) > 0 {
		t.Errorf("resources/list lacks %v; got %v", m, resources)
	}
	for _, u := range resources {
		if !strings.HasPrefix(u, "demo://resource/") && u != "memory://knowledge-graph" {
			t.Errorf("resources/list: URI %q was rewritten", u)
		}
	}
	templates := mcpNames(t, c.ok(mcpOp{"op": "listResourceTemplates"}), "resourceTemplates")
	if m := mcpMissing(templates, mcpDynamicText); len(m) > 0 {
		t.Errorf("resources/templates/list lacks %v; got %v", m, templates)
	}
}

func mcpHasPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// mcpCheckRouting: every call and read reaches the server its name or URI
// belongs to. The get-env tool tells the servers apart: the stdio one has
// mcpWhoVar, the remote ones their own PORT.
func mcpCheckRouting(t *testing.T, g *mcpFullGateway, c *mcpClient, tag string) {
	t.Helper()
	for _, prefix := range []string{"everything", "esse", "ehttp"} {
		msg := fmt.Sprintf("hello %s via %s", tag, prefix)
		res := c.ok(mcpOp{"op": "callTool", "name": prefix + "__echo", "arguments": map[string]any{"message": msg}})
		if got := mcpText(t, res); got != "Echo: "+msg {
			t.Errorf("%s__echo: got %q, want %q", prefix, got, "Echo: "+msg)
		}
	}
	env := func(prefix string) map[string]string {
		res := c.ok(mcpOp{"op": "callTool", "name": prefix + "__get-env"})
		var m map[string]string
		if err := json.Unmarshal([]byte(mcpText(t, res)), &m); err != nil {
			t.Fatalf("%s__get-env: %v\n%s", prefix, err, res)
		}
		return m
	}
	if e := env("everything"); e[mcpWhoVar] != "stdio-everything" {
		t.Errorf("everything__get-env did not reach the stdio server: %s=%q, PORT=%q", mcpWhoVar, e[mcpWhoVar], e["PORT"])
	}
	if e := env("esse"); e["PORT"] != g.ssePort || e[mcpWhoVar] != "" {
		t.Errorf("esse__get-env did not reach the sse server (port %s): PORT=%q %s=%q", g.ssePort, e["PORT"], mcpWhoVar, e[mcpWhoVar])
	}
	if e := env("ehttp"); e["PORT"] != g.httpPort || e[mcpWhoVar] != "" {
		t.Errorf("ehttp__get-env did not reach the streamableHttp server (port %s): PORT=%q %s=%q", g.httpPort, e["PORT"], mcpWhoVar, e[mcpWhoVar])
	}

	// Memory: what create_entities stores, read_graph returns.
	entity := "entity-" + tag
	c.ok(mcpOp{"op": "callTool", "name": "memory__create_entities", "arguments": map[string]any{
		"entities": []map[string]any{{"name": entity, "entityType": "e2e", "observations": []string{"seen by " + tag}}},
	}})
	graph := mcpText(t, c.ok(mcpOp{"op": "callTool", "name": "memory__read_graph"}))
	if !strings.Contains(graph, entity) || !strings.Contains(graph, "seen by "+tag) {
		t.Errorf("memory__read_graph does not hold the entity just created (%s):\n%s", entity, graph)
	}

	// Resources, by listed URI and by template, unrewritten.
	res := c.ok(mcpOp{"op": "readResource", "uri": mcpStaticDoc})
	var read struct {
		Contents []struct {
			URI  string `json:"uri"`
			Text string `json:"text"`
		} `json:"contents"`
	}
	if err := json.Unmarshal(res, &read); err != nil || len(read.Contents) != 1 || read.Contents[0].URI != mcpStaticDoc || read.Contents[0].Text == "" {
		t.Errorf("resources/read %s: got %s", mcpStaticDoc, res)
	}
	dyn := "demo://resource/dynamic/text/42"
	if got := mcpText(t, c.ok(mcpOp{"op": "readResource", "uri": dyn})); !strings.HasPrefix(got, "Resource 42:") {
		t.Errorf("resources/read %s (by template): got %q", dyn, got)
	}
	if ev := c.do(mcpOp{"op": "readResource", "uri": "demo://nobody/has/this"}); ev.OK {
		t.Errorf("resources/read of a URI no server offers succeeded: %s", ev.Result)
	}

	// Prompts, arguments passed through.
	for _, prefix := range []string{"everything", "esse", "ehttp"} {
		got := mcpText(t, c.ok(mcpOp{"op": "getPrompt", "name": prefix + "__simple-prompt"}))
		if got != "This is a simple prompt without arguments." {
			t.Errorf("%s__simple-prompt: got %q", prefix, got)
		}
	}
	city := "Ulaanbaatar-" + tag
	got := mcpText(t, c.ok(mcpOp{"op": "getPrompt", "name": "everything__args-prompt", "arguments": map[string]string{"city": city}}))
	if !strings.Contains(got, city) {
		t.Errorf("everything__args-prompt: got %q, want the city %q in it", got, city)
	}

	// Unknown names are errors, not hangs.
	if ev := c.do(mcpOp{"op": "callTool", "name": "nobody__echo", "arguments": map[string]any{"message": "x"}}); ev.OK && !mcpIsToolError(ev.Result) {
		t.Errorf("tools/call of an unknown tool succeeded: %s", ev.Result)
	}
	if ev := c.do(mcpOp{"op": "getPrompt", "name": "nobody__simple-prompt"}); ev.OK {
		t.Errorf("prompts/get of an unknown prompt succeeded: %s", ev.Result)
	}
}

// mcpCheckProgress: a call with a progress token gets the server's progress
// notifications, under its own token, before its result.
func mcpCheckProgress(t *testing.T, c *mcpClient) {
	t.Helper()
	id := c.start(mcpOp{"op": "callTool", "name": "everything__trigger-long-running-operation",
		"arguments": map[string]any{"duration": 1, "steps": 4}, "progress": true})
	res := c.wait(id)
	if !res.OK || !strings.Contains(mcpText(t, res.Result), "Long running operation completed") {
		t.Fatalf("long-running operation: %s", res)
	}
	var got []float64
	c.mu.Lock()
	for _, e := range c.events {
		switch {
		case e.Event == "progress" && e.ID == id:
			got = append(got, e.Progress)
			if e.Total != 4 {
				t.Errorf("progress total: got %v, want 4", e.Total)
			}
		case e.Event == "transportError" && strings.Contains(e.Message, "progress notification for an unknown token"):
			// The last notification and the result can come in one chunk
			// of the stream; the SDK then handles the result first (it
			// runs notification handlers a microtask later) and reports
			// the notification as unknown. It did arrive, with the
			// client's own token.
			var late struct {
				Params struct {
					Progress float64 `json:"progress"`
				} `json:"params"`
			}
			msg := e.Message[strings.Index(e.Message, "{"):]
			if err := json.Unmarshal([]byte(msg), &late); err == nil {
				got = append(got, late.Params.Progress)
			}
		}
	}
	c.mu.Unlock()
	if !slices.Equal(got, []float64{1, 2, 3, 4}) {
		t.Errorf("progress notifications: got %v, want [1 2 3 4]", got)
	}
}

// mcpCheckSubscriptions: resources/subscribe and unsubscribe reach the server
// that owns the URI, and its notifications/resources/updated reach only the
// session subscribed to that URI.
func mcpCheckSubscriptions(t *testing.T, g *mcpFullGateway) {
	a := mcpConnect(t, g.pe, mcpPlan{Transport: "streamable", URL: g.HTTP + "/mcp", Token: mcpAdminToken, Name: "sub-a"})
	b := mcpConnect(t, g.pe, mcpPlan{Transport: "sse", URL: g.HTTP + "/sse", Token: mcpAdminToken, Name: "sub-b"})
	uriA := "demo://resource/dynamic/text/101"
	uriB := "demo://resource/dynamic/text/202"
	a.ok(mcpOp{"op": "subscribe", "uri": uriA})
	b.ok(mcpOp{"op": "subscribe", "uri": uriB})
	// The stdio everything server acknowledges a subscription with a log
	// message: the request reached it.
	logged := func(c *mcpClient, text string) bool {
		_, ok := c.waitEvent(func(e mcpEvent) bool {
			return e.Event == "notification" && e.Method == "notifications/message" && strings.Contains(string(e.Params), text)
		}, mcpWaitTimeout)
		return ok
	}
	if !logged(a, "Received Subscribe Resource request for URI: "+uriA) {
		t.Errorf("the everything server did not log client A's subscription to %s", uriA)
	}

	// Start the server's simulated updates: it sends one at once for each
	// URI subscribed, then every 5 s.
	toggle := mcpText(t, a.ok(mcpOp{"op": "callTool", "name": "everything__toggle-subscriber-updates"}))
	if !strings.Contains(toggle, "Started") {
		t.Fatalf("toggle-subscriber-updates: got %q, want it started", toggle)
	}
	updated := func(c *mcpClient, uri string) bool {
		_, ok := c.waitEvent(func(e mcpEvent) bool {
			return e.Event == "notification" && e.Method == "notifications/resources/updated" && strings.Contains(string(e.Params), `"`+uri+`"`)
		}, mcpWaitTimeout)
		return ok
	}
	if !updated(a, uriA) {
		t.Errorf("client A got no notifications/resources/updated for %s", uriA)
	}
	if !updated(b, uriB) {
		t.Errorf("client B got no notifications/resources/updated for %s", uriB)
	}
	for _, n := range a.notifications("notifications/resources/updated") {
		if strings.Contains(string(n.Params), uriB) {
			t.Errorf("client A got an update for B's subscription: %s", n.Params)
		}
	}
	for _, n := range b.notifications("notifications/resources/updated") {
		if strings.Contains(string(n.Params), uriA) {
			t.Errorf("client B got an update for A's subscription: %s", n.Params)
		}
	}

	a.ok(mcpOp{"op": "unsubscribe", "uri": uriA})
	if !logged(a, "Received Unsubscribe Resource request: "+uriA) {
		t.Errorf("the everything server did not log client A's unsubscription from %s", uriA)
	}
	if ev := a.do(mcpOp{"op": "subscribe", "uri": "demo://nobody/has/this"}); ev.OK {
		t.Errorf("resources/subscribe to a URI no server owns succeeded")
	}
}

// mcpCheckCollidingIDs: two SDK clients number their requests from 0 alike;
// many concurrent echo calls of both, on one shared stdio upstream (and on
// the remote ones), each get their own answer.
func mcpCheckCollidingIDs(t *testing.T, g *mcpFullGateway) {
	const n = 30
	clients := []*mcpClient{
		mcpConnect(t, g.pe, mcpPlan{Transport: "streamable", URL: g.HTTP + "/mcp", Token: mcpAdminToken, Name: "ids-a"}),
		mcpConnect(t, g.pe, mcpPlan{Transport: "streamable", URL: g.HTTP + "/mcp", Token: mcpAdminToken, Name: "ids-b"}),
		mcpConnect(t, g.pe, mcpPlan{Transport: "sse", URL: g.HTTP + "/sse", Token: mcpAdminToken, Name: "ids-c"}),
	}
	servers := []string{"everything", "everything", "esse", "ehttp"}
	type call struct {
		c   *mcpClient
		id  string
		msg string
	}
	var calls []call
	for i := range n {
		for _, c := range clients {
			msg := fmt.Sprintf("%s-%d-%s", c.name, i, strings.Repeat("x", i))
			id := c.start(mcpOp{"op": "callTool", "name": servers[i%len(servers)] + "__echo", "arguments": map[string]any{"message": msg}})
			calls = append(calls, call{c, id, msg})
		}
	}
	for _, cl := range calls {
		ev := cl.c.wait(cl.id)
		if !ev.OK {
			t.Errorf("%s %s: %s", cl.c.name, cl.id, ev)
			continue
		}
		if got := mcpText(t, ev.Result); got != "Echo: "+cl.msg {
			t.Errorf("%s %s: got %q, want %q (another request's answer)", cl.c.name, cl.id, got, "Echo: "+cl.msg)
		}
	}
}
