package downstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// wait bounds every wait in these tests.
const wait = 5 * time.Second

const (
	tokAlice = "tok-alice-0123456789"
	tokBob   = "tok-bob-0123456789"
)

// dispatcher is a fake router. Its methods make a call behave as a test
// needs: answer at once, send something first, wait, ask the client.
type dispatcher struct {
	notes chan *jsonrpc.Request // client notifications received
	step  chan struct{}         // lets a "resume" call go on
	flood chan error            // how a "flood" call ended
	gone  chan string           // "block" calls whose context ended
}

func newDispatcher() *dispatcher {
	return &dispatcher{
		notes: make(chan *jsonrpc.Request, 16),
		step:  make(chan struct{}),
		flood: make(chan error, 1),
		gone:  make(chan string, 4),
	}
}

var _ downstream.Dispatcher = (*dispatcher)(nil)

func (d *dispatcher) Initialize(_ context.Context, s *session.Session, params json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	var p protocol.InitializeParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "bad initialize")
	}
	if p.ProtocolVersion == "refuse" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "refused")
	}
	v := protocol.Negotiate(p.ProtocolVersion)
	s.SetInitialize(v, p)
	res, _ := json.Marshal(map[string]any{"protocolVersion": v, "capabilities": map[string]any{}, "serverInfo": map[string]string{"name": "fake"}})
	return res, nil
}

type floodParams struct {
	Count int `json:"count"`
	Size  int `json:"size"`
}

func (d *dispatcher) Handle(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	ok := func(v string) *jsonrpc.Response { return jsonrpc.ResultResponse(req.ID, json.RawMessage(v)) }
	switch req.Method {
	case "echo":
		if req.Params == nil {
			return ok(`{}`)
		}
		return ok(string(req.Params))
	case "progress":
		_ = s.Notify(ctx, protocol.NotificationProgress, json.RawMessage(`{"progressToken":"t","progress":1}`))
		return ok(`{"done":true}`)
	case "notify-other":
		var p floodParams
		_ = json.Unmarshal(req.Params, &p)
		for i := range p.Count {
			data, _ := json.Marshal(map[string]any{"level": "info", "data": i})
			_ = s.Notify(context.Background(), protocol.NotificationMessage, data)
		}
		return ok(`{}`)
	case "resume":
		_ = s.Notify(ctx, protocol.NotificationProgress, json.RawMessage(`{"progressToken":"t","progress":1}`))
		select {
		case <-d.step:
		case <-ctx.Done():
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeRequestCancelled, "cancelled"))
		}
		_ = s.Notify(ctx, protocol.NotificationProgress, json.RawMessage(`{"progressToken":"t","progress":2}`))
		return ok(`{"resumed":true}`)
	case "flood":
		var p floodParams
		_ = json.Unmarshal(req.Params, &p)
		pad := strings.Repeat("x", p.Size)
		for i := range p.Count {
			data, _ := json.Marshal(map[string]any{"level": "info", "data": pad, "i": i})
			if err := s.Notify(ctx, protocol.NotificationMessage, data); err != nil {
				d.flood <- err
				return ok(`{}`)
			}
		}
		d.flood <- nil
		return ok(`{}`)
	case "ask":
		resp, err := s.Request(ctx, protocol.MethodRootsList, nil)
		if err != nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "%v", err))
		}
		out, _ := json.Marshal(map[string]json.RawMessage{"client": resp.Result})
		return ok(string(out))
	case "block":
		<-ctx.Done()
		d.gone <- s.ID
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeRequestCancelled, "cancelled"))
	}
	return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no %s", req.Method))
}

// Listen acknowledges, then waits for the client to go away.
func (d *dispatcher) Listen(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	_ = s.Notify(ctx, "notifications/subscriptions/acknowledged", json.RawMessage(`{"notifications":{}}`))
	<-ctx.Done()
	return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
}

// Tool knows one tool with a parameter header, "routed".
func (d *dispatcher) Tool(name string) (json.RawMessage, bool) {
	if name != "routed" {
		return nil, false
	}
	return json.RawMessage(`{"name":"routed","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}`), true
}

func (d *dispatcher) HandleNotification(ctx context.Context, s *session.Session, n *jsonrpc.Request) {
	if n.Method == protocol.NotificationCancelled {
		f, _ := jsonrpc.Fields(n.Params)
		if id, err := jsonrpc.ParseID(f["requestId"]); err == nil {
			s.Cancel(id)
		}
	}
	d.notes <- n
}

// harness is a Handler on an httptest server on 127.0.0.1, with a real
// verifier in token mode that knows alice and bob.
type harness struct {
	srv   *httptest.Server
	h     *downstream.Handler
	store *session.Store
	disp  *dispatcher
}

func newHarness(t *testing.T, tweak func(*downstream.Options)) *harness {
	t.Helper()
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{
		{Name: "alice", Token: tokAlice},
		{Name: "bob", Token: tokBob},
	}})
	hs := &harness{store: session.NewStore(), disp: newDispatcher()}
	opts := downstream.Options{
		Dispatcher: hs.disp,
		Verifier:   v,
		Sessions:   hs.store,
		RouteKey:   "edge-test",
	}
	if tweak != nil {
		tweak(&opts)
	}
	hs.h = downstream.New(opts)
	hs.store.OnClose = hs.h.SessionClosed
	mux := http.NewServeMux()
	hs.h.Register(mux)
	hs.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.store.Each(func(s *session.Session) { hs.store.Remove(s) })
		hs.srv.CloseClientConnections()
		hs.srv.Close()
	})
	return hs
}

// request builds a request to path with alice's token.
func (hs *harness) request(t *testing.T, method, path, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, hs.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokAlice)
	return req
}

func (hs *harness) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), wait)
	t.Cleanup(cancel)
	resp, err := hs.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// mcpPOST posts body to /mcp as a streamable client does, in session sid
// ("" for none).
func (hs *harness) mcpPOST(t *testing.T, sid, body string, tweak ...func(*http.Request)) *http.Response {
	t.Helper()
	req := hs.request(t, http.MethodPost, "/mcp", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	for _, f := range tweak {
		f(req)
	}
	return hs.do(t, req)
}

// initialize opens a streamable session at revision version and returns
// its id.
func (hs *harness) initialize(t *testing.T, version string) string {
	t.Helper()
	resp := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{"roots":{}},"clientInfo":{"name":"t","version":"1"}}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: %s", resp.Status)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	return sid
}

// status checks a response's status code.
func status(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("%s %s: status %s (%s), want %d", resp.Request.Method, resp.Request.URL.Path, resp.Status, body, want)
	}
}

// jsonError reads the JSON-RPC error object of an HTTP error body. (The
// body has no id: the request's could not be read, or does not matter.)
func jsonError(t *testing.T, resp *http.Response) *jsonrpc.Error {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		JSONRPC string         `json:"jsonrpc"`
		Error   *jsonrpc.Error `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.JSONRPC != "2.0" || env.Error == nil {
		t.Fatalf("error body %s is not a JSON-RPC error (%v)", body, err)
	}
	return env.Error
}

// jsonResponses reads a JSON body of one response or a batch.
func jsonResponses(t *testing.T, resp *http.Response) []*jsonrpc.Response {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	msgs, _, err := jsonrpc.Decode(body)
	if err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	var out []*jsonrpc.Response
	for _, m := range msgs {
		r, ok := m.(*jsonrpc.Response)
		if !ok {
			t.Fatalf("body %s holds a request", body)
		}
		out = append(out, r)
	}
	return out
}

// event is one server-sent event, or a comment.
type event struct {
	ID, Name, Data string
	Comment        string
}

// stream reads server-sent events in the background.
type stream struct {
	events chan event
	done   chan struct{} // closed at the end of the body
	resp   *http.Response
}

func readStream(t *testing.T, resp *http.Response) *stream {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}
	st := &stream{events: make(chan event, 1024), done: make(chan struct{}), resp: resp}
	go func() {
		defer close(st.done)
		br := bufio.NewReaderSize(resp.Body, 1<<20)
		var ev event
		has := false
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if has {
					st.events <- ev
				}
				ev, has = event{}, false
			case strings.HasPrefix(line, ":"):
				st.events <- event{Comment: strings.TrimSpace(line[1:])}
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					ev.ID = v
				case "event":
					ev.Name = v
				case "data":
					ev.Data += v
				}
				has = true
			}
		}
	}()
	return st
}

// next returns the next event that is not a comment.
func (st *stream) next(t *testing.T) event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-st.events:
			if ev.Comment != "" {
				continue
			}
			return ev
		case <-st.done:
			select {
			case ev := <-st.events:
				if ev.Comment == "" {
					return ev
				}
				continue
			default:
			}
			t.Fatal("the stream ended")
		case <-timeout:
			t.Fatal("no event on the stream")
		}
	}
}

// message decodes an event's data.
func message(t *testing.T, ev event) jsonrpc.Message {
	t.Helper()
	msgs, _, err := jsonrpc.Decode([]byte(ev.Data))
	if err != nil {
		t.Fatalf("event data %q: %v", ev.Data, err)
	}
	return msgs[0]
}

// ended waits for the end of the stream.
func (st *stream) ended(t *testing.T) {
	t.Helper()
	select {
	case <-st.done:
	case <-time.After(wait):
		t.Fatal("the stream did not end")
	}
}

// note waits for a client notification to reach the dispatcher.
func (d *dispatcher) note(t *testing.T) *jsonrpc.Request {
	t.Helper()
	select {
	case n := <-d.notes:
		return n
	case <-time.After(wait):
		t.Fatal("no notification reached the dispatcher")
		return nil
	}
}

// eventually polls cond until it holds or the wait runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
