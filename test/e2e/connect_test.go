package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/syncbuf"
	"github.com/atrax-mcp/atrax/test/e2e/peers"
)

// connectToken is the static token of the connect tests' gateway.
const connectToken = "e2e-connect-token-61a0f3"

// Bounds of the connect tests.
const (
	connectClientTimeout = 3 * time.Minute  // the life of one client process
	connectOpTimeout     = 45 * time.Second // one operation
)

// stdioClient is clients/connect_client.mjs: the TypeScript SDK's stdio
// client, running `atrax ARGS` as its server.
type stdioClient struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	events chan map[string]any
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, set before done closes

	mu   sync.Mutex
	logs []string // the relay's stderr
	n    int
}

// startStdioClient starts a TypeScript SDK client that launches `atrax
// args...` over stdio, and waits for it to connect. With wantFatal it
// waits for the connection to fail instead, and returns the failure.
func startStdioClient(t *testing.T, pe *peers.Peers, name string, wantFatal bool, args ...string) (*stdioClient, map[string]any) {
	t.Helper()
	plan, _ := json.Marshal(map[string]any{"command": atraxBin, "args": args, "env": map[string]string{"PATH": "/usr/bin:/bin"}})
	ctx, cancel := context.WithTimeout(context.Background(), connectClientTimeout)
	cmd := pe.Command(ctx, "clients/connect_client.mjs", string(plan))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb syncbuf.Buffer
	cmd.Stderr = &errb
	c := &stdioClient{t: t, name: name, cmd: cmd, in: in, events: make(chan map[string]any, 256), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"event": "unparsed", "line": sc.Text()}
			}
			if m["event"] == "stderr" {
				c.mu.Lock()
				c.logs = append(c.logs, str(m["line"]))
				c.mu.Unlock()
				continue
			}
			c.events <- m
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		in.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
		}
		cancel()
		<-c.done
		if t.Failed() {
			t.Logf("%s: atrax connect stderr:\n%s\nnode stderr:\n%s", name, strings.Join(c.Logs(), "\n"), errb.String())
		}
	})
	first := c.next("connected or fatal")
	switch {
	case wantFatal && first["event"] == "fatal":
		return c, first
	case wantFatal:
		t.Fatalf("%s: connected; want the connection to fail: %v", name, first)
	case first["event"] != "connected":
		t.Fatalf("%s: did not connect: %v", name, first)
	}
	return c, first
}

// Logs returns the relay's stderr lines so far.
func (c *stdioClient) Logs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.logs...)
}

// next returns the next event that is not a notification.
func (c *stdioClient) next(what string) map[string]any {
	c.t.Helper()
	timer := time.NewTimer(connectOpTimeout)
	defer timer.Stop()
	for {
		select {
		case m := <-c.events:
			if m["event"] == "notification" {
				continue
			}
			return m
		case <-c.done:
			c.t.Fatalf("%s: the client exited (%v) while waiting for %s", c.name, c.err, what)
		case <-timer.C:
			c.t.Fatalf("%s: no %s within %v", c.name, what, connectOpTimeout)
		}
	}
}

// do runs one operation and returns its result event.
func (c *stdioClient) do(op map[string]any) map[string]any {
	c.t.Helper()
	c.n++
	id := fmt.Sprint(c.n)
	op["id"] = id
	b, _ := json.Marshal(op)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("%s: write op: %v", c.name, err)
	}
	for {
		m := c.next(fmt.Sprintf("the result of %v", op))
		if m["event"] == "result" && m["id"] == id {
			return m
		}
	}
}

// echo calls everything__echo and returns the text, or the error.
func (c *stdioClient) echo(msg string) (string, error) {
	c.t.Helper()
	r := c.do(map[string]any{"op": "callTool", "name": "everything__echo", "arguments": map[string]any{"message": msg}})
	if r["ok"] != true {
		return "", fmt.Errorf("%v", r["error"])
	}
	content, _ := r["result"].(map[string]any)["content"].([]any)
	if len(content) == 0 {
		return "", fmt.Errorf("no content: %v", r["result"])
	}
	return str(content[0].(map[string]any)["text"]), nil
}

// tools lists the tool names.
func (c *stdioClient) tools() []string {
	c.t.Helper()
	r := c.do(map[string]any{"op": "listTools"})
	if r["ok"] != true {
		c.t.Fatalf("%s: tools/list: %v", c.name, r["error"])
	}
	var names []string
	for _, tl := range r["result"].(map[string]any)["tools"].([]any) {
		names = append(names, str(tl.(map[string]any)["name"]))
	}
	return names
}

// close closes the client, which ends `atrax connect`, and waits for both.
func (c *stdioClient) close() {
	c.t.Helper()
	if r := c.do(map[string]any{"op": "close"}); r["ok"] != true {
		c.t.Errorf("%s: close: %v", c.name, r)
	}
	select {
	case <-c.done:
		if c.err != nil {
			c.t.Errorf("%s: the client exited with %v", c.name, c.err)
		}
	case <-time.After(connectOpTimeout):
		c.t.Errorf("%s: the client did not exit after close", c.name)
	}
}

// TestConnect runs `atrax connect URL --token T` under the TypeScript SDK's
// stdio client, against a running edge, over streamable HTTP (/mcp) and,
// through auto's fallback, legacy SSE (/sse); then restarts the gateway on
// the same port and shows that the same clients keep working.
func TestConnect(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	ev := pe.EverythingStdio()
	def := map[string]any{"command": ev.Command, "args": ev.Args}
	defJSON, _ := json.Marshal(def)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{
  "port": %d,
  "auth": {"type": "token", "options": {"token": %q}},
  "mcpServers": {"everything": %s},
}`, freePort(t), connectToken, defJSON)
	a := startAtraxIn(t, dir, "serve", cfg, nil)
	waitUpstreams(t, a, "everything")

	clients := map[string]*stdioClient{}
	for _, path := range []string{"/mcp", "/sse"} {
		c, hello := startStdioClient(t, pe, "client "+path, false, "connect", a.HTTP+path, "--token", connectToken)
		clients[path] = c
		if info, _ := hello["serverInfo"].(map[string]any); info["name"] == nil {
			t.Errorf("%s: no serverInfo through the relay: %v", path, hello)
		}
		if tools := c.tools(); !slices.Contains(tools, "everything__echo") {
			t.Fatalf("%s: tools through the relay: %v; want everything__echo", path, tools)
		}
		if got, err := c.echo("before " + path); err != nil || got != "Echo: before "+path {
			t.Fatalf("%s: everything__echo: %q, %v", path, got, err)
		}
	}
	if logs := strings.Join(clients["/sse"].Logs(), "\n"); !strings.Contains(logs, "transport=SSE") {
		t.Errorf("/sse: auto did not fall back to SSE; relay logs:\n%s", logs)
	}

	// Restart the gateway on the same port (and store).
	a.Stop()
	a2 := startAtraxIn(t, dir, "serve", cfg, nil)
	if a2.HTTP != a.HTTP {
		t.Fatalf("the restarted gateway serves %s, not %s", a2.HTTP, a.HTTP)
	}
	waitUpstreams(t, a2, "everything")

	for _, path := range []string{"/mcp", "/sse"} {
		c := clients[path]
		got, err := c.echo("after " + path)
		if err != nil {
			// One call in flight on the lost session may fail; the next
			// must not.
			t.Logf("%s: first call after the restart: %v", path, err)
			got, err = c.echo("after " + path)
		}
		if err != nil || got != "Echo: after "+path {
			t.Fatalf("%s: everything__echo after the restart: %q, %v", path, got, err)
		}
		if tools := c.tools(); !slices.Contains(tools, "everything__echo") {
			t.Errorf("%s: tools after the restart: %v", path, tools)
		}
		if logs := strings.Join(c.Logs(), "\n"); !strings.Contains(logs, "reconnecting") || !strings.Contains(logs, "connected to the remote") {
			t.Errorf("%s: the relay logged no reconnect:\n%s", path, logs)
		}
		t.Logf("%s: relay logs:\n%s", path, strings.Join(c.Logs(), "\n"))
		c.close()
	}
	for _, c := range clients {
		for _, l := range c.Logs() {
			if strings.Contains(l, connectToken) {
				t.Errorf("%s: the relay logged the token: %s", c.name, l)
			}
		}
	}
	a2.checkLogsFree(t, connectToken)
}

// TestConnectRefused: a wrong token fails the client's initialize at once,
// saying what to do, and the relay writes nothing but protocol to stdout.
func TestConnectRefused(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	a := startAtrax(t, "serve", fmt.Sprintf(`{"auth": {"type": "token", "options": {"token": %q}}}`, connectToken), nil)
	_, fatal := startStdioClient(t, pe, "wrong token", true, "connect", a.HTTP+"/mcp", "--token", "wrong-token")
	if msg := str(fatal["message"]); !strings.Contains(msg, "refused the token (HTTP 401)") || !strings.Contains(msg, "ATRAX_TOKEN") {
		t.Errorf("connect with a wrong token: %v; want a message about the token", fatal)
	}
}
