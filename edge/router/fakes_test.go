package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// wait bounds every wait in these tests.
const wait = 5 * time.Second

// call is one request a fake server received.
type call struct {
	Method string
	Params string
}

// fakeServer is a router.Server whose catalogue the test sets and whose
// calls it records. By default a call answers with what it received.
type fakeServer struct {
	name string

	mu      sync.Mutex
	cat     *router.Catalog
	calls   []call
	notes   []call
	handler func(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error)
	called  chan call
}

var _ router.Server = (*fakeServer)(nil)

func newServer(name string) *fakeServer {
	return &fakeServer{
		name:   name,
		called: make(chan call, 64),
		cat: &router.Catalog{Init: protocol.InitializeResult{
			ProtocolVersion: protocol.V20250618,
			Capabilities:    protocol.ServerCapabilities{Tools: &protocol.ListCapability{ListChanged: true}},
		}},
	}
}

func (f *fakeServer) Name() string { return f.name }

func (f *fakeServer) Catalog() *router.Catalog {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cat
}

// update changes the catalogue under the lock (nil: the server is down).
func (f *fakeServer) update(fn func(c *router.Catalog) *router.Catalog) *fakeServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cp *router.Catalog
	if f.cat != nil {
		c := *f.cat
		cp = &c
	}
	f.cat = fn(cp)
	return f
}

func (f *fakeServer) withTools(names ...string) *fakeServer {
	return f.update(func(c *router.Catalog) *router.Catalog {
		c.Tools = nil
		for _, n := range names {
			c.Tools = append(c.Tools, item("name", n))
		}
		return c
	})
}

func (f *fakeServer) withPrompts(names ...string) *fakeServer {
	return f.update(func(c *router.Catalog) *router.Catalog {
		c.Init.Capabilities.Prompts = &protocol.ListCapability{}
		c.Prompts = nil
		for _, n := range names {
			c.Prompts = append(c.Prompts, item("name", n))
		}
		return c
	})
}

func (f *fakeServer) withResources(uris ...string) *fakeServer {
	return f.update(func(c *router.Catalog) *router.Catalog {
		c.Init.Capabilities.Resources = &protocol.ResourcesCap{Subscribe: true}
		c.Resources = nil
		for _, u := range uris {
			c.Resources = append(c.Resources, item("uri", u))
		}
		return c
	})
}

func (f *fakeServer) withTemplates(tmpls ...string) *fakeServer {
	return f.update(func(c *router.Catalog) *router.Catalog {
		c.Init.Capabilities.Resources = &protocol.ResourcesCap{Subscribe: true}
		c.ResourceTemplates = nil
		for _, u := range tmpls {
			c.ResourceTemplates = append(c.ResourceTemplates, item("uriTemplate", u))
		}
		return c
	})
}

func (f *fakeServer) withLogging() *fakeServer {
	return f.update(func(c *router.Catalog) *router.Catalog {
		l := json.RawMessage(`{}`)
		c.Init.Capabilities.Logging = &l
		return c
	})
}

func (f *fakeServer) withInstructions(s string) *fakeServer {
	return f.update(func(c *router.Catalog) *router.Catalog {
		c.Init.Instructions = s
		return c
	})
}

// item is a list entry with one identifying field and a field the router
// does not know, which must reach clients untouched.
func item(key, value string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{key: value, "x-extra": map[string]int{"kept": 1}})
	return b
}

func (f *fakeServer) Call(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error) {
	c := call{method, string(params)}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	h := f.handler
	f.mu.Unlock()
	f.called <- c
	if h != nil {
		return h(ctx, method, params, o)
	}
	res, _ := json.Marshal(map[string]any{"server": f.name, "method": method, "params": params})
	return jsonrpc.ResultResponse(jsonrpc.ID{}, res), nil
}

func (f *fakeServer) Notify(ctx context.Context, method string, params json.RawMessage) error {
	f.mu.Lock()
	f.notes = append(f.notes, call{method, string(params)})
	f.mu.Unlock()
	return nil
}

func (f *fakeServer) setHandler(h func(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error)) {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
}

func (f *fakeServer) received() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeServer) notifications() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.notes...)
}

// sink records what a session is sent; client requests are answered by
// answer, when set.
type sink struct {
	mu     sync.Mutex
	msgs   []jsonrpc.Message
	answer func(req *jsonrpc.Request) *jsonrpc.Response
	s      *session.Session
}

func (k *sink) Send(ctx context.Context, msg jsonrpc.Message) error {
	k.mu.Lock()
	k.msgs = append(k.msgs, msg)
	answer, s := k.answer, k.s
	k.mu.Unlock()
	if r, ok := msg.(*jsonrpc.Request); ok && r.IsCall() && answer != nil {
		go s.Deliver(answer(r))
	}
	return nil
}

func (k *sink) sent() []jsonrpc.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]jsonrpc.Message(nil), k.msgs...)
}

// methods lists the methods of what a session was sent.
func (k *sink) methods() []string {
	var out []string
	for _, m := range k.sent() {
		if r, ok := m.(*jsonrpc.Request); ok {
			out = append(out, r.Method)
		}
	}
	return out
}

// client is a session with its sink.
type client struct {
	*session.Session
	sink *sink
}

// newClient returns a session of principal p (everything when nil) that
// declared caps (an initialize capabilities object).
func newClient(t testing.TB, id string, p *authn.Principal, caps string) *client {
	t.Helper()
	if p == nil {
		p = authn.Anonymous()
	}
	k := &sink{}
	s := session.New(id, session.TransportStreamable, p, k)
	k.s = s
	var ip protocol.InitializeParams
	if err := json.Unmarshal([]byte(`{"protocolVersion":"2025-06-18","capabilities":`+caps+`}`), &ip); err != nil {
		t.Fatal(err)
	}
	s.SetInitialize(protocol.V20250618, ip)
	t.Cleanup(s.Close)
	return &client{s, k}
}

// principal returns a principal allowed the servers and tools patterns.
func principal(servers, tools []string) *authn.Principal {
	return &authn.Principal{Subject: "static:t", Kind: authn.KindStatic, Servers: servers, Tools: tools}
}

// sessions is a set of sessions for router.Options.Sessions.
type sessions struct {
	mu  sync.Mutex
	all []*client
}

func (ss *sessions) add(c ...*client) {
	ss.mu.Lock()
	ss.all = append(ss.all, c...)
	ss.mu.Unlock()
}

func (ss *sessions) each(f func(*session.Session)) {
	ss.mu.Lock()
	all := append([]*client(nil), ss.all...)
	ss.mu.Unlock()
	for _, c := range all {
		f(c.Session)
	}
}

// newRouter returns a router over servers in order (each prefixed by its
// name), with ns and the session set ss (may be nil).
func newRouter(ns router.Namespacing, ss *sessions, servers ...*fakeServer) *router.Router {
	opts := router.Options{}
	if ss != nil {
		opts.Sessions = ss.each
	}
	r := router.New(opts)
	r.SetServers(entries(servers...), ns)
	return r
}

func entries(servers ...*fakeServer) []*router.Entry {
	var out []*router.Entry
	for _, s := range servers {
		out = append(out, &router.Entry{Server: s, Prefix: s.name})
	}
	return out
}

var always = router.Namespacing{Mode: router.ModeAlways, Separator: "__"}

var nextID atomic.Int64

// do sends one request through the router as c.
func do(t testing.TB, r *router.Router, c *client, method string, params any) *jsonrpc.Response {
	t.Helper()
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			t.Fatal(err)
		}
		raw = b
	}
	id := jsonrpc.IntID(nextID.Add(1))
	ctx, done := c.Begin(context.Background(), id)
	defer done()
	resp := r.Handle(ctx, c.Session, &jsonrpc.Request{ID: id, Method: method, Params: raw})
	if resp.ID != id {
		t.Errorf("%s answered with id %v, want %v", method, resp.ID.Raw(), id.Raw())
	}
	return resp
}

// result decodes a successful response into v.
func result(t testing.TB, resp *jsonrpc.Response, v any) {
	t.Helper()
	if e := jsonrpc.WireError(resp); e != nil {
		t.Fatalf("error %d %q, want a result", e.Code, e.Message)
	}
	if err := json.Unmarshal(resp.Result, v); err != nil {
		t.Fatalf("decode result %s: %v", resp.Result, err)
	}
}

// wireErr returns the response's error, failing the test when it has none.
func wireErr(t testing.TB, resp *jsonrpc.Response) *jsonrpc.Error {
	t.Helper()
	e := jsonrpc.WireError(resp)
	if e == nil {
		t.Fatalf("result %s, want an error", resp.Result)
	}
	return e
}

// names returns the visible names (or URIs) of a list, following every
// page.
func names(t testing.TB, r *router.Router, c *client, method string) []string {
	t.Helper()
	kf := map[string][2]string{
		protocol.MethodToolsList:             {"tools", "name"},
		protocol.MethodPromptsList:           {"prompts", "name"},
		protocol.MethodResourcesList:         {"resources", "uri"},
		protocol.MethodResourceTemplatesList: {"resourceTemplates", "uriTemplate"},
	}[method]
	key, field := kf[0], kf[1]
	out := []string{}
	cursor := ""
	for page := 0; page < 100; page++ {
		var params any
		if cursor != "" {
			params = map[string]string{"cursor": cursor}
		}
		var res map[string]json.RawMessage
		result(t, do(t, r, c, method, params), &res)
		var items []map[string]any
		if err := json.Unmarshal(res[key], &items); err != nil {
			t.Fatalf("%s: %s is not a list: %v", method, key, err)
		}
		for _, it := range items {
			out = append(out, fmt.Sprint(it[field]))
		}
		cursor = ""
		if nc, ok := res["nextCursor"]; ok {
			_ = json.Unmarshal(nc, &cursor)
		}
		if cursor == "" {
			return out
		}
	}
	t.Fatalf("%s: more than 100 pages", method)
	return nil
}

// echo is what a fake server answered by default.
type echo struct {
	Server string          `json:"server"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// routedTo sends a request and returns the server that answered and the
// params it received.
func routedTo(t testing.TB, r *router.Router, c *client, method string, params any) (string, map[string]any) {
	t.Helper()
	var e echo
	result(t, do(t, r, c, method, params), &e)
	var p map[string]any
	_ = json.Unmarshal(e.Params, &p)
	return e.Server, p
}

// eventually polls cond until it holds or the wait runs out.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func diffJSON(t testing.TB, want, got string) string {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got %s: %v", got, err)
	}
	return cmp.Diff(w, g)
}
