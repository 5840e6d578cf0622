package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/seal"
)

const wait = 5 * time.Second

func sealer(t *testing.T, now time.Time) *Sealer {
	t.Helper()
	r := &seal.Ring{}
	if err := r.Set([]seal.Key{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}}); err != nil {
		t.Fatal(err)
	}
	return &Sealer{Ring: r, Edge: "edge-a", Now: func() time.Time { return now }}
}

func TestSealOpen(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := sealer(t, now)
	key := RequestKey("tools/call", json.RawMessage(`{"name":"x","arguments":{"a":1}}`))
	st := State{Kind: KindHeld, ID: "h1", Edge: "edge-a", Request: key, Expires: now.Add(time.Minute).UnixMilli()}
	tok, err := s.Seal(st, "client:alice")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open(tok, "client:alice", key)
	if err != nil || got != st {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, st)
	}

	tests := []struct {
		name      string
		sealer    *Sealer
		principal string
		request   string
		want      error
	}{
		{"another principal", s, "client:mallory", key, ErrInvalidState},
		{"another request", s, "client:alice", RequestKey("tools/call", json.RawMessage(`{"name":"y"}`)), ErrOtherRequest},
		{"expired", sealer(t, now.Add(2*time.Minute)), "client:alice", key, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.sealer.Open(tok, tt.principal, tt.request); !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// The request key ignores what changes between rounds and nothing else.
func TestRequestKey(t *testing.T) {
	base := RequestKey("tools/call", json.RawMessage(`{"name":"x","arguments":{"a":1,"b":2}}`))
	same := []string{
		`{"arguments":{"b":2,"a":1},"name":"x"}`,
		`{"name":"x","arguments":{"a":1,"b":2},"_meta":{"progressToken":3}}`,
		`{"name":"x","arguments":{"a":1,"b":2},"inputResponses":{"k":{}},"requestState":"s"}`,
	}
	for _, p := range same {
		if got := RequestKey("tools/call", json.RawMessage(p)); got != base {
			t.Errorf("RequestKey(%s) differs from the first round's", p)
		}
	}
	other := []struct{ method, params string }{
		{"tools/call", `{"name":"x","arguments":{"a":2,"b":2}}`},
		{"tools/call", `{"name":"z","arguments":{"a":1,"b":2}}`},
		{"prompts/get", `{"name":"x","arguments":{"a":1,"b":2}}`},
	}
	for _, o := range other {
		if RequestKey(o.method, json.RawMessage(o.params)) == base {
			t.Errorf("RequestKey(%s %s) equals another request's", o.method, o.params)
		}
	}
}

// A held call asks the client, gets the answer on the retry, and finishes.
func TestHeldRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var answer *jsonrpc.Response
	h := Start(time.Minute, func(ctx context.Context, h *Held) (*jsonrpc.Response, error) {
		answer = h.Ask(ctx, &jsonrpc.Request{ID: jsonrpc.IntID(9), Method: protocol.MethodElicitationCreate, Params: json.RawMessage(`{"message":"name?"}`)})
		return jsonrpc.ResultResponse(jsonrpc.IntID(1), json.RawMessage(`{"content":[]}`)), nil
	})
	if got := h.Wait(ctx); got != NeedsInput {
		t.Fatalf("Wait = %v, want NeedsInput", got)
	}
	in := h.Inputs()
	if len(in) != 1 || in[0].Method != protocol.MethodElicitationCreate || in[0].Key == "" {
		t.Fatalf("Inputs = %+v", in)
	}
	// An answer that is not an object is refused; the call waits on.
	if _, err := h.Answer(map[string]json.RawMessage{in[0].Key: json.RawMessage(`"yes"`)}); err == nil {
		t.Error("a non-object answer was accepted")
	}
	// Extra keys are ignored; a missing one stays asked.
	missing, err := h.Answer(map[string]json.RawMessage{"unknown": json.RawMessage(`{}`)})
	if err != nil || len(missing) != 1 || missing[0] != in[0].Key {
		t.Fatalf("Answer(extra only) = %v, %v; want the key still missing", missing, err)
	}
	if got := h.Wait(ctx); got != NeedsInput {
		t.Fatalf("Wait after an unanswered retry = %v, want NeedsInput again", got)
	}
	if missing, err := h.Answer(map[string]json.RawMessage{in[0].Key: json.RawMessage(`{"action":"accept"}`)}); err != nil || len(missing) != 0 {
		t.Fatalf("Answer = %v, %v", missing, err)
	}
	if got := h.Wait(ctx); got != Done {
		t.Fatalf("Wait after the answer = %v, want Done", got)
	}
	resp, err := h.Result()
	if err != nil || resp == nil || answer == nil || string(answer.Result) != `{"action":"accept"}` {
		t.Fatalf("Result = %v, %v; server got %+v", resp, err, answer)
	}
}

// A client that goes away ends the wait; the call's TTL ends the call.
func TestHeldGoneAndExpired(t *testing.T) {
	h := Start(100*time.Millisecond, func(ctx context.Context, h *Held) (*jsonrpc.Response, error) {
		if r := h.Ask(ctx, &jsonrpc.Request{ID: jsonrpc.IntID(1), Method: protocol.MethodRootsList}); r != nil {
			t.Error("Ask answered although nobody answered it")
		}
		return nil, ctx.Err()
	})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if got := h.Wait(gone); got != Gone && got != NeedsInput {
		t.Fatalf("Wait(cancelled) = %v", got)
	}
	tbl := NewTable()
	tbl.Put(h)
	select {
	case <-h.Finished():
	case <-time.After(wait):
		t.Fatal("the held call outlived its TTL")
	}
	deadline := time.Now().Add(wait)
	for tbl.Get(h.ID) != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if tbl.Get(h.ID) != nil || tbl.Len() != 0 {
		t.Error("an ended call is still in the table")
	}
	if _, err := h.Result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Result err = %v, want the TTL's deadline", err)
	}
}

// Notifications reach whichever request is current, and none after.
func TestHeldNotify(t *testing.T) {
	step, release := make(chan struct{}), make(chan struct{})
	h := Start(time.Minute, func(ctx context.Context, h *Held) (*jsonrpc.Response, error) {
		<-step
		h.Notify(&jsonrpc.Request{Method: "first"})
		<-release
		h.Notify(&jsonrpc.Request{Method: "second"})
		return jsonrpc.ResultResponse(jsonrpc.IntID(1), json.RawMessage(`{}`)), nil
	})
	got := make(chan string, 4)
	h.SetNotify(func(n *jsonrpc.Request) { got <- n.Method })
	close(step)
	select {
	case m := <-got:
		if m != "first" {
			t.Errorf("got %q, want first", m)
		}
	case <-time.After(wait):
		t.Fatal("the current request got no notification")
	}
	h.SetNotify(nil) // the request ended
	close(release)
	<-h.Finished()
	if len(got) != 0 {
		t.Errorf("a notification reached a request that had ended: %q", <-got)
	}
}
