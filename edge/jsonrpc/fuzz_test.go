package jsonrpc_test

import (
	"errors"
	"testing"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// FuzzDecode checks that Decode never panics, that every failure carries a
// JSON-RPC code, and that what it accepts encodes to something it accepts
// again, as the same kind of message. The seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`,
		`[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":"b","result":null}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, batch, err := jsonrpc.Decode(data)
		if err != nil {
			var je *jsonrpc.Error
			if !errors.As(err, &je) {
				t.Fatalf("Decode(%q) error %v is not a *jsonrpc.Error", data, err)
			}
			return
		}
		if len(msgs) == 0 {
			t.Fatalf("Decode(%q) = no messages and no error", data)
		}
		if !batch && len(msgs) != 1 {
			t.Fatalf("Decode(%q) = %d messages without a batch", data, len(msgs))
		}
		for _, m := range msgs {
			out, err := jsonrpc.Encode(m)
			if err != nil {
				t.Fatalf("Encode(Decode(%q)): %v", data, err)
			}
			again, b2, err := jsonrpc.Decode(out)
			if err != nil {
				t.Fatalf("Decode(Encode(Decode(%q))) = %v; encoded %s", data, err, out)
			}
			if b2 || len(again) != 1 {
				t.Fatalf("re-decoding %s gave %d messages (batch %v)", out, len(again), b2)
			}
			if kindOf(again[0]) != kindOf(m) {
				t.Fatalf("re-decoding %s gave a %s, want a %s", out, kindOf(again[0]), kindOf(m))
			}
		}
	})
}

func kindOf(m jsonrpc.Message) string {
	switch m := m.(type) {
	case *jsonrpc.Request:
		if m.IsCall() {
			return "call " + m.Method
		}
		return "notification " + m.Method
	case *jsonrpc.Response:
		return "response"
	}
	return "?"
}
