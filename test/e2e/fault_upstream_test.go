package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Faults of upstream servers: a stdio child killed or crashing in the
// middle of a call, one that crashes in a loop, one that never answers.
// The fixtures are the small servers of test/fixtures; each server gets
// a 10 minute timeout unless the test is about timeouts, so that a hang
// shows as a test deadline instead of passing.

// TestFaultKilledChild kills a stdio server (kill -9) in the middle of a
// call, then lets it crash itself in the middle of another: the caller
// gets a JSON-RPC error at once each time, a second server answers during
// the outage, the first comes back (as a new process, after a backoff) and
// its tools return with notifications/tools/list_changed on both session
// transports.
func TestFaultKilledChild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pids := filepath.Join(dir, "crasher.pids")
	servers := `"crasher": ` + fixtureDef(t, "crasher", []string{"-name", "crasher", "-pidfile", pids, "-restartdelay", "3s"}, map[string]any{"timeout": "10m"}) +
		`, "other": ` + fixtureDef(t, "slow", []string{"-name", "other"}, map[string]any{"timeout": "10m"})
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	waitUpstreams(t, p, "crasher", "other")

	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	ctx := ctxFor(t, 3*time.Minute)
	sess, standalone, legacy := openEvery(t, ctx, wc)
	const changed = "notifications/tools/list_changed"

	for _, how := range []string{"kill -9", "crash"} {
		t.Run(strings.ReplaceAll(how, " ", ""), func(t *testing.T) {
			before := lastPID(pids)
			restarts := mcpNum(upstreamOf(t, p, "crasher")["restarts"])
			changedBefore := []int{standalone.notifications(changed), legacy.notifications(changed)}
			from := len(p.Logs())

			type outcome struct {
				r   *rpcReply
				err error
				at  time.Time
			}
			done := make(chan outcome, 1)
			tool := "crasher__block"
			if how == "crash" {
				tool = "crasher__crash"
			}
			go func() {
				r, err := sess.call(ctx, "tools/call", toolCall(tool, nil))
				done <- outcome{r, err, time.Now()}
			}()
			ended := time.Now()
			if how == "kill -9" {
				if _, err := p.waitLogFrom(from, func(m map[string]any) bool {
					return strings.Contains(str(m["msg"]), "crasher: blocking call")
				}, callTimeout); err != nil {
					t.Fatalf("the blocking call did not reach the server: %v", err)
				}
				ended = time.Now()
				if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
					t.Fatalf("kill -9 %d: %v", before, err)
				}
			}
			var o outcome
			select {
			case o = <-done:
			case <-time.After(callTimeout):
				t.Fatalf("%s: no answer to the call within %v of the server's end (its timeout is 10m)", how, callTimeout)
			}
			if o.err != nil {
				t.Fatalf("%s: the call failed at the HTTP level: %v", how, o.err)
			}
			if o.r.Error == nil || !strings.Contains(o.r.Error.Message, "crasher") {
				t.Errorf("%s: the call's answer: %s %+v; want a JSON-RPC error naming the server", how, o.r.Result, o.r.Error)
			}
			if took := o.at.Sub(ended); took > 10*time.Second {
				t.Errorf("%s: the error came %v after the server's end, want at once", how, took)
			}
			t.Logf("%s: the call ended %v after the server did: %v", how, o.at.Sub(ended).Round(time.Millisecond), o.r.Error)

			// The outage: the server waits 3 s before it serves again.
			r, err := sess.call(ctx, "tools/call", toolCall("other__echo", map[string]any{"message": "during the outage"}))
			if err != nil || r.Error != nil || r.text() != "other: during the outage" {
				t.Errorf("%s: other__echo during the outage: %v %+v %q", how, err, r.Error, r.text())
			}
			// /status learns of it within a moment (the edge reports to the
			// control plane asynchronously).
			var st map[string]any
			if !poll(2*time.Second, func() bool {
				st = upstreamOf(t, p, "crasher")
				return str(st["state"]) != "running" && mcpNum(st["restarts"]) > restarts && str(st["lastError"]) != ""
			}) && lastPID(pids) == before {
				t.Errorf("%s: /status during the outage: %v; want crasher not running, with a restart and a last error", how, st)
			}
			start := time.Now()
			r, err = sess.call(ctx, "tools/call", toolCall("crasher__echo", map[string]any{"message": "x"}))
			if err != nil || r.Error == nil {
				t.Errorf("%s: crasher__echo during the outage: %v %s %+v; want a JSON-RPC error", how, err, r.Result, r.Error)
			} else if time.Since(start) > 5*time.Second {
				t.Errorf("%s: crasher__echo during the outage took %v to fail", how, time.Since(start))
			}

			// It comes back, as a new process, and its tools with it.
			if !poll(pollTimeout, func() bool { return lastPID(pids) != before }) {
				t.Fatalf("%s: the server was not started again within %v", how, pollTimeout)
			}
			waitUpstreams(t, p, "crasher")
			if !poll(pollTimeout, func() bool {
				return standalone.notifications(changed) >= changedBefore[0]+2 && legacy.notifications(changed) >= changedBefore[1]+2
			}) {
				t.Errorf("%s: %s: %d on the streamable stream, %d on the legacy one; want two more on each (tools gone, tools back)",
					how, changed, standalone.notifications(changed)-changedBefore[0], legacy.notifications(changed)-changedBefore[1])
			}
			l, err := sess.call(ctx, "tools/list", nil)
			if err != nil || !slices.Contains(l.names("tools"), "crasher__echo") {
				t.Errorf("%s: tools/list after the restart: %v %v", how, err, l.names("tools"))
			}
			lr, err := legacy.call(ctx, "tools/call", toolCall("crasher__echo", map[string]any{"message": "back"}))
			if err != nil || lr.text() != "crasher: back" {
				t.Errorf("%s: crasher__echo on the legacy session after the restart: %v %+v", how, err, lr)
			}
			if got := mcpNum(upstreamOf(t, p, "crasher")["restarts"]); got < restarts+1 {
				t.Errorf("%s: /status restarts %v, want more than %v", how, got, restarts)
			}
		})
	}
}

// TestFaultCrashLoop runs a server that exits as soon as it starts: the
// edge restarts it with a growing backoff (a handful of starts in ten
// seconds, not hundreds), reports it in /status with its last error, does
// not spin the CPU meanwhile, and serves the other server as usual.
func TestFaultCrashLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	servers := `"loop": ` + fixtureDef(t, "crashloop", []string{"-starts", starts}, nil) +
		`, "ok": ` + fixtureDef(t, "catalog", []string{"-name", "ok"}, nil)
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	waitUpstreams(t, p, "ok")

	var first time.Time
	if !poll(pollTimeout, func() bool { return len(fileLines(starts)) > 0 }) {
		t.Fatalf("the crash-looping server was never started")
	}
	ns, _ := strconv.ParseInt(fileLines(starts)[0], 10, 64)
	first = time.Unix(0, ns)

	// CPU of the edge over five seconds, well into the loop.
	time.Sleep(time.Until(first.Add(4 * time.Second)))
	pid := p.cmd.Process.Pid
	cpu0 := cpuTime(t, pid)
	time.Sleep(5 * time.Second)
	cpu := cpuTime(t, pid) - cpu0
	t.Logf("the edge used %v of CPU in 5 s of the crash loop", cpu)
	if cpu > 500*time.Millisecond {
		t.Errorf("the edge used %v of CPU in 5 s while one server crash-loops; want it idle", cpu)
	}

	time.Sleep(time.Until(first.Add(10 * time.Second)))
	var in10 []time.Duration
	for _, l := range fileLines(starts) {
		ns, _ := strconv.ParseInt(l, 10, 64)
		if at := time.Unix(0, ns).Sub(first); at <= 10*time.Second {
			in10 = append(in10, at.Round(time.Millisecond))
		}
	}
	t.Logf("starts in the first 10 s, after the first: %v", in10)
	// Capped exponential backoff from 250 ms (with jitter down to half)
	// allows at most 7 starts (6 restarts) in 10 s.
	if len(in10) > 7 || len(in10) < 3 {
		t.Errorf("%d starts in 10 s; want between 3 and 7 (restarted with a growing backoff)", len(in10))
	}
	for i := 2; i < len(in10); i++ {
		if gap, prev := in10[i]-in10[i-1], in10[i-1]-in10[max(i-2, 0)]; gap < prev*3/4 && gap < 100*time.Millisecond {
			t.Errorf("start %d came %v after the previous one, the one before %v after its own: the backoff does not grow", i, gap, prev)
		}
	}

	st := upstreamOf(t, p, "loop")
	if s := str(st["state"]); s != "failed" && s != "restarting" {
		t.Errorf("/status state of the crash-looping server: %q, want failed or restarting; %v", s, st)
	}
	if str(st["lastError"]) == "" {
		t.Errorf("/status of the crash-looping server has no lastError: %v", st)
	}
	if r := mcpNum(st["restarts"]); r < 2 {
		t.Errorf("/status restarts of the crash-looping server: %v, want at least 2", st["restarts"])
	}
	t.Logf("/status: %v", st)

	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	r, err := wc.stateless(ctxFor(t, callTimeout), "tools/call", toolCall("ok__echo", map[string]any{"message": "fine"}))
	if err != nil || r.Error != nil || r.text() != "ok: fine" {
		t.Errorf("ok__echo beside the crash loop: %v %+v %q", err, r.Error, r.text())
	}
}

// TestFaultNeverAnswers calls a tool whose server never answers, with a
// 2 s timeout on the server: the call fails at its timeout with an error
// that says so, the server is told with notifications/cancelled, and after
// many such calls on every transport the edge holds no more goroutines
// (or threads) or memory than before.
func TestFaultNeverAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cancelled := filepath.Join(dir, "cancelled")
	servers := `"silent": ` + fixtureDef(t, "silent", []string{"-name", "silent", "-cancelled", cancelled}, map[string]any{"timeout": "2s"})
	p := startAtrax(t, "serve", faultConfig(servers, ""), debugEnv(nil))
	waitUpstreams(t, p, "silent")
	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	ctx := ctxFor(t, 2*time.Minute)

	sess, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := sess.call(ctx, "tools/call", toolCall("silent__wait", nil))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the call failed at the HTTP level: %v", err)
	}
	if r.Error == nil || !strings.Contains(r.Error.Message, "timeout") || !strings.Contains(r.Error.Message, "silent") {
		t.Errorf("the call to a server that never answers: %s %+v; want a JSON-RPC error naming the server and its timeout", r.Result, r.Error)
	}
	if took < 1900*time.Millisecond || took > 10*time.Second {
		t.Errorf("the call ended after %v, want at its 2 s timeout", took)
	}
	t.Logf("after %v: %+v", took.Round(time.Millisecond), r.Error)
	if !poll(pollTimeout, func() bool { return len(fileLines(cancelled)) == 1 }) {
		t.Errorf("the server was not sent notifications/cancelled for the timed-out call (cancelled: %v)", fileLines(cancelled))
	}

	// Warm every transport once, then take the baseline.
	legacy, err := wc.openLegacy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.call(ctx, "tools/call", toolCall("silent__echo", nil)); err != nil {
		t.Fatal(err)
	}
	legacy.close()
	if _, err := wc.stateless(ctx, "tools/call", toolCall("silent__echo", nil)); err != nil {
		t.Fatal(err)
	}
	wc.close()
	time.Sleep(time.Second)
	base := p.read(t)
	t.Logf("baseline: %v", base)

	const rounds = 3
	const perRound = 12
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		errs := make(chan string, perRound)
		for i := 0; i < perRound; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r *rpcReply
				var err error
				switch i % 3 {
				case 0:
					var s *streamableSession
					if s, err = wc.open(ctx); err == nil {
						r, err = s.call(ctx, "tools/call", toolCall("silent__wait", nil))
						s.close(ctx)
					}
				case 1:
					var l *legacySession
					if l, err = wc.openLegacy(ctx); err == nil {
						r, err = l.call(ctx, "tools/call", toolCall("silent__wait", nil))
						l.close()
					}
				case 2:
					r, err = wc.stateless(ctx, "tools/call", toolCall("silent__wait", nil))
				}
				if err == nil && r.Error == nil {
					err = fmt.Errorf("the call succeeded: %s", r.Result)
				}
				if err != nil {
					errs <- fmt.Sprintf("transport %d: %v", i%3, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("round %d: %s", round, e)
		}
	}
	want := 1 + rounds*perRound
	if !poll(pollTimeout, func() bool { return len(fileLines(cancelled)) >= want }) {
		t.Errorf("notifications/cancelled reached the server %d times, want %d", len(fileLines(cancelled)), want)
	}
	wc.close()
	checkBaseline(t, p, base, 15*time.Second)
}

// checkBaseline waits up to wait for the edge to hold no more than base
// (with a little slack) and fails the test if it does not.
func checkBaseline(t testing.TB, p *proc, base procReading, wait time.Duration) procReading {
	t.Helper()
	var now procReading
	last := time.Now()
	ok := poll(wait, func() bool {
		now = p.read(t)
		if os.Getenv("ATRAX_E2E_TRACE") != "" && time.Since(last) > 2*time.Second {
			t.Logf("waiting for the baseline: %v", now)
			last = time.Now()
			if os.Getenv("ATRAX_E2E_TRACE") == "dump" {
				t.Logf("%s", p.goroutineDump())
			}
		}
		return near(now, base)
	})
	t.Logf("after: %v", now)
	if !ok {
		t.Errorf("the edge did not return to its baseline within %v:\nbefore: %v\nafter:  %v", wait, base, now)
		if now.Goroutines > base.Goroutines+goroutineSlack {
			t.Logf("goroutines:\n%s", p.goroutineDump())
		}
	}
	return now
}

const goroutineSlack = 12

// near reports whether now is back at base: goroutines (or, without a
// profile endpoint, threads), open files and child processes within a
// small slack, memory within 64 MiB.
func near(now, base procReading) bool {
	if base.Goroutines >= 0 && now.Goroutines > base.Goroutines+goroutineSlack {
		return false
	}
	if base.Goroutines < 0 && now.Threads > base.Threads+8 {
		return false
	}
	return now.FDs <= base.FDs+8 && now.Children <= base.Children && now.RSS <= base.RSS+64<<20
}

// TestFaultClientGoesAway: a client that goes away in the middle of a call
// gets the call cancelled upstream (the server sees notifications/cancelled)
// whichever way it left: a streamable POST whose connection dropped (after
// the grace period for resuming), a legacy SSE stream closed, a stateless
// POST dropped, a streamable session deleted, or notifications/cancelled
// sent by the client.
func TestFaultClientGoesAway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cancelled := filepath.Join(dir, "cancelled")
	servers := `"silent": ` + fixtureDef(t, "silent", []string{"-name", "silent", "-cancelled", cancelled}, map[string]any{"timeout": "10m"})
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	waitUpstreams(t, p, "silent")
	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	ctx := ctxFor(t, 3*time.Minute)

	// held starts a call of silent__wait with call, waits until the server
	// holds it, then runs leave and waits for notifications/cancelled.
	held := func(name string, within time.Duration, call func(context.Context) error, leave func(cancelCall context.CancelFunc)) {
		t.Helper()
		from := len(p.Logs())
		seen := len(fileLines(cancelled))
		cctx, cancelCall := context.WithCancel(ctx)
		defer cancelCall()
		ended := make(chan error, 1)
		go func() { ended <- call(cctx) }()
		if _, err := p.waitLogFrom(from, func(m map[string]any) bool {
			return strings.Contains(str(m["msg"]), "silent: holding call")
		}, callTimeout); err != nil {
			t.Errorf("%s: the call did not reach the server: %v", name, err)
			return
		}
		left := time.Now()
		leave(cancelCall)
		if !poll(within, func() bool { return len(fileLines(cancelled)) > seen }) {
			t.Errorf("%s: the server got no notifications/cancelled within %v of the client leaving", name, within)
			return
		}
		t.Logf("%s: cancelled upstream %v after the client left", name, time.Since(left).Round(time.Millisecond))
		select {
		case <-ended:
		case <-time.After(callTimeout):
			t.Errorf("%s: the client's call did not end", name)
		}
	}

	t.Run("streamable POST dropped", func(t *testing.T) {
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The client may resume the stream for a grace period (10 s).
		held("streamable POST dropped", 30*time.Second, func(c context.Context) error {
			_, err := s.call(c, "tools/call", toolCall("silent__wait", nil))
			return err
		}, func(cancel context.CancelFunc) { cancel() })
	})
	t.Run("legacy stream closed", func(t *testing.T) {
		l, err := wc.openLegacy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held("legacy stream closed", 5*time.Second, func(c context.Context) error {
			_, err := l.call(c, "tools/call", toolCall("silent__wait", nil))
			return err
		}, func(context.CancelFunc) { l.close() })
	})
	t.Run("stateless POST dropped", func(t *testing.T) {
		held("stateless POST dropped", 5*time.Second, func(c context.Context) error {
			_, err := wc.stateless(c, "tools/call", toolCall("silent__wait", nil))
			return err
		}, func(cancel context.CancelFunc) { cancel() })
	})
	t.Run("session deleted", func(t *testing.T) {
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held("session deleted", 5*time.Second, func(c context.Context) error {
			_, err := s.call(c, "tools/call", toolCall("silent__wait", nil))
			return err
		}, func(context.CancelFunc) {
			if err := s.close(ctx); err != nil {
				t.Errorf("DELETE the session: %v", err)
			}
		})
	})
	t.Run("notifications/cancelled", func(t *testing.T) {
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The request id the wire client gives the call is the next one.
		id := wc.nextID.Load() + 1
		held("notifications/cancelled", 5*time.Second, func(c context.Context) error {
			_, err := s.call(c, "tools/call", toolCall("silent__wait", nil))
			return err
		}, func(context.CancelFunc) {
			if err := s.notify(ctx, "notifications/cancelled", map[string]any{"requestId": id, "reason": "test"}); err != nil {
				t.Errorf("send notifications/cancelled: %v", err)
			}
		})
	})
}
