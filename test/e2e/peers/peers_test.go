package peers

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// install runs Install for a test, skipping under -short.
func install(t *testing.T) *Peers {
	t.Helper()
	if testing.Short() {
		t.Skip("installs npm packages and runs processes: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), InstallTimeout+time.Minute)
	defer cancel()
	start := time.Now()
	p, err := Install(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("Install took %s", d.Round(time.Millisecond))
	}
	return p
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestInstallConcurrentIdempotent(t *testing.T) {
	first := install(t)
	var wg sync.WaitGroup
	got := make([]*Peers, 4)
	errs := make([]error, 4)
	for i := range got {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got[i], errs[i] = Install(ctx)
		})
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if *got[i] != *first {
			t.Errorf("Install = %+v, first call gave %+v", *got[i], *first)
		}
	}
	if !filepath.IsAbs(first.Dir) || !fileExists(filepath.Join(first.Dir, "package-lock.json")) {
		t.Errorf("Dir %q is not test/e2e", first.Dir)
	}
	marker, err := os.ReadFile(filepath.Join(first.Dir, "node_modules", markerFile))
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.TrimSpace(string(marker)); len(h) != 64 {
		t.Errorf("marker %q is not a SHA-256", h)
	} else if _, err := hex.DecodeString(h); err != nil {
		t.Errorf("marker %q: %v", h, err)
	}
	for _, bin := range []string{"conformance", "mcp-server-everything", "mcp-server-memory", "mcp-inspector-cli"} {
		if !fileExists(first.Bin(bin)) {
			t.Errorf("no %s", first.Bin(bin))
		}
	}
}

func TestNodeIs22(t *testing.T) {
	p := install(t)
	ctx := testContext(t, time.Minute)
	out, err := p.Command(ctx, "node", "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("node --version: %v\n%s", err, out)
	}
	if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "v22.") {
		t.Errorf("node --version = %q, want v22.x", v)
	}

	// A JS file run by Command gets Node 22, and so does a `node` it spawns
	// through PATH.
	script := filepath.Join(t.TempDir(), "versions.cjs")
	js := `console.log(process.version); console.log(require("child_process").execSync("node --version").toString().trim());`
	if err := os.WriteFile(script, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = p.Command(ctx, script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	for _, v := range strings.Fields(string(out)) {
		if !strings.HasPrefix(v, "v22.") {
			t.Errorf("versions seen by a JS file and its child: %q, want v22.x", out)
		}
	}

	// A package bin runs under Node 22 too (its #! line would pick the
	// system node).
	out, err = p.Command(ctx, "conformance", "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0.2.0-alpha.12" {
		t.Errorf("conformance --version = %q, %v; want 0.2.0-alpha.12", out, err)
	}
}

// listenAddrs returns the local addresses of the sockets listening on port,
// from /proc/net/tcp and tcp6.
func listenAddrs(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // LISTEN
				continue
			}
			ip, p, ok := strings.Cut(fields[1], ":")
			if n, err := strconv.ParseUint(p, 16, 16); !ok || err != nil || int(n) != port {
				continue
			}
			addrs = append(addrs, ip)
		}
	}
	return addrs
}

// assertLoopbackOnly fails unless every socket listening on addr's port is
// bound to 127.0.0.1.
func assertLoopbackOnly(t *testing.T, addr string) {
	t.Helper()
	_, ps, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(ps)
	got := listenAddrs(t, port)
	if len(got) == 0 {
		t.Errorf("nothing listens on port %d", port)
	}
	for _, a := range got {
		if a != "0100007F" { // 127.0.0.1, little-endian hex
			t.Errorf("port %d is bound to %s (hex), want 127.0.0.1 only", port, a)
		}
	}
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"peers-test","version":"0"}}}`

func TestEverythingStreamableHTTP(t *testing.T) {
	p := install(t)
	ctx := testContext(t, 2*time.Minute)
	srv, err := p.StartEverything(ctx, "streamableHttp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	if !strings.HasSuffix(srv.URL, "/mcp") || !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %s", srv.URL)
	}
	assertLoopbackOnly(t, srv.Addr)

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(initialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"serverInfo"`) || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Errorf("initialize: %s %v\n%s\nserver output:\n%s", resp.Status, resp.Header, body, srv.Output())
	}
	if err := srv.Stop(); err != nil {
		t.Error(err)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", srv.Addr)
	}
}

func TestEverythingSSE(t *testing.T) {
	p := install(t)
	ctx := testContext(t, 2*time.Minute)
	srv, err := p.StartEverything(ctx, "sse")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	assertLoopbackOnly(t, srv.Addr)

	// The SSE transport's first event names the endpoint to POST messages to.
	reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var endpoint string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			endpoint = v
			break
		}
	}
	if !strings.HasPrefix(endpoint, "/message?sessionId=") {
		t.Errorf("first SSE data = %q, want /message?sessionId=...; status %s", endpoint, resp.Status)
	}
}

// stdioInitialize sends initialize to a stdio server and returns its first line.
func stdioInitialize(t *testing.T, c *StdioCommand) string {
	t.Helper()
	ctx := testContext(t, time.Minute)
	cmd := c.Cmd(ctx)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		in.Close()
		cmd.Cancel()
		cmd.Wait()
	}()
	fmt.Fprintln(in, initialize)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s %v: %v\nstderr:\n%s", c.Command, c.Args, err, stderr.String())
	}
	return line
}

func TestStdioServers(t *testing.T) {
	p := install(t)
	for name, c := range map[string]*StdioCommand{
		"everything": p.EverythingStdio(),
		"memory":     p.MemoryStdio(filepath.Join(t.TempDir(), "memory.jsonl")),
	} {
		t.Run(name, func(t *testing.T) {
			if c.Command != p.Node {
				t.Errorf("Command = %s, want %s", c.Command, p.Node)
			}
			if line := stdioInitialize(t, c); !strings.Contains(line, `"serverInfo"`) {
				t.Errorf("initialize answered %s", line)
			}
		})
	}
}

// TestConformanceGoSDKEverythingServer proves the harness: go-sdk's own
// fixture passes every scored check of both revisions, each on its wire,
// and the same suite fails the fixture on the wrong wire.
func TestConformanceGoSDKEverythingServer(t *testing.T) {
	p := install(t)
	ctx := testContext(t, 15*time.Minute)
	start := time.Now()
	bin, err := BuildEverythingServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BuildEverythingServer took %s", time.Since(start).Round(time.Millisecond))
	if line := stdioInitialize(t, EverythingServerStdio(bin)); !strings.Contains(line, `"serverInfo"`) {
		t.Errorf("stdio fixture answered initialize with %s", line)
	}

	for _, tc := range []struct {
		requirements string
		stateless    bool
		wantPass     bool
		unscored     string // a scenario the set runs without scoring
	}{
		{"2025-11-25", false, true, "server-sse-polling"},
		{"2026-07-28", true, true, "tasks-lifecycle"},
		{"2026-07-28", false, false, ""},
	} {
		name := fmt.Sprintf("%s/stateless=%v", tc.requirements, tc.stateless)
		t.Run(name, func(t *testing.T) {
			srv, err := StartEverythingServer(ctx, bin, tc.stateless)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Stop() })
			assertLoopbackOnly(t, srv.Addr)

			res, err := p.Conformance(ctx, srv.URL, tc.requirements, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.Summary())
			if res.ScoredPassed() != tc.wantPass {
				t.Fatalf("ScoredPassed = %v, want %v\n%s", !tc.wantPass, tc.wantPass, tail(res.Output, 3000))
			}
			if !tc.wantPass {
				if res.ExitCode == 0 {
					t.Errorf("the suite exited 0 but scored checks failed")
				}
				return
			}
			if res.ExitCode != 0 {
				t.Errorf("exit code %d", res.ExitCode)
			}
			var scored int
			for _, s := range res.Scenarios {
				if s.Scored {
					scored++
					if !s.Measured || len(s.Checks) == 0 {
						t.Errorf("scored scenario %s has no checks", s.Name)
					}
				}
			}
			if scored < 20 {
				t.Errorf("only %d scored scenarios", scored)
			}
			if s := res.Scenario(tc.unscored); s == nil || s.Scored || s.NotScoredReason == "" || !s.Measured {
				t.Errorf("Scenario(%s) = %+v, want an unscored measured scenario with a reason", tc.unscored, s)
			}
		})
	}
}

func TestInspector(t *testing.T) {
	p := install(t)
	ctx := testContext(t, 2*time.Minute)
	srv, err := p.StartEverything(ctx, "streamableHttp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	stdio := p.EverythingStdio()
	for name, args := range map[string][]string{
		"stdio":          append(append([]string{stdio.Command}, stdio.Args...), "--method", "tools/list"),
		"streamableHttp": {srv.URL, "--transport", "http", "--method", "tools/list"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := p.Inspector(ctx, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s\n%s", cmd.Args, err, out, stderr.String())
			}
			var res struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
			}
			if err := json.Unmarshal(out, &res); err != nil || len(res.Tools) == 0 {
				t.Errorf("tools/list: %v\n%s", err, out)
			}
		})
	}
}
