package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/session"
)

func TestListChanged(t *testing.T) {
	a := newServer("a").withTools("x")
	b := newServer("b").withPrompts("p")
	ss := &sessions{}
	r := newRouter(always, ss, a, b)
	c1 := newClient(t, "s1", nil, `{}`)
	c2 := newClient(t, "s2", principal([]string{"b"}, []string{"*"}), `{}`)
	ss.add(c1, c2)

	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"nothing changed", func() {}, nil},
		{"tools", func() { a.withTools("x", "y") }, []string{protocol.NotificationToolsChanged}},
		{"tool definition", func() {
			a.update(func(c *router.Catalog) *router.Catalog {
				c.Tools = []json.RawMessage{json.RawMessage(`{"name":"x","description":"new"}`), item("name", "y")}
				return c
			})
		}, []string{protocol.NotificationToolsChanged}},
		{"prompts", func() { b.withPrompts("p", "q") }, []string{protocol.NotificationPromptsChanged}},
		{"resources", func() { a.withResources("file:///r") }, []string{protocol.NotificationResourcesChanged}},
		{"templates", func() { b.withTemplates("t://{x}") }, []string{protocol.NotificationResourcesChanged}},
		{"server down", func() { a.update(func(*router.Catalog) *router.Catalog { return nil }) },
			[]string{protocol.NotificationToolsChanged, protocol.NotificationResourcesChanged}},
		{"server back", func() {
			a.update(func(*router.Catalog) *router.Catalog { return newServer("a").withTools("x").Catalog() })
		},
			[]string{protocol.NotificationToolsChanged}},
	}
	for _, st := range steps {
		before := map[*client]int{c1: len(c1.sink.sent()), c2: len(c2.sink.sent())}
		st.change()
		r.Refresh()
		for _, c := range []*client{c1, c2} {
			var got []string
			for _, m := range c.sink.sent()[before[c]:] {
				n := m.(*jsonrpc.Request)
				if n.IsCall() || n.Params != nil {
					t.Errorf("%s: list_changed %s is a call or has params %s", st.name, n.Method, n.Params)
				}
				got = append(got, n.Method)
			}
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Errorf("%s: session %s was sent (-want +got):\n%s", st.name, c.ID, diff)
			}
		}
	}
}

func TestResourceRouting(t *testing.T) {
	a := newServer("a").withResources("file:///a.txt")
	b := newServer("b").withTemplates("db://{table}/rows{?limit}", "mem://{+path}")
	c := newServer("c").withTools("x") // no resources
	r := newRouter(always, nil, a, b, c)
	cl := newClient(t, "s", nil, `{}`)
	tests := []struct {
		uri, want string
	}{
		{"file:///a.txt", "a"},
		{"db://users/rows", "b"},
		{"db://users/rows?limit=5", "b"},
		{"mem://deep/er/path", "b"},
	}
	for _, tt := range tests {
		srv, p := routedTo(t, r, cl, protocol.MethodResourcesRead, map[string]any{"uri": tt.uri, "x-unknown": 1})
		if srv != tt.want || p["uri"] != tt.uri || p["x-unknown"] != float64(1) {
			t.Errorf("read %s reached %q with %v, want %q with the params untouched", tt.uri, srv, p, tt.want)
		}
	}
	resp := do(t, r, cl, protocol.MethodResourcesRead, map[string]any{"uri": "file:///nope"})
	e := wireErr(t, resp)
	if e.Code != jsonrpc.CodeResourceNotFound {
		t.Errorf("unknown URI with two resource servers: code %d, want %d", e.Code, jsonrpc.CodeResourceNotFound)
	}
	if diff := diffJSON(t, `{"uri":"file:///nope"}`, string(e.Data)); diff != "" {
		t.Errorf("not-found data (-want +got):\n%s", diff)
	}
	if e := wireErr(t, do(t, r, cl, protocol.MethodResourcesRead, map[string]any{})); e.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("read without uri: code %d, want %d", e.Code, jsonrpc.CodeInvalidParams)
	}

	// With one server offering resources, it takes every URI nobody lists
	// (servers with dynamic resources list none).
	only := newRouter(always, nil, newServer("a").withResources(), newServer("c").withTools("x"))
	if srv, _ := routedTo(t, only, cl, protocol.MethodResourcesRead, map[string]any{"uri": "anything://x"}); srv != "a" {
		t.Errorf("read routed to %q, want the only resource server a", srv)
	}
}

func TestSubscribeRefcount(t *testing.T) {
	a := newServer("a").withResources("file:///r")
	ss := &sessions{}
	r := newRouter(always, ss, a)
	c1 := newClient(t, "s1", nil, `{}`)
	c2 := newClient(t, "s2", nil, `{}`)
	ss.add(c1, c2)
	sub := map[string]string{"uri": "file:///r"}
	upstream := func() []string {
		var out []string
		for _, c := range a.received() {
			out = append(out, c.Method)
		}
		return out
	}
	steps := []struct {
		c      *client
		method string
		want   []string // upstream calls so far
	}{
		{c1, protocol.MethodResourcesSubscribe, []string{"resources/subscribe"}},
		{c2, protocol.MethodResourcesSubscribe, []string{"resources/subscribe"}},
		{c1, protocol.MethodResourcesSubscribe, []string{"resources/subscribe"}},
		{c1, protocol.MethodResourcesUnsubscribe, []string{"resources/subscribe"}},
		{c1, protocol.MethodResourcesUnsubscribe, []string{"resources/subscribe"}},
		{c2, protocol.MethodResourcesUnsubscribe, []string{"resources/subscribe", "resources/unsubscribe"}},
		{c1, protocol.MethodResourcesSubscribe, []string{"resources/subscribe", "resources/unsubscribe", "resources/subscribe"}},
		{c2, protocol.MethodResourcesSubscribe, []string{"resources/subscribe", "resources/unsubscribe", "resources/subscribe"}},
	}
	for i, st := range steps {
		resp := do(t, r, st.c, st.method, sub)
		if e := jsonrpc.WireError(resp); e != nil {
			t.Fatalf("step %d: %s: %v", i, st.method, e)
		}
		if diff := cmp.Diff(st.want, upstream()); diff != "" {
			t.Errorf("step %d (%s %s): upstream calls (-want +got):\n%s", i, st.c.ID, st.method, diff)
		}
	}
	if !c1.Subscribed("file:///r") || !c2.Subscribed("file:///r") {
		t.Fatal("sessions are not subscribed")
	}

	// Updates reach the subscribed sessions only.
	c3 := newClient(t, "s3", nil, `{}`)
	ss.add(c3)
	r.ServerNotification("a", nil, &jsonrpc.Request{Method: protocol.NotificationResourceUpdated, Params: json.RawMessage(`{"uri":"file:///r"}`)})
	r.ServerNotification("a", nil, &jsonrpc.Request{Method: protocol.NotificationResourceUpdated, Params: json.RawMessage(`{"uri":"file:///other"}`)})
	for _, c := range []*client{c1, c2, c3} {
		want := []string{protocol.NotificationResourceUpdated}
		if c == c3 {
			want = nil
		}
		if diff := cmp.Diff(want, c.sink.methods()); diff != "" {
			t.Errorf("session %s was sent (-want +got):\n%s", c.ID, diff)
		}
	}

	// Closing sessions releases their holds; the last one unsubscribes
	// upstream.
	r.SessionClosed(c1.Session)
	r.SessionClosed(c2.Session)
	eventually(t, "the upstream unsubscribe after the last session closed", func() bool {
		return len(upstream()) == 4
	})
	if got := upstream(); got[3] != protocol.MethodResourcesUnsubscribe {
		t.Errorf("last upstream call = %s, want resources/unsubscribe", got[3])
	}
	// And the next subscriber subscribes upstream again.
	do(t, r, c3, protocol.MethodResourcesSubscribe, sub)
	if got := upstream(); len(got) != 5 || got[4] != protocol.MethodResourcesSubscribe {
		t.Errorf("upstream calls = %q, want a fresh subscribe last", got)
	}
}

func TestSubscribeRefused(t *testing.T) {
	a := newServer("a").withResources("file:///r")
	a.setHandler(func(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error) {
		return jsonrpc.ErrorResponse(jsonrpc.ID{}, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "no subscriptions today")), nil
	})
	r := newRouter(always, nil, a)
	c := newClient(t, "s", nil, `{}`)
	for i := range 2 {
		e := wireErr(t, do(t, r, c, protocol.MethodResourcesSubscribe, map[string]string{"uri": "file:///r"}))
		if e.Message != "no subscriptions today" {
			t.Errorf("attempt %d: error %q, want the server's", i, e.Message)
		}
		if c.Subscribed("file:///r") {
			t.Errorf("attempt %d: a refused subscription is recorded", i)
		}
	}
	if n := len(a.received()); n != 2 {
		t.Errorf("upstream got %d subscribes, want 2: a refused subscription must not count", n)
	}
}

func TestCompletion(t *testing.T) {
	a := newServer("a").withPrompts("greet")
	b := newServer("b").withTemplates("db://{table}").withResources("file:///f")
	r := newRouter(always, nil, a, b)
	c := newClient(t, "s", nil, `{}`)

	srv, p := routedTo(t, r, c, protocol.MethodCompletionComplete, map[string]any{
		"ref":      map[string]any{"type": "ref/prompt", "name": "a__greet", "x-ref": 1},
		"argument": map[string]string{"name": "who", "value": "wo"},
		"x-top":    true,
	})
	want := map[string]any{
		"ref":      map[string]any{"type": "ref/prompt", "name": "greet", "x-ref": float64(1)},
		"argument": map[string]any{"name": "who", "value": "wo"},
		"x-top":    true,
	}
	if srv != "a" {
		t.Errorf("prompt completion routed to %q, want a", srv)
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("params a received (-want +got):\n%s", diff)
	}
	for _, uri := range []string{"db://{table}", "db://users", "file:///f"} {
		srv, p := routedTo(t, r, c, protocol.MethodCompletionComplete, map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": uri}})
		ref, _ := p["ref"].(map[string]any)
		if srv != "b" || ref["uri"] != uri {
			t.Errorf("resource completion of %s routed to %q with %v, want b with the URI untouched", uri, srv, p)
		}
	}
	bad := []any{
		map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "a__nope"}},
		map[string]any{"ref": map[string]any{"type": "ref/other", "name": "x"}},
		map[string]any{"argument": map[string]any{}},
		[]int{1},
	}
	for _, params := range bad {
		if e := wireErr(t, do(t, r, c, protocol.MethodCompletionComplete, params)); e.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("completion %v: code %d, want %d", params, e.Code, jsonrpc.CodeInvalidParams)
		}
	}
}

func TestSetLevel(t *testing.T) {
	a := newServer("a").withLogging()
	b := newServer("b").withTools("x") // does not log
	f := newServer("f").withLogging()
	f.setHandler(func(context.Context, string, json.RawMessage, router.CallOptions) (*jsonrpc.Response, error) {
		return nil, errors.New("broken")
	})
	hidden := newServer("hidden").withLogging()
	r := newRouter(always, nil, a, b, f, hidden)
	c := newClient(t, "s", principal([]string{"a", "b", "f"}, []string{"*"}), `{}`)
	var res map[string]any
	result(t, do(t, r, c, protocol.MethodLoggingSetLevel, map[string]string{"level": "debug"}), &res)
	if len(res) != 0 {
		t.Errorf("setLevel result = %v, want {}", res)
	}
	for _, s := range []*fakeServer{a, b, f, hidden} {
		want := []call(nil)
		if s == a || s == f {
			want = []call{{protocol.MethodLoggingSetLevel, `{"level":"debug"}`}}
		}
		if diff := cmp.Diff(want, s.received()); diff != "" {
			t.Errorf("server %s received (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestUnknownMethod(t *testing.T) {
	a := newServer("a")
	b := newServer("b")
	c := newClient(t, "s", nil, `{}`)

	one := newRouter(always, nil, a)
	srv, p := routedTo(t, one, c, "vendor/thing", map[string]any{"k": "v"})
	if srv != "a" || p["k"] != "v" {
		t.Errorf("vendor/thing with one server reached %q with %v", srv, p)
	}

	two := newRouter(always, nil, a, b)
	e := wireErr(t, do(t, two, c, "vendor/thing", nil))
	if e.Code != jsonrpc.CodeMethodNotFound {
		t.Errorf("vendor/thing with two servers: code %d, want %d", e.Code, jsonrpc.CodeMethodNotFound)
	}
	if n := len(a.received()) + len(b.received()); n != 1 {
		t.Errorf("servers received %d calls, want only the first", n)
	}
	// A server that is down does not count.
	b.update(func(*router.Catalog) *router.Catalog { return nil })
	two.Refresh()
	if srv, _ := routedTo(t, two, c, "vendor/thing", nil); srv != "a" {
		t.Errorf("with b down, vendor/thing reached %q, want a", srv)
	}
}

func TestInitialize(t *testing.T) {
	a := newServer("a").withInstructions("  Use a for apples.\n")
	b := newServer("b").withInstructions("Use b for bananas.")
	c := newServer("c")
	r := router.New(router.Options{ServerInfo: json.RawMessage(`{"name":"atrax-test","version":"1.2.3"}`)})
	r.SetServers(entries(a, b, c), always)

	tests := []struct {
		name        string
		asked       string
		servers     []string
		wantVersion string
		wantIns     string
	}{
		{"supported version", protocol.V20250326, []string{"*"}, protocol.V20250326, "## a\nUse a for apples.\n\n## b\nUse b for bananas."},
		{"unknown version", "2099-01-01", []string{"*"}, protocol.Latest, "## a\nUse a for apples.\n\n## b\nUse b for bananas."},
		{"instructions of allowed servers only", protocol.V20250618, []string{"b", "c"}, protocol.V20250618, "## b\nUse b for bananas."},
		{"no instructions", protocol.V20250618, []string{"c"}, protocol.V20250618, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New("s", session.TransportStreamable, principal(tt.servers, []string{"*"}), &sink{})
			defer s.Close()
			params := `{"protocolVersion":"` + tt.asked + `","capabilities":{"sampling":{}},"clientInfo":{"name":"c"}}`
			res, jerr := r.Initialize(s, json.RawMessage(params))
			if jerr != nil {
				t.Fatal(jerr)
			}
			var got struct {
				ProtocolVersion string                     `json:"protocolVersion"`
				Capabilities    map[string]json.RawMessage `json:"capabilities"`
				ServerInfo      json.RawMessage            `json:"serverInfo"`
				Instructions    *string                    `json:"instructions"`
			}
			if err := json.Unmarshal(res, &got); err != nil {
				t.Fatal(err)
			}
			if got.ProtocolVersion != tt.wantVersion || s.Version() != tt.wantVersion {
				t.Errorf("protocolVersion = %q, session version %q; want %q", got.ProtocolVersion, s.Version(), tt.wantVersion)
			}
			if !s.Capabilities().Allows(protocol.MethodSamplingCreateMessage) {
				t.Error("the session did not record the client's capabilities")
			}
			wantCaps := map[string]string{
				"tools": `{"listChanged":true}`, "prompts": `{"listChanged":true}`,
				"resources": `{"listChanged":true,"subscribe":true}`, "logging": `{}`, "completions": `{}`,
			}
			gotCaps := map[string]string{}
			for k, v := range got.Capabilities {
				gotCaps[k] = string(v)
			}
			if diff := cmp.Diff(wantCaps, gotCaps); diff != "" {
				t.Errorf("capabilities (-want +got):\n%s", diff)
			}
			if string(got.ServerInfo) != `{"name":"atrax-test","version":"1.2.3"}` {
				t.Errorf("serverInfo = %s", got.ServerInfo)
			}
			ins := ""
			if got.Instructions != nil {
				ins = *got.Instructions
				if ins == "" {
					t.Error(`instructions present but empty; want it left out`)
				}
			}
			if ins != tt.wantIns {
				t.Errorf("instructions = %q, want %q", ins, tt.wantIns)
			}
		})
	}

	s := session.New("s", session.TransportStreamable, principal([]string{"*"}, []string{"*"}), &sink{})
	defer s.Close()
	if _, jerr := r.Initialize(s, json.RawMessage(`[1]`)); jerr == nil || jerr.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("Initialize with bad params = %v, want invalid params", jerr)
	}
	cl := &client{s, nil}
	if e := wireErr(t, do(t, r, cl, protocol.MethodInitialize, map[string]string{})); e.Code != jsonrpc.CodeInvalidRequest {
		t.Errorf("a second initialize: code %d, want %d", e.Code, jsonrpc.CodeInvalidRequest)
	}
	var pong map[string]any
	result(t, do(t, r, cl, protocol.MethodPing, nil), &pong)
	if len(pong) != 0 {
		t.Errorf("ping = %v, want {}", pong)
	}
}

// sampleHandler makes a server ask the client for sampling in the middle
// of a tool call, and answer the call with what the client said.
func sampleHandler(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error) {
	o.Notify(&jsonrpc.Request{Method: protocol.NotificationProgress, Params: json.RawMessage(`{"progressToken":"p","progress":1}`)})
	resp := o.Request(ctx, &jsonrpc.Request{ID: jsonrpc.StringID("srv-1"), Method: protocol.MethodSamplingCreateMessage, Params: json.RawMessage(`{"messages":[]}`)})
	out, _ := json.Marshal(map[string]any{"client": resp.Result, "error": jsonrpc.WireError(resp)})
	return jsonrpc.ResultResponse(jsonrpc.ID{}, out), nil
}

func TestServerRequestDuringCall(t *testing.T) {
	a := newServer("a").withTools("sample")
	a.setHandler(sampleHandler)
	ss := &sessions{}
	r := newRouter(always, ss, a)
	caller := newClient(t, "caller", nil, `{"sampling":{}}`)
	caller.sink.answer = func(req *jsonrpc.Request) *jsonrpc.Response {
		return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{"model":"m"}`))
	}
	other := newClient(t, "other", nil, `{"sampling":{}}`)
	other.sink.answer = caller.sink.answer
	ss.add(caller, other)

	var got struct {
		Client json.RawMessage `json:"client"`
		Error  *jsonrpc.Error  `json:"error"`
	}
	result(t, do(t, r, caller, protocol.MethodToolsCall, map[string]string{"name": "a__sample"}), &got)
	if string(got.Client) != `{"model":"m"}` || got.Error != nil {
		t.Errorf("the server got %s / %v, want the caller's answer", got.Client, got.Error)
	}
	if diff := cmp.Diff([]string{protocol.NotificationProgress, protocol.MethodSamplingCreateMessage}, caller.sink.methods()); diff != "" {
		t.Errorf("caller was sent (-want +got):\n%s", diff)
	}
	if m := other.sink.methods(); len(m) != 0 {
		t.Errorf("another session was sent %q", m)
	}

	// A caller that did not declare sampling is not asked; the server hears why.
	plain := newClient(t, "plain", nil, `{}`)
	ss.add(plain)
	result(t, do(t, r, plain, protocol.MethodToolsCall, map[string]string{"name": "a__sample"}), &got)
	if got.Error == nil || got.Error.Code != jsonrpc.CodeMethodNotFound || !strings.Contains(got.Error.Message, "capability") {
		t.Errorf("the server got %v, want an error about the missing capability", got.Error)
	}
	if diff := cmp.Diff([]string{protocol.NotificationProgress}, plain.sink.methods()); diff != "" {
		t.Errorf("a caller without sampling was sent (-want +got):\n%s", diff)
	}
}

func TestServerRequest(t *testing.T) {
	sampling := &jsonrpc.Request{ID: jsonrpc.IntID(1), Method: protocol.MethodSamplingCreateMessage, Params: json.RawMessage(`{}`)}
	answer := func(req *jsonrpc.Request) *jsonrpc.Response {
		return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{"ok":true}`))
	}
	mk := func(t *testing.T, id, caps string, servers ...string) *client {
		if len(servers) == 0 {
			servers = []string{"*"}
		}
		c := newClient(t, id, principal(servers, []string{"*"}), caps)
		c.sink.answer = answer
		return c
	}
	tests := []struct {
		name     string
		sessions func(t *testing.T) []*client
		owner    int // index of the owner session, -1 for none
		want     string
	}{
		{"no session", func(t *testing.T) []*client { return nil }, -1, "error"},
		{"no session declared sampling", func(t *testing.T) []*client { return []*client{mk(t, "s1", `{}`)} }, -1, "error"},
		{"one candidate", func(t *testing.T) []*client {
			return []*client{mk(t, "s1", `{}`), mk(t, "s2", `{"sampling":{}}`), mk(t, "s3", `{"sampling":{}}`, "other")}
		}, -1, "s2"},
		{"many candidates", func(t *testing.T) []*client {
			return []*client{mk(t, "s1", `{"sampling":{}}`), mk(t, "s2", `{"sampling":{}}`)}
		}, -1, "error"},
		{"owner among many", func(t *testing.T) []*client {
			return []*client{mk(t, "s1", `{"sampling":{}}`), mk(t, "s2", `{"sampling":{}}`)}
		}, 1, "s2"},
		{"owner without the capability", func(t *testing.T) []*client {
			return []*client{mk(t, "s1", `{"sampling":{}}`), mk(t, "s2", `{}`)}
		}, 1, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := &sessions{}
			cs := tt.sessions(t)
			ss.add(cs...)
			r := newRouter(always, ss, newServer("a"))
			var owner *session.Session
			if tt.owner >= 0 {
				owner = cs[tt.owner].Session
			}
			resp := r.ServerRequest(context.Background(), "a", owner, sampling)
			asked := ""
			for _, c := range cs {
				if m := c.sink.methods(); len(m) > 0 {
					if asked != "" {
						t.Errorf("both %s and %s were asked", asked, c.ID)
					}
					asked = c.ID
				}
			}
			if tt.want == "error" {
				if jsonrpc.WireError(resp) == nil {
					t.Errorf("answer %s, want an error", resp.Result)
				}
				if asked != "" {
					t.Errorf("session %s was asked, want none", asked)
				}
				return
			}
			if e := jsonrpc.WireError(resp); e != nil {
				t.Fatalf("error %v, want the client's answer", e)
			}
			if asked != tt.want {
				t.Errorf("asked %q, want %q", asked, tt.want)
			}
		})
	}
}

func TestServerNotification(t *testing.T) {
	ss := &sessions{}
	r := newRouter(always, ss, newServer("a"), newServer("b"))
	all := newClient(t, "all", nil, `{}`)
	onlyB := newClient(t, "onlyB", principal([]string{"b"}, []string{"*"}), `{}`)
	ss.add(all, onlyB)
	msg := &jsonrpc.Request{Method: protocol.NotificationMessage, Params: json.RawMessage(`{"level":"info","data":"hi"}`)}
	r.ServerNotification("a", nil, msg)
	if diff := cmp.Diff([]string{protocol.NotificationMessage}, all.sink.methods()); diff != "" {
		t.Errorf("session allowed a was sent (-want +got):\n%s", diff)
	}
	if m := onlyB.sink.methods(); len(m) != 0 {
		t.Errorf("session not allowed a was sent %q", m)
	}
	// A session-isolated connection's notifications go to its owner only.
	r.ServerNotification("b", onlyB.Session, msg)
	if got := len(all.sink.methods()); got != 1 {
		t.Errorf("an owned notification reached another session")
	}
	if diff := cmp.Diff([]string{protocol.NotificationMessage}, onlyB.sink.methods()); diff != "" {
		t.Errorf("owner was sent (-want +got):\n%s", diff)
	}
	sent := onlyB.sink.sent()[0].(*jsonrpc.Request)
	if string(sent.Params) != `{"level":"info","data":"hi"}` {
		t.Errorf("params = %s, want them untouched", sent.Params)
	}
}

func TestHandleNotification(t *testing.T) {
	a := newServer("a").withTools("block")
	b := newServer("b")
	hidden := newServer("hidden")
	started := make(chan struct{})
	a.setHandler(func(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	r := newRouter(always, nil, a, b, hidden)
	c := newClient(t, "s", principal([]string{"a", "b"}, []string{"*"}), `{"roots":{}}`)

	id := jsonrpc.StringID("call-1")
	ctx, done := c.Begin(context.Background(), id)
	defer done()
	respc := make(chan *jsonrpc.Response, 1)
	go func() {
		respc <- r.Handle(ctx, c.Session, &jsonrpc.Request{ID: id, Method: protocol.MethodToolsCall, Params: json.RawMessage(`{"name":"a__block"}`)})
	}()
	<-started
	r.HandleNotification(context.Background(), c.Session, &jsonrpc.Request{Method: protocol.NotificationCancelled, Params: json.RawMessage(`{"requestId":"call-1","reason":"user"}`)})
	resp := <-respc
	if e := wireErr(t, resp); e.Code != jsonrpc.CodeRequestCancelled {
		t.Errorf("cancelled call: code %d, want %d", e.Code, jsonrpc.CodeRequestCancelled)
	}

	r.HandleNotification(context.Background(), c.Session, &jsonrpc.Request{Method: protocol.NotificationRootsChanged})
	for _, s := range []*fakeServer{a, b, hidden} {
		want := []call{{protocol.NotificationRootsChanged, ""}}
		if s == hidden {
			want = nil
		}
		if diff := cmp.Diff(want, s.notifications()); diff != "" {
			t.Errorf("server %s was notified (-want +got):\n%s", s.name, diff)
		}
	}
	// Garbage does no harm.
	r.HandleNotification(context.Background(), c.Session, &jsonrpc.Request{Method: protocol.NotificationCancelled, Params: json.RawMessage(`[1]`)})
	r.HandleNotification(context.Background(), c.Session, &jsonrpc.Request{Method: protocol.NotificationInitialized})
	r.HandleNotification(context.Background(), c.Session, &jsonrpc.Request{Method: "notifications/vendor"})
}

func TestForwardErrors(t *testing.T) {
	a := newServer("a").withTools("x")
	r := newRouter(always, nil, a)
	c := newClient(t, "s", nil, `{}`)
	tests := []struct {
		name    string
		answer  func() (*jsonrpc.Response, error)
		want    *jsonrpc.Error
		wantSub string
	}{
		{"wire error passes as it is", func() (*jsonrpc.Response, error) {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeRequestTimeout, Message: "server a: timeout", Data: json.RawMessage(`{"t":1}`)}
		}, &jsonrpc.Error{Code: jsonrpc.CodeRequestTimeout, Message: "server a: timeout", Data: json.RawMessage(`{"t":1}`)}, ""},
		{"server's error response passes", func() (*jsonrpc.Response, error) {
			return jsonrpc.ErrorResponse(jsonrpc.IntID(99), jsonrpc.NewError(-32099, "custom")), nil
		}, &jsonrpc.Error{Code: -32099, Message: "custom"}, ""},
		{"other errors are internal", func() (*jsonrpc.Response, error) {
			return nil, errors.New("pipe broke")
		}, nil, "server a: pipe broke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.setHandler(func(context.Context, string, json.RawMessage, router.CallOptions) (*jsonrpc.Response, error) {
				return tt.answer()
			})
			e := wireErr(t, do(t, r, c, protocol.MethodToolsCall, map[string]string{"name": "a__x"}))
			if tt.want != nil {
				if diff := cmp.Diff(tt.want, e); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if e.Code != jsonrpc.CodeInternalError || !strings.Contains(e.Message, tt.wantSub) {
				t.Errorf("error %d %q, want internal error with %q", e.Code, e.Message, tt.wantSub)
			}
		})
	}
}

// A server that goes down between two refreshes (its Catalog is nil before
// the router hears of it) must not bring the router down.
func TestServerDownBeforeRefresh(t *testing.T) {
	a := newServer("a").withResources("file:///a").withLogging().withInstructions("a")
	b := newServer("b").withResources("file:///b").withLogging().withInstructions("b")
	r := newRouter(always, nil, a, b)
	c := newClient(t, "s", nil, `{}`)
	a.update(func(*router.Catalog) *router.Catalog { return nil })

	res, jerr := r.Initialize(c.Session, json.RawMessage(`{"protocolVersion":"2025-06-18"}`))
	if jerr != nil {
		t.Fatal(jerr)
	}
	var init struct{ Instructions string }
	_ = json.Unmarshal(res, &init)
	if init.Instructions != "## b\nb" {
		t.Errorf("instructions = %q, want b's only", init.Instructions)
	}
	// The owner search for an unlisted URI looks at every server.
	do(t, r, c, protocol.MethodResourcesRead, map[string]string{"uri": "zz://unlisted"})
	do(t, r, c, protocol.MethodLoggingSetLevel, map[string]string{"level": "info"})
	if got := b.received(); len(got) != 2 {
		t.Errorf("b received %v, want the read (b is the only live resource server) and setLevel", got)
	}
}
