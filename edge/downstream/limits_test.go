package downstream_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// limited checks a refusal by a limit: 429, a Retry-After of at least
// retry seconds, and a JSON-RPC error that names the limit, for request id
// wantID ("" for none).
func limited(t *testing.T, resp *http.Response, limit string, retry int, wantID string) {
	t.Helper()
	status(t, resp, http.StatusTooManyRequests)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < retry {
		t.Errorf("Retry-After = %q, want at least %d", resp.Header.Get("Retry-After"), retry)
	}
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		ID    json.RawMessage `json:"id"`
		Error *jsonrpc.Error  `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		t.Fatalf("429 body %s is not a JSON-RPC error", body)
	}
	if env.Error.Code != jsonrpc.CodeLimitExceeded || !strings.Contains(env.Error.Message, limit) {
		t.Errorf("error = %d %q, want %d naming %s", env.Error.Code, env.Error.Message, jsonrpc.CodeLimitExceeded, limit)
	}
	if wantID == "" && string(env.ID) == "null" {
		env.ID = nil // no id and a null id say the same
	}
	if string(env.ID) != wantID {
		t.Errorf("error id = %s, want %s", env.ID, wantID)
	}
}

// blockCall starts a call that waits until its session ends.
func blockCall(t *testing.T, hs *harness, sid string, id int) {
	go func() {
		req := hs.request(t, http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"block"}`)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		if resp, err := hs.srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
}

// A token with its in-flight places taken is refused at once, with 429;
// another token is not; the places come back when the calls end.
func TestLimitInFlightPerToken(t *testing.T) {
	lim := limits.New(limits.Options{MaxInFlightPerToken: 1})
	hs := newHarness(t, func(o *downstream.Options) { o.Limits = lim })
	sid := hs.initialize(t, protocol.V20250618)
	blockCall(t, hs, sid, 1)
	eventually(t, "the call to hold its place", func() bool { return lim.Usage().InFlight == 1 })

	limited(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":7,"method":"echo"}`), limits.LimitInFlightPerToken, 1, "7")
	// Notifications and responses take no place.
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`), http.StatusAccepted)
	hs.disp.note(t)

	// Bob has places of his own.
	bob := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`,
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokBob) })
	status(t, bob, http.StatusOK)
	bobSID := bob.Header.Get("Mcp-Session-Id")
	status(t, hs.mcpPOST(t, bobSID, `{"jsonrpc":"2.0","id":1,"method":"echo"}`, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokBob) }), http.StatusOK)

	// The blocked call ends with its session; alice's place comes back.
	hs.store.Remove(hs.store.Get(sid))
	<-hs.disp.gone
	eventually(t, "the place to come back", func() bool { return lim.Usage().InFlight == 0 })
	sid = hs.initialize(t, protocol.V20250618)
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":8,"method":"echo"}`), http.StatusOK)
}

// The edge-wide cap refuses everyone once it is full.
func TestLimitInFlightPerEdge(t *testing.T) {
	lim := limits.New(limits.Options{MaxInFlight: 1})
	hs := newHarness(t, func(o *downstream.Options) { o.Limits = lim })
	sid := hs.initialize(t, protocol.V20250618)
	blockCall(t, hs, sid, 1)
	eventually(t, "the call to hold its place", func() bool { return lim.Usage().InFlight == 1 })
	resp := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`,
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokBob) })
	limited(t, resp, limits.LimitInFlight, 1, "0")
	if u := lim.Usage(); u.Sessions != 1 {
		t.Errorf("a refused initialize kept a session place: %+v", u)
	}
}

// A token over its rate is refused on every transport, with a Retry-After
// saying when the bucket has room again.
func TestLimitRate(t *testing.T) {
	lim := limits.New(limits.Options{RequestsPerSecond: 0.01, Burst: 3}) // one request per 100s
	hs := newHarness(t, func(o *downstream.Options) { o.Limits = lim })
	sid := hs.initialize(t, protocol.V20250618)                                              // 1
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":1,"method":"echo"}`), http.StatusOK) // 2
	st, endpoint := openSSE(t, hs)                                                           // 3
	limited(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":2,"method":"echo"}`), limits.LimitRate, 50, "2")
	limited(t, postMessage(t, hs, endpoint, tokAlice, `{"jsonrpc":"2.0","id":3,"method":"echo"}`), limits.LimitRate, 50, "3")
	limited(t, openGET(t, hs, sid), limits.LimitRate, 50, "")
	req := hs.request(t, http.MethodGet, "/sse", "")
	limited(t, hs.do(t, req), limits.LimitRate, 50, "")
	// A notification is not a request.
	status(t, hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`), http.StatusAccepted)
	// The legacy stream is unharmed by its POST's refusal.
	status(t, postMessage(t, hs, endpoint, tokAlice, `{"jsonrpc":"2.0","method":"notifications/initialized"}`), http.StatusAccepted)
	select {
	case ev := <-st.events:
		t.Errorf("unexpected event on the legacy stream: %+v", ev)
	default:
	}
	// Stateless requests pay too.
	resp := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":"s1","method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		func(r *http.Request) {
			r.Header.Set("MCP-Protocol-Version", "2026-07-28")
			r.Header.Set("Mcp-Method", "tools/list")
		})
	limited(t, resp, limits.LimitRate, 50, `"s1"`)
	// Bob's bucket is his own.
	bob := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`,
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokBob) })
	status(t, bob, http.StatusOK)
}

// Sessions per token: a second session is refused until the first ends,
// on either session transport.
func TestLimitSessionsPerToken(t *testing.T) {
	lim := limits.New(limits.Options{MaxSessionsPerToken: 1})
	hs := newHarness(t, func(o *downstream.Options) { o.Limits = lim })
	sid := hs.initialize(t, protocol.V20250618)
	resp := hs.mcpPOST(t, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	limited(t, resp, limits.LimitSessionsPerToken, 1, "0")
	limited(t, hs.do(t, hs.request(t, http.MethodGet, "/sse", "")), limits.LimitSessionsPerToken, 1, "")

	del := hs.request(t, http.MethodDelete, "/mcp", "")
	del.Header.Set("Mcp-Session-Id", sid)
	status(t, hs.do(t, del), http.StatusNoContent)
	if u := lim.Usage(); u.Sessions != 0 {
		t.Errorf("after DELETE: %+v", u)
	}
	hs.initialize(t, protocol.V20250618)
	// A refused initialize (by the dispatcher) gives its place back.
	lim2 := limits.New(limits.Options{MaxSessionsPerToken: 1})
	hs2 := newHarness(t, func(o *downstream.Options) { o.Limits = lim2 })
	status(t, hs2.mcpPOST(t, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"refuse"}}`), http.StatusOK)
	if u := lim2.Usage(); u.Sessions != 0 || u.InFlight != 0 {
		t.Errorf("after a refused initialize: %+v", u)
	}
}

// timeoutHarness is a harness whose server has the edge's read timeout,
// and whose handler has a write timeout, both short.
func timeoutHarness(t *testing.T) *harness {
	t.Helper()
	hs := newHarness(t, func(o *downstream.Options) {
		o.KeepAlive = 20 * time.Millisecond
		o.WriteTimeout = 100 * time.Millisecond
	})
	hs.srv.Close()
	mux := http.NewServeMux()
	hs.h.Register(mux)
	hs.srv = httptest.NewUnstartedServer(mux)
	hs.srv.Config.ReadTimeout = 100 * time.Millisecond
	hs.srv.Start()
	t.Cleanup(func() {
		hs.srv.CloseClientConnections()
		hs.srv.Close()
	})
	return hs
}

// The server's read timeout bounds reading a request, not the streams and
// calls that follow: a stream outlives it many times over.
func TestReadTimeoutSparesStreams(t *testing.T) {
	hs := timeoutHarness(t)
	st, _ := openSSE(t, hs)
	sid := hs.initialize(t, protocol.V20250618)
	get := readStream(t, openGET(t, hs, sid))
	deadline := time.After(600 * time.Millisecond)
	for keepalives := 0; ; {
		select {
		case ev := <-st.events:
			if ev.Comment == "keep-alive" {
				keepalives++
			}
			continue
		case <-st.done:
			t.Fatal("the legacy stream ended at the read timeout")
		case <-get.done:
			t.Fatal("the streamable GET stream ended at the read timeout")
		case <-deadline:
			if keepalives < 5 {
				t.Errorf("%d keep-alives in 600ms", keepalives)
			}
		}
		break
	}
	// A call that outlives the read timeout is answered.
	blockCall(t, hs, sid, 9)
	select {
	case <-hs.disp.gone:
		t.Fatal("a call was cancelled at the read timeout")
	case <-time.After(400 * time.Millisecond):
	}
}

// The write deadline of a JSON answer does not stay on its connection: the
// stream the same connection carries next lives on.
func TestWriteTimeoutLeavesNoDeadline(t *testing.T) {
	hs := timeoutHarness(t)
	sid := hs.initialize(t, protocol.V20250618)
	resp := hs.mcpPOST(t, sid, `{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	status(t, resp, http.StatusOK)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The client reuses the connection for the GET.
	get := readStream(t, openGET(t, hs, sid))
	select {
	case <-get.done:
		t.Fatal("the stream ended: the JSON answer's write deadline stayed on the connection")
	case <-time.After(500 * time.Millisecond):
	}
}
