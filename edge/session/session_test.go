package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// wait bounds every wait in these tests.
const wait = 5 * time.Second

// sent is one message a session sent, with the request it belongs to.
type sent struct {
	msg     jsonrpc.Message
	related any // IDKey of the related request, nil for none
}

// recordingSink records what a session sends and hands each message to a
// channel.
type recordingSink struct {
	mu   sync.Mutex
	msgs []sent
	ch   chan sent
	err  error
}

func newSink() *recordingSink { return &recordingSink{ch: make(chan sent, 64)} }

func (k *recordingSink) Send(ctx context.Context, msg jsonrpc.Message) error {
	var rel any
	if id, ok := session.RelatedTo(ctx); ok {
		rel = jsonrpc.IDKey(id)
	}
	k.mu.Lock()
	k.msgs = append(k.msgs, sent{msg, rel})
	err := k.err
	k.mu.Unlock()
	k.ch <- sent{msg, rel}
	return err
}

func (k *recordingSink) next(t *testing.T) sent {
	t.Helper()
	select {
	case m := <-k.ch:
		return m
	case <-time.After(wait):
		t.Fatal("nothing sent to the client")
		return sent{}
	}
}

func newSession(sink session.Sink) *session.Session {
	return session.New("edge-1.abc", session.TransportStreamable, authn.Anonymous(), sink)
}

func TestBeginCancel(t *testing.T) {
	s := newSession(newSink())
	defer s.Close()
	id := jsonrpc.IntID(5)
	ctx, done := s.Begin(context.Background(), id)
	defer done()
	if got, ok := session.RelatedTo(ctx); !ok || got != id {
		t.Errorf("RelatedTo(Begin ctx) = %v, %v; want %v, true", got, ok, id)
	}
	if s.Idle(time.Now().Add(time.Hour)) != 0 {
		t.Error("Idle with a request in flight is not 0")
	}
	s.Cancel(jsonrpc.StringID("5")) // a different id: nothing happens
	if ctx.Err() != nil {
		t.Fatal(`Cancel("5") cancelled the request with id 5`)
	}
	s.Cancel(id)
	select {
	case <-ctx.Done():
	case <-time.After(wait):
		t.Fatal("Cancel did not end the request's context")
	}
}

func TestBeginDone(t *testing.T) {
	s := newSession(newSink())
	defer s.Close()
	ctx, done := s.Begin(context.Background(), jsonrpc.StringID("a"))
	done()
	if ctx.Err() == nil {
		t.Error("done did not end the request's context")
	}
	if s.Idle(time.Now().Add(time.Hour)) == 0 {
		t.Error("Idle is 0 after the only request finished")
	}
	s.Cancel(jsonrpc.StringID("a")) // after done: harmless
}

func TestBeginEndsWithSession(t *testing.T) {
	s := newSession(newSink())
	ctx, done := s.Begin(context.Background(), jsonrpc.IntID(1))
	defer done()
	s.Close()
	select {
	case <-ctx.Done():
	case <-time.After(wait):
		t.Fatal("closing the session did not end a request in flight")
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done is not closed after Close")
	}
	s.Close() // idempotent
}

// answerer answers every server-to-client request the session sends.
func answerer(s **session.Session, sink *recordingSink, result string) {
	go func() {
		for m := range sink.ch {
			if r, ok := m.msg.(*jsonrpc.Request); ok && r.IsCall() {
				(*s).Deliver(jsonrpc.ResultResponse(r.ID, json.RawMessage(result)))
			}
		}
	}()
}

func TestRequestDeliver(t *testing.T) {
	sink := newSink()
	var s *session.Session
	s = newSession(sink)
	defer s.Close()
	answerer(&s, sink, `{"role":"assistant"}`)

	ctx := session.WithRelated(context.Background(), jsonrpc.IntID(9))
	resp, err := s.Request(ctx, protocol.MethodSamplingCreateMessage, json.RawMessage(`{"messages":[]}`))
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if string(resp.Result) != `{"role":"assistant"}` {
		t.Errorf("Request result = %s, want the client's answer", resp.Result)
	}
	sink.mu.Lock()
	first := sink.msgs[0]
	sink.mu.Unlock()
	req := first.msg.(*jsonrpc.Request)
	if req.Method != protocol.MethodSamplingCreateMessage || string(req.Params) != `{"messages":[]}` || !req.IsCall() {
		t.Errorf("sent %+v, want the sampling request as a call", req)
	}
	if first.related != int64(9) {
		t.Errorf("request sent related to %v, want the client request 9", first.related)
	}
	// A second request gets a new id.
	resp2, err := s.Request(context.Background(), protocol.MethodRootsList, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp2.ID == resp.ID {
		t.Errorf("two requests share id %v", resp.ID.Raw())
	}
}

func TestDeliverUnknown(t *testing.T) {
	s := newSession(newSink())
	defer s.Close()
	for _, id := range []jsonrpc.ID{jsonrpc.IntID(99), jsonrpc.StringID("1")} {
		if s.Deliver(jsonrpc.ResultResponse(id, json.RawMessage(`{}`))) {
			t.Errorf("Deliver(%v) = true for an answer nobody waits for", id.Raw())
		}
	}
}

func TestRequestCancelled(t *testing.T) {
	sink := newSink()
	s := newSession(sink)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Request(ctx, protocol.MethodElicitationCreate, json.RawMessage(`{}`))
		errc <- err
	}()
	req := sink.next(t).msg.(*jsonrpc.Request)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Request error = %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("Request did not return after its ctx ended")
	}
	n := sink.next(t).msg.(*jsonrpc.Request)
	if n.Method != protocol.NotificationCancelled || n.IsCall() {
		t.Fatalf("sent %s (call %v), want notifications/cancelled", n.Method, n.IsCall())
	}
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
		Reason    string          `json:"reason"`
	}
	if err := json.Unmarshal(n.Params, &p); err != nil {
		t.Fatal(err)
	}
	if string(p.RequestID) != string(jsonrpc.MarshalID(req.ID)) || p.Reason == "" {
		t.Errorf("cancelled params = %s, want requestId %s and a reason", n.Params, jsonrpc.MarshalID(req.ID))
	}
	// A late answer finds nobody waiting.
	if s.Deliver(jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))) {
		t.Error("Deliver after cancellation = true")
	}
}

func TestRequestFailsOnClose(t *testing.T) {
	sink := newSink()
	s := newSession(sink)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Request(context.Background(), protocol.MethodRootsList, nil)
		errc <- err
	}()
	sink.next(t)
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, session.ErrClosed) {
			t.Errorf("Request error = %v, want ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("a waiting Request did not fail when the session closed")
	}
	if _, err := s.Request(context.Background(), protocol.MethodRootsList, nil); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Request on a closed session = %v, want ErrClosed", err)
	}
	if err := s.Notify(context.Background(), "notifications/message", nil); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Notify on a closed session = %v, want ErrClosed", err)
	}
}

func TestRequestSendFails(t *testing.T) {
	sink := newSink()
	sink.err = errors.New("stream gone")
	s := newSession(sink)
	defer s.Close()
	if _, err := s.Request(context.Background(), protocol.MethodRootsList, nil); err == nil || !strings.Contains(err.Error(), "stream gone") {
		t.Errorf("Request with a failing sink = %v, want the sink's error", err)
	}
	if s.Idle(time.Now().Add(time.Minute)) == 0 {
		t.Error("a failed Request stays pending (Idle is 0)")
	}
}

func TestSubscriptions(t *testing.T) {
	s := newSession(newSink())
	defer s.Close()
	steps := []struct {
		op, uri string
		want    bool
	}{
		{"sub", "file:///a", true},
		{"sub", "file:///a", false},
		{"sub", "file:///b", true},
		{"unsub", "file:///a", true},
		{"unsub", "file:///a", false},
		{"unsub", "file:///never", false},
	}
	for _, st := range steps {
		var got bool
		if st.op == "sub" {
			got = s.Subscribe(st.uri)
		} else {
			got = s.Unsubscribe(st.uri)
		}
		if got != st.want {
			t.Errorf("%s(%s) = %v, want %v", st.op, st.uri, got, st.want)
		}
	}
	if s.Subscribed("file:///a") || !s.Subscribed("file:///b") {
		t.Errorf("Subscribed a, b = %v, %v; want false, true", s.Subscribed("file:///a"), s.Subscribed("file:///b"))
	}
	if diff := cmp.Diff([]string{"file:///b"}, s.Subscriptions()); diff != "" {
		t.Errorf("Subscriptions mismatch (-want +got):\n%s", diff)
	}
}

func TestIdle(t *testing.T) {
	s := newSession(newSink())
	defer s.Close()
	later := time.Now().Add(time.Hour)
	if got := s.Idle(later); got < 59*time.Minute {
		t.Errorf("Idle of an untouched session an hour later = %v, want about an hour", got)
	}
	detach := s.Attach()
	if got := s.Idle(later); got != 0 {
		t.Errorf("Idle with an open stream = %v, want 0", got)
	}
	detach()
	detach() // idempotent: must not go negative and hide a later stream
	d2 := s.Attach()
	if got := s.Idle(later); got != 0 {
		t.Errorf("Idle with a second stream = %v, want 0 (double detach miscounted)", got)
	}
	d2()
	if got := s.Idle(later); got == 0 {
		t.Error("Idle after the streams closed = 0")
	}
	before := s.Idle(later)
	time.Sleep(10 * time.Millisecond)
	s.Touch()
	if got := s.Idle(later); got >= before {
		t.Errorf("Idle after Touch = %v, want less than %v", got, before)
	}
}

func TestInitializeState(t *testing.T) {
	s := newSession(newSink())
	defer s.Close()
	var p protocol.InitializeParams
	if err := json.Unmarshal([]byte(`{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}}}`), &p); err != nil {
		t.Fatal(err)
	}
	s.SetInitialize(protocol.V20250618, p)
	s.MarkInitialized()
	if s.Version() != protocol.V20250618 {
		t.Errorf("Version = %q", s.Version())
	}
	caps := s.Capabilities()
	if !caps.Allows(protocol.MethodSamplingCreateMessage) || caps.Allows(protocol.MethodRootsList) {
		t.Errorf("Capabilities = %+v, want sampling only", caps)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := session.NewID("edge-7")
		rest, ok := strings.CutPrefix(id, "edge-7.")
		if !ok {
			t.Fatalf("NewID = %q, want the route key and a dot first", id)
		}
		// 24 random bytes: 192 bits, far beyond guessing.
		if len(rest) < 32 {
			t.Fatalf("NewID random part %q is %d characters, want at least 32", rest, len(rest))
		}
		if strings.ContainsAny(rest, "+/=. ") {
			t.Fatalf("NewID %q is not URL- and header-safe", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestRelated(t *testing.T) {
	bg := context.Background()
	if _, ok := session.RelatedTo(bg); ok {
		t.Error("RelatedTo(Background) = ok")
	}
	if _, ok := session.RelatedTo(session.WithRelated(bg, jsonrpc.ID{})); ok {
		t.Error("RelatedTo(an invalid id) = ok")
	}
	for _, id := range []jsonrpc.ID{jsonrpc.IntID(3), jsonrpc.StringID("r")} {
		from := session.WithRelated(bg, id)
		got, ok := session.RelatedTo(from)
		if !ok || got != id {
			t.Errorf("RelatedTo(WithRelated(%v)) = %v, %v", id.Raw(), got.Raw(), ok)
		}
		ctx, cancel := context.WithCancel(bg)
		carried := session.WithRelatedFrom(ctx, from)
		if got, ok := session.RelatedTo(carried); !ok || got != id {
			t.Errorf("WithRelatedFrom carried %v, %v; want %v", got.Raw(), ok, id.Raw())
		}
		cancel()
		if carried.Err() == nil {
			t.Error("WithRelatedFrom did not keep ctx's cancellation")
		}
	}
	if got := session.WithRelatedFrom(bg, bg); got != bg {
		t.Error("WithRelatedFrom without a related id changed ctx")
	}
}

func TestNotifyCarriesRelated(t *testing.T) {
	sink := newSink()
	s := newSession(sink)
	defer s.Close()
	ctx := session.WithRelated(context.Background(), jsonrpc.StringID("call-1"))
	if err := s.Notify(ctx, protocol.NotificationProgress, json.RawMessage(`{"progress":1}`)); err != nil {
		t.Fatal(err)
	}
	m := sink.next(t)
	n := m.msg.(*jsonrpc.Request)
	if n.Method != protocol.NotificationProgress || n.IsCall() || m.related != "call-1" {
		t.Errorf("Notify sent %s (call %v) related to %v", n.Method, n.IsCall(), m.related)
	}
}
