package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults of volume: servers that write garbage and huge lines, flood
// notifications or answer with an enormous result, and a client that stops
// reading its stream. The edge must log and bound each, never crash, and
// never let its memory grow without bound.

// maxEdgeRSS bounds the edge's resident memory while a fixture floods it.
const maxEdgeRSS = 300 << 20

// rssWatch samples the resident memory of pid until stop is called, and
// returns the peak.
func rssWatch(t testing.TB, pid int) (stop func() int64) {
	t.Helper()
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := readRSS(pid); err == nil && v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// readRSS is rss without a test to fail.
func readRSS(pid int) (int64, error) {
	f, err := procStatFields(pid)
	if err != nil || len(f) < 22 {
		return 0, fmt.Errorf("stat of %d: %v", pid, err)
	}
	var pages int64
	fmt.Sscan(f[21], &pages)
	return pages * 4096, nil
}

// alive fails the test unless the process still runs.
func (p *proc) alive(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("atrax %s exited: %v", p.Mode, p.waitErr)
	default:
	}
}

// longestLine returns the length of the longest stderr line of p.
func (p *proc) longestLine() int {
	n := 0
	for _, l := range p.Lines() {
		n = max(n, len(l))
	}
	return n
}

// fixtureGateway runs atrax serve with the test fixture name (its -name
// flag set to name, args after it, a 10 minute call timeout) as its only
// server, and returns once the server runs: the process, the peak of the
// edge's resident memory from now on (rssWatch), and a wire client with the
// admin token, closed when the test ends.
func fixtureGateway(t *testing.T, name string, args ...string) (*proc, func() int64, *wireClient) {
	t.Helper()
	servers := fmt.Sprintf("%q: ", name) + fixtureDef(t, name, append([]string{"-name", name}, args...), map[string]any{"timeout": "10m"})
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	peak := rssWatch(t, p.cmd.Process.Pid)
	waitUpstreams(t, p, name)
	wc := newWireClient(p.HTTP, adminToken)
	t.Cleanup(wc.close)
	return p, peak, wc
}

// wantMemoryBounded fails the test when the edge's memory peaked above
// maxEdgeRSS.
func wantMemoryBounded(t testing.TB, peak int64) {
	t.Helper()
	if peak > maxEdgeRSS {
		t.Errorf("the edge's memory peaked at %d MiB, want under %d MiB", peak>>20, maxEdgeRSS>>20)
		return
	}
	t.Logf("memory peak %d MiB", peak>>20)
}

// TestFaultGarbageOutput runs a server that writes garbage to stdout
// before it even reads its first message and before each answer: text,
// broken JSON, binary, JSON that is not JSON-RPC, answers to requests
// nobody made, and a 20 MiB line. The edge skips each (logged, and the
// log bounded), keeps the connection, and answers the calls.
func TestFaultGarbageOutput(t *testing.T) {
	t.Parallel()
	p, peak, wc := fixtureGateway(t, "garbage")
	ctx := ctxFor(t, 2*time.Minute)
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, err := s.call(cctx, "tools/call", toolCall("garbage__spew", nil))
		cancel()
		if err != nil || r.Error != nil || r.text() != "answered after the garbage" {
			t.Fatalf("call %d of garbage__spew: %v %+v %q", i, err, r, r.text())
		}
		r, err = s.call(ctx, "tools/call", toolCall("garbage__echo", map[string]any{"message": "still here"}))
		if err != nil || r.text() != "garbage: still here" {
			t.Errorf("garbage__echo after call %d: %v %+v", i, err, r)
		}
	}
	p.alive(t)
	if st := upstreamOf(t, p, "garbage"); str(st["state"]) != "running" || mcpNum(st["restarts"]) != 0 {
		t.Errorf("/status of the garbage server: %v; want running, never restarted", st)
	}
	if _, err := p.waitLogFrom(0, func(m map[string]any) bool {
		return str(m["msg"]) == "upstream wrote a line that is not an MCP message; skipped"
	}, time.Second); err != nil {
		t.Errorf("the skipped lines were not logged: %v", err)
	}
	if n := p.longestLine(); n > 8<<10 {
		t.Errorf("the longest log line is %d bytes: the garbage reached the log unbounded", n)
	}
	wantMemoryBounded(t, peak())
}

// TestFaultNotificationFlood runs a server that sends a thousand
// notifications a second that belong to no call, and floods calls (one
// per transport) with 20000 progress notifications each: clients reading their streams keep getting answers, the
// edge's memory stays bounded, and nothing crashes.
func TestFaultNotificationFlood(t *testing.T) {
	t.Parallel()
	p, peak, wc := fixtureGateway(t, "flood", "-background", "1000")
	ctx := ctxFor(t, 2*time.Minute)

	s, standalone, legacy := openEvery(t, ctx, wc)

	var wg sync.WaitGroup
	for i, call := range []func(context.Context) (*rpcReply, error){
		func(c context.Context) (*rpcReply, error) {
			return s.call(c, "tools/call", floodCall("s"))
		},
		func(c context.Context) (*rpcReply, error) {
			return legacy.call(c, "tools/call", floodCall("l"))
		},
		func(c context.Context) (*rpcReply, error) {
			return wc.stateless(c, "tools/call", floodCall("x"))
		},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			r, err := call(cctx)
			switch {
			case cctx.Err() != nil:
				t.Errorf("flood call %d: no answer within 60 s", i)
			case err != nil:
				// A client too slow for the flood may be dropped; it
				// must be told, not left hanging.
				t.Logf("flood call %d: %v", i, err)
			case r.Error != nil:
				t.Logf("flood call %d: %+v", i, r.Error)
			default:
				t.Logf("flood call %d: %q with %d notifications before it", i, r.text(), len(r.Notifications))
			}
		}()
	}
	// Meanwhile, and after, a plain call is answered promptly.
	for i := 0; i < 10; i++ {
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := wc.stateless(cctx, "tools/call", toolCall("flood__echo", map[string]any{"message": "hi"}))
		cancel()
		if err != nil || r.text() != "flood: hi" {
			t.Errorf("flood__echo during the flood: %v %+v", err, r)
		} else if d := time.Since(start); d > 5*time.Second {
			t.Errorf("flood__echo during the flood took %v", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	p.alive(t)
	for name, call := range map[string]func(context.Context) (*rpcReply, error){
		"legacy": func(c context.Context) (*rpcReply, error) {
			return legacy.call(c, "tools/call", toolCall("flood__echo", map[string]any{"message": "hi"}))
		},
		"streamable": func(c context.Context) (*rpcReply, error) {
			return s.call(c, "tools/call", toolCall("flood__echo", map[string]any{"message": "hi"}))
		},
	} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := call(cctx)
		cancel()
		if err != nil || r.text() != "flood: hi" {
			t.Logf("%s session after the flood: %v %+v (it may have been dropped as too slow)", name, err, r)
		}
	}
	if n := standalone.notifications("notifications/message"); n == 0 {
		t.Errorf("the standalone stream got none of the background notifications")
	}
	wantMemoryBounded(t, peak())
}

// floodCall is the params of a call of flood__flood that asks for
// progress: 20000 notifications/progress of 200 bytes, on the call's own
// stream.
func floodCall(token string) map[string]any {
	return map[string]any{"name": "flood__flood", "arguments": map[string]any{"count": 20000, "bytes": 200},
		"_meta": map[string]any{"progressToken": token}}
}

// TestFaultEnormousResult calls a tool that answers with 8 MiB (under the
// edge's 16 MiB cap on one message: passed on) and with 20 MiB (over it:
// the call fails at once with an error that says why, instead of waiting
// for the server's 10 minute timeout), with memory bounded throughout.
func TestFaultEnormousResult(t *testing.T) {
	t.Parallel()
	p, peak, wc := fixtureGateway(t, "huge")
	ctx := ctxFor(t, 3*time.Minute)
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	r, err := s.call(cctx, "tools/call", toolCall("huge__big", map[string]any{"bytes": 8 << 20}))
	cancel()
	if err != nil || r.Error != nil || len(r.text()) != 8<<20 {
		t.Errorf("an 8 MiB result: %v, error %+v, %d bytes of text", err, r.Error, len(r.text()))
	}

	cctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	start := time.Now()
	r, err = s.call(cctx, "tools/call", toolCall("huge__big", map[string]any{"bytes": 20 << 20}))
	hung := cctx.Err() != nil
	cancel()
	switch {
	case hung:
		t.Errorf("a 20 MiB result: no answer within 60 s (the server's timeout is 10 m): the call hangs")
	case err != nil:
		t.Errorf("a 20 MiB result: %v", err)
	case r.Error == nil:
		t.Errorf("a 20 MiB result over the 16 MiB cap was passed on (%d bytes)", len(r.text()))
	case !strings.Contains(r.Error.Message, "cap") && !strings.Contains(r.Error.Message, "large"):
		t.Errorf("a 20 MiB result: error %+v does not say it was too large", r.Error)
	default:
		t.Logf("a 20 MiB result failed after %v: %+v", time.Since(start).Round(time.Millisecond), r.Error)
	}
	r, err = s.call(ctx, "tools/call", toolCall("huge__echo", map[string]any{"message": "after"}))
	if err != nil || r.text() != "huge: after" {
		t.Errorf("huge__echo after the enormous results: %v %+v", err, r)
	}
	p.alive(t)
	wantMemoryBounded(t, peak())
}

// stalledStream opens an SSE stream on a raw connection with a small
// receive buffer, reads its response headers (and, for /sse, the endpoint
// event, whose session id it returns), and then reads nothing more.
func stalledStream(t *testing.T, base, path string, headers ...string) (net.Conn, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n", path, u.Host, adminToken)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(callTimeout))
	br := bufio.NewReaderSize(conn, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("GET %s: %q %v", path, status, err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	sid := ""
	if path == "/sse" {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("GET /sse: no endpoint event: %v", err)
			}
			if d, ok := strings.CutPrefix(strings.TrimSpace(l), "data: "); ok {
				ep, _ := url.Parse(d)
				sid = ep.Query().Get("sessionId")
				break
			}
		}
	}
	conn.SetReadDeadline(time.Time{})
	return conn, sid
}

// TestFaultStalledReader: a client opens its SSE stream and stops reading
// it while a server floods that stream. The edge buffers a bounded amount,
// then drops that client (its session is gone: 404), while another client
// keeps getting answers and memory stays bounded.
func TestFaultStalledReader(t *testing.T) {
	t.Parallel()
	servers := `"flood": ` + fixtureDef(t, "flood", []string{"-name", "flood"}, map[string]any{"timeout": "10m"})
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	waitUpstreams(t, p, "flood")
	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	ctx := ctxFor(t, 3*time.Minute)

	// healthy calls echo on its own session until stop, failing the test
	// on any answer that is wrong or slow.
	healthy := func(t *testing.T) (stop func() int) {
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var n atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
				}
				start := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				r, err := s.call(cctx, "tools/call", toolCall("flood__echo", map[string]any{"message": "ok"}))
				cancel()
				if err != nil || r.text() != "flood: ok" {
					t.Errorf("the other client's call: %v %+v", err, r)
				} else if d := time.Since(start); d > 5*time.Second {
					t.Errorf("the other client's call took %v", d)
				}
				n.Add(1)
			}
		}()
		return func() int { close(done); wg.Wait(); return int(n.Load()) }
	}

	t.Run("legacy", func(t *testing.T) {
		peak := rssWatch(t, p.cmd.Process.Pid)
		stop := healthy(t)
		_, sid := stalledStream(t, p.HTTP, "/sse")
		from := len(p.Logs())
		// The call's own notifications go on the one legacy stream.
		msg := request(1, "tools/call", toolCall("flood__flood", map[string]any{"count": 20000, "bytes": 1000}))
		if r := httpDo(t, "POST", p.HTTP+"/message?sessionId="+url.QueryEscape(sid), adminToken, string(msg)); r.Status != 202 {
			t.Fatalf("POST /message: %d %s", r.Status, r.Body)
		}
		if !poll(60*time.Second, func() bool {
			return httpDo(t, "POST", p.HTTP+"/message?sessionId="+url.QueryEscape(sid), adminToken, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Status == 404
		}) {
			t.Errorf("the client that stopped reading was not dropped within 60 s (its session still takes messages)")
		}
		if _, err := p.waitLogFrom(from, func(m map[string]any) bool { return strings.Contains(str(m["msg"]), "dropped") }, time.Second); err != nil {
			t.Errorf("the drop was not logged: %v", err)
		}
		t.Logf("the other client made %d calls meanwhile", stop())
		wantMemoryBounded(t, peak())
	})

	t.Run("streamable", func(t *testing.T) {
		peak := rssWatch(t, p.cmd.Process.Pid)
		stop := healthy(t)
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stalledStream(t, p.HTTP, "/mcp", "Mcp-Session-Id", s.ID, "MCP-Protocol-Version", "2025-06-18")
		from := len(p.Logs())
		// Notifications that follow the answer belong to no call: they go
		// to every session's standalone stream.
		r, err := s.call(ctx, "tools/call", toolCall("flood__flood", map[string]any{"count": 20000, "bytes": 1000, "after": true}))
		if err != nil || r.Error != nil {
			t.Fatalf("flood__flood: %v %+v", err, r)
		}
		if !poll(60*time.Second, func() bool {
			_, err := s.call(ctx, "ping", nil)
			return err != nil && strings.Contains(err.Error(), "404")
		}) {
			t.Errorf("the client that stopped reading was not dropped within 60 s (its session still answers)")
		}
		if _, err := p.waitLogFrom(from, func(m map[string]any) bool { return strings.Contains(str(m["msg"]), "dropped") }, time.Second); err != nil {
			t.Errorf("the drop was not logged: %v", err)
		}
		t.Logf("the other client made %d calls meanwhile", stop())
		wantMemoryBounded(t, peak())
	})
	p.alive(t)
}

// TestFaultFloodedCallKeepsItsAnswer: a client that reads its POST stream
// as fast as it can, while the server floods the call with progress
// notifications, gets the call's answer (or an error) at the end of the
// stream, never a stream that ends without one.
func TestFaultFloodedCallKeepsItsAnswer(t *testing.T) {
	t.Parallel()
	servers := `"flood": ` + fixtureDef(t, "flood", []string{"-name", "flood"}, map[string]any{"timeout": "10m"})
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	waitUpstreams(t, p, "flood")
	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	ctx := ctxFor(t, 2*time.Minute)
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		params := map[string]any{"name": "flood__flood", "arguments": map[string]any{"count": 50000, "bytes": 200},
			"_meta": map[string]any{"progressToken": fmt.Sprint("p", i)}}
		r, err := s.call(ctx, "tools/call", params)
		switch {
		case err != nil:
			t.Errorf("call %d: %v", i, err)
		case r.Error != nil:
			t.Logf("call %d: an error, fine: %+v", i, r.Error)
		case r.text() != "flooded":
			t.Errorf("call %d: %q", i, r.text())
		default:
			t.Logf("call %d: answered after %d notifications", i, len(r.Notifications))
		}
	}
}
