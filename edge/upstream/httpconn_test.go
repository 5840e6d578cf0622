package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// seen is one request the fake streamable server received.
type seen struct {
	HTTP, RPC, Session, Version, APIKey string
}

// streamServer is a minimal streamable HTTP MCP server (2025-06-18):
// sessions, JSON and SSE answers, server-to-client requests on a call's
// stream, and a standalone GET stream.
type streamServer struct {
	t *testing.T

	mu       sync.Mutex
	seen     []seen
	sessions map[string]bool
	inits    int
	deletes  []string
	forget   bool // answer 404 to every session
	waiting  map[string]chan *jsonrpc.Response
	cancels  []string
	push     chan jsonrpc.Message // sent on the standalone stream
	gets     chan struct{}        // a standalone stream opened
}

func newStreamServer(t *testing.T) (*streamServer, *httptest.Server) {
	f := &streamServer{t: t, sessions: map[string]bool{}, waiting: map[string]chan *jsonrpc.Response{},
		push: make(chan jsonrpc.Message, 8), gets: make(chan struct{}, 8)}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return f, srv
}

func (f *streamServer) record(r *http.Request, rpc string) {
	f.mu.Lock()
	f.seen = append(f.seen, seen{r.Method, rpc, r.Header.Get("Mcp-Session-Id"), r.Header.Get("MCP-Protocol-Version"), r.Header.Get("X-Api-Key")})
	f.mu.Unlock()
}

func (f *streamServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
}

// known reports whether r names a live session.
func (f *streamServer) known(r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.forget && f.sessions[r.Header.Get("Mcp-Session-Id")]
}

func writeJSON(w http.ResponseWriter, m jsonrpc.Message) {
	data, _ := jsonrpc.Encode(m)
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

func writeEvent(w http.ResponseWriter, id string, m jsonrpc.Message) {
	data, _ := jsonrpc.Encode(m)
	fmt.Fprintf(w, "id: %s\nevent: message\ndata: %s\n\n", id, data)
	w.(http.Flusher).Flush()
}

func startSSE(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func (f *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodDelete:
		f.record(r, "")
		f.mu.Lock()
		f.deletes = append(f.deletes, r.Header.Get("Mcp-Session-Id"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodGet:
		f.record(r, "")
		if !f.known(r) {
			http.Error(w, "no session", http.StatusNotFound)
			return
		}
		startSSE(w)
		f.gets <- struct{}{}
		for i := 1; ; i++ {
			select {
			case m := <-f.push:
				writeEvent(w, fmt.Sprintf("g%d", i), m)
			case <-r.Context().Done():
				return
			}
		}
	}
	body, _ := io.ReadAll(r.Body)
	msgs, _, err := jsonrpc.Decode(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch m := msgs[0].(type) {
	case *jsonrpc.Response:
		f.record(r, "response")
		f.mu.Lock()
		ch := f.waiting[fmt.Sprint(m.ID.Raw())]
		f.mu.Unlock()
		if ch != nil {
			ch <- m
		}
		w.WriteHeader(http.StatusAccepted)
		return
	case *jsonrpc.Request:
		f.record(r, m.Method)
		if m.Method == protocol.MethodInitialize {
			f.mu.Lock()
			f.inits++
			sid := fmt.Sprintf("sess-%d", f.inits)
			f.sessions[sid] = true
			f.mu.Unlock()
			w.Header().Set("Mcp-Session-Id", sid)
			writeJSON(w, jsonrpc.ResultResponse(m.ID, json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"http-fake"}}`)))
			return
		}
		if !f.known(r) {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		if !m.IsCall() {
			if m.Method == protocol.NotificationCancelled {
				f.mu.Lock()
				f.cancels = append(f.cancels, string(m.Params))
				f.mu.Unlock()
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		f.call(w, r, m)
	}
}

func (f *streamServer) call(w http.ResponseWriter, r *http.Request, m *jsonrpc.Request) {
	switch m.Method {
	case protocol.MethodToolsList:
		writeJSON(w, jsonrpc.ResultResponse(m.ID, json.RawMessage(`{"tools":[{"name":"echo"},{"name":"sse"},{"name":"hang"},{"name":"sample"}]}`)))
		return
	case protocol.MethodToolsCall:
	default:
		writeJSON(w, jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no %s", m.Method)))
		return
	}
	name, _ := jsonrpc.StringField(m.Params, "name")
	switch name {
	case "echo":
		writeJSON(w, jsonrpc.ResultResponse(m.ID, m.Params))
	case "sse":
		tok := jsonrpc.Meta(m.Params)["progressToken"]
		startSSE(w)
		writeEvent(w, "c1", &jsonrpc.Request{Method: protocol.NotificationProgress, Params: json.RawMessage(`{"progressToken":` + string(tok) + `,"progress":1}`)})
		writeEvent(w, "c2", jsonrpc.ResultResponse(m.ID, json.RawMessage(`{"streamed":true}`)))
	case "hang":
		startSSE(w)
		<-r.Context().Done()
	case "sample":
		ch := make(chan *jsonrpc.Response, 1)
		key := fmt.Sprintf("srv-%v", m.ID.Raw())
		f.mu.Lock()
		f.waiting[key] = ch
		f.mu.Unlock()
		startSSE(w)
		writeEvent(w, "s1", &jsonrpc.Request{ID: jsonrpc.StringID(key), Method: protocol.MethodSamplingCreateMessage, Params: json.RawMessage(`{}`)})
		select {
		case resp := <-ch:
			out, _ := json.Marshal(map[string]json.RawMessage{"client": resp.Result})
			writeEvent(w, "s2", jsonrpc.ResultResponse(m.ID, out))
		case <-r.Context().Done():
		}
	default:
		writeJSON(w, jsonrpc.ErrorResponse(m.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "no tool %s", name)))
	}
}

// startHTTP runs an upstream on the fake server until the test ends.
func startHTTP(t *testing.T, srv *httptest.Server, opts Options) *Upstream {
	t.Helper()
	opts.Spec = Spec{Name: "remote", Transport: "http", URL: srv.URL + "/mcp", Headers: map[string]string{"X-Api-Key": "configured-key"}, Timeout: testWait}
	opts.HTTPClient = srv.Client()
	u := New(opts)
	u.Start(context.Background())
	t.Cleanup(u.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	return u
}

func callHTTP(t *testing.T, u *Upstream, tool string, meta map[string]any, o CallOptions) (*jsonrpc.Response, error) {
	t.Helper()
	p := map[string]any{"name": tool}
	if meta != nil {
		p["_meta"] = meta
	}
	params, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return u.Call(ctx, protocol.MethodToolsCall, params, o)
}

func TestHTTPConnHandshake(t *testing.T) {
	f, srv := newStreamServer(t)
	u := startHTTP(t, srv, Options{})
	if got := len(u.Lists().Tools); got != 4 {
		t.Errorf("%d tools listed, want 4", got)
	}
	if st := u.Status(); st.Transport != "http" || st.ProtocolVersion != protocol.V20250618 {
		t.Errorf("Status = %+v", st)
	}
	select {
	case <-f.gets:
	case <-time.After(testWait):
		t.Fatal("no standalone GET stream was opened")
	}
	// server/discover comes first (this server answers it with an error,
	// being session-era) with the stateless revision's header; initialize
	// then carries neither session nor version; everything after it carries
	// the session the server gave and the negotiated revision. (The GET
	// stream opens beside the rest, in no set order.)
	want := []seen{
		{"POST", "server/discover", "", "2026-07-28", "configured-key"},
		{"POST", "initialize", "", "", "configured-key"},
		{"GET", "", "sess-1", "2025-06-18", "configured-key"},
		{"POST", "notifications/initialized", "sess-1", "2025-06-18", "configured-key"},
		{"POST", "tools/list", "sess-1", "2025-06-18", "configured-key"},
	}
	got := f.requests()
	slices.SortStableFunc(got[min(2, len(got)):], func(a, b seen) int { return strings.Compare(a.HTTP+a.RPC, b.HTTP+b.RPC) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	u.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if diff := cmp.Diff([]string{"sess-1"}, f.deletes); diff != "" {
		t.Errorf("DELETE at Stop (-want +got):\n%s", diff)
	}
}

func TestHTTPConnAnswers(t *testing.T) {
	_, srv := newStreamServer(t)
	u := startHTTP(t, srv, Options{})

	resp, err := callHTTP(t, u, "echo", nil, CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Result), `"name":"echo"`) {
		t.Errorf("JSON answer = %s", resp.Result)
	}

	var mu sync.Mutex
	var progress []string
	resp, err = callHTTP(t, u, "sse", map[string]any{"progressToken": "client-tok"}, CallOptions{Tag: "A", Notify: func(n *jsonrpc.Request) {
		mu.Lock()
		progress = append(progress, string(n.Params))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Result) != `{"streamed":true}` {
		t.Errorf("SSE answer = %s", resp.Result)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{`{"progress":1,"progressToken":"client-tok"}`}, progress); diff != "" {
		t.Errorf("progress on the call's stream (-want +got):\n%s", diff)
	}
}

// A server-to-client request on a call's own stream belongs to that call,
// even while other callers have calls in flight.
func TestHTTPConnRelatedRequest(t *testing.T) {
	f, srv := newStreamServer(t)
	unrouted := make(chan string, 1)
	u := startHTTP(t, srv, Options{OnRequest: func(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response {
		unrouted <- req.Method
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "unrouted"))
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	params, _ := json.Marshal(map[string]string{"name": "hang"})
	go u.Call(ctx, protocol.MethodToolsCall, params, CallOptions{Tag: "A"})
	deadline := time.Now().Add(testWait)
	for {
		if slices.ContainsFunc(f.requests(), func(s seen) bool { return s.RPC == protocol.MethodToolsCall }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("caller A's call did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	asked := make(chan string, 1)
	resp, err := callHTTP(t, u, "sample", nil, CallOptions{Tag: "B", Request: func(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response {
		asked <- req.Method
		return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{"from":"B"}`))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Result) != `{"client":{"from":"B"}}` {
		t.Errorf("sample answer = %s", resp.Result)
	}
	select {
	case m := <-asked:
		if m != protocol.MethodSamplingCreateMessage {
			t.Errorf("B was asked %s", m)
		}
	default:
		t.Error("B was not asked")
	}
	select {
	case m := <-unrouted:
		t.Errorf("OnRequest got %s, want the related call to take it", m)
	default:
	}
	cancel()
}

func TestHTTPConnStandaloneStream(t *testing.T) {
	f, srv := newStreamServer(t)
	got := make(chan *jsonrpc.Request, 4)
	startHTTP(t, srv, Options{OnNotify: func(n *jsonrpc.Request) { got <- n }})
	select {
	case <-f.gets:
	case <-time.After(testWait):
		t.Fatal("no standalone GET stream")
	}
	f.push <- &jsonrpc.Request{Method: protocol.NotificationResourceUpdated, Params: json.RawMessage(`{"uri":"file:///x"}`)}
	select {
	case n := <-got:
		if n.Method != protocol.NotificationResourceUpdated || string(n.Params) != `{"uri":"file:///x"}` {
			t.Errorf("OnNotify got %s %s", n.Method, n.Params)
		}
	case <-time.After(testWait):
		t.Fatal("a message of the standalone stream did not arrive")
	}
}

// A server that forgot the session (404) fails the connection; the
// upstream starts a new one.
func TestHTTPConnSessionLost(t *testing.T) {
	f, srv := newStreamServer(t)
	u := startHTTP(t, srv, Options{})
	f.mu.Lock()
	f.forget = true
	f.mu.Unlock()
	_, err := callHTTP(t, u, "echo", nil, CallOptions{})
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("call in a lost session = %v, want ErrConnectionLost", err)
	}
	f.mu.Lock()
	f.forget = false
	f.mu.Unlock()
	deadline := time.Now().Add(testWait)
	for {
		f.mu.Lock()
		inits := f.inits
		f.mu.Unlock()
		if inits >= 2 && u.Status().State == StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a 404: %d initializes, state %s; want a new session", inits, u.Status().State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := callHTTP(t, u, "echo", nil, CallOptions{})
	if err != nil || jsonrpc.WireError(resp) != nil {
		t.Fatalf("call in the new session: %v %v", err, resp)
	}
	last := f.requests()[len(f.requests())-1]
	if last.Session != "sess-2" {
		t.Errorf("call went to session %q, want sess-2", last.Session)
	}
}

// An HTTP error without a JSON-RPC body still answers the call.
func TestHTTPConnHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"initialize"`) {
			msgs, _, _ := jsonrpc.Decode(body)
			writeJSON(w, jsonrpc.ResultResponse(msgs[0].(*jsonrpc.Request).ID, json.RawMessage(`{"protocolVersion":"2025-03-26","capabilities":{}}`)))
			return
		}
		if r.Method == http.MethodGet {
			http.Error(w, "no", http.StatusMethodNotAllowed)
			return
		}
		if strings.Contains(string(body), `"id"`) {
			http.Error(w, "upstream exploded", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	u := startHTTP(t, srv, Options{})
	resp, err := callHTTP(t, u, "x", nil, CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := jsonrpc.WireError(resp)
	if e == nil || !strings.Contains(e.Message, "502") || !strings.Contains(e.Message, "upstream exploded") {
		t.Errorf("answer = %+v, want an error naming HTTP 502", e)
	}
}
