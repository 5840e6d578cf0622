package upstream

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// nopConn accepts every write and never reads: the benchmarks below hand
// responses to the session themselves.
type nopConn struct{}

func (nopConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (nopConn) Write(context.Context, jsonrpc.Message) error { return nil }
func (nopConn) Close() error                                 { return nil }

// BenchmarkRemap measures the id remapping of one call on a shared
// connection: an id of the edge's own, the call registered, its response
// matched by that id and handed to the waiting caller, the call forgotten.
// Framing (encoding, the transport) is not part of it.
func BenchmarkRemap(b *testing.B) {
	u := New(Options{Spec: Spec{Name: "bench"}})
	s := newSession(u, nopConn{})
	resp := &jsonrpc.Response{Result: json.RawMessage(`{"content":[]}`)}
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		params json.RawMessage
	}{
		{"call", json.RawMessage(`{"name":"echo","arguments":{"message":"hello"}}`)},
		{"progress", json.RawMessage(`{"name":"echo","arguments":{"message":"hello"},"_meta":{"progressToken":"client-7"}}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := CallOptions{Tag: b}
			b.ReportAllocs()
			for b.Loop() {
				c, _, err := s.begin(bc.params, o)
				if err != nil {
					b.Fatal(err)
				}
				if !s.deliverID(c.id, resp) {
					b.Fatal("response not delivered")
				}
				if r, err := s.wait(ctx, c, time.Minute); err != nil || r != resp {
					b.Fatal(r, err)
				}
				s.finish(c)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		params := json.RawMessage(`{"name":"echo","arguments":{"message":"hello"}}`)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			o := CallOptions{Tag: pb}
			for pb.Next() {
				c, _, err := s.begin(params, o)
				if err != nil {
					b.Error(err)
					return
				}
				s.deliverID(c.id, resp)
				if _, err := s.wait(ctx, c, time.Minute); err != nil {
					b.Error(err)
					return
				}
				s.finish(c)
			}
		})
	})
}
