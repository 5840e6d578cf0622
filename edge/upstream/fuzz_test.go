package upstream

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// memConn is a conn whose server answers inside Write: serve sees each
// message the edge writes.
type memConn struct {
	serve func(jsonrpc.Message)
}

func (c *memConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *memConn) Write(_ context.Context, m jsonrpc.Message) error {
	c.serve(m)
	return nil
}

func (c *memConn) Close() error { return nil }

// FuzzRemap drives one call through a session whose server answers at
// once: with a response under a stray id first (any JSON the server might
// send), then a progress notification for the edge's progress token (with
// fields of its own), then the response. Whatever the caller's params, the
// call must not panic; when it succeeds, the server saw an id of the
// edge's own and, for a progress token, a token of the edge's own, every
// other field of the params untouched; the caller got its own token back
// in the progress notification, the notification's other fields
// untouched, and the response to its call, not the stray one. Params
// that are not valid JSON (which Decode never lets through) must only not
// panic. The seed corpus is in testdata/fuzz/FuzzRemap.
func FuzzRemap(f *testing.F) {
	for _, seed := range [][3]string{
		{`{"name":"x","arguments":{"a":1},"_meta":{"progressToken":"tok","other":[1,2]}}`, `1000`, `{"progress":1,"total":2,"message":"m"}`},
		{`{"name":"x","_meta":{"progressToken":42}}`, `"atrax-1"`, `{"progress":0.5}`},
		{`{"name":"x","_meta":{"progressToken":null}}`, `null`, `{}`},
		{`{"name":"x","_meta":5}`, `-1`, `[]`},
		{`{"_meta":{"progressToken":{"a":"b"}},"_meta":{}}`, `1`, `{"progressToken":"spoof"}`},
		{`[1,2]`, `{}`, `"x"`},
		{`not json`, `2.5`, `{"progress":1}`},
		{``, `"1"`, ``},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]), []byte(seed[2]))
	}
	f.Fuzz(func(t *testing.T, params, strayID, progress []byte) {
		var (
			sent  *jsonrpc.Request
			notes []*jsonrpc.Request
			// stray is set when the stray id is the edge's own, which ends
			// the call with the stray response (as it should).
			stray bool
		)
		u := New(Options{Spec: Spec{Name: "fuzz", Timeout: 5 * time.Second}})
		c := &memConn{}
		s := newSession(u, c)
		c.serve = func(m jsonrpc.Message) {
			req, ok := m.(*jsonrpc.Request)
			if !ok || !req.IsCall() {
				return
			}
			sent = req
			if id, err := jsonrpc.ParseID(strayID); err == nil {
				stray = id.IsValid() && id.Raw() == req.ID.Raw()
				s.deliver(&jsonrpc.Response{ID: id, Result: json.RawMessage(`{"stray":true}`)})
			}
			if tok, ok := jsonrpc.Meta(req.Params)["progressToken"]; ok {
				if f, err := jsonrpc.Fields(progress); err == nil && f != nil {
					f["progressToken"] = tok
					p, _ := json.Marshal(f)
					s.notification(&jsonrpc.Request{Method: protocol.NotificationProgress, Params: p})
				}
			}
			s.deliver(&jsonrpc.Response{ID: req.ID, Result: json.RawMessage(`{"ok":true}`)})
		}
		resp, err := s.call(context.Background(), protocol.MethodToolsCall, params, CallOptions{
			Tag:    1,
			Notify: func(n *jsonrpc.Request) { notes = append(notes, n) },
		})
		if err != nil {
			return // params the edge cannot rewrite: refused, not passed on
		}
		if len(params) > 0 && !json.Valid(params) {
			// Params reach a session only from Decode, which refuses
			// invalid JSON; for anything else, not panicking is the
			// whole promise (the scanner reads only as far as it must).
			return
		}
		if sent == nil {
			t.Fatal("the call succeeded but nothing was sent")
		}
		if id, ok := sent.ID.Raw().(int64); !ok || id < 1 {
			t.Fatalf("the server saw id %v, want a positive integer of the edge's", sent.ID.Raw())
		}
		want := `{"ok":true}`
		if stray {
			want = `{"stray":true}`
		}
		if string(resp.Result) != want {
			t.Fatalf("result %s, want %s", resp.Result, want)
		}

		orig, hasTok := jsonrpc.Meta(params)["progressToken"]
		hasTok = hasTok && len(orig) > 0 && string(orig) != "null"
		if !hasTok {
			if string(sent.Params) != string(params) {
				t.Fatalf("params without a progress token were rewritten: %s → %s", params, sent.Params)
			}
			if len(notes) != 0 {
				t.Fatalf("notifications reached a call without a progress token: %v", notes)
			}
			return
		}
		edgeTok := jsonrpc.Meta(sent.Params)["progressToken"]
		if string(edgeTok) != strconv.Quote("atrax-"+strconv.FormatInt(sent.ID.Raw().(int64), 10)) {
			t.Fatalf("the server saw progress token %s", edgeTok)
		}
		// Everything else of the params, _meta included, is as sent.
		in, _ := jsonrpc.Fields(params)
		out, err := jsonrpc.Fields(sent.Params)
		if err != nil {
			t.Fatalf("sent params %s: %v", sent.Params, err)
		}
		if len(in) != len(out) {
			t.Fatalf("params %s became %s", params, sent.Params)
		}
		for k, v := range in {
			if k == "_meta" {
				continue
			}
			if string(out[k]) != string(v) {
				t.Fatalf("field %q: %s became %s", k, v, out[k])
			}
		}
		inMeta, outMeta := jsonrpc.Meta(params), jsonrpc.Meta(sent.Params)
		if len(inMeta) != len(outMeta) {
			t.Fatalf("_meta %v became %v", inMeta, outMeta)
		}
		for k, v := range inMeta {
			if k != "progressToken" && string(outMeta[k]) != string(v) {
				t.Fatalf("_meta.%s: %s became %s", k, v, outMeta[k])
			}
		}

		pf, err := jsonrpc.Fields(progress)
		if err != nil || pf == nil {
			return // no notification was sent
		}
		if len(notes) != 1 {
			t.Fatalf("%d notifications reached the caller, want 1", len(notes))
		}
		got, err := jsonrpc.Fields(notes[0].Params)
		if err != nil {
			t.Fatalf("notification params %s: %v", notes[0].Params, err)
		}
		if !sameJSON(got["progressToken"], orig) {
			t.Fatalf("the caller got progress token %s, want its own %s", got["progressToken"], orig)
		}
		for k, v := range pf {
			if k != "progressToken" && !sameJSON(got[k], v) {
				t.Fatalf("notification field %q: %s became %s", k, v, got[k])
			}
		}
	})
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
