package router_test

import (
	"testing"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// A URI that a server the principal may not use lists, or matches with a
// template, is not sent to the one server the principal may use instead
// (the fallback for URIs nobody lists): reads, subscriptions and template
// completions of it are refused as unknown.
func TestResourceOwnerOutOfScope(t *testing.T) {
	a := newServer("a").withResources("file:///a")
	b := newServer("b").withResources("file:///b").withTemplates("db://{table}")
	r := newRouter(always, nil, a, b)
	onlyA := newClient(t, "s", principal([]string{"a"}, []string{"*"}), `{}`)

	if srv, _ := routedTo(t, r, onlyA, protocol.MethodResourcesRead, map[string]any{"uri": "file:///a"}); srv != "a" {
		t.Errorf("read of a's resource reached %q, want a", srv)
	}
	// Nobody claims it: the only server the principal may use takes it.
	if srv, _ := routedTo(t, r, onlyA, protocol.MethodResourcesRead, map[string]any{"uri": "anything://x"}); srv != "a" {
		t.Errorf("read of an unclaimed URI reached %q, want a", srv)
	}
	for _, tc := range []struct {
		method string
		params map[string]any
	}{
		{protocol.MethodResourcesRead, map[string]any{"uri": "file:///b"}},
		{protocol.MethodResourcesRead, map[string]any{"uri": "db://users"}},
		{protocol.MethodResourcesSubscribe, map[string]any{"uri": "file:///b"}},
		{protocol.MethodCompletionComplete, map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "db://{table}"},
			"argument": map[string]any{"name": "table", "value": "u"}}},
	} {
		resp := do(t, r, onlyA, tc.method, tc.params)
		if resp.Error == nil {
			t.Errorf("%s %v by a principal of server a only: answered %s, want it refused", tc.method, tc.params, resp.Result)
			continue
		}
		if e := wireErr(t, resp); e.Code != jsonrpc.CodeResourceNotFound && e.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("%s %v: code %d, want resource not found or invalid params", tc.method, tc.params, e.Code)
		}
	}
	for _, c := range append(a.received(), b.received()...) {
		if c.Method != protocol.MethodResourcesRead {
			t.Errorf("a server was sent %s", c.Method)
		}
	}
}
