package downstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
)

// openSSE opens a legacy session with ?token= (as the seed's clients do)
// and returns its stream and the endpoint it announced.
func openSSE(t *testing.T, hs *harness) (*stream, string) {
	t.Helper()
	req := hs.request(t, http.MethodGet, "/sse?token="+url.QueryEscape(tokAlice), "")
	req.Header.Del("Authorization")
	resp := hs.do(t, req)
	status(t, resp, http.StatusOK)
	st := readStream(t, resp)
	ev := st.next(t)
	if ev.Name != "endpoint" {
		t.Fatalf("first event %q, want endpoint", ev.Name)
	}
	if ev.ID != "" {
		t.Errorf("legacy event has id %q, want none", ev.ID)
	}
	if !strings.HasPrefix(ev.Data, "message?sessionId=edge-test.") || strings.Contains(ev.Data, "token") {
		t.Errorf("endpoint = %q, want message?sessionId= with the route key, and no token", ev.Data)
	}
	return st, ev.Data
}

// postMessage posts to the endpoint, relative to /sse, with token ("" for
// none).
func postMessage(t *testing.T, hs *harness, endpoint, token, body string) *http.Response {
	t.Helper()
	req := hs.request(t, http.MethodPost, "/"+endpoint, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Del("Authorization")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return hs.do(t, req)
}

func TestLegacySSE(t *testing.T) {
	hs := newHarness(t, nil)
	st, endpoint := openSSE(t, hs)
	if got := hs.store.Counts()[session.TransportSSE]; got != 1 {
		t.Errorf("%d legacy sessions stored, want 1", got)
	}

	// The opener may post without repeating its token.
	resp := postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{}}}`)
	status(t, resp, http.StatusAccepted)
	ev := st.next(t)
	if ev.Name != "message" {
		t.Errorf("answer event %q, want message", ev.Name)
	}
	init := message(t, ev).(*jsonrpc.Response)
	var res struct{ ProtocolVersion string }
	if err := json.Unmarshal(init.Result, &res); err != nil || init.ID != jsonrpc.IntID(1) || res.ProtocolVersion != protocol.V20241105 {
		t.Errorf("initialize answer = %+v (%s), want id 1 and 2024-11-05", init, init.Result)
	}

	status(t, postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`), http.StatusAccepted)
	if n := hs.disp.note(t); n.Method != protocol.NotificationInitialized {
		t.Errorf("dispatcher got %s, want notifications/initialized", n.Method)
	}

	// With the opener's own token too.
	status(t, postMessage(t, hs, endpoint, tokAlice, `{"jsonrpc":"2.0","id":"e","method":"echo","params":{"x":1}}`), http.StatusAccepted)
	echo := message(t, st.next(t)).(*jsonrpc.Response)
	if echo.ID != jsonrpc.StringID("e") || string(echo.Result) != `{"x":1}` {
		t.Errorf("echo answer = %v %s", echo.ID.Raw(), echo.Result)
	}

	// A call that sends first: everything comes on the one stream.
	status(t, postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","id":2,"method":"progress"}`), http.StatusAccepted)
	if n, ok := message(t, st.next(t)).(*jsonrpc.Request); !ok || n.Method != protocol.NotificationProgress {
		t.Errorf("first message of the progress call = %v, want the progress notification", n)
	}
	if r, ok := message(t, st.next(t)).(*jsonrpc.Response); !ok || r.ID != jsonrpc.IntID(2) {
		t.Errorf("second message of the progress call = %v, want the response", r)
	}

	// The edge asks; the client answers with a POST.
	status(t, postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","id":3,"method":"ask"}`), http.StatusAccepted)
	ask := message(t, st.next(t)).(*jsonrpc.Request)
	if ask.Method != protocol.MethodRootsList || !ask.IsCall() {
		t.Fatalf("edge sent %s (call %v), want roots/list", ask.Method, ask.IsCall())
	}
	answer, _ := jsonrpc.Encode(jsonrpc.ResultResponse(ask.ID, json.RawMessage(`{"roots":[]}`)))
	status(t, postMessage(t, hs, endpoint, "", string(answer)), http.StatusAccepted)
	got := message(t, st.next(t)).(*jsonrpc.Response)
	if got.ID != jsonrpc.IntID(3) || string(got.Result) != `{"client":{"roots":[]}}` {
		t.Errorf("ask answer = %v %s", got.ID.Raw(), got.Result)
	}
}

func TestLegacySSERefusals(t *testing.T) {
	hs := newHarness(t, nil)
	_, endpoint := openSSE(t, hs)
	body := `{"jsonrpc":"2.0","id":1,"method":"echo"}`
	tests := []struct {
		name   string
		do     func() *http.Response
		status int
	}{
		{"another principal", func() *http.Response { return postMessage(t, hs, endpoint, tokBob, body) }, http.StatusForbidden},
		{"invalid token", func() *http.Response { return postMessage(t, hs, endpoint, "nope", body) }, http.StatusUnauthorized},
		{"unknown session", func() *http.Response { return postMessage(t, hs, "message?sessionId=edge-test.unknown", "", body) }, http.StatusNotFound},
		{"no session id", func() *http.Response { return postMessage(t, hs, "message", "", body) }, http.StatusBadRequest},
		{"not JSON-RPC", func() *http.Response { return postMessage(t, hs, endpoint, "", `{"id":1}`) }, http.StatusBadRequest},
		{"GET /message", func() *http.Response { return hs.do(t, hs.request(t, http.MethodGet, "/"+endpoint, "")) }, http.StatusMethodNotAllowed},
		{"POST /sse", func() *http.Response { return hs.do(t, hs.request(t, http.MethodPost, "/sse", body)) }, http.StatusMethodNotAllowed},
		{"GET /sse without token", func() *http.Response {
			req := hs.request(t, http.MethodGet, "/sse", "")
			req.Header.Del("Authorization")
			return hs.do(t, req)
		}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.do()
			status(t, resp, tt.status)
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// A streamable session id is not a legacy session.
	sid := hs.initialize(t, protocol.V20250618)
	status(t, postMessage(t, hs, "message?sessionId="+url.QueryEscape(sid), "", body), http.StatusNotFound)
}

func TestLegacySSEKeepAlive(t *testing.T) {
	hs := newHarness(t, func(o *downstream.Options) { o.KeepAlive = 20 * time.Millisecond })
	st, _ := openSSE(t, hs)
	timeout := time.After(wait)
	for {
		select {
		case ev := <-st.events:
			if ev.Comment == "keep-alive" {
				return
			}
			t.Fatalf("unexpected event %+v on an idle stream", ev)
		case <-timeout:
			t.Fatal("no keep-alive comment on an idle stream")
		}
	}
}

// A client that stops reading its stream costs the edge a bounded backlog
// (notifications give way beyond StreamLimit, so a flood is accepted) and
// is dropped when a write to it stalls.
func TestLegacySSESlowClient(t *testing.T) {
	hs := newHarness(t, func(o *downstream.Options) {
		o.StreamLimit = 4
		o.StreamWriteTimeout = 200 * time.Millisecond
	})
	req := hs.request(t, http.MethodGet, "/sse", "")
	resp := hs.do(t, req)
	status(t, resp, http.StatusOK)
	// Read only the endpoint event, by hand, and then stop reading.
	buf := make([]byte, 0, 256)
	one := make([]byte, 1)
	for !strings.Contains(string(buf), "\n\n") {
		if _, err := resp.Body.Read(one); err != nil {
			t.Fatal(err)
		}
		buf = append(buf, one[0])
	}
	endpoint := strings.TrimSpace(strings.SplitN(string(buf), "data: ", 2)[1])

	// Events of 64 KiB fill the socket's buffers; the flood itself is
	// accepted (its notifications give way), the stalled write is not.
	status(t, postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","id":1,"method":"flood","params":{"count":2000,"size":65536}}`), http.StatusAccepted)
	select {
	case err := <-hs.disp.flood:
		if err != nil && !errors.Is(err, session.ErrClosed) {
			t.Fatalf("the flood ended with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the flood did not end")
	}
	// The session ends: its endpoint is gone.
	deadline := time.Now().Add(wait)
	for {
		r := postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		r.Body.Close()
		if r.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled client's session still answers %d", r.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp.Body.Close()
}

// Closing the stream ends the session and what it has in flight.
func TestLegacySSEClientGoes(t *testing.T) {
	hs := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req := hs.request(t, http.MethodGet, "/sse", "").WithContext(ctx)
	resp, err := hs.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	st := readStream(t, resp)
	endpoint := st.next(t).Data
	status(t, postMessage(t, hs, endpoint, "", `{"jsonrpc":"2.0","id":1,"method":"block"}`), http.StatusAccepted)
	cancel()
	select {
	case <-hs.disp.gone:
	case <-time.After(wait):
		t.Fatal("a call in flight went on after its client's stream closed")
	}
	eventually(t, "the session to be removed", func() bool { return hs.store.Counts()[session.TransportSSE] == 0 })
}
