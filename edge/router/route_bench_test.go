package router

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// staticServer is a Server with a fixed catalogue that is never called.
type staticServer struct {
	name string
	cat  *Catalog
}

func (s *staticServer) Name() string      { return s.name }
func (s *staticServer) Catalog() *Catalog { return s.cat }
func (s *staticServer) Call(context.Context, string, json.RawMessage, CallOptions) (*jsonrpc.Response, error) {
	panic("not called")
}
func (s *staticServer) Notify(context.Context, string, json.RawMessage) error { return nil }

// BenchmarkRoute measures the routing of one tools/call among 50 servers of
// 20 tools each: the name read from the params, looked up, checked against
// the token's scopes, and the params rewritten with the server's own name
// into a reused buffer. It is what byName does per call besides
// forwarding; it must not allocate.
func BenchmarkRoute(b *testing.B) {
	var es []*Entry
	for i := range 50 {
		s := &staticServer{name: fmt.Sprintf("server%02d", i), cat: &Catalog{}}
		for j := range 20 {
			s.cat.Tools = append(s.cat.Tools, json.RawMessage(fmt.Sprintf(
				`{"name":"tool_%02d","description":"Tool %d of server %d.","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}}`, j, j, i)))
		}
		es = append(es, &Entry{Server: s, Prefix: s.name})
	}
	r := New(Options{})
	r.SetServers(es, Namespacing{Mode: ModeAlways, Separator: "__"})
	req := &jsonrpc.Request{ID: jsonrpc.IntID(1), Method: protocol.MethodToolsCall,
		Params: json.RawMessage(`{"name":"server25__tool_10","arguments":{"q":"hello"},"_meta":{"progressToken":7}}`)}
	for _, bc := range []struct {
		name string
		p    *authn.Principal
	}{
		{"all", &authn.Principal{Subject: "static:a", Kind: authn.KindStatic, Servers: []string{"*"}, Tools: []string{"*"}}},
		{"scoped", &authn.Principal{Subject: "static:s", Kind: authn.KindStatic, Servers: []string{"server2*"}, Tools: []string{"*__tool_1*"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := session.New("bench", session.TransportStreamable, bc.p, nil)
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				it, params, errResp := r.route(s, req, kindTools, buf[:0])
				if errResp != nil || it.orig != "tool_10" || len(params) == 0 {
					b.Fatal(errResp)
				}
			}
		})
	}
}
