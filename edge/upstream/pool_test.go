package upstream_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/upstream"
)

func newPool(t *testing.T, opts upstream.PoolOptions) *upstream.Pool {
	t.Helper()
	p := upstream.NewPool(context.Background(), opts)
	t.Cleanup(p.Close)
	return p
}

// running waits until u runs.
func running(t *testing.T, u *upstream.Upstream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		t.Fatalf("%s not ready: %v", u.Name(), err)
	}
}

// stopped waits until u has stopped.
func stopped(t *testing.T, u *upstream.Upstream) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for u.Status().State != upstream.StateStopped {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s, want stopped", u.Name(), u.Status().State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pidOf(t *testing.T, u *upstream.Upstream) int {
	t.Helper()
	var res struct{ Pid int }
	mustResult(t, u, "pid", nil, &res)
	return res.Pid
}

func TestPoolApply(t *testing.T) {
	var changes atomic.Int32
	p := newPool(t, upstream.PoolOptions{OnChange: func() { changes.Add(1) }})
	a, b := upstream.Desired{Spec: fakeSpec(t, "a", nil), Key: "a1"}, upstream.Desired{Spec: fakeSpec(t, "b", nil), Key: "b1"}
	p.Apply([]upstream.Desired{a, b})
	ua, ub := p.Get("a"), p.Get("b")
	if ua == nil || ub == nil {
		t.Fatal("Apply did not start a and b")
	}
	running(t, ua)
	running(t, ub)
	if changes.Load() == 0 {
		t.Error("OnChange was not called")
	}
	pidA := pidOf(t, ua)

	// Equal keys keep the connections.
	p.Apply([]upstream.Desired{a, b})
	if p.Get("a") != ua || p.Get("b") != ub {
		t.Error("Apply with equal keys replaced a connection")
	}
	if pidOf(t, ua) != pidA {
		t.Error("Apply with equal keys restarted a's child")
	}

	// A changed key restarts that server only; a removed one stops; a
	// server that cannot start is reported failed.
	a.Key = "a2"
	broken := upstream.Desired{Spec: upstream.Spec{Name: "broken"}, Key: "k", Err: errors.New("cannot start: ${TOKEN} is not set")}
	p.Apply([]upstream.Desired{broken, a})
	ua2 := p.Get("a")
	if ua2 == nil || ua2 == ua {
		t.Fatal("a changed key did not make a new connection")
	}
	stopped(t, ua)
	stopped(t, ub)
	if p.Get("b") != nil {
		t.Error("a removed server is still in the pool")
	}
	if p.Get("broken") != nil {
		t.Error("a server that cannot start has an upstream")
	}
	running(t, ua2)
	if pidOf(t, ua2) == pidA {
		t.Error("the restarted server has the old child")
	}
	var got []string
	for _, s := range p.Statuses() {
		got = append(got, s.Name+" "+s.State+" "+s.LastError)
	}
	want := []string{"broken failed cannot start: ${TOKEN} is not set", "a running "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Statuses in desired order (-want +got):\n%s", diff)
	}

	// Fixing the broken one starts it.
	broken = upstream.Desired{Spec: fakeSpec(t, "broken", nil), Key: "k"}
	p.Apply([]upstream.Desired{broken, a})
	if u := p.Get("broken"); u == nil {
		t.Error("a fixed server with the same key was not started")
	} else {
		running(t, u)
	}

	p.Close()
	stopped(t, ua2)
}

func TestPoolForCaller(t *testing.T) {
	type note struct {
		server string
		caller any
		data   string
	}
	var mu sync.Mutex
	var notified []note
	p := newPool(t, upstream.PoolOptions{OnNotify: func(server string, caller any, n *upstream.Notification) {
		mu.Lock()
		notified = append(notified, note{server, caller, string(n.Params)})
		mu.Unlock()
	}})
	p.Apply([]upstream.Desired{
		{Spec: fakeSpec(t, "iso", nil), Key: "1", Isolated: true, MaxSessions: 1},
		{Spec: fakeSpec(t, "shared", nil), Key: "1"},
	})
	shared := p.Get("iso")
	running(t, shared)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	ua, err := p.ForCaller(ctx, "iso", "A")
	if err != nil {
		t.Fatal(err)
	}
	if ua == shared {
		t.Fatal("an isolated server gave a caller the shared connection")
	}
	if pidOf(t, ua) == pidOf(t, shared) {
		t.Error("the caller's connection runs in the shared child")
	}
	if again, _ := p.ForCaller(ctx, "iso", "A"); again != ua {
		t.Error("a second ForCaller of the same caller made another connection")
	}
	if p.Callers("iso") != 1 {
		t.Errorf("Callers = %d, want 1", p.Callers("iso"))
	}
	if _, err := p.ForCaller(ctx, "iso", "B"); !errors.Is(err, upstream.ErrTooManySessions) {
		t.Errorf("ForCaller beyond MaxSessions = %v, want ErrTooManySessions", err)
	}
	// Without a caller, or for a shared server, the shared connection.
	if u, _ := p.ForCaller(ctx, "iso", nil); u != shared {
		t.Error("ForCaller without a caller did not give the shared connection")
	}
	if u, _ := p.ForCaller(ctx, "shared", "A"); u != p.Get("shared") {
		t.Error("a shared server gave a caller its own connection")
	}
	if _, err := p.ForCaller(ctx, "nope", "A"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("ForCaller of an unknown server = %v, want ErrUnavailable", err)
	}

	// What the caller's connection says outside a call names the caller.
	if _, err := callTool(ctx, ua, "log", map[string]string{"text": "isolated note"}, nil, upstream.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for {
		mu.Lock()
		var found *note
		for i := range notified {
			if notified[i].server == "iso" && notified[i].caller == "A" {
				found = &notified[i]
			}
		}
		mu.Unlock()
		if found != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnNotify calls %+v, want one from iso for caller A", notified)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Release frees the caller's place.
	p.Release("A")
	stopped(t, ua)
	if p.Callers("iso") != 0 {
		t.Errorf("Callers after Release = %d", p.Callers("iso"))
	}
	ub, err := p.ForCaller(ctx, "iso", "B")
	if err != nil {
		t.Fatalf("ForCaller after Release: %v", err)
	}
	resp, err := ub.Call(ctx, protocol.MethodPing, nil, upstream.CallOptions{})
	if err != nil || jsonrpc.WireError(resp) != nil {
		t.Fatalf("ping B's connection: %v %v", err, resp)
	}
	// Removing the server stops every caller's connection too.
	p.Apply(nil)
	stopped(t, ub)
	stopped(t, shared)
}
