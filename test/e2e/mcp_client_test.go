package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/test/e2e/peers"
)

// This file drives MCP clients of the TypeScript SDK (clients/driver.mjs)
// and builds gateway configs of real npm MCP servers, for the mcp_*_test.go
// tests.

// Bounds of the MCP tests.
const (
	mcpDriverTimeout = 100 * time.Second // the life of one driver process
	mcpWaitTimeout   = 30 * time.Second  // one result or notification
)

// Tokens of the MCP gateway configs (token mode, written in the file).
const (
	mcpAdminToken  = "e2e-mcp-admin-5b1e90"    // everything (options.token)
	mcpOtherToken  = "e2e-mcp-other-c47a13"    // everything too, another principal
	mcpEchoToken   = "e2e-mcp-echo-only-8d02"  // tools: everything__echo
	mcpMemoryToken = "e2e-mcp-memory-only-21f" // servers: memory
)

// mcpAuth is the auth object of the MCP gateway configs.
const mcpAuth = `{"type": "token", "options": {
	"token": "` + mcpAdminToken + `",
	"tokens": [
		"` + mcpOtherToken + `",
		{"name": "echo-only", "token": "` + mcpEchoToken + `", "tools": ["everything__echo"]},
		{"name": "memory-only", "token": "` + mcpMemoryToken + `", "servers": ["memory"]}
	]
}}`

// mcpServer is one entry of mcpServers, in config order.
type mcpServer struct {
	Name string
	Def  map[string]any
}

// mcpStdioDef is the definition of a stdio server started by c, with extra
// keys (prefix, timeout, tools...) and extra arguments after c's.
func mcpStdioDef(c *peers.StdioCommand, extraArgs []string, extra map[string]any) map[string]any {
	def := map[string]any{"command": c.Command, "args": append(append([]string{}, c.Args...), extraArgs...)}
	if len(c.Env) > 0 {
		env := map[string]string{}
		for _, kv := range c.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		def["env"] = env
	}
	for k, v := range extra {
		def[k] = v
	}
	return def
}

// mcpConfig returns a gateway config with mcpAuth, namespacing (a JSON
// object, or "" for the defaults) and the servers in their order.
func mcpConfig(t testing.TB, namespacing string, servers ...mcpServer) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("{\n\"auth\": " + mcpAuth + ",\n")
	if namespacing != "" {
		b.WriteString("\"namespacing\": " + namespacing + ",\n")
	}
	b.WriteString("\"mcpServers\": {")
	for i, s := range servers {
		def, err := json.Marshal(s.Def)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n  %q: %s", s.Name, def)
	}
	b.WriteString("\n}\n}")
	return b.String()
}

// mcpGateway is a running atrax serve with MCP upstreams.
type mcpGateway struct {
	*proc
	pe *peers.Peers
}

// startMCPGateway starts atrax serve with cfg and waits until every named
// upstream runs. When the test ends (after the clients it connected have
// gone) the gateway is stopped with SIGTERM and must exit cleanly, having
// shut its stdio servers down: a SIGKILLed gateway would leave them behind.
func startMCPGateway(t testing.TB, pe *peers.Peers, cfg string, running ...string) *mcpGateway {
	t.Helper()
	p := startAtrax(t, "serve", cfg, nil)
	t.Cleanup(p.Stop)
	waitUpstreams(t, p, running...)
	return &mcpGateway{proc: p, pe: pe}
}

// plan returns a driver plan for transport "sse" or "streamable" with token
// in "header" or "query" ("" token: none).
func (g *mcpGateway) plan(transport, token, tokenIn string) mcpPlan {
	path := "/mcp"
	if transport == "sse" {
		path = "/sse"
	}
	return mcpPlan{Transport: transport, URL: g.HTTP + path, Token: token, TokenIn: tokenIn}
}

// mcpPlan is the connection part of a driver plan (see clients/driver.mjs).
type mcpPlan struct {
	Transport string            `json:"transport"`
	URL       string            `json:"url"`
	Token     string            `json:"token,omitempty"`
	TokenIn   string            `json:"tokenIn,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Name      string            `json:"name,omitempty"`
}

// mcpOp is one operation of a driver (see clients/driver.mjs).
type mcpOp map[string]any

// mcpError is a JSON-RPC (or transport) error as the SDK reported it.
type mcpError struct {
	Code    *int            `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Name    string          `json:"name"`
}

// mcpEvent is one line a driver printed.
type mcpEvent struct {
	Event string `json:"event"`
	// result
	ID         string          `json:"id"`
	Op         string          `json:"op"`
	OK         bool            `json:"ok"`
	Result     json.RawMessage `json:"result"`
	Error      *mcpError       `json:"error"`
	MS         int64           `json:"ms"`
	Unexpected string          `json:"unexpected"`
	// notification
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	// progress
	Progress float64 `json:"progress"`
	Total    float64 `json:"total"`
	// connected
	SessionID       string          `json:"sessionId"`
	ProtocolVersion string          `json:"protocolVersion"`
	ServerInfo      json.RawMessage `json:"serverInfo"`
	// fatal, transportError
	Message string `json:"message"`
	Code    *int   `json:"code"`
}

func (e mcpEvent) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// errCode returns the JSON-RPC error code of a failed result, 0 if none.
func (e mcpEvent) errCode() int {
	if e.Error == nil || e.Error.Code == nil {
		return 0
	}
	return *e.Error.Code
}

// mcpClient is one running driver: an SDK client connected to a gateway.
type mcpClient struct {
	t         testing.TB
	name      string
	stdin     io.WriteCloser
	connected mcpEvent
	done      chan struct{}
	stderr    strings.Builder // written by exec before done closes

	mu      sync.Mutex
	events  []mcpEvent
	changed chan struct{}
	nextID  int
	inMu    sync.Mutex
}

// mcpConnect starts a driver and waits until it has connected; the test
// fails if it cannot. The driver is stopped when the test ends.
func mcpConnect(t testing.TB, pe *peers.Peers, plan mcpPlan) *mcpClient {
	t.Helper()
	c, fatal := mcpTryConnect(t, pe, plan)
	if fatal != nil {
		t.Fatalf("%s client to %s: connect failed: %s\nstderr: %s", plan.Transport, plan.URL, fatal.Message, c.stderrText())
	}
	return c
}

// mcpTryConnect starts a driver and returns it with its fatal event when it
// could not connect.
func mcpTryConnect(t testing.TB, pe *peers.Peers, plan mcpPlan) (*mcpClient, *mcpEvent) {
	t.Helper()
	if plan.Name == "" {
		plan.Name = "e2e-" + plan.Transport
	}
	ctx, cancel := context.WithTimeout(context.Background(), mcpDriverTimeout)
	cmd := pe.Command(ctx, "clients/driver.mjs")
	c := &mcpClient{t: t, name: plan.Name, done: make(chan struct{}), changed: make(chan struct{})}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &mcpLockedWriter{mu: &c.mu, w: &c.stderr}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start the MCP driver: %v", err)
	}
	c.stdin = stdin
	go c.read(stdout)
	go func() {
		_ = cmd.Wait()
		cancel()
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
		if t.Failed() {
			t.Logf("driver %s events:\n%s\nstderr: %s", c.name, c.dump(), c.stderrText())
		}
	})
	line, _ := json.Marshal(plan)
	c.send(line)
	ev, ok := c.waitEvent(func(e mcpEvent) bool { return e.Event == "connected" || e.Event == "fatal" }, mcpWaitTimeout)
	if !ok {
		t.Fatalf("driver %s: neither connected nor failed within %v\nevents:\n%s\nstderr: %s", c.name, mcpWaitTimeout, c.dump(), c.stderrText())
	}
	if ev.Event == "fatal" {
		return c, &ev
	}
	c.connected = ev
	return c, nil
}

// mcpLockedWriter serializes writes to w with mu.
type mcpLockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *mcpLockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (c *mcpClient) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

func (c *mcpClient) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var ev mcpEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = mcpEvent{Event: "unparsed", Message: sc.Text()}
		}
		c.mu.Lock()
		c.events = append(c.events, ev)
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

func (c *mcpClient) send(line []byte) {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		c.t.Errorf("driver %s: write op: %v", c.name, err)
	}
}

// SessionID is the session id the client got (Mcp-Session-Id, or the
// legacy sessionId).
func (c *mcpClient) SessionID() string { return c.connected.SessionID }

// start sends op with a new id and returns the id.
func (c *mcpClient) start(op mcpOp) string {
	c.mu.Lock()
	c.nextID++
	id := c.name + "-" + strconv.Itoa(c.nextID)
	c.mu.Unlock()
	o := mcpOp{"id": id}
	for k, v := range op {
		o[k] = v
	}
	line, err := json.Marshal(o)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(line)
	return id
}

// wait returns the result of the op id, failing the test if it does not
// come within mcpWaitTimeout.
func (c *mcpClient) wait(id string) mcpEvent {
	c.t.Helper()
	ev, ok := c.waitEvent(func(e mcpEvent) bool { return e.Event == "result" && e.ID == id }, mcpWaitTimeout)
	if !ok {
		c.t.Fatalf("driver %s: no result for %s within %v\nevents:\n%s\nstderr: %s", c.name, id, mcpWaitTimeout, c.dump(), c.stderrText())
	}
	return ev
}

// do runs op and returns its result.
func (c *mcpClient) do(op mcpOp) mcpEvent {
	c.t.Helper()
	return c.wait(c.start(op))
}

// ok runs op and returns its result, failing the test unless it succeeded.
func (c *mcpClient) ok(op mcpOp) json.RawMessage {
	c.t.Helper()
	ev := c.do(op)
	if !ev.OK {
		c.t.Fatalf("driver %s: %v failed: %.2000s", c.name, op, ev)
	}
	return ev.Result
}

// waitEvent waits, at most timeout, for an event that match accepts.
func (c *mcpClient) waitEvent(match func(mcpEvent) bool, timeout time.Duration) (mcpEvent, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		c.mu.Lock()
		for ; seen < len(c.events); seen++ {
			if match(c.events[seen]) {
				ev := c.events[seen]
				c.mu.Unlock()
				return ev, true
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.done:
			// The reader may still be draining the pipe: one more look.
			c.mu.Lock()
			events := c.events[seen:]
			c.mu.Unlock()
			for _, e := range events {
				if match(e) {
					return e, true
				}
			}
			return mcpEvent{}, false
		case <-deadline.C:
			return mcpEvent{}, false
		}
	}
}

// notifications returns the notifications with method received so far.
func (c *mcpClient) notifications(method string) []mcpEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []mcpEvent
	for _, e := range c.events {
		if e.Event == "notification" && e.Method == method {
			out = append(out, e)
		}
	}
	return out
}

// close ends stdin and waits for the driver to exit.
func (c *mcpClient) close() {
	c.t.Helper()
	c.inMu.Lock()
	c.stdin.Close()
	c.inMu.Unlock()
	select {
	case <-c.done:
	case <-time.After(mcpWaitTimeout):
		c.t.Errorf("driver %s did not exit within %v of the end of its input", c.name, mcpWaitTimeout)
	}
}

func (c *mcpClient) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, e := range c.events {
		s := e.String()
		if len(s) > 600 {
			s = s[:600] + "…"
		}
		b.WriteString(s + "\n")
	}
	return b.String()
}

// mcpNames returns the "name" (or, for resources, "uri") of every item of a
// list result under key, sorted.
func mcpNames(t testing.TB, result json.RawMessage, key string) []string {
	t.Helper()
	var r map[string]json.RawMessage
	var items []map[string]any
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatalf("list result: %v\n%.2000s", err, result)
	}
	if err := json.Unmarshal(r[key], &items); err != nil {
		t.Fatalf("list result: %s: %v\n%.2000s", key, err, result)
	}
	field := "name"
	switch key {
	case "resources":
		field = "uri"
	case "resourceTemplates":
		field = "uriTemplate"
	}
	var out []string
	for _, it := range items {
		out = append(out, str(it[field]))
	}
	sort.Strings(out)
	return out
}

// mcpText returns the text of every text content of a tool result (or
// prompt result), joined with newlines.
func mcpText(t testing.TB, result json.RawMessage) string {
	t.Helper()
	var r struct {
		Content  []map[string]any `json:"content"`
		Contents []map[string]any `json:"contents"`
		Messages []struct {
			Content map[string]any `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatalf("result: %v\n%.2000s", err, result)
	}
	var parts []string
	for _, c := range r.Content {
		parts = append(parts, str(c["text"]))
	}
	for _, c := range r.Contents {
		parts = append(parts, str(c["text"]))
	}
	for _, m := range r.Messages {
		parts = append(parts, str(m.Content["text"]))
	}
	return strings.Join(parts, "\n")
}

// mcpIsToolError reports whether a tools/call result is a tool error
// (isError: true).
func mcpIsToolError(result json.RawMessage) bool {
	var r struct {
		IsError bool `json:"isError"`
	}
	_ = json.Unmarshal(result, &r)
	return r.IsError
}

// mcpMissing returns those of want that have lacks.
func mcpMissing(have []string, want ...string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// mcpMemoryFile writes a server-memory graph file holding one entity named
// entity and returns its path.
func mcpMemoryFile(t testing.TB, entity string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "memory.jsonl")
	line, _ := json.Marshal(map[string]any{"type": "entity", "name": entity, "entityType": "marker", "observations": []string{}})
	if err := os.WriteFile(path, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// upstreamStatus returns the upstream named name as this edge reports it
// in /status, or nil.
func (g *mcpGateway) upstreamStatus(t testing.TB, name string) map[string]any {
	t.Helper()
	r := httpDo(t, "GET", g.HTTP+"/status", "", "")
	if r.Status != 200 {
		return nil
	}
	edges, _ := r.JSON(t)["edges"].([]any)
	for _, e := range edges {
		em, _ := e.(map[string]any)
		if str(em["edgeId"]) != g.EdgeID {
			continue
		}
		ups, _ := em["upstreams"].([]any)
		for _, u := range ups {
			um, _ := u.(map[string]any)
			if str(um["name"]) == name {
				return um
			}
		}
	}
	return nil
}
