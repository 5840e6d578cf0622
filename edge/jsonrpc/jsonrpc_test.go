package jsonrpc_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// msgView is a comparable view of a decoded message.
type msgView struct {
	Kind   string // "call", "notification" or "response"
	ID     any
	Method string
	Params string
	Result string
	Error  *jsonrpc.Error
}

func view(m jsonrpc.Message) msgView {
	switch m := m.(type) {
	case *jsonrpc.Request:
		kind := "notification"
		if m.IsCall() {
			kind = "call"
		}
		return msgView{Kind: kind, ID: m.ID.Raw(), Method: m.Method, Params: string(m.Params)}
	case *jsonrpc.Response:
		return msgView{Kind: "response", ID: m.ID.Raw(), Result: string(m.Result), Error: jsonrpc.WireError(m)}
	}
	return msgView{Kind: "unknown"}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []msgView
		wantBatch bool
		wantCode  int64 // 0: no error
	}{{
		name: "call with int id",
		in:   `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}}`,
		want: []msgView{{Kind: "call", ID: int64(1), Method: "tools/list", Params: `{"cursor":"x"}`}},
	}, {
		name: "call with string id",
		in:   ` {"jsonrpc":"2.0","id":"abc","method":"ping"}` + "\n",
		want: []msgView{{Kind: "call", ID: "abc", Method: "ping"}},
	}, {
		name: "notification",
		in:   `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		want: []msgView{{Kind: "notification", Method: "notifications/initialized"}},
	}, {
		name: "result response",
		in:   `{"jsonrpc":"2.0","id":7,"result":{"ok":true}}`,
		want: []msgView{{Kind: "response", ID: int64(7), Result: `{"ok":true}`}},
	}, {
		name: "error response",
		in:   `{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"nope","data":{"a":1}}}`,
		want: []msgView{{Kind: "response", ID: "x", Error: &jsonrpc.Error{Code: -32601, Message: "nope", Data: json.RawMessage(`{"a":1}`)}}},
	}, {
		name:      "batch",
		in:        `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"},{"jsonrpc":"2.0","id":2,"result":{}}]`,
		wantBatch: true,
		want: []msgView{
			{Kind: "call", ID: int64(1), Method: "a"},
			{Kind: "notification", Method: "b"},
			{Kind: "response", ID: int64(2), Result: `{}`},
		},
	}, {
		name: "batch of one", in: `[{"jsonrpc":"2.0","id":1,"method":"a"}]`, wantBatch: true,
		want: []msgView{{Kind: "call", ID: int64(1), Method: "a"}},
	}, {
		name: "empty body", in: "  \n", wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "empty batch", in: `[]`, wantBatch: true, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "invalid JSON", in: `{"jsonrpc":"2.0",`, wantCode: jsonrpc.CodeParseError,
	}, {
		name: "invalid JSON batch", in: `[{"jsonrpc":"2.0"`, wantBatch: true, wantCode: jsonrpc.CodeParseError,
	}, {
		name: "not an object", in: `"hello"`, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "missing jsonrpc", in: `{"id":1,"method":"ping"}`, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "wrong jsonrpc", in: `{"jsonrpc":"1.0","id":1,"method":"ping"}`, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "jsonrpc not a string", in: `{"jsonrpc":2,"id":1,"method":"ping"}`, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "empty method", in: `{"jsonrpc":"2.0","id":1,"method":""}`, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "response without id", in: `{"jsonrpc":"2.0","result":{}}`, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "bad member in batch", in: `[{"jsonrpc":"2.0","id":1,"method":"a"},{"id":2,"method":"b"}]`,
		wantBatch: true, wantCode: jsonrpc.CodeInvalidRequest,
	}, {
		name: "invalid id type", in: `{"jsonrpc":"2.0","id":{"x":1},"method":"a"}`, wantCode: jsonrpc.CodeInvalidRequest,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, batch, err := jsonrpc.Decode([]byte(tt.in))
			if batch != tt.wantBatch {
				t.Errorf("batch = %v, want %v", batch, tt.wantBatch)
			}
			if tt.wantCode != 0 {
				var je *jsonrpc.Error
				if !errors.As(err, &je) {
					t.Fatalf("Decode error = %v, want a *jsonrpc.Error with code %d", err, tt.wantCode)
				}
				if je.Code != tt.wantCode {
					t.Errorf("error code = %d (%s), want %d", je.Code, je.Message, tt.wantCode)
				}
				if msgs != nil {
					t.Errorf("messages = %v, want none with an error", msgs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got []msgView
			for _, m := range msgs {
				got = append(got, view(m))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Params and results pass through untouched, unknown fields included.
func TestDecodeEncodeKeepsParams(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","arguments":{"deep":[1,2,{"z":null}]},"_meta":{"progressToken":"p"},"x-vendor":true}}`
	msgs, _, err := jsonrpc.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonrpc.Encode(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(decodeAny(t, in), decodeAny(t, string(out))); diff != "" {
		t.Errorf("Encode(Decode(x)) differs from x (-want +got):\n%s", diff)
	}
}

func decodeAny(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("unmarshal %s: %v", s, err)
	}
	return v
}

func TestFields(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"nil", "", map[string]string{}, false},
		{"null", " null ", map[string]string{}, false},
		{"object", `{"a":1,"b":{"c":[true]},"unknown":"kept"}`, map[string]string{"a": "1", "b": `{"c":[true]}`, "unknown": `"kept"`}, false},
		{"array", `[1]`, nil, true},
		{"string", `"x"`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := jsonrpc.Fields(json.RawMessage(tt.in))
			if tt.wantErr {
				var je *jsonrpc.Error
				if !errors.As(err, &je) || je.Code != jsonrpc.CodeInvalidParams {
					t.Fatalf("Fields error = %v, want invalid params", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, v := range f {
				got[k] = string(v)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStringField(t *testing.T) {
	tests := []struct {
		raw, key string
		want     string
		wantOK   bool
	}{
		{`{"name":"echo"}`, "name", "echo", true},
		{`{"name":""}`, "name", "", true},
		{`{"name":5}`, "name", "", false},
		{`{"other":"x"}`, "name", "", false},
		{`[1]`, "name", "", false},
		{``, "name", "", false},
		{`{"uri":"file:///a\u0020b"}`, "uri", "file:///a b", true},
	}
	for _, tt := range tests {
		got, ok := jsonrpc.StringField(json.RawMessage(tt.raw), tt.key)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("StringField(%s, %q) = %q, %v; want %q, %v", tt.raw, tt.key, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestWithField(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		key   string
		value any
		want  string
	}{
		{"replace keeps others", `{"name":"a__x","arguments":{"q":1},"x-unknown":[1,2]}`, "name", "x", `{"name":"x","arguments":{"q":1},"x-unknown":[1,2]}`},
		{"add", `{"a":1}`, "b", map[string]int{"c": 2}, `{"a":1,"b":{"c":2}}`},
		{"from nil", ``, "cursor", "abc", `{"cursor":"abc"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jsonrpc.WithField(json.RawMessage(tt.raw), tt.key, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decodeAny(t, tt.want), decodeAny(t, string(got))); diff != "" {
				t.Errorf("WithField mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := jsonrpc.WithField(json.RawMessage(`[1]`), "a", 1); err == nil {
		t.Error("WithField on an array: no error, want one")
	}
}

func TestMeta(t *testing.T) {
	tests := []struct {
		params string
		want   map[string]string
	}{
		{`{"_meta":{"progressToken":"t1","x-vendor":{"a":1}},"name":"x"}`, map[string]string{"progressToken": `"t1"`, "x-vendor": `{"a":1}`}},
		{`{"name":"x"}`, map[string]string{}},
		{``, map[string]string{}},
		{`{"_meta":5}`, map[string]string{}},
		{`[1]`, map[string]string{}},
	}
	for _, tt := range tests {
		got := map[string]string{}
		for k, v := range jsonrpc.Meta(json.RawMessage(tt.params)) {
			got[k] = string(v)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Meta(%s) mismatch (-want +got):\n%s", tt.params, diff)
		}
	}
}

func TestWithMeta(t *testing.T) {
	tests := []struct {
		name   string
		params string
		key    string
		value  json.RawMessage
		want   string
	}{{
		name:   "set keeps unknown fields",
		params: `{"name":"x","arguments":{"a":1},"_meta":{"progressToken":1,"x-trace":"abc"},"x-top":true}`,
		key:    "progressToken", value: json.RawMessage(`"atrax-7"`),
		want: `{"name":"x","arguments":{"a":1},"_meta":{"progressToken":"atrax-7","x-trace":"abc"},"x-top":true}`,
	}, {
		name:   "add to params without _meta",
		params: `{"name":"x"}`, key: "progressToken", value: json.RawMessage(`5`),
		want: `{"name":"x","_meta":{"progressToken":5}}`,
	}, {
		name:   "remove keeps other meta",
		params: `{"_meta":{"progressToken":1,"x-trace":"abc"}}`, key: "progressToken",
		want: `{"_meta":{"x-trace":"abc"}}`,
	}, {
		name:   "remove the last drops _meta",
		params: `{"name":"x","_meta":{"progressToken":1}}`, key: "progressToken",
		want: `{"name":"x"}`,
	}, {
		name:   "nil params",
		params: ``, key: "k", value: json.RawMessage(`true`),
		want: `{"_meta":{"k":true}}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jsonrpc.WithMeta(json.RawMessage(tt.params), tt.key, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decodeAny(t, tt.want), decodeAny(t, string(got))); diff != "" {
				t.Errorf("WithMeta mismatch (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{`{"_meta":[1]}`, `[1]`} {
		if _, err := jsonrpc.WithMeta(json.RawMessage(bad), "k", json.RawMessage(`1`)); err == nil {
			t.Errorf("WithMeta(%s): no error, want one", bad)
		}
	}
}

func TestIDRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		id   jsonrpc.ID
		json string
		key  any
	}{
		{"int", jsonrpc.IntID(42), `42`, int64(42)},
		{"zero", jsonrpc.IntID(0), `0`, int64(0)},
		{"negative", jsonrpc.IntID(-3), `-3`, int64(-3)},
		{"string", jsonrpc.StringID("req-1"), `"req-1"`, "req-1"},
		{"numeric string", jsonrpc.StringID("42"), `"42"`, "42"},
		{"empty string", jsonrpc.StringID(""), `""`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.id.IsValid() {
				t.Fatalf("id %v is not valid", tt.id)
			}
			if got := string(jsonrpc.MarshalID(tt.id)); got != tt.json {
				t.Errorf("MarshalID = %s, want %s", got, tt.json)
			}
			back, err := jsonrpc.ParseID(json.RawMessage(tt.json))
			if err != nil {
				t.Fatalf("ParseID(%s): %v", tt.json, err)
			}
			if back != tt.id {
				t.Errorf("ParseID(%s) = %#v, want %#v", tt.json, back, tt.id)
			}
			if got := jsonrpc.IDKey(back); got != tt.key {
				t.Errorf("IDKey = %#v, want %#v", got, tt.key)
			}
		})
	}
	// 42 and "42" are different ids and must not share a map slot.
	if jsonrpc.IDKey(jsonrpc.IntID(42)) == jsonrpc.IDKey(jsonrpc.StringID("42")) {
		t.Error(`IDKey(42) == IDKey("42"), want distinct keys`)
	}
	for _, bad := range []string{`{`, `[1]`, `true`} {
		if _, err := jsonrpc.ParseID(json.RawMessage(bad)); err == nil {
			t.Errorf("ParseID(%s): no error, want one", bad)
		}
	}
}

func TestWireError(t *testing.T) {
	if got := jsonrpc.WireError(nil); got != nil {
		t.Errorf("WireError(nil) = %v, want nil", got)
	}
	if got := jsonrpc.WireError(jsonrpc.ResultResponse(jsonrpc.IntID(1), json.RawMessage(`{}`))); got != nil {
		t.Errorf("WireError(result) = %v, want nil", got)
	}
	e := jsonrpc.NewError(jsonrpc.CodeResourceNotFound, "resource %s not found", "x")
	if got := jsonrpc.WireError(jsonrpc.ErrorResponse(jsonrpc.IntID(1), e)); !cmp.Equal(got, e) {
		t.Errorf("WireError = %+v, want %+v", got, e)
	}
	other := &jsonrpc.Response{ID: jsonrpc.IntID(1), Error: errors.New("plain")}
	want := &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "plain"}
	if got := jsonrpc.WireError(other); !cmp.Equal(got, want) {
		t.Errorf("WireError(plain error) = %+v, want %+v", got, want)
	}
}

func TestNotification(t *testing.T) {
	n, err := jsonrpc.Notification("notifications/progress", map[string]any{"progressToken": "t", "progress": 1})
	if err != nil {
		t.Fatal(err)
	}
	if n.IsCall() {
		t.Error("Notification is a call, want a notification")
	}
	data, err := jsonrpc.Encode(n)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":"t"}}`
	if diff := cmp.Diff(decodeAny(t, want), decodeAny(t, string(data))); diff != "" {
		t.Errorf("encoded notification mismatch (-want +got):\n%s", diff)
	}
	bare, err := jsonrpc.Notification("notifications/initialized", nil)
	if err != nil || bare.Params != nil {
		t.Errorf("Notification without params = %+v, %v; want nil params", bare, err)
	}
}

func TestAppendPatched(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		set    []jsonrpc.Member
		remove []string
		want   string
	}{
		{"replace in place, keep the rest", `{"a":1,"name":"x","z":{"k":[1]}}`, []jsonrpc.Member{{Key: "name", Value: []byte(`"y"`)}}, nil, `{"a":1,"name":"y","z":{"k":[1]}}`},
		{"add", `{"a":1}`, []jsonrpc.Member{{Key: "b", Value: []byte(`true`)}}, nil, `{"a":1,"b":true}`},
		{"remove", `{"a":1,"_meta":{"x":1},"b":2}`, nil, []string{"_meta"}, `{"a":1,"b":2}`},
		{"remove the only one", `{"_meta":{}}`, nil, []string{"_meta"}, `{}`},
		{"empty", ``, []jsonrpc.Member{{Key: "k", Value: []byte(`"v"`)}}, nil, `{"k":"v"}`},
		{"escaped key kept", `{"a\"b":1}`, nil, nil, `{"a\"b":1}`},
		{"duplicate key set once", `{"n":1,"n":2}`, []jsonrpc.Member{{Key: "n", Value: []byte(`3`)}}, nil, `{"n":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jsonrpc.AppendPatched(nil, []byte(tt.raw), tt.set, tt.remove...)
			if !ok {
				t.Fatal("not ok")
			}
			if string(got) != tt.want {
				t.Errorf("AppendPatched = %s, want %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("AppendPatched gave invalid JSON %s", got)
			}
		})
	}
	if _, ok := jsonrpc.AppendPatched(nil, []byte(`[1]`), nil); ok {
		t.Error("AppendPatched on an array: ok, want not")
	}
}

func TestAppendWithString(t *testing.T) {
	tests := []struct{ raw, key, value, want string }{
		{`{"name":"a__x","arguments":{"name":"keep"}}`, "name", "x", `{"name":"x","arguments":{"name":"keep"}}`},
		{` {"a":1} `, "name", "q\"uote", `{"a":1,"name":"q\"uote"}`},
		{`{}`, "k", "v", `{"k":"v"}`},
		{``, "k", "v", `{"k":"v"}`},
	}
	for _, tt := range tests {
		got, ok := jsonrpc.AppendWithString(nil, []byte(tt.raw), tt.key, tt.value)
		if !ok || string(got) != tt.want {
			t.Errorf("AppendWithString(%s, %q, %q) = %s, %v; want %s", tt.raw, tt.key, tt.value, got, ok, tt.want)
		}
	}
}

func TestTopFieldAndStringBytes(t *testing.T) {
	raw := []byte(`{"a":{"name":"inner"},"name":"out\u0065r","n":5,"s":"x"}`)
	if v, ok := jsonrpc.TopField(raw, "a"); !ok || string(v) != `{"name":"inner"}` {
		t.Errorf("TopField(a) = %s, %v", v, ok)
	}
	if v, ok := jsonrpc.StringBytes(raw, "name"); !ok || string(v) != "outer" {
		t.Errorf("StringBytes(name) = %s, %v; want outer (unescaped, top level only)", v, ok)
	}
	if _, ok := jsonrpc.StringBytes(raw, "n"); ok {
		t.Error("StringBytes of a number: ok")
	}
	if _, ok := jsonrpc.TopField([]byte(`[1]`), "a"); ok {
		t.Error("TopField of an array: ok")
	}
}
