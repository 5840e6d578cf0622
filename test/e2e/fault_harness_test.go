package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds what the fault_, security_ and soak_ tests share: the
// fixture servers of test/fixtures (built once per test binary), readings
// of a process from /proc, and MCP clients that speak the wire themselves
// (streamable HTTP, the legacy HTTP+SSE transport and the stateless
// revision) and report failures as errors instead of failing the test, so
// that a load generator can count them.

var (
	fixturesOnce sync.Once
	fixturesDir  string
	fixturesErr  error
)

// fixture returns the path of the fixture server test/fixtures/NAME,
// building every fixture the first time it is asked for.
func fixture(t testing.TB, name string) string {
	t.Helper()
	fixturesOnce.Do(func() {
		// Beside the atrax binary, in the directory TestMain removes.
		dir := filepath.Join(filepath.Dir(atraxBin), "fixtures")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fixturesErr = err
			return
		}
		fixturesDir = dir
		fixturesErr = build(repoRoot, []string{"go", "build", "-o", dir + string(os.PathSeparator), "./test/fixtures/..."})
	})
	if fixturesErr != nil {
		t.Fatalf("build the fixture servers: %v", fixturesErr)
	}
	bin := filepath.Join(fixturesDir, name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return bin
}

// newMarker returns a string unique to this run, to put in a fixture's
// command line (-marker) and find its processes by.
func newMarker(what string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "atrax-e2e-" + what + "-" + hex.EncodeToString(b)
}

// fixtureDef is the mcpServers entry of a fixture run over stdio with args
// and extra keys (timeout, env...).
func fixtureDef(t testing.TB, name string, args []string, extra map[string]any) string {
	t.Helper()
	def := map[string]any{"command": fixture(t, name), "args": args}
	for k, v := range extra {
		def[k] = v
	}
	b, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// faultConfig is a token-mode config with the admin token (adminToken)
// and the servers (a JSON object's members), plus extra top-level members.
func faultConfig(servers, extra string) string {
	if extra != "" {
		extra += ","
	}
	return `{
  "auth": {"type": "token", "options": {"token": "` + adminToken + `", "tokens": [
    {"name": "other", "token": "` + otherToken + `"}
  ]}},
  ` + extra + `
  "mcpServers": {` + servers + `}
}`
}

// lastPID returns the last pid written to a fixture's pid file, 0 if none.
func lastPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[len(f)-1])
	return pid
}

// fileLines returns the non-empty lines of a file (none if it is absent).
func fileLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// pidsWithArg returns the pids of live processes with an argument that
// contains s.
func pidsWithArg(t testing.TB, s string) []int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join(d, "stat")); err == nil && procState(st) == "Z" {
			continue // exited, not yet reaped
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		pids = append(pids, pid)
	}
	return pids
}

// procState returns the state letter of a /proc/PID/stat line.
func procState(stat []byte) string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return ""
	}
	return string(stat[i+2 : i+3])
}

// procStatFields returns the fields of /proc/PID/stat after the command
// name: index 0 is the state (field 3 of proc(5)).
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}

// cpuTime returns the user and system CPU time pid has used.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	f, err := procStatFields(pid)
	if err != nil || len(f) < 13 {
		t.Fatalf("read /proc/%d/stat: %v", pid, err)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// Linux reports clock ticks of USER_HZ, 100 a second.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procReading is what a process holds at one moment.
type procReading struct {
	RSS        int64 // bytes
	Threads    int
	FDs        int
	Children   int // live descendant processes
	Goroutines int // from /debug/pprof; -1 without it
}

func (r procReading) String() string {
	return fmt.Sprintf("rss %d MiB, threads %d, fds %d, children %d, goroutines %d", r.RSS>>20, r.Threads, r.FDs, r.Children, r.Goroutines)
}

// rss returns the resident set size of pid.
func rss(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/proc/%d/status has no VmRSS", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// read takes a reading of p.
func (p *proc) read(t testing.TB) procReading {
	t.Helper()
	pid := p.cmd.Process.Pid
	r := procReading{RSS: rss(t, pid), Goroutines: -1}
	if f, err := procStatFields(pid); err == nil && len(f) > 17 {
		r.Threads, _ = strconv.Atoi(f[17])
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		r.FDs = len(fds)
	}
	r.Children = len(descendants(pid))
	if n, err := p.goroutines(); err == nil {
		r.Goroutines = n
	}
	return r
}

// descendants returns the live processes below pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil || procState(b) == "Z" {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		c, _ := strconv.Atoi(filepath.Base(d))
		parent[c], _ = strconv.Atoi(f[1])
	}
	var out []int
	for c := range parent {
		for q := parent[c]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// debugEnv puts an edge in development mode (ATRAX_ENV=development): on
// its loopback listener it then serves /debug/*, whose goroutine profile
// the tests read. An edge without it has the tests count threads instead.
func debugEnv(env map[string]string) map[string]string {
	if env == nil {
		env = map[string]string{}
	}
	env["ATRAX_ENV"] = "development"
	return env
}

// goroutineProfile returns the edge's goroutine profile (debug=1) from
// /debug/pprof, read with the admin token (adminToken).
func (p *proc) goroutineProfile() (io.ReadCloser, error) {
	if p.HTTP == "" {
		return nil, errors.New("no edge")
	}
	req, err := http.NewRequest("GET", p.HTTP+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /debug/pprof/goroutine: HTTP %d", resp.StatusCode)
	}
	return resp.Body, nil
}

// goroutines returns how many goroutines the edge runs, from its
// /debug/pprof goroutine profile, leaving out those parked idle in a pool of reusable goroutines
// (internal/workpool), which end on their own after a while.
func (p *proc) goroutines() (int, error) {
	body, err := p.goroutineProfile()
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		return 0, fmt.Errorf("empty goroutine profile: %v", sc.Err())
	}
	// "goroutine profile: total 42", then groups: "N @ pc...", then
	// "#\tpc\tfunction+off\tfile:line" frames, innermost first.
	f := strings.Fields(sc.Text())
	if len(f) == 0 {
		return 0, fmt.Errorf("goroutine profile starts %q", sc.Text())
	}
	total, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		return 0, err
	}
	group, first := 0, false
	for sc.Scan() {
		line := sc.Text()
		if n, _, ok := strings.Cut(line, " @ "); ok {
			group, _ = strconv.Atoi(n)
			first = true
			continue
		}
		if first && strings.HasPrefix(line, "#") {
			first = false
			if strings.Contains(line, "/internal/workpool.(*Pool).run") {
				total -= group
			}
		}
	}
	return total, sc.Err()
}

// goroutineDump returns the edge's goroutines, grouped, for a failure
// message.
func (p *proc) goroutineDump() string {
	body, err := p.goroutineProfile()
	if err != nil {
		return err.Error()
	}
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, 256<<10))
	return string(b)
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message) }

// rpcReply is the answer to one request: a result or an error, and the
// notifications that came before it on the same stream.
type rpcReply struct {
	Status        int
	Result        json.RawMessage
	Error         *rpcError
	Notifications []json.RawMessage
}

// text returns the joined text contents of a tool result.
func (r *rpcReply) text() string {
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	_ = json.Unmarshal(r.Result, &res)
	var parts []string
	for _, c := range res.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

// names returns the "name" (or "uri") of each item of a list result.
func (r *rpcReply) names(key string) []string {
	var res map[string][]map[string]any
	_ = json.Unmarshal(r.Result, &res)
	var out []string
	for _, it := range res[key] {
		if n := str(it["name"]); n != "" && key != "resources" {
			out = append(out, n)
		} else {
			out = append(out, str(it["uri"])+str(it["uriTemplate"]))
		}
	}
	return out
}

// wireClient speaks MCP to an edge over HTTP itself. Its methods return
// errors rather than failing a test.
type wireClient struct {
	base  string
	token string
	// tokenInQuery sends the token as ?token= instead of a header.
	tokenInQuery bool
	hc           *http.Client
	nextID       atomic.Int64
}

func newWireClient(base, token string) *wireClient {
	return &wireClient{base: base, token: token, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// close drops the client's idle connections.
func (c *wireClient) close() { c.hc.CloseIdleConnections() }

func (c *wireClient) url(path string) string {
	if c.tokenInQuery && c.token != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return c.base + path + sep + "token=" + url.QueryEscape(c.token)
	}
	return c.base + path
}

func (c *wireClient) authorize(req *http.Request) {
	if c.token != "" && !c.tokenInQuery {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// post sends body to path and reads the answer to id from a JSON or SSE
// response. headers are name, value pairs.
func (c *wireClient) post(ctx context.Context, path string, id int64, body []byte, headers ...string) (*rpcReply, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.url(path), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	c.authorize(req)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	reply := &rpcReply{Status: resp.StatusCode}
	var frames [][]byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				frames = append(frames, []byte(d))
			}
		}
		if err := sc.Err(); err != nil {
			return reply, resp.Header, fmt.Errorf("read the SSE response: %w", err)
		}
	} else {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return reply, resp.Header, err
		}
		if len(bytes.TrimSpace(b)) > 0 {
			frames = append(frames, b)
		}
	}
	found := false
	for _, f := range frames {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  *rpcError       `json:"error"`
		}
		if err := json.Unmarshal(f, &m); err != nil {
			if resp.StatusCode >= 400 {
				break // an HTTP error with a body of its own (an OAuth error)
			}
			return reply, resp.Header, fmt.Errorf("frame is not JSON-RPC: %.200q", f)
		}
		if m.Method != "" {
			reply.Notifications = append(reply.Notifications, f)
			continue
		}
		if string(m.ID) == strconv.FormatInt(id, 10) || id == 0 || string(m.ID) == "null" || m.ID == nil {
			reply.Result, reply.Error, found = m.Result, m.Error, true
		}
	}
	if !found && resp.StatusCode/100 == 2 && resp.StatusCode != http.StatusAccepted {
		return reply, resp.Header, fmt.Errorf("HTTP %d without an answer to request %d", resp.StatusCode, id)
	}
	return reply, resp.Header, nil
}

func request(id int64, method string, params any) []byte {
	m := map[string]any{"jsonrpc": "2.0", "method": method}
	if id != 0 {
		m["id"] = id
	}
	if params != nil {
		m["params"] = params
	}
	b, _ := json.Marshal(m)
	return b
}

// streamableSession is a session of the streamable HTTP transport.
type streamableSession struct {
	c  *wireClient
	ID string
}

// open initializes a streamable HTTP session (2025-06-18).
// openEvery opens, on wc, a streamable HTTP session with its standalone
// GET stream and a legacy SSE session: a client of each 2025-era shape, to
// show that a fault reaches (or spares) every one of them. They are closed
// when the test ends.
func openEvery(t *testing.T, ctx context.Context, wc *wireClient) (*streamableSession, *sseStream, *legacySession) {
	t.Helper()
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	standalone, err := s.stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standalone.close)
	legacy, err := wc.openLegacy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(legacy.close)
	return s, standalone, legacy
}

func (c *wireClient) open(ctx context.Context) (*streamableSession, error) {
	id := c.nextID.Add(1)
	r, h, err := c.post(ctx, "/mcp", id, request(id, "initialize", map[string]any{
		"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "e2e-wire", "version": "1"},
	}))
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if r.Status != http.StatusOK || r.Error != nil {
		return nil, fmt.Errorf("initialize: HTTP %d, error %v", r.Status, r.Error)
	}
	s := &streamableSession{c: c, ID: h.Get("Mcp-Session-Id")}
	if s.ID == "" {
		return nil, errors.New("initialize: no Mcp-Session-Id")
	}
	if _, _, err := c.post(ctx, "/mcp", 0, request(0, "notifications/initialized", nil), "Mcp-Session-Id", s.ID); err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	return s, nil
}

// call sends one request on the session and waits for its answer.
func (s *streamableSession) call(ctx context.Context, method string, params any) (*rpcReply, error) {
	id := s.c.nextID.Add(1)
	r, _, err := s.c.post(ctx, "/mcp", id, request(id, method, params), "Mcp-Session-Id", s.ID, "MCP-Protocol-Version", "2025-06-18")
	if err != nil {
		return r, err
	}
	if r.Status != http.StatusOK {
		return r, fmt.Errorf("%s: HTTP %d", method, r.Status)
	}
	return r, nil
}

// notify sends a notification on the session.
func (s *streamableSession) notify(ctx context.Context, method string, params any) error {
	r, _, err := s.c.post(ctx, "/mcp", 0, request(0, method, params), "Mcp-Session-Id", s.ID, "MCP-Protocol-Version", "2025-06-18")
	if err == nil && r.Status != http.StatusAccepted {
		err = fmt.Errorf("%s: HTTP %d", method, r.Status)
	}
	return err
}

// close ends the session with DELETE.
func (s *streamableSession) close(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "DELETE", s.c.url("/mcp"), nil)
	if err != nil {
		return err
	}
	s.c.authorize(req)
	req.Header.Set("Mcp-Session-Id", s.ID)
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE: HTTP %d", resp.StatusCode)
	}
	return nil
}

// stateless sends one request of the stateless revision (2026-07-28).
func (c *wireClient) stateless(ctx context.Context, method string, params map[string]any) (*rpcReply, error) {
	if params == nil {
		params = map[string]any{}
	}
	meta := map[string]any{}
	if m, ok := params["_meta"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	meta["io.modelcontextprotocol/protocolVersion"] = stateless
	meta["io.modelcontextprotocol/clientCapabilities"] = map[string]any{}
	meta["io.modelcontextprotocol/clientInfo"] = map[string]any{"name": "e2e-wire", "version": "1"}
	params["_meta"] = meta
	id := c.nextID.Add(1)
	hdr := []string{"MCP-Protocol-Version", stateless, "Mcp-Method", method}
	if n, ok := params["name"].(string); ok {
		hdr = append(hdr, "Mcp-Name", n)
	}
	if u, ok := params["uri"].(string); ok {
		hdr = append(hdr, "Mcp-Name", u)
	}
	r, _, err := c.post(ctx, "/mcp", id, request(id, method, params), hdr...)
	return r, err
}

// sseStream reads an SSE stream of an edge on a goroutine: it passes
// responses to the calls waiting for them and keeps notifications.
type sseStream struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream has ended

	mu      sync.Mutex
	waiters map[string]chan *rpcReply
	notes   []json.RawMessage
	err     error
}

// getStream opens a GET stream at path and returns it once the response
// headers came.
func (c *wireClient) getStream(ctx context.Context, path string, headers ...string) (*sseStream, io.ReadCloser, error) {
	sctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(sctx, "GET", c.url(path), nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := c.hc.Do(req)
		got <- result{resp, err}
	}()
	var resp *http.Response
	select {
	case r := <-got:
		if r.err != nil {
			cancel()
			return nil, nil, r.err
		}
		resp = r.resp
	case <-ctx.Done():
		cancel()
		return nil, nil, ctx.Err()
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, nil, fmt.Errorf("GET %s: %w", path, &httpStatusError{resp.StatusCode})
	}
	return &sseStream{cancel: cancel, done: make(chan struct{}), waiters: map[string]chan *rpcReply{}}, resp.Body, nil
}

// read reads events until the stream ends; the first endpoint event goes
// to endpoint (nil: none expected).
func (s *sseStream) read(body io.ReadCloser, endpoint chan<- string) {
	defer close(s.done)
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 64<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			if event == "endpoint" && endpoint != nil {
				endpoint <- string(data)
				continue
			}
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Result json.RawMessage `json:"result"`
				Error  *rpcError       `json:"error"`
			}
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			s.mu.Lock()
			if m.Method != "" {
				if len(s.notes) < 10000 {
					s.notes = append(s.notes, data)
				}
			} else if w := s.waiters[string(m.ID)]; w != nil {
				delete(s.waiters, string(m.ID))
				w <- &rpcReply{Status: http.StatusOK, Result: m.Result, Error: m.Error}
			}
			s.mu.Unlock()
		case line == "":
			event = ""
		}
	}
	s.mu.Lock()
	s.err = sc.Err()
	if s.err == nil {
		s.err = io.EOF
	}
	s.mu.Unlock()
}

// notifications returns the notifications with method received so far.
func (s *sseStream) notifications(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, raw := range s.notes {
		var m struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(raw, &m) == nil && m.Method == method {
			n++
		}
	}
	return n
}

// ended reports whether the stream has ended.
func (s *sseStream) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// close drops the stream.
func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

// stream opens the session's standalone GET stream.
func (s *streamableSession) stream(ctx context.Context) (*sseStream, error) {
	st, body, err := s.c.getStream(ctx, "/mcp", "Mcp-Session-Id", s.ID, "MCP-Protocol-Version", "2025-06-18")
	if err != nil {
		return nil, err
	}
	go st.read(body, nil)
	return st, nil
}

// legacySession is a session of the 2024-11-05 HTTP+SSE transport: one
// GET /sse stream, read by a goroutine, and POSTs to the endpoint it
// names.
type legacySession struct {
	*sseStream
	c        *wireClient
	ID       string
	endpoint string
}

// openLegacy opens GET /sse and initializes the session.
func (c *wireClient) openLegacy(ctx context.Context) (*legacySession, error) {
	st, body, err := c.getStream(ctx, "/sse")
	if err != nil {
		return nil, err
	}
	s := &legacySession{sseStream: st, c: c}
	endpoint := make(chan string, 1)
	go s.read(body, endpoint)
	select {
	case ep := <-endpoint:
		s.endpoint = ep
	case <-s.done:
		return nil, fmt.Errorf("the stream ended before the endpoint event: %v", s.err)
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	}
	u, err := url.Parse(s.endpoint)
	if err != nil {
		s.close()
		return nil, err
	}
	s.ID = u.Query().Get("sessionId")
	if _, err := s.call(ctx, "initialize", map[string]any{
		"protocolVersion": "2024-11-05", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "e2e-wire-legacy", "version": "1"},
	}); err != nil {
		s.close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if err := s.send(ctx, request(0, "notifications/initialized", nil)); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// send posts one message to the session's endpoint.
func (s *legacySession) send(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", s.c.url("/"+strings.TrimPrefix(s.endpoint, "/")), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	s.c.authorize(req)
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return &httpStatusError{resp.StatusCode}
	}
	return nil
}

// httpStatusError is an HTTP answer other than the one expected.
type httpStatusError struct{ Status int }

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// call sends a request and waits for its answer on the stream.
func (s *legacySession) call(ctx context.Context, method string, params any) (*rpcReply, error) {
	wait, err := s.start(ctx, method, params)
	if err != nil {
		return nil, err
	}
	return wait()
}

// start sends a request and returns once the edge has accepted it (202);
// wait then waits for its answer on the stream.
func (s *legacySession) start(ctx context.Context, method string, params any) (wait func() (*rpcReply, error), err error) {
	id := s.c.nextID.Add(1)
	w := make(chan *rpcReply, 1)
	key := strconv.FormatInt(id, 10)
	s.mu.Lock()
	s.waiters[key] = w
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.waiters, key)
		s.mu.Unlock()
	}
	if err := s.send(ctx, request(id, method, params)); err != nil {
		forget()
		return nil, err
	}
	return func() (*rpcReply, error) {
		defer forget()
		select {
		case r := <-w:
			return r, nil
		case <-s.done:
			return nil, fmt.Errorf("the stream ended: %v", s.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil
}

// toolCall is the params of tools/call.
func toolCall(name string, args map[string]any) map[string]any {
	if args == nil {
		args = map[string]any{}
	}
	return map[string]any{"name": name, "arguments": args}
}

// upstreamOf returns the named upstream as /status reports it for edge p.
func upstreamOf(t testing.TB, p *proc, name string) map[string]any {
	t.Helper()
	return (&mcpGateway{proc: p}).upstreamStatus(t, name)
}

// ctxFor returns a context that ends after d or with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
