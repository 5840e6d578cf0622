package router_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// staticServer is a router.Server with a fixed list of tools that answers
// every call with the name it received.
type staticServer struct {
	name  string
	tools []string
}

func (s staticServer) Name() string { return s.name }
func (s staticServer) Catalog() *router.Catalog {
	c := &router.Catalog{}
	for _, t := range s.tools {
		c.Tools = append(c.Tools, json.RawMessage(`{"name":"`+t+`"}`))
	}
	return c
}
func (s staticServer) Call(_ context.Context, _ string, params json.RawMessage, _ router.CallOptions) (*jsonrpc.Response, error) {
	name, _ := jsonrpc.StringField(params, "name")
	return jsonrpc.ResultResponse(jsonrpc.ID{}, json.RawMessage(fmt.Sprintf(`{"server":%q,"tool":%q}`, s.name, name))), nil
}
func (staticServer) Notify(context.Context, string, json.RawMessage) error { return nil }

type discard struct{}

func (discard) Send(context.Context, jsonrpc.Message) error { return nil }

// Two servers offering the same tool look like one server with two
// prefixed tools; a call reaches its server under the server's own name.
func Example() {
	r := router.New(router.Options{})
	r.SetServers([]*router.Entry{
		{Server: staticServer{"memory", []string{"search"}}, Prefix: "memory"},
		{Server: staticServer{"web", []string{"search"}}, Prefix: "web"},
	}, router.Namespacing{Mode: router.ModeConditional, Separator: "__"})

	s := session.New("s", session.TransportStreamable, authn.Anonymous(), discard{})
	defer s.Close()
	list := r.Handle(context.Background(), s, &jsonrpc.Request{ID: jsonrpc.IntID(1), Method: protocol.MethodToolsList})
	fmt.Println(string(list.Result))
	call := r.Handle(context.Background(), s, &jsonrpc.Request{ID: jsonrpc.IntID(2), Method: protocol.MethodToolsCall, Params: json.RawMessage(`{"name":"web__search"}`)})
	fmt.Println(string(call.Result))
	// Output:
	// {"tools":[{"name":"memory__search"},{"name":"web__search"}]}
	// {"server":"web","tool":"search"}
}
