package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The soak: many clients on every transport open sessions, list, call,
// subscribe, listen, cancel and go away (cleanly or not) while the stdio
// servers behind the edge are killed at random. Afterwards every call has
// either succeeded or failed (none hung), and the edge's goroutines, open
// files, child processes and memory are back near where they were.
//
// TestSoakShort runs for about 20 s in `make test`; TestSoak runs for
// ATRAX_SOAK_DURATION (`make soak`, 3 minutes by default).

// TestSoakShort is the soak in brief.
func TestSoakShort(t *testing.T) {
	t.Parallel()
	soak(t, 20*time.Second, 8)
}

// TestSoak is the long soak; it runs only with ATRAX_SOAK_DURATION set
// (`make soak`). ATRAX_SOAK_CLIENTS sets the number of concurrent clients
// (24 by default).
func TestSoak(t *testing.T) {
	v := os.Getenv("ATRAX_SOAK_DURATION")
	if v == "" {
		t.Skip("the long soak runs with ATRAX_SOAK_DURATION set (make soak)")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("ATRAX_SOAK_DURATION=%q: want a duration such as 3m", v)
	}
	clients := 24
	if c := os.Getenv("ATRAX_SOAK_CLIENTS"); c != "" {
		if _, err := fmt.Sscan(c, &clients); err != nil || clients <= 0 {
			t.Fatalf("ATRAX_SOAK_CLIENTS=%q: want a positive number", c)
		}
	}
	soak(t, d, clients)
}

// soakOpTimeout bounds one operation of a soak client: an operation still
// unanswered then has hung (every server's own timeout is 10 minutes).
const soakOpTimeout = 45 * time.Second

// soakStats counts outcomes, by operation.
type soakStats struct {
	mu   sync.Mutex
	ok   map[string]int
	fail map[string]int
	// why holds a few distinct failures per operation, for the log.
	why  map[string][]string
	hung []string
	// unexpected are failures that no fault explains (opening a session).
	unexpected []string
}

func (s *soakStats) add(op string, err error, hung bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case hung:
		s.hung = append(s.hung, fmt.Sprintf("%s: %v", op, err))
	case err != nil:
		s.fail[op]++
		msg := err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
		if len(s.why[op]) < 3 && !slices.Contains(s.why[op], msg) {
			if s.why == nil {
				s.why = map[string][]string{}
			}
			s.why[op] = append(s.why[op], msg)
		}
	default:
		s.ok[op]++
	}
}

func (s *soakStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []string
	for op := range s.ok {
		ops = append(ops, op)
	}
	for op := range s.fail {
		if _, ok := s.ok[op]; !ok {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	var b strings.Builder
	total, failed := 0, 0
	for _, op := range ops {
		fmt.Fprintf(&b, "  %-28s ok %6d  failed %5d  %q\n", op, s.ok[op], s.fail[op], s.why[op])
		total += s.ok[op] + s.fail[op]
		failed += s.fail[op]
	}
	fmt.Fprintf(&b, "  %d operations, %d failed, %d hung", total, failed, len(s.hung))
	return b.String()
}

func soak(t *testing.T, duration time.Duration, clients int) {
	dir := t.TempDir()
	marker := newMarker("soak")
	pidfile := func(name string) string { return filepath.Join(dir, name+".pids") }
	upstreams := []string{"cat", "slow", "crash"}
	servers := `"cat": ` + fixtureDef(t, "catalog", []string{"-name", "cat", "-pidfile", pidfile("cat"), "-marker", marker}, map[string]any{"timeout": "10m"}) +
		`, "slow": ` + fixtureDef(t, "slow", []string{"-name", "slow", "-pidfile", pidfile("slow"), "-marker", marker}, map[string]any{"timeout": "10m"}) +
		`, "crash": ` + fixtureDef(t, "crasher", []string{"-name", "crash", "-pidfile", pidfile("crash"), "-marker", marker}, map[string]any{"timeout": "10m"})
	// Clients that go away without a word leave sessions behind; they end
	// after 5 s idle, so that the edge can be back at its baseline soon.
	// Meanwhile they count against the sessions a token may hold: the soak
	// churns sessions faster than 1,000 in 5 s on a quick machine, and
	// limits have tests of their own (TestLimits), so they are out of the
	// way here.
	cfg := faultConfig(servers, `"http": {"sessionIdleTimeout": "5s"}, "limits": {"maxSessionsPerToken": 1000000, "maxSessions": 1000000}`)
	p := startAtrax(t, "serve", cfg, debugEnv(nil))
	waitUpstreams(t, p, upstreams...)
	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()

	// Warm up every path once, then take the baseline.
	ctx := ctxFor(t, duration+5*time.Minute)
	warm := &soakStats{ok: map[string]int{}, fail: map[string]int{}}
	for _, kind := range []string{"streamable", "legacy", "stateless"} {
		soakSession(ctx, wc, kind, warm, rand.New(rand.NewPCG(1, 2)), true)
	}
	if len(warm.hung) > 0 || len(warm.unexpected) > 0 {
		t.Fatalf("warm-up: %v %v", warm.hung, warm.unexpected)
	}
	wc.close()
	time.Sleep(time.Second)
	base := p.read(t)
	t.Logf("baseline: %v", base)

	stats := &soakStats{ok: map[string]int{}, fail: map[string]int{}}
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			kinds := []string{"streamable", "streamable", "streamable", "legacy", "legacy", "stateless"}
			for time.Now().Before(deadline) {
				soakSession(ctx, wc, kinds[rng.IntN(len(kinds))], stats, rng, false)
			}
		}()
	}
	// The killer: a stdio server dies (kill -9) every two to five seconds.
	var kills atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(99, uint64(time.Now().UnixNano())))
		for {
			time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
			if !time.Now().Before(deadline) {
				return
			}
			name := upstreams[rng.IntN(len(upstreams))]
			if pid := lastPID(pidfile(name)); pid > 0 && syscall.Kill(pid, syscall.SIGKILL) == nil {
				kills.Add(1)
			}
		}
	}()
	wg.Wait()
	wc.close()
	t.Logf("the clients ended %v after the soak's end", time.Since(deadline).Round(time.Millisecond))
	t.Logf("%v with %d clients and %d kills:\n%v", duration, clients, kills.Load(), stats)

	if len(stats.hung) > 0 {
		t.Errorf("%d operations hung (no answer within %v), e.g.:\n%s", len(stats.hung), soakOpTimeout, strings.Join(stats.hung[:min(10, len(stats.hung))], "\n"))
	}
	if len(stats.unexpected) > 0 {
		t.Errorf("%d unexpected failures, e.g.:\n%s", len(stats.unexpected), strings.Join(stats.unexpected[:min(10, len(stats.unexpected))], "\n"))
	}
	if stats.ok["tools/call cat__echo"] == 0 || stats.ok["tools/list"] == 0 {
		t.Errorf("hardly anything succeeded:\n%v", stats)
	}

	// Back to the baseline: the servers run again, the sessions left
	// behind have expired, and what they held is let go.
	waitUpstreams(t, p, upstreams...)
	p.alive(t)
	settle := time.Now()
	checkBaseline(t, p, base, 40*time.Second)
	t.Logf("back at the baseline after %v", time.Since(settle).Round(time.Millisecond))
	if got := len(pidsWithArg(t, marker)); got != len(upstreams) {
		t.Errorf("%d server processes run after the soak, want %d: %v", got, len(upstreams), pidsWithArg(t, marker))
	}
	if z := zombies(p.cmd.Process.Pid); z > 0 {
		t.Errorf("%d exited children of the edge were never reaped", z)
	}
}

// zombies counts the exited, unreaped children of pid.
func zombies(pid int) int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil || procState(b) != "Z" {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == fmt.Sprint(pid) {
			n++
		}
	}
	return n
}

// soakSession runs one client session of kind (streamable, legacy or
// stateless): a few random operations, then an end, clean or not. With
// every, it runs each operation once instead.
func soakSession(ctx context.Context, wc *wireClient, kind string, st *soakStats, rng *rand.Rand, every bool) {
	octx, cancel := context.WithTimeout(ctx, soakOpTimeout)
	defer cancel()
	var call func(ctx context.Context, method string, params map[string]any) (*rpcReply, error)
	var end func(clean bool)
	switch kind {
	case "streamable":
		s, err := wc.open(octx)
		if err != nil {
			st.unexpectedf("open a streamable session: %v", err)
			return
		}
		call = func(ctx context.Context, m string, p map[string]any) (*rpcReply, error) { return s.call(ctx, m, p) }
		var stream *sseStream
		if rng.IntN(2) == 0 {
			stream, _ = s.stream(octx)
		}
		end = func(clean bool) {
			if stream != nil {
				stream.close()
			}
			if clean {
				s.close(octx)
			}
		}
	case "legacy":
		l, err := wc.openLegacy(octx)
		if err != nil {
			st.unexpectedf("open a legacy session: %v", err)
			return
		}
		call = func(ctx context.Context, m string, p map[string]any) (*rpcReply, error) { return l.call(ctx, m, p) }
		end = func(bool) { l.close() }
	default:
		call = func(ctx context.Context, m string, p map[string]any) (*rpcReply, error) {
			return wc.stateless(ctx, m, p)
		}
		end = func(bool) {}
	}

	type op struct {
		name string
		run  func(ctx context.Context) error
	}
	rpc := func(method string, params map[string]any) func(context.Context) error {
		return func(ctx context.Context) error {
			r, err := call(ctx, method, params)
			if err != nil {
				return err
			}
			if r.Error != nil {
				return r.Error
			}
			return nil
		}
	}
	ops := []op{
		{"tools/list", rpc("tools/list", nil)},
		{"tools/call cat__echo", rpc("tools/call", toolCall("cat__echo", map[string]any{"message": "soak"}))},
		{"tools/call crash__echo", rpc("tools/call", toolCall("crash__echo", map[string]any{"message": "soak"}))},
		{"tools/call slow__sleep", rpc("tools/call", map[string]any{"name": "slow__sleep", "arguments": map[string]any{"ms": rng.IntN(400)},
			"_meta": map[string]any{"progressToken": fmt.Sprint("p", rng.Int())}})},
		{"prompts/get", rpc("prompts/get", map[string]any{"name": "cat__greet"})},
		{"resources/read", rpc("resources/read", map[string]any{"uri": "catalog://cat/items/" + fmt.Sprint(rng.IntN(100))})},
		{"completion/complete", rpc("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "cat__greet"},
			"argument": map[string]any{"name": "a", "value": "b"}})},
		{"cancelled mid-call", func(ctx context.Context) error {
			// The client gives up on a long call: the edge cancels it.
			cctx, cancel := context.WithTimeout(ctx, time.Duration(50+rng.IntN(300))*time.Millisecond)
			defer cancel()
			_, err := call(cctx, "tools/call", toolCall("slow__sleep", map[string]any{"ms": 5000}))
			if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
				return nil // as intended
			}
			return err
		}},
	}
	if kind == "stateless" {
		ops = append(ops, op{"subscriptions/listen", func(ctx context.Context) error {
			_, err := listenAck(ctx, wc, []string{"catalog://cat/doc"})
			return err
		}})
	} else {
		ops = append(ops, op{"resources/subscribe", func(ctx context.Context) error {
			if err := rpc("resources/subscribe", map[string]any{"uri": "catalog://cat/doc"})(ctx); err != nil {
				return err
			}
			return rpc("resources/unsubscribe", map[string]any{"uri": "catalog://cat/doc"})(ctx)
		}})
	}
	if !every && rng.IntN(200) == 0 {
		ops = append(ops, op{"tools/call crash__crash", func(ctx context.Context) error {
			err := rpc("tools/call", toolCall("crash__crash", nil))(ctx)
			if err == nil {
				return errors.New("the crash call succeeded")
			}
			return nil // a JSON-RPC error is the point
		}})
	}
	var plan []op
	if every {
		plan = ops
	} else {
		for n := 1 + rng.IntN(8); n > 0; n-- {
			plan = append(plan, ops[rng.IntN(len(ops))])
		}
	}
	for _, o := range plan {
		cctx, cancel := context.WithTimeout(ctx, soakOpTimeout)
		err := o.run(cctx)
		hung := errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		st.add(o.name, err, hung)
		if every && err != nil && !hung {
			st.unexpectedf("warm-up %s %s: %v", kind, o.name, err)
		}
	}
	// Most clients say goodbye; some just go.
	end(rng.IntN(4) != 0)
}

func (s *soakStats) unexpectedf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unexpected = append(s.unexpected, fmt.Sprintf(format, args...))
}
