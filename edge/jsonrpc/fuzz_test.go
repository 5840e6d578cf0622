package jsonrpc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/jsonrpc"

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

// FuzzDecodeLikeSDK checks that Decode, which reads the wire without
// reflection, accepts what go-sdk's decoder accepts and reads the same
// message from it: kind, id, method, params, result and error.
func FuzzDecodeLikeSDK(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":"a\u0062","method":"p\u0069ng","params":[1,{"a":"}"}]}`,
		`{"jsonrpc":"2.0","id":2.5e1,"result":{"x":[true,null]}}`,
		`{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"m","data":"d"}}`,
		`{"id":1,"jsonrpc":"2.0","method":"a","method":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.TrimSpace(data)
		if len(data) == 0 || data[0] == '[' || !json.Valid(data) {
			return
		}
		want, werr := sdk.DecodeMessage(data)
		msgs, _, err := jsonrpc.Decode(data)
		if werr == nil && err != nil {
			// The edge refuses only more: a request with an empty method.
			if r, ok := want.(*jsonrpc.Request); ok && r.Method == "" {
				return
			}
			t.Fatalf("Decode(%s) = %v; go-sdk accepts it as %+v", data, err, want)
		}
		if err != nil || werr != nil {
			return
		}
		got := msgs[0]
		switch w := want.(type) {
		case *jsonrpc.Request:
			g, ok := got.(*jsonrpc.Request)
			if !ok || g.Method != w.Method || !sameID(g.ID, w.ID) || !sameJSON(g.Params, w.Params) {
				t.Fatalf("Decode(%s) = %+v, go-sdk reads %+v", data, got, want)
			}
		case *jsonrpc.Response:
			g, ok := got.(*jsonrpc.Response)
			if !ok || !sameID(g.ID, w.ID) || !sameJSON(g.Result, w.Result) {
				t.Fatalf("Decode(%s) = %+v, go-sdk reads %+v", data, got, want)
			}
			ge, we := jsonrpc.WireError(g), jsonrpc.WireError(w)
			if (ge == nil) != (we == nil) || ge != nil && (ge.Code != we.Code || ge.Message != we.Message || !sameJSON(ge.Data, we.Data)) {
				t.Fatalf("Decode(%s) error = %+v, go-sdk reads %+v", data, ge, we)
			}
		}
	})
}

// sameID compares ids; integers beyond float64's precision are read
// exactly by Decode and rounded by go-sdk.
func sameID(a, b jsonrpc.ID) bool {
	if a == b {
		return true
	}
	x, ok1 := a.Raw().(int64)
	y, ok2 := b.Raw().(int64)
	return ok1 && ok2 && float64(x) == float64(y)
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// FuzzPatch checks the reflection-free object helpers on any input: they
// never panic, and on a valid object they give valid JSON with the member
// set as asked and every other member kept.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"name":"a__x","arguments":{"q":"}"},"_meta":{"progressToken":1}}`), "name", "x")
	f.Add([]byte(`{"a\"b":[1,{"c":"d"}],"e":null}`), "e", "")
	f.Add([]byte(`[1,2]`), "k", "v")
	f.Fuzz(func(t *testing.T, raw []byte, key, value string) {
		_, _ = jsonrpc.TopField(raw, key)
		_, _ = jsonrpc.StringBytes(raw, key)
		out, ok := jsonrpc.AppendWithString(nil, raw, key, value)
		var before map[string]any
		if json.Unmarshal(raw, &before) != nil || before == nil || !ok {
			return
		}
		var after map[string]any
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("AppendWithString(%s) = %s: invalid JSON: %v", raw, out, err)
		}
		want := make(map[string]any, len(before)+1)
		for k, v := range before {
			want[k] = v
		}
		// The key and value as JSON reads them back (invalid UTF-8 becomes
		// U+FFFD on the way).
		var v any
		vb, _ := json.Marshal(value)
		_ = json.Unmarshal(vb, &v)
		var k string
		kb, _ := json.Marshal(key)
		_ = json.Unmarshal(kb, &k)
		want[k] = v
		if !reflect.DeepEqual(want, after) {
			t.Fatalf("AppendWithString(%s, %q, %q) = %s", raw, key, value, out)
		}
		patched, ok := jsonrpc.AppendPatched(nil, raw, []jsonrpc.Member{{Key: key, Value: vb}})
		if !ok {
			t.Fatalf("AppendPatched(%s) refused a valid object", raw)
		}
		after = nil
		if err := json.Unmarshal(patched, &after); err != nil || !reflect.DeepEqual(want, after) {
			t.Fatalf("AppendPatched(%s, %q: %s) = %s (%v)", raw, key, vb, patched, err)
		}
	})
}
