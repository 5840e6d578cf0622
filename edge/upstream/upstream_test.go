package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/upstream"
)

// wait bounds every wait in these tests.
const wait = 10 * time.Second

// fakeSpec runs this test binary as the fake stdio server.
func fakeSpec(t testing.TB, name string, env map[string]string) upstream.Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// GORACE: a child built with -race otherwise sleeps a second at exit.
	e := map[string]string{helperEnv: "server", "GORACE": "atexit_sleep_ms=0"}
	maps.Copy(e, env)
	return upstream.Spec{Name: name, Transport: "stdio", Command: exe, Env: e, Timeout: wait}
}

// notes collects notifications in order.
type notes struct {
	mu   sync.Mutex
	all  []*jsonrpc.Request
	wake chan struct{}
}

func newNotes() *notes { return &notes{wake: make(chan struct{}, 1)} }

func (n *notes) add(r *jsonrpc.Request) {
	n.mu.Lock()
	n.all = append(n.all, r)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// waitFor returns the first notification that has method and whose params
// contain sub.
func (n *notes) waitFor(t *testing.T, method, sub string) *jsonrpc.Request {
	t.Helper()
	deadline := time.After(wait)
	for {
		n.mu.Lock()
		for _, r := range n.all {
			if r.Method == method && strings.Contains(string(r.Params), sub) {
				n.mu.Unlock()
				return r
			}
		}
		n.mu.Unlock()
		select {
		case <-n.wake:
		case <-deadline:
			t.Fatalf("no %s with %q arrived", method, sub)
		}
	}
}

func (n *notes) list() []*jsonrpc.Request {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.all)
}

// start runs an upstream until the test ends and waits for it to run.
func start(t *testing.T, opts upstream.Options) *upstream.Upstream {
	t.Helper()
	u := upstream.New(opts)
	u.Start(context.Background())
	t.Cleanup(u.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		t.Fatalf("upstream not ready: %v", err)
	}
	return u
}

// callTool calls a tool of u with arguments args and extra params fields.
func callTool(ctx context.Context, u *upstream.Upstream, tool string, args any, meta map[string]any, o upstream.CallOptions) (*jsonrpc.Response, error) {
	p := map[string]any{"name": tool, "arguments": args}
	if meta != nil {
		p["_meta"] = meta
	}
	params, _ := json.Marshal(p)
	return u.Call(ctx, protocol.MethodToolsCall, params, o)
}

// mustResult calls a tool and decodes its result into v.
func mustResult(t *testing.T, u *upstream.Upstream, tool string, args any, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := callTool(ctx, u, tool, args, nil, upstream.CallOptions{})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if e := jsonrpc.WireError(resp); e != nil {
		t.Fatalf("%s: %v", tool, e)
	}
	if err := json.Unmarshal(resp.Result, v); err != nil {
		t.Fatalf("%s result %s: %v", tool, resp.Result, err)
	}
}

func toolNames(l *upstream.Lists) []string {
	var out []string
	for _, raw := range l.Tools {
		n, _ := jsonrpc.StringField(raw, "name")
		out = append(out, n)
	}
	return out
}

func TestStdioHandshakeAndLists(t *testing.T) {
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", nil)})
	l := u.Lists()
	// Nine tools over five pages of two.
	want := []string{"echo", "env", "pid", "hang", "progress", "sample", "log", "mutate", "spawn"}
	if diff := cmp.Diff(want, toolNames(l)); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if len(l.Prompts) != 1 || len(l.Resources) != 1 || len(l.ResourceTemplates) != 0 {
		t.Errorf("prompts, resources, templates = %d, %d, %d; want 1, 1, 0 (templates/list is -32601: empty)", len(l.Prompts), len(l.Resources), len(l.ResourceTemplates))
	}
	if l.Init.ProtocolVersion != protocol.Latest || l.Init.Instructions != "a fake for tests" || l.Init.Capabilities.Logging == nil {
		t.Errorf("Init = %+v", l.Init)
	}
	if !strings.Contains(string(l.InitRaw), `"serverInfo"`) {
		t.Errorf("InitRaw = %s, want the whole result", l.InitRaw)
	}
	st := u.Status()
	if st.State != upstream.StateRunning || st.Transport != "stdio" || st.ProtocolVersion != protocol.Latest || st.Tools != 9 || st.Name != "fake" {
		t.Errorf("Status = %+v", st)
	}
}

func TestStdioEnvironment(t *testing.T) {
	t.Setenv("ATRAX_TEST_SECRET", "hunter2")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", map[string]string{"CONFIGURED": "yes", "HOME": "/configured/home"})})
	var res struct{ Env []string }
	mustResult(t, u, "env", nil, &res)
	allowed := []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM", "SYSTEMROOT", "CONFIGURED", helperEnv, "GORACE"}
	got := map[string][]string{}
	for _, kv := range res.Env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = append(got[k], v)
		if !slices.Contains(allowed, k) {
			t.Errorf("the child inherited %s", k)
		}
		if strings.Contains(v, "hunter2") || strings.Contains(v, "also-secret") {
			t.Errorf("a secret of the edge reached the child in %s", k)
		}
	}
	if diff := cmp.Diff([]string{"yes"}, got["CONFIGURED"]); diff != "" {
		t.Errorf("CONFIGURED (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/configured/home"}, got["HOME"]); diff != "" {
		t.Errorf("HOME: the configured value must replace the base one (-want +got):\n%s", diff)
	}
	if p, ok := os.LookupEnv("PATH"); ok && !slices.Contains(got["PATH"], p) {
		t.Errorf("PATH = %q, want the edge's %q", got["PATH"], p)
	}
}

// Two callers with the same client-side ids and progress tokens share one
// connection; neither ever sees the other's answers or progress.
func TestConcurrentCallersNeverCross(t *testing.T) {
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", nil)})
	const perTag = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*perTag)
	for _, tag := range []string{"A", "B"} {
		var mu sync.Mutex
		var progress []string
		for i := range perTag {
			wg.Add(1)
			go func() {
				defer wg.Done()
				args := map[string]any{"tag": tag, "i": i, "delay_ms": rand.N(5)}
				o := upstream.CallOptions{Tag: tag, Notify: func(n *jsonrpc.Request) {
					mu.Lock()
					progress = append(progress, string(n.Params))
					mu.Unlock()
				}}
				// Every caller numbers from 1: the same token on both sides.
				resp, err := callTool(context.Background(), u, "echo", args, map[string]any{"progressToken": 1}, o)
				if err != nil {
					errs <- err
					return
				}
				var res struct {
					Arguments struct {
						Tag string
						I   int
					}
				}
				if err := json.Unmarshal(resp.Result, &res); err != nil || res.Arguments.Tag != tag || res.Arguments.I != i {
					errs <- fmt.Errorf("caller %s call %d got %s", tag, i, resp.Result)
				}
			}()
		}
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			if len(progress) != perTag {
				t.Errorf("caller %s got %d progress notifications, want %d", tag, len(progress), perTag)
			}
			for _, p := range progress {
				var n struct {
					ProgressToken json.RawMessage
					Message       string
				}
				_ = json.Unmarshal([]byte(p), &n)
				if string(n.ProgressToken) != "1" || !strings.Contains(n.Message, `"tag":"`+tag+`"`) {
					t.Errorf("caller %s got progress %s", tag, p)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestProgressResetsTimeout(t *testing.T) {
	spec := fakeSpec(t, "fake", nil)
	spec.Timeout = 500 * time.Millisecond
	u := start(t, upstream.Options{Spec: spec})
	got := newNotes()
	// Eight steps of 100 ms: beyond the timeout, but never 500 ms of silence.
	resp, err := callTool(context.Background(), u, "progress", map[string]int{"steps": 8, "every": 100},
		map[string]any{"progressToken": "client-token-7"}, upstream.CallOptions{Tag: "A", Notify: got.add})
	if err != nil {
		t.Fatalf("call with progress: %v", err)
	}
	var res struct{ Token string }
	if err := json.Unmarshal(resp.Result, &res); err != nil || !strings.HasPrefix(res.Token, "atrax-") {
		t.Errorf("the server saw token %q, want one of the edge's own", res.Token)
	}
	ns := got.list()
	if len(ns) != 8 {
		t.Fatalf("caller got %d notifications, want 8", len(ns))
	}
	for i, n := range ns {
		var p struct {
			ProgressToken string
			Progress      int
			Total         int
		}
		if err := json.Unmarshal(n.Params, &p); err != nil || n.Method != protocol.NotificationProgress {
			t.Fatalf("notification %d: %s %s", i, n.Method, n.Params)
		}
		if p.ProgressToken != "client-token-7" || p.Progress != i+1 || p.Total != 8 {
			t.Errorf("notification %d = %s, want the caller's token and the server's fields", i, n.Params)
		}
	}
}

func TestTimeoutCancelsUpstream(t *testing.T) {
	spec := fakeSpec(t, "fake", nil)
	spec.Timeout = 200 * time.Millisecond
	unattributed := newNotes()
	u := start(t, upstream.Options{Spec: spec, OnNotify: unattributed.add})
	_, err := callTool(context.Background(), u, "hang", nil, nil, upstream.CallOptions{Tag: "A"})
	if !errors.Is(err, upstream.ErrTimeout) {
		t.Fatalf("call error = %v, want ErrTimeout", err)
	}
	n := unattributed.waitFor(t, protocol.NotificationMessage, "cancelled")
	if !strings.Contains(string(n.Params), "timeout") {
		t.Errorf("the server was told %s, want the reason timeout", n.Params)
	}
	// The connection is fine afterwards.
	var pid struct{ Pid int }
	mustResult(t, u, "pid", nil, &pid)
}

func TestContextCancelSendsCancelled(t *testing.T) {
	// The server's word on the cancellation may come while the call is
	// still being wound up (to the caller) or after (to OnNotify).
	heard := newNotes()
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", nil), OnNotify: heard.add})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, u, "hang", nil, nil, upstream.CallOptions{Tag: "A", Notify: heard.add})
		errc <- err
	}()
	heard.waitFor(t, protocol.NotificationMessage, "hanging")
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call error = %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("a cancelled call did not return")
	}
	n := heard.waitFor(t, protocol.NotificationMessage, "cancelled")
	if !strings.Contains(string(n.Params), "client cancelled") {
		t.Errorf("the server was told %s", n.Params)
	}
}

// states records the states an upstream goes through.
type states struct {
	mu     sync.Mutex
	seq    []string
	u      *upstream.Upstream
	listed []string // states seen with tools listed
}

func (s *states) record() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.u == nil {
		return
	}
	st := s.u.Status().State
	if len(s.u.Lists().Tools) > 0 {
		s.listed = append(s.listed, st)
	}
	if len(s.seq) == 0 || s.seq[len(s.seq)-1] != st {
		s.seq = append(s.seq, st)
	}
}

func (s *states) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seq)
}

func TestKilledChildFailsCallsAndRestarts(t *testing.T) {
	st := &states{}
	u := upstream.New(upstream.Options{Spec: fakeSpec(t, "fake", nil), OnChange: st.record})
	st.mu.Lock()
	st.u = u
	st.mu.Unlock()
	u.Start(context.Background())
	t.Cleanup(u.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var first struct{ Pid int }
	mustResult(t, u, "pid", nil, &first)

	mine := newNotes()
	errc := make(chan error, 1)
	go func() {
		_, err := callTool(context.Background(), u, "hang", nil, nil, upstream.CallOptions{Tag: "A", Notify: mine.add})
		errc <- err
	}()
	mine.waitFor(t, protocol.NotificationMessage, "hanging")
	if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, upstream.ErrConnectionLost) {
			t.Errorf("call in flight ended with %v, want ErrConnectionLost", err)
		}
	case <-time.After(wait):
		t.Fatal("a call in flight did not fail when its server died")
	}
	deadline := time.Now().Add(wait)
	for {
		seq := st.get()
		if i := slices.Index(seq, upstream.StateRestarting); i >= 0 && slices.Contains(seq[i:], upstream.StateRunning) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %q: want running, restarting, running", seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.mu.Lock()
	if slices.Contains(st.listed, upstream.StateRestarting) {
		t.Error("a dead server still listed its tools while restarting")
	}
	st.mu.Unlock()
	if s := u.Status(); s.Restarts != 1 {
		t.Errorf("Status after restart = %+v, want one restart", s)
	}
	var second struct{ Pid int }
	mustResult(t, u, "pid", nil, &second)
	if second.Pid == first.Pid {
		t.Error("the restarted server has the old pid")
	}
	if len(u.Lists().Tools) != 9 {
		t.Errorf("the restarted server lists %d tools, want 9", len(u.Lists().Tools))
	}
}

func TestServerRequestAttribution(t *testing.T) {
	asked := make(chan string, 4)
	onRequest := func(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response {
		asked <- "OnRequest " + req.Method
		return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{"from":"OnRequest"}`))
	}
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", nil), OnRequest: onRequest})
	caller := func(tag string) upstream.CallOptions {
		return upstream.CallOptions{Tag: tag, Request: func(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response {
			asked <- tag + " " + req.Method
			return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{"from":"`+tag+`"}`))
		}}
	}
	sample := func(o upstream.CallOptions) string {
		resp, err := callTool(context.Background(), u, "sample", nil, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Client json.RawMessage
			Error  *jsonrpc.Error
		}
		_ = json.Unmarshal(resp.Result, &res)
		if res.Error != nil {
			return fmt.Sprintf("error %d", res.Error.Code)
		}
		return string(res.Client)
	}

	// One caller in flight: the request is its.
	if got := sample(caller("B")); got != `{"from":"B"}` {
		t.Errorf("single caller: server got %s", got)
	}
	if got := <-asked; got != "B sampling/createMessage" {
		t.Errorf("asked %q", got)
	}

	// Two callers in flight: nobody can tell whose it is.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hanging := newNotes()
	go callTool(ctx, u, "hang", nil, nil, upstream.CallOptions{Tag: "A", Notify: hanging.add})
	hanging.waitFor(t, protocol.NotificationMessage, "hanging")
	if got := sample(caller("B")); got != `{"from":"OnRequest"}` {
		t.Errorf("two callers: server got %s", got)
	}
	if got := <-asked; got != "OnRequest sampling/createMessage" {
		t.Errorf("asked %q", got)
	}
	cancel()

	// No way to answer: the server hears so.
	bare := start(t, upstream.Options{Spec: fakeSpec(t, "bare", nil)})
	resp, err := callTool(context.Background(), bare, "sample", nil, nil, upstream.CallOptions{Tag: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Result), fmt.Sprint(jsonrpc.CodeMethodNotFound)) {
		t.Errorf("unanswerable request: server got %s, want a -32601 error", resp.Result)
	}
}

func TestMessagesAttribution(t *testing.T) {
	unattributed := newNotes()
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", nil), OnNotify: unattributed.add})
	mine := newNotes()
	if _, err := callTool(context.Background(), u, "log", map[string]string{"text": "for A"}, nil, upstream.CallOptions{Tag: "A", Notify: mine.add}); err != nil {
		t.Fatal(err)
	}
	mine.waitFor(t, protocol.NotificationMessage, "for A")
	for _, n := range unattributed.list() {
		if strings.Contains(string(n.Params), "for A") {
			t.Error("a message during a single caller's call also went to OnNotify")
		}
	}
}

func TestListChangedRefresh(t *testing.T) {
	var mu sync.Mutex
	changes := 0
	u := start(t, upstream.Options{Spec: fakeSpec(t, "fake", nil), OnChange: func() {
		mu.Lock()
		changes++
		mu.Unlock()
	}})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return changes
	}
	before, lists := count(), u.Lists()
	var res map[string]any
	mustResult(t, u, "mutate", nil, &res)
	deadline := time.Now().Add(wait)
	for !slices.Contains(toolNames(u.Lists()), "added") || count() == before {
		if time.Now().After(deadline) {
			t.Fatalf("tools = %q and %d OnChange calls after list_changed, want %q added and a call", toolNames(u.Lists()), count()-before, "added")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(u.Lists().Prompts) != len(lists.Prompts) || u.Lists().Init.ProtocolVersion != lists.Init.ProtocolVersion {
		t.Error("refreshing tools changed other lists")
	}
}

// isAlive reports whether pid runs (a zombie does not).
func isAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestStopEndsProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	u := upstream.New(upstream.Options{Spec: fakeSpec(t, "fake", nil)})
	u.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var child, grandchild struct{ Pid int }
	mustResult(t, u, "pid", nil, &child)
	mustResult(t, u, "spawn", nil, &grandchild)
	if !isAlive(child.Pid) || !isAlive(grandchild.Pid) {
		t.Fatal("child or grandchild not running before Stop")
	}
	u.Stop()
	if st := u.Status().State; st != upstream.StateStopped {
		t.Errorf("state after Stop = %s", st)
	}
	deadline := time.Now().Add(wait)
	for isAlive(child.Pid) || isAlive(grandchild.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("after Stop: child alive %v, grandchild alive %v", isAlive(child.Pid), isAlive(grandchild.Pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := callTool(context.Background(), u, "pid", nil, nil, upstream.CallOptions{}); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("call after Stop = %v, want ErrUnavailable", err)
	}
}

func TestStartFailure(t *testing.T) {
	u := upstream.New(upstream.Options{Spec: upstream.Spec{Name: "missing", Transport: "stdio", Command: "/nonexistent/atrax-test-binary"}})
	u.Start(context.Background())
	defer u.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := u.Ready(ctx)
	if !errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("Ready = %v, want ErrUnavailable naming the command", err)
	}
	if st := u.Status(); st.State != upstream.StateFailed {
		t.Errorf("state = %s, want failed", st.State)
	}
	if _, err := u.Call(context.Background(), "ping", nil, upstream.CallOptions{}); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("Call = %v, want ErrUnavailable", err)
	}
	if err := u.Notify(context.Background(), "notifications/x", nil); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("Notify = %v, want ErrUnavailable", err)
	}
}

// TestFailedRestartsAreReported: a server that never starts stays
// "failed", but each failed attempt is a change for OnChange (which sends
// the edge's report), so /status counts its restarts as they happen.
func TestFailedRestartsAreReported(t *testing.T) {
	restarts := make(chan int, 16)
	var u *upstream.Upstream // set before Start, so before any OnChange
	u = upstream.New(upstream.Options{
		Spec: upstream.Spec{Name: "missing", Transport: "stdio", Command: "/nonexistent/atrax-test-binary"},
		OnChange: func() {
			if st := u.Status(); st.State == upstream.StateFailed {
				select {
				case restarts <- st.Restarts:
				default:
				}
			}
		},
	})
	u.Start(context.Background())
	defer u.Stop()
	var seen []int
	deadline := time.After(wait)
	for len(seen) < 3 {
		select {
		case n := <-restarts:
			seen = append(seen, n)
		case <-deadline:
			t.Fatalf("OnChange while failed saw restarts %v; want each of 3 failed attempts", seen)
		}
	}
	if !slices.IsSorted(seen) || seen[0] == seen[2] {
		t.Errorf("restart counts reported %v, want them growing", seen)
	}
}
