package downstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
)

func TestStreamableInitialize(t *testing.T) {
	hs := newHarness(t, nil)
	resp := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}`)
	status(t, resp, http.StatusOK)
	sid := resp.Header.Get("Mcp-Session-Id")
	if !strings.HasPrefix(sid, "edge-test.") || len(sid) < len("edge-test.")+32 {
		t.Errorf("Mcp-Session-Id = %q, want the route key and an unguessable part", sid)
	}
	rs := jsonResponses(t, resp)
	var res struct{ ProtocolVersion string }
	if err := json.Unmarshal(rs[0].Result, &res); err != nil || rs[0].ID != jsonrpc.StringID("init") || res.ProtocolVersion != protocol.V20250618 {
		t.Errorf("initialize answer %v %s", rs[0].ID.Raw(), rs[0].Result)
	}
	s := hs.store.Get(sid)
	if s == nil || s.Transport != session.TransportStreamable || s.Principal.Subject != "static:alice" {
		t.Fatalf("stored session = %+v, want a streamable one of alice", s)
	}

	// A refused initialize makes no session.
	resp = hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"refuse"}}`)
	status(t, resp, http.StatusOK)
	if resp.Header.Get("Mcp-Session-Id") != "" || jsonResponses(t, resp)[0].Error == nil {
		t.Error("a refused initialize got a session id or no error")
	}
	if n := hs.store.Counts()[session.TransportStreamable]; n != 1 {
		t.Errorf("%d sessions stored, want 1", n)
	}
}

func TestStreamableRefusals(t *testing.T) {
	hs := newHarness(t, func(o *downstream.Options) { o.MaxBody = 1024 })
	sid := hs.initialize(t, protocol.V20250618)
	call := `{"jsonrpc":"2.0","id":1,"method":"echo"}`
	tests := []struct {
		name   string
		sid    string
		body   string
		tweak  func(*http.Request)
		status int
	}{
		{"missing session id", "", call, nil, http.StatusBadRequest},
		{"initialize in a batch", "", `[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}]`, nil, http.StatusBadRequest},
		{"unknown session", "edge-test.nope", call, nil, http.StatusNotFound},
		{"initialize again", sid, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, nil, http.StatusBadRequest},
		{"wrong Content-Type", sid, call, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusUnsupportedMediaType},
		{"no Content-Type", sid, call, func(r *http.Request) { r.Header.Del("Content-Type") }, http.StatusUnsupportedMediaType},
		{"Accept without SSE", sid, call, func(r *http.Request) { r.Header.Set("Accept", "application/json") }, http.StatusNotAcceptable},
		{"Accept without JSON", sid, call, func(r *http.Request) { r.Header.Set("Accept", "text/event-stream") }, http.StatusNotAcceptable},
		{"body over MaxBody", sid, `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"pad":"` + strings.Repeat("x", 2048) + `"}}`, nil, http.StatusRequestEntityTooLarge},
		{"not JSON", sid, `{`, nil, http.StatusBadRequest},
		{"batch in 2025-06-18", sid, `[` + call + `]`, nil, http.StatusBadRequest},
		{"another principal", sid, call, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokBob) }, http.StatusForbidden},
		{"no token", sid, call, func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized},
		{"unsupported MCP-Protocol-Version", sid, call, func(r *http.Request) { r.Header.Set("MCP-Protocol-Version", "1999-01-01") }, http.StatusBadRequest},
		{"MCP-Protocol-Version of another revision", sid, call, func(r *http.Request) { r.Header.Set("MCP-Protocol-Version", protocol.V20250326) }, http.StatusBadRequest},
		{"initialize without a token", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tweaks []func(*http.Request)
			if tt.tweak != nil {
				tweaks = append(tweaks, tt.tweak)
			}
			resp := hs.mcpPOST(t, tt.sid, tt.body, tweaks...)
			status(t, resp, tt.status)
			if tt.status == http.StatusUnauthorized {
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
				return
			}
			if e := jsonError(t, resp); e.Code == 0 || e.Message == "" {
				t.Errorf("error body %+v has no code or message", e)
			}
		})
	}
	// The matching version header is fine.
	resp := hs.mcpPOST(t, sid, call, func(r *http.Request) { r.Header.Set("MCP-Protocol-Version", protocol.V20250618) })
	status(t, resp, http.StatusOK)

	// Other methods.
	resp = hs.do(t, hs.request(t, http.MethodPut, "/mcp", call))
	status(t, resp, http.StatusMethodNotAllowed)
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q", allow)
	}
}

func TestStreamableBatch(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250326)
	resp := hs.mcpPOST(t, sid, `[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"n":1}},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"echo","params":{"n":2}}]`)
	status(t, resp, http.StatusOK)
	// Two answers, as a JSON array or as two events: either is the spec's.
	got := map[any]string{}
	if resp.Header.Get("Content-Type") == "application/json" {
		for _, r := range jsonResponses(t, resp) {
			got[r.ID.Raw()] = string(r.Result)
		}
	} else {
		st := readStream(t, resp)
		for range 2 {
			r := message(t, st.next(t)).(*jsonrpc.Response)
			got[r.ID.Raw()] = string(r.Result)
		}
		st.ended(t)
	}
	if diff := cmp.Diff(map[any]string{int64(1): `{"n":1}`, int64(2): `{"n":2}`}, got); diff != "" {
		t.Errorf("batch answers (-want +got):\n%s", diff)
	}
	if n := hs.disp.note(t); n.Method != protocol.NotificationInitialized {
		t.Errorf("dispatcher got %s", n.Method)
	}
}

func TestStreamableNotificationsOnly(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	resp := hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	status(t, resp, http.StatusAccepted)
	if n := hs.disp.note(t); n.Method != protocol.NotificationInitialized {
		t.Errorf("dispatcher got %s", n.Method)
	}
	// A response to nobody's request is accepted too.
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":99,"result":{}}`), http.StatusAccepted)
}

// A call that sends nothing first is answered with plain JSON. The answer
// and the end of the POST's stream race with the handler's wake-up, so
// this runs many times.
func TestStreamableJSONAnswer(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	for i := range 100 {
		resp := hs.mcpPOST(t, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo","params":{"i":%d}}`, i, i))
		status(t, resp, http.StatusOK)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("call %d answered with %q, want application/json", i, ct)
		}
		rs := jsonResponses(t, resp)
		if len(rs) != 1 || rs[0].ID != jsonrpc.IntID(int64(i)) || string(rs[0].Result) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("call %d answered %v %s", i, rs[0].ID.Raw(), rs[0].Result)
		}
		resp.Body.Close()
	}
}

func TestStreamableSSEAnswer(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	resp := hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":"p","method":"progress"}`)
	status(t, resp, http.StatusOK)
	st := readStream(t, resp)
	ev1, ev2 := st.next(t), st.next(t)
	n, ok := message(t, ev1).(*jsonrpc.Request)
	if !ok || n.Method != protocol.NotificationProgress {
		t.Fatalf("first event %q, want the progress notification", ev1.Data)
	}
	r, ok := message(t, ev2).(*jsonrpc.Response)
	if !ok || r.ID != jsonrpc.StringID("p") {
		t.Fatalf("second event %q, want the response", ev2.Data)
	}
	if ev1.ID == "" || ev2.ID == "" || ev1.ID == ev2.ID {
		t.Errorf("event ids %q, %q: want distinct ids for Last-Event-ID", ev1.ID, ev2.ID)
	}
	st.ended(t)
}

func TestStreamableServerRequest(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	resp := hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":1,"method":"ask"}`)
	status(t, resp, http.StatusOK)
	st := readStream(t, resp)
	ask := message(t, st.next(t)).(*jsonrpc.Request)
	if ask.Method != protocol.MethodRootsList || !ask.IsCall() {
		t.Fatalf("edge sent %s, want roots/list", ask.Method)
	}
	answer, _ := jsonrpc.Encode(jsonrpc.ResultResponse(ask.ID, json.RawMessage(`{"roots":[{"uri":"file:///w"}]}`)))
	status(t, hs.mcpPOST(t, sid, string(answer)), http.StatusAccepted)
	r := message(t, st.next(t)).(*jsonrpc.Response)
	if r.ID != jsonrpc.IntID(1) || string(r.Result) != `{"client":{"roots":[{"uri":"file:///w"}]}}` {
		t.Errorf("answer %v %s", r.ID.Raw(), r.Result)
	}
}

// openGET opens the standalone stream of sid.
func openGET(t *testing.T, hs *harness, sid string, tweak ...func(*http.Request)) *http.Response {
	t.Helper()
	req := hs.request(t, http.MethodGet, "/mcp", "")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	for _, f := range tweak {
		f(req)
	}
	return hs.do(t, req)
}

func TestStreamableStandaloneStream(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	resp := openGET(t, hs, sid)
	status(t, resp, http.StatusOK)
	st := readStream(t, resp)

	// A second GET for the same stream is refused while the first is open.
	status(t, openGET(t, hs, sid), http.StatusConflict)
	status(t, openGET(t, hs, sid, func(r *http.Request) { r.Header.Set("Accept", "application/json") }), http.StatusNotAcceptable)

	// Messages that belong to no request go to the standalone stream; the
	// call itself is still answered with JSON.
	call := hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":1,"method":"notify-other","params":{"count":2}}`)
	status(t, call, http.StatusOK)
	if rs := jsonResponses(t, call); rs[0].ID != jsonrpc.IntID(1) {
		t.Errorf("call answered %v", rs[0].ID.Raw())
	}
	for i := range 2 {
		ev := st.next(t)
		n, ok := message(t, ev).(*jsonrpc.Request)
		if !ok || n.Method != protocol.NotificationMessage || !strings.Contains(string(n.Params), fmt.Sprintf(`"data":%d`, i)) {
			t.Errorf("standalone event %d = %q", i, ev.Data)
		}
		if !strings.HasPrefix(ev.ID, "s_") {
			t.Errorf("standalone event id %q, want the standalone stream's", ev.ID)
		}
	}
}

// Messages sent while no GET is open wait for it, and a backlog beyond
// StreamLimit drops the oldest: it must not end the session.
func TestStreamableStandaloneBacklog(t *testing.T) {
	hs := newHarness(t, func(o *downstream.Options) { o.StreamLimit = 4 })
	sid := hs.initialize(t, protocol.V20250618)
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":1,"method":"notify-other","params":{"count":6}}`), http.StatusOK)

	resp := openGET(t, hs, sid)
	status(t, resp, http.StatusOK)
	st := readStream(t, resp)
	data := func() int {
		n := message(t, st.next(t)).(*jsonrpc.Request)
		var p struct{ Data int }
		if err := json.Unmarshal(n.Params, &p); err != nil || n.Method != protocol.NotificationMessage {
			t.Fatalf("standalone event %s %s", n.Method, n.Params)
		}
		return p.Data
	}
	// What is left of the backlog: the newest messages, in order.
	var got []int
	for len(got) == 0 || got[len(got)-1] != 5 {
		got = append(got, data())
		if len(got) > 4 {
			t.Fatalf("backlog %v holds more than StreamLimit", got)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("backlog %v is out of order", got)
		}
	}
	// The stream stays open and the session lives on.
	select {
	case <-st.done:
		t.Fatal("the standalone stream ended after a backlog beyond StreamLimit")
	case <-time.After(50 * time.Millisecond):
	}
	if hs.store.Get(sid) == nil {
		t.Fatal("the session ended after a backlog beyond StreamLimit")
	}
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":2,"method":"notify-other","params":{"count":1}}`), http.StatusOK)
	if d := data(); d != 0 {
		t.Errorf("next standalone event has data %d, want the new message (0)", d)
	}
}

// A client whose POST connection broke resumes its stream with GET and
// Last-Event-ID, and gets what it missed.
func TestStreamableResume(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	ctx, cancel := context.WithCancel(context.Background())
	req := hs.request(t, http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":7,"method":"resume"}`).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := hs.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	st := readStream(t, resp)
	first := st.next(t)
	if first.ID == "" {
		t.Fatal("POST stream event without an id")
	}
	cancel() // the connection breaks
	resp.Body.Close()

	// Resume; the server may not have seen the break yet (409 meanwhile).
	var resumed *http.Response
	eventually(t, "GET with Last-Event-ID to be accepted", func() bool {
		r := openGET(t, hs, sid, func(r *http.Request) { r.Header.Set("Last-Event-ID", first.ID) })
		if r.StatusCode == http.StatusConflict {
			r.Body.Close()
			return false
		}
		resumed = r
		return true
	})
	status(t, resumed, http.StatusOK)
	rst := readStream(t, resumed)
	hs.disp.step <- struct{}{} // the call goes on after the break
	n := message(t, rst.next(t)).(*jsonrpc.Request)
	if !strings.Contains(string(n.Params), `"progress":2`) {
		t.Errorf("first resumed event %s, want the second progress (the first was read already)", n.Params)
	}
	r := message(t, rst.next(t)).(*jsonrpc.Response)
	if r.ID != jsonrpc.IntID(7) || string(r.Result) != `{"resumed":true}` {
		t.Errorf("resumed answer %v %s", r.ID.Raw(), r.Result)
	}
	rst.ended(t)

	// The finished stream is gone; malformed ids are refused.
	status(t, openGET(t, hs, sid, func(r *http.Request) { r.Header.Set("Last-Event-ID", first.ID) }), http.StatusNotFound)
	status(t, openGET(t, hs, sid, func(r *http.Request) { r.Header.Set("Last-Event-ID", "garbage") }), http.StatusBadRequest)
}

func TestStreamableDelete(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	get := openGET(t, hs, sid)
	status(t, get, http.StatusOK)
	st := readStream(t, get)

	del := hs.request(t, http.MethodDelete, "/mcp", "")
	del.Header.Set("Mcp-Session-Id", sid)
	del.Header.Set("Authorization", "Bearer "+tokBob)
	status(t, hs.do(t, del), http.StatusForbidden)

	del.Header.Set("Authorization", "Bearer "+tokAlice)
	status(t, hs.do(t, del), http.StatusNoContent)
	st.ended(t)
	if hs.store.Get(sid) != nil {
		t.Error("the session is still stored after DELETE")
	}
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":1,"method":"echo"}`), http.StatusNotFound)
	status(t, openGET(t, hs, sid), http.StatusNotFound)
	status(t, hs.do(t, del), http.StatusNotFound)
}

// Closing a session cancels its calls in flight.
func TestStreamableSessionEndCancelsCalls(t *testing.T) {
	hs := newHarness(t, nil)
	sid := hs.initialize(t, protocol.V20250618)
	go func() {
		req := hs.request(t, http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"block"}`)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		if resp, err := hs.srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the call to start", func() bool {
		s := hs.store.Get(sid)
		return s != nil && s.Idle(time.Now().Add(time.Hour)) == 0
	})
	hs.store.Remove(hs.store.Get(sid))
	select {
	case got := <-hs.disp.gone:
		if got != sid {
			t.Errorf("call of session %q ended, want %q", got, sid)
		}
	case <-time.After(wait):
		t.Fatal("a call went on after its session ended")
	}
}
