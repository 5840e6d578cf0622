package connect_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atrax-mcp/atrax/internal/connect"
)

const testToken = "relay-test-token"

// testTimeout bounds each test's waits.
const testTimeout = 20 * time.Second

// remote is an MCP server of go-sdk behind an httptest server on
// 127.0.0.1 that can "restart": restart swaps in fresh handlers, which know
// none of the old sessions (they answer 404, as a restarted Atrax does).
type remote struct {
	t       *testing.T
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	server  atomic.Pointer[mcp.Server] // the current one
	newH    func() http.Handler
	release chan struct{} // ends the "block" tool

	mu       sync.Mutex
	gets     int // GET requests with a session (standalone streams)
	inits    int
	bad      []string // requests without the token
	versions []string // MCP-Protocol-Version of session requests
	methods  []string
}

func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "remote", Version: "1"}, nil)
	type echoArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echo text"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "roots", Description: "ask the client for its roots"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(uris, ",")}}}, nil, nil
	})
	return s
}

// startRemote serves MCP at /mcp (streamable HTTP), /stateless (the same,
// without sessions) and /sse (HTTP+SSE).
func startRemote(t *testing.T) *remote {
	t.Helper()
	r := &remote{t: t, release: make(chan struct{})}
	r.newH = func() http.Handler {
		srv := newServer()
		mcp.AddTool(srv, &mcp.Tool{Name: "block", Description: "answer once released"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			select {
			case <-r.release:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil, nil
		})
		r.server.Store(srv)
		mux := http.NewServeMux()
		mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
		mux.Handle("/sse", mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil))
		mux.Handle("/stateless", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: true}))
		return mux
	}
	r.restart()
	r.srv = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *remote) restart() {
	h := r.newH()
	r.handler.Store(&h)
}

func (r *remote) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "Bearer "+testToken {
		r.mu.Lock()
		r.bad = append(r.bad, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if req.Method == http.MethodGet && req.Header.Get("Mcp-Session-Id") != "" {
		r.mu.Lock()
		r.gets++
		r.versions = append(r.versions, req.Header.Get("Mcp-Protocol-Version"))
		r.mu.Unlock()
	}
	if req.Method == http.MethodPost {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &m)
		r.mu.Lock()
		if m.Method != "" {
			r.methods = append(r.methods, m.Method)
		}
		if m.Method == "initialize" {
			r.inits++
		}
		if req.Header.Get("Mcp-Session-Id") != "" {
			r.versions = append(r.versions, req.Header.Get("Mcp-Protocol-Version"))
		}
		r.mu.Unlock()
	}
	(*r.handler.Load()).ServeHTTP(w, req)
}

func (r *remote) initCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inits
}

// relay runs connect.Run between pipes and returns a transport for a
// client on the other ends; the relay's result arrives on the channel.
func relay(t *testing.T, opts connect.Options) (mcp.Transport, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	opts.Stdin, opts.Stdout = inR, outW
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := connect.Run(ctx, opts)
		outW.Close()
		done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Errorf("connect.Run did not return within %v of the end of stdin", testTimeout)
		}
		cancel()
	})
	return &mcp.IOTransport{Reader: outR, Writer: inW}, done
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// session connects a go-sdk client (2025-11-25, with a root) through t.
func session(t *testing.T, tr mcp.Transport) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "stdio-client", Version: "1"}, nil)
	c.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func echo(t *testing.T, cs *mcp.ClientSession, text string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		return "", err
	}
	return res.Content[0].(*mcp.TextContent).Text, nil
}

func TestConnectStreamable(t *testing.T) {
	r := startRemote(t)
	tr, _ := relay(t, connect.Options{URL: r.srv.URL + "/mcp", Token: testToken})
	cs := session(t, tr)

	if got := cs.InitializeResult().ServerInfo.Name; got != "remote" {
		t.Errorf("server name through the relay: got %q, want remote", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if diff := cmp.Diff([]string{"block", "echo", "roots"}, names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if got, err := echo(t, cs, "hi"); err != nil || got != "echo: hi" {
		t.Errorf("echo: got %q, %v; want %q", got, err, "echo: hi")
	}
	// A server-to-client request (roots/list) during a call reaches the
	// client, and its answer the server.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "roots"})
	if err != nil || res.IsError {
		t.Fatalf("roots: %v %v", err, res)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "file:///work" {
		t.Errorf("roots seen by the server: got %q, want file:///work", got)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Errorf("requests without the token: %v", r.bad)
	}
	if len(r.versions) == 0 {
		t.Fatal("no session requests seen")
	}
	for _, v := range r.versions {
		if v != "2025-11-25" {
			t.Errorf("a session request had MCP-Protocol-Version %q, want 2025-11-25", v)
		}
	}
	if r.inits != 1 {
		t.Errorf("initialize sent %d times, want 1", r.inits)
	}
}

// TestRelayReconnect restarts the remote (which then answers 404 to the old
// session): the next call succeeds on a new session, initialized with the
// client's params.
func TestConnectReconnect(t *testing.T) {
	for _, transport := range []string{connect.TransportHTTP, connect.TransportSSE} {
		t.Run(transport, func(t *testing.T) {
			r := startRemote(t)
			path := "/mcp"
			if transport == connect.TransportSSE {
				path = "/sse"
			}
			tr, _ := relay(t, connect.Options{URL: r.srv.URL + path, Token: testToken, Transport: transport})
			cs := session(t, tr)
			if got, err := echo(t, cs, "before"); err != nil || got != "echo: before" {
				t.Fatalf("echo before the restart: got %q, %v", got, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
				t.Logf("logging/setLevel: %v", err)
			}
			r.restart()
			if transport == connect.TransportSSE {
				// An SSE session lives on its GET stream: end it, as a
				// restart does.
				r.srv.CloseClientConnections()
			}
			got, err := echo(t, cs, "after")
			if err != nil {
				// The one call in flight when the session went may fail;
				// the next must not.
				t.Logf("first call after the restart: %v", err)
				got, err = echo(t, cs, "after")
			}
			if err != nil || got != "echo: after" {
				t.Fatalf("echo after the restart: got %q, %v", got, err)
			}
			if n := r.initCount(); n != 2 {
				t.Errorf("initialize sent %d times, want 2 (the client's, then the relay's)", n)
			}
			count := map[string]int{}
			r.mu.Lock()
			for _, m := range r.methods {
				count[m]++
			}
			r.mu.Unlock()
			for _, m := range []string{"notifications/initialized", "logging/setLevel"} {
				if count[m] != 2 {
					t.Errorf("%s sent %d times, want 2 (the client's, then the relay's replay)", m, count[m])
				}
			}
		})
	}
}

// TestRelayInFlight breaks the connection under a call in flight: that
// call fails with a JSON-RPC error, and the client goes on.
func TestConnectInFlight(t *testing.T) {
	r := startRemote(t)
	tr, _ := relay(t, connect.Options{URL: r.srv.URL + "/mcp", Token: testToken})
	cs := session(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "block"})
		errc <- err
	}()
	// Wait until the remote has the call, then cut every connection and
	// forget the session.
	deadline := time.Now().Add(testTimeout)
	for {
		r.mu.Lock()
		n := len(r.methods)
		last := ""
		if n > 0 {
			last = r.methods[n-1]
		}
		r.mu.Unlock()
		if last == "tools/call" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote never got the call")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	r.restart()
	r.srv.CloseClientConnections()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the call in flight succeeded; want an error")
		}
		t.Logf("call in flight: %v", err)
	case <-ctx.Done():
		t.Fatal("the call in flight was never answered")
	}
	close(r.release)
	if got, err := echo(t, cs, "again"); err != nil || got != "echo: again" {
		t.Fatalf("echo after the loss: got %q, %v", got, err)
	}
}

// TestRelayAutoFallsBackToSSE gives auto the legacy /sse URL: streamable
// HTTP is refused with a 4xx, and SSE works.
func TestConnectAutoFallsBackToSSE(t *testing.T) {
	r := startRemote(t)
	tr, _ := relay(t, connect.Options{URL: r.srv.URL + "/sse", Token: testToken})
	cs := session(t, tr)
	if got, err := echo(t, cs, "sse"); err != nil || got != "echo: sse" {
		t.Fatalf("echo over SSE: got %q, %v", got, err)
	}
}

// lines drives the relay with raw JSON lines.
type lines struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

func rawRelay(t *testing.T, opts connect.Options) *lines {
	t.Helper()
	tr, _ := relay(t, opts)
	io := tr.(*mcp.IOTransport)
	sc := bufio.NewScanner(io.Reader)
	sc.Buffer(nil, 1<<20)
	return &lines{t: t, in: io.Writer, out: sc}
}

func (l *lines) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.in, s+"\n"); err != nil {
		l.t.Fatalf("write to the relay: %v", err)
	}
}

func (l *lines) next() map[string]any {
	l.t.Helper()
	got := make(chan map[string]any, 1)
	go func() {
		if !l.out.Scan() {
			got <- nil
			return
		}
		var m map[string]any
		if err := json.Unmarshal(l.out.Bytes(), &m); err != nil {
			m = map[string]any{"unparsed": l.out.Text()}
		}
		got <- m
	}()
	select {
	case m := <-got:
		if m == nil {
			l.t.Fatal("the relay's stdout ended")
		}
		return m
	case <-time.After(testTimeout):
		l.t.Fatal("no message from the relay")
	}
	return nil
}

// TestRelayTransparent checks that params and results pass untouched,
// unknown fields included, with a remote that records what it gets.
func TestConnectTransparent(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "no stream", http.StatusMethodNotAllowed)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		if m["id"] == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if m["method"] == "initialize" {
			w.Header().Set("Mcp-Session-Id", "s1")
			json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": m["id"], "result": map[string]any{
				"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "serverInfo": map[string]any{"name": "raw", "version": "0"},
				"x-unknown": []any{1.0, "two"},
			}})
			return
		}
		if m["method"] == "refused/here" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": m["id"], "error": map[string]any{"code": -32601, "message": "nope", "data": map[string]any{"k": 1}}})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": m["id"], "result": map[string]any{"echo": m["params"], "_meta": map[string]any{"x": true}}})
	}))
	t.Cleanup(srv.Close)
	l := rawRelay(t, connect.Options{URL: srv.URL, Transport: connect.TransportHTTP})

	l.send(`{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"x-cap":{"deep":[1,2]}},"clientInfo":{"name":"c","version":"0"}}}`)
	init := l.next()
	if init["id"] != "init-1" {
		t.Errorf("initialize answered with id %v, want the client's init-1", init["id"])
	}
	want := map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "serverInfo": map[string]any{"name": "raw", "version": "0"}, "x-unknown": []any{1.0, "two"}}
	if diff := cmp.Diff(want, init["result"]); diff != "" {
		t.Errorf("initialize result (-want +got):\n%s", diff)
	}
	l.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	l.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":null}]},"_meta":{"progressToken":"p1"},"x-extra":"kept"}}`)
	res := l.next()
	wantRes := map[string]any{"echo": map[string]any{"name": "x", "arguments": map[string]any{"a": []any{1.0, map[string]any{"b": nil}}}, "_meta": map[string]any{"progressToken": "p1"}, "x-extra": "kept"}, "_meta": map[string]any{"x": true}}
	if res["id"] != 7.0 {
		t.Errorf("answer id %v, want 7", res["id"])
	}
	if diff := cmp.Diff(wantRes, res["result"]); diff != "" {
		t.Errorf("tools/call result (-want +got):\n%s", diff)
	}
	// A line that is not JSON-RPC gets a parse error; the relay goes on.
	l.send(`this is not json`)
	pe := l.next()
	if e, _ := pe["error"].(map[string]any); e["code"] != -32700.0 || pe["id"] != nil {
		t.Errorf("answer to a bad line: %v, want a -32700 error with id null", pe)
	}
	l.send(`{"jsonrpc":"2.0","id":8,"method":"ping"}`)
	if m := l.next(); m["id"] != 8.0 {
		t.Errorf("after a bad line: got %v, want the answer to id 8", m)
	}

	// A JSON-RPC error the remote answers a POST with (HTTP 400) reaches the
	// client as it was.
	l.send(`{"jsonrpc":"2.0","id":9,"method":"refused/here"}`)
	wantErr := map[string]any{"jsonrpc": "2.0", "id": 9.0, "error": map[string]any{"code": -32601.0, "message": "nope", "data": map[string]any{"k": 1.0}}}
	if diff := cmp.Diff(wantErr, l.next()); diff != "" {
		t.Errorf("answer to a refused call (-want +got):\n%s", diff)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 {
		t.Fatalf("the remote got %d messages, want 5 (initialize, initialized, tools/call, ping, refused/here): %v", len(got), got)
	}
	if got[0]["id"] == "init-1" {
		t.Errorf("the relay sent initialize with the client's id; want its own")
	}
	wantParams := map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{"x-cap": map[string]any{"deep": []any{1.0, 2.0}}}, "clientInfo": map[string]any{"name": "c", "version": "0"}}
	if diff := cmp.Diff(wantParams, got[0]["params"]); diff != "" {
		t.Errorf("initialize params at the remote (-want +got):\n%s", diff)
	}
}

// TestRelayUnauthorized: a refused token answers the client's initialize
// at once, saying what to do.
func TestConnectUnauthorized(t *testing.T) {
	r := startRemote(t)
	l := rawRelay(t, connect.Options{URL: r.srv.URL + "/mcp", Token: "wrong"})
	start := time.Now()
	l.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"0"}}}`)
	m := l.next()
	e, _ := m["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if e["code"] != float64(connect.CodeUnavailable) || !strings.Contains(msg, "refused the token (HTTP 401)") || !strings.Contains(msg, "ATRAX_TOKEN") {
		t.Errorf("answer: %v; want code %d and a message about the token", m, connect.CodeUnavailable)
	}
	if strings.Contains(msg, "wrong") {
		t.Errorf("the message shows the token: %q", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v; want at once", d)
	}
}

// TestRelayUnreachable: a remote that is not there answers the client's
// initialize once ReconnectWait has passed.
func TestConnectUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/mcp"
	srv.Close()
	l := rawRelay(t, connect.Options{URL: url, ReconnectWait: 300 * time.Millisecond})
	l.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"0"}}}`)
	m := l.next()
	e, _ := m["error"].(map[string]any)
	if msg, _ := e["message"].(string); !strings.Contains(msg, "cannot reach") || !strings.Contains(msg, "refused") {
		t.Errorf("answer: %v; want a message saying the remote cannot be reached", m)
	}
}

func TestConnectRunOptions(t *testing.T) {
	for _, tc := range []struct {
		opts connect.Options
		want string
	}{
		{connect.Options{URL: "127.0.0.1:4000/mcp"}, "want an absolute http:// or https:// URL"},
		{connect.Options{URL: "ftp://x/mcp"}, "want an absolute http:// or https:// URL"},
		{connect.Options{URL: "http://x/mcp", Transport: "grpc"}, "want auto, http or sse"},
	} {
		err := connect.Run(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v): got %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
}

// TestRunEndsWithStdin: the end of stdin ends Run with nil.
func TestConnectRunEndsWithStdin(t *testing.T) {
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- connect.Run(context.Background(), connect.Options{URL: "http://127.0.0.1:1/mcp", Stdin: strings.NewReader(""), Stdout: &out})
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("Run: %v, want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not end with stdin")
	}
	if out.Len() > 0 {
		t.Errorf("stdout: %q, want nothing", out.String())
	}
}

// TestConnectLatestClient connects go-sdk's client with its default, the
// latest revision: it probes with server/discover (stateless, no
// initialize) and falls back to initialize as the remote answers.
func TestConnectLatestClient(t *testing.T) {
	for _, path := range []string{"/mcp", "/stateless"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) { latestClient(t, path) })
	}
}

func latestClient(t *testing.T, path string) {
	r := startRemote(t)
	tr, _ := relay(t, connect.Options{URL: r.srv.URL + path, Token: testToken})
	c := mcp.NewClient(&mcp.Implementation{Name: "latest", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cs, err := c.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	t.Logf("negotiated %s", cs.InitializeResult().ProtocolVersion)
	if got, err := echo(t, cs, "latest"); err != nil || got != "echo: latest" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	r.restart()
	got, err := echo(t, cs, "again")
	if err != nil {
		got, err = echo(t, cs, "again")
	}
	if err != nil || got != "echo: again" {
		t.Fatalf("echo after a restart: %q, %v", got, err)
	}
}

// TestConnectStandaloneStream: what the remote sends outside any request
// (here tools/list_changed when a tool is added) reaches the client, over
// the GET stream the relay keeps open.
func TestConnectStandaloneStream(t *testing.T) {
	r := startRemote(t)
	tr, _ := relay(t, connect.Options{URL: r.srv.URL + "/mcp", Token: testToken})
	changed := make(chan struct{}, 1)
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	// Wait until the relay's GET stream is open.
	deadline := time.Now().Add(testTimeout)
	for {
		r.mu.Lock()
		open := r.gets > 0
		r.mu.Unlock()
		if open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay opened no GET stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mcp.AddTool(r.server.Load(), &mcp.Tool{Name: "late", Description: "added later"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no tools/list_changed reached the client")
	}
}
