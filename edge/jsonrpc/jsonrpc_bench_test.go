package jsonrpc_test

import (
	"encoding/json"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

var (
	benchCall   = []byte(`{"jsonrpc":"2.0","id":1234,"method":"tools/call","params":{"name":"h__echo","arguments":{"message":"hello, atrax"},"_meta":{"progressToken":"p-1"}}}`)
	benchResult = []byte(`{"jsonrpc":"2.0","id":1234,"result":{"content":[{"type":"text","text":"hello, atrax"}],"structuredContent":{"echo":"hello, atrax"}}}`)
)

// BenchmarkDecode compares Decode with go-sdk's reflection-based decoder
// on a tools/call and on its result.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		msg  []byte
	}{{"call", benchCall}, {"result", benchResult}} {
		b.Run(bc.name+"/edge", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				if _, _, err := jsonrpc.Decode(bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/go-sdk", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				if _, err := sdk.DecodeMessage(bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode compares Encode with go-sdk's encoder on a response.
func BenchmarkEncode(b *testing.B) {
	msgs, _, err := jsonrpc.Decode(benchResult)
	if err != nil {
		b.Fatal(err)
	}
	resp := msgs[0]
	b.Run("edge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonrpc.Encode(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("edge-append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if _, err := jsonrpc.AppendMessage(buf[:0], resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sdk.EncodeMessage(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStringField reads a tool call's name.
func BenchmarkStringField(b *testing.B) {
	params := json.RawMessage(`{"name":"h__echo","arguments":{"message":"hello, atrax"},"_meta":{"progressToken":"p-1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := jsonrpc.StringBytes(params, "name"); !ok {
			b.Fatal("no name")
		}
	}
}
