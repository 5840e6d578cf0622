package session_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func TestStore(t *testing.T) {
	st := session.NewStore()
	var mu sync.Mutex
	var closed []*session.Session
	st.OnClose = func(s *session.Session) {
		mu.Lock()
		closed = append(closed, s)
		mu.Unlock()
		select {
		case <-s.Done():
		default:
			t.Errorf("OnClose(%q) called before the session was closed", s.ID)
		}
	}
	a := session.New("e.a", session.TransportSSE, authn.Anonymous(), newSink())
	b := session.New("e.b", session.TransportStreamable, authn.Anonymous(), newSink())
	anon := session.New("", session.TransportStreamable, authn.Anonymous(), newSink())
	st.Add(a)
	st.Add(b)
	st.Add(anon)

	if st.Get("e.a") != a || st.Get("e.b") != b {
		t.Error("Get does not return the stored sessions")
	}
	if st.Get("") != nil || st.Get("e.none") != nil {
		t.Error("Get of an unknown or empty id is not nil")
	}
	var ids []string
	st.Each(func(s *session.Session) { ids = append(ids, s.ID) })
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"", "e.a", "e.b"}, ids); diff != "" {
		t.Errorf("Each visited (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{session.TransportSSE: 1, session.TransportStreamable: 2}, st.Counts()); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}

	if !st.Remove(a) {
		t.Error("Remove(a) = false")
	}
	if st.Remove(a) {
		t.Error("Remove(a) twice = true")
	}
	if !st.Remove(anon) {
		t.Error("Remove(anonymous) = false")
	}
	// A session with a stored id but not the stored one is not removed.
	impostor := session.New("e.b", session.TransportStreamable, authn.Anonymous(), newSink())
	if st.Remove(impostor) {
		t.Error("Remove of another session with b's id = true")
	}
	if st.Get("e.b") != b {
		t.Error("removing an impostor removed b")
	}
	if st.Get("e.a") != nil {
		t.Error("Get after Remove still finds a")
	}
	select {
	case <-a.Done():
	default:
		t.Error("Remove did not close the session")
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]*session.Session{a, anon}, closed, cmp.Comparer(func(x, y *session.Session) bool { return x == y })); diff != "" {
		t.Errorf("OnClose calls (-want +got):\n%s", diff)
	}
}

func TestExpire(t *testing.T) {
	st := session.NewStore()
	calls := map[string]int{}
	var mu sync.Mutex
	gone := make(chan string, 8)
	st.OnClose = func(s *session.Session) {
		mu.Lock()
		calls[s.ID]++
		mu.Unlock()
		gone <- s.ID
	}
	idle := session.New("e.idle", session.TransportSSE, authn.Anonymous(), newSink())
	streaming := session.New("e.stream", session.TransportSSE, authn.Anonymous(), newSink())
	busy := session.New("e.busy", session.TransportStreamable, authn.Anonymous(), newSink())
	for _, s := range []*session.Session{idle, streaming, busy} {
		st.Add(s)
	}
	detach := streaming.Attach()
	defer detach()
	_, done := busy.Begin(context.Background(), jsonrpc.IntID(1))
	defer done()

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		st.Expire(ctx, 30*time.Millisecond, 5*time.Millisecond)
	}()
	select {
	case id := <-gone:
		if id != "e.idle" {
			t.Errorf("expired %q first, want e.idle", id)
		}
	case <-time.After(wait):
		t.Fatal("the idle session was not expired")
	}
	// Several more ticks: the busy ones stay, the idle one is not closed again.
	time.Sleep(100 * time.Millisecond)
	if st.Get("e.stream") == nil || st.Get("e.busy") == nil {
		t.Error("a session with an open stream or a request in flight expired")
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(wait):
		t.Fatal("Expire did not return when ctx ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]int{"e.idle": 1, "e.stream": 1, "e.busy": 1}, calls); diff != "" {
		t.Errorf("OnClose calls per session after shutdown (-want +got):\n%s", diff)
	}
	if n := len(st.Counts()); n != 0 {
		t.Errorf("%d transports still have sessions after Expire ended", n)
	}
}
