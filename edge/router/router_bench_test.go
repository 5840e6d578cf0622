package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/router"
)

// benchServer answers every call at once, without recording it.
type benchServer struct {
	name string
	cat  *router.Catalog
}

var okResult = json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`)

func (b *benchServer) Name() string                                          { return b.name }
func (b *benchServer) Catalog() *router.Catalog                              { return b.cat }
func (b *benchServer) Notify(context.Context, string, json.RawMessage) error { return nil }
func (b *benchServer) Call(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error) {
	return &jsonrpc.Response{Result: okResult}, nil
}

// benchRouter is a router over servers × tools.
func benchRouter(b *testing.B, servers, tools int) (*router.Router, *client) {
	var es []*router.Entry
	for i := range servers {
		s := &benchServer{name: fmt.Sprintf("server%02d", i), cat: &router.Catalog{}}
		for j := range tools {
			s.cat.Tools = append(s.cat.Tools, json.RawMessage(fmt.Sprintf(
				`{"name":"tool_%02d","description":"Tool %d of server %d.","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}}`, j, j, i)))
		}
		es = append(es, &router.Entry{Server: s, Prefix: s.name})
	}
	r := router.New(router.Options{})
	r.SetServers(es, always)
	return r, newClient(b, "bench", nil, `{}`)
}

// BenchmarkRouteCall measures tools/call from request to the server's
// answer: name lookup, scope check, name rewrite and forwarding to a
// server that answers at once.
func BenchmarkRouteCall(b *testing.B) {
	r, c := benchRouter(b, 50, 20)
	scoped := newClient(b, "scoped", principal([]string{"server2*"}, []string{"*__tool_1*"}), `{}`)
	params := json.RawMessage(`{"name":"server25__tool_10","arguments":{"q":"hello"}}`)
	for _, bc := range []struct {
		name string
		c    *client
	}{{"all", c}, {"scoped", scoped}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				resp := r.Handle(context.Background(), bc.c.Session, &jsonrpc.Request{ID: jsonrpc.IntID(int64(i)), Method: protocol.MethodToolsCall, Params: params})
				if resp.Error != nil {
					b.Fatal(resp.Error)
				}
			}
		})
	}
}

// BenchmarkList measures a tools/list page over 50 servers of 20 tools
// each (1000 tools; the default page holds 500), filtered by a principal.
func BenchmarkList(b *testing.B) {
	r, c := benchRouter(b, 50, 20)
	scoped := newClient(b, "scoped", principal([]string{"server1*", "server2*"}, []string{"*__tool_0*", "*__tool_1*"}), `{}`)
	for _, bc := range []struct {
		name string
		c    *client
	}{{"all", c}, {"scoped", scoped}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				resp := r.Handle(context.Background(), bc.c.Session, &jsonrpc.Request{ID: jsonrpc.IntID(int64(i)), Method: protocol.MethodToolsList})
				if resp.Error != nil {
					b.Fatal(resp.Error)
				}
			}
		})
	}
}

// BenchmarkRefresh measures a table rebuild over 50 × 20 tools, which
// every list_changed and server state change costs.
func BenchmarkRefresh(b *testing.B) {
	r, _ := benchRouter(b, 50, 20)
	b.ReportAllocs()
	for b.Loop() {
		r.Refresh()
	}
}
