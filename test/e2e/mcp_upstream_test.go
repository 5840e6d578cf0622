package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mcpPidsWith returns the pids of the processes whose command line has
// the argument marker.
func mcpPidsWith(t testing.TB, marker string) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		if slices.ContainsFunc(bytes.Split(b, []byte{0}), func(arg []byte) bool { return string(arg) == marker }) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestMCPUpstreamKilled kills a stdio server in the middle of a call: the
// caller gets a JSON-RPC error at once (not when the server's 10 minute
// timeout or the client's own 60 s one would end it), the edge starts the
// server again, and its tools are listed and callable again.
func TestMCPUpstreamKilled(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	b := make([]byte, 6)
	rand.Read(b)
	// server-everything ignores arguments after the transport; this one
	// finds its process.
	marker := "--atrax-e2e-marker=" + hex.EncodeToString(b)
	cfg := mcpConfig(t, "",
		mcpServer{"everything", mcpStdioDef(pe.EverythingStdio(), []string{marker}, map[string]any{"timeout": "10m"})},
	)
	g := startMCPGateway(t, pe, cfg, "everything")
	before := g.upstreamStatus(t, "everything")

	for _, transport := range []string{"streamable", "sse"} {
		t.Run(transport, func(t *testing.T) {
			c := mcpConnect(t, pe, g.plan(transport, mcpAdminToken, "header"))
			tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools")
			const long = "everything__trigger-long-running-operation"
			if !slices.Contains(tools, long) {
				t.Fatalf("tools/list lacks %s: %v", long, tools)
			}
			pids := mcpPidsWith(t, marker)
			if len(pids) != 1 {
				t.Fatalf("processes with %s: %v, want one", marker, pids)
			}

			// Ten minutes in 600 steps: a progress notification every
			// second shows that the call is under way.
			id := c.start(mcpOp{"op": "callTool", "name": long, "arguments": map[string]any{"duration": 600, "steps": 600},
				"progress": true, "timeoutMs": 90000})
			if _, ok := c.waitEvent(func(e mcpEvent) bool { return e.Event == "progress" && e.ID == id }, mcpWaitTimeout); !ok {
				t.Fatalf("no progress from the long-running call within %v", mcpWaitTimeout)
			}
			changedBefore := len(c.notifications("notifications/tools/list_changed"))
			killed := time.Now()
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				t.Fatalf("kill the everything server (pid %d): %v", pids[0], err)
			}
			res := c.wait(id)
			took := time.Since(killed)
			t.Logf("the call ended %v after the kill: %s", took.Round(time.Millisecond), res.Error.Message)
			if res.OK {
				t.Fatalf("the call to a killed server succeeded: %s", res.Result)
			}
			if res.errCode() != -32000 || !strings.Contains(res.Error.Message, "everything") {
				t.Errorf("the call to a killed server: got %s, want the gateway's connection-closed error (-32000) naming the server", res.Error.Message)
			}
			if took > 10*time.Second {
				t.Errorf("the call ended %v after the kill, want at once", took)
			}

			// The server comes back, as a new process, and is usable again
			// by the same session.
			if !poll(pollTimeout, func() bool {
				p := mcpPidsWith(t, marker)
				return len(p) == 1 && p[0] != pids[0]
			}) {
				t.Fatalf("the everything server was not started again within %v (processes: %v)", pollTimeout, mcpPidsWith(t, marker))
			}
			waitUpstreams(t, g.proc, "everything")
			if !poll(pollTimeout, func() bool {
				return slices.Contains(mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools"), long)
			}) {
				t.Fatalf("the restarted server's tools are not listed again within %v", pollTimeout)
			}
			// The client was told twice: the tools went, the tools came.
			changed := func() int { return len(c.notifications("notifications/tools/list_changed")) - changedBefore }
			if !poll(pollTimeout, func() bool { return changed() >= 2 }) {
				t.Errorf("notifications/tools/list_changed after the kill: got %d, want at least 2 (tools gone, tools back)", changed())
			}
			if got := mcpText(t, c.ok(mcpOp{"op": "callTool", "name": "everything__echo", "arguments": map[string]any{"message": "back"}})); got != "Echo: back" {
				t.Errorf("everything__echo after the restart: got %q", got)
			}
			c.close()
		})
	}
	after := g.upstreamStatus(t, "everything")
	if r0, r1 := mcpNum(before["restarts"]), mcpNum(after["restarts"]); r1 < r0+2 {
		t.Errorf("/status restarts: %v before, %v after two kills; want two more", before["restarts"], after["restarts"])
	}
}

// mcpNum returns a JSON number (or a protojson int64 string) as a float.
func mcpNum(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return 0
}
