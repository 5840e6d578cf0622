package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// gather is how long a held call waits, after the server's first request
// to the client, for more that come together, so that one input_required
// result carries them all.
const gather = 25 * time.Millisecond

// Held is a server call the edge holds for a stateless client: it runs on
// its own, and whenever the server asks the client something the client's
// current request is answered with input_required.
type Held struct {
	ID string

	cancel context.CancelFunc
	done   chan struct{}
	resp   *jsonrpc.Response
	err    error

	notify atomic.Pointer[func(*jsonrpc.Request)]

	mu      sync.Mutex
	pending map[string]*pending
	order   []string
	seq     int
	wake    chan struct{}
	expires time.Time
}

type pending struct {
	key    string
	req    *jsonrpc.Request
	answer chan json.RawMessage
}

// Input is one request to the client, as an input_required result lists it.
type Input struct {
	Key    string
	Method string
	Params json.RawMessage
}

// Start runs call on its own context (bounded by ttl) and returns the held
// call. call must answer server-to-client requests with h.Ask and pass
// notifications to h.Notify.
func Start(ttl time.Duration, call func(ctx context.Context, h *Held) (*jsonrpc.Response, error)) *Held {
	ctx, cancel := context.WithTimeout(context.Background(), ttl)
	h := &Held{
		ID: newID(), cancel: cancel, done: make(chan struct{}),
		pending: map[string]*pending{}, wake: make(chan struct{}, 1),
		expires: time.Now().Add(ttl),
	}
	go func() {
		defer close(h.done)
		defer cancel()
		h.resp, h.err = call(ctx, h)
	}()
	return h
}

// SetNotify routes the call's notifications to the client's current
// request (each retry is a new HTTP request).
func (h *Held) SetNotify(f func(*jsonrpc.Request)) { h.notify.Store(&f) }

// Notify passes a notification of the call to the current request.
func (h *Held) Notify(n *jsonrpc.Request) {
	if f := h.notify.Load(); f != nil && *f != nil {
		(*f)(n)
	}
}

// Ask is the server's request to the client: it becomes an input request
// of the next input_required result, and waits for the client's retry.
func (h *Held) Ask(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response {
	h.mu.Lock()
	h.seq++
	key := keyFor(req.Method) + "-" + strconv.Itoa(h.seq)
	p := &pending{key: key, req: req, answer: make(chan json.RawMessage, 1)}
	h.pending[key] = p
	h.order = append(h.order, key)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	select {
	case result := <-p.answer:
		return jsonrpc.ResultResponse(req.ID, result)
	case <-ctx.Done():
		h.forget(key)
		return nil // the server cancelled its request, or the call ended
	}
}

func (h *Held) forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, key)
	for i, k := range h.order {
		if k == key {
			h.order = append(h.order[:i], h.order[i+1:]...)
			break
		}
	}
}

func keyFor(method string) string {
	switch method {
	case protocol.MethodElicitationCreate:
		return "elicitation"
	case protocol.MethodSamplingCreateMessage:
		return "sampling"
	case protocol.MethodRootsList:
		return "roots"
	}
	return "input"
}

// Inputs returns what the server waits for, in the order it asked.
func (h *Held) Inputs() []Input {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Input, 0, len(h.order))
	for _, k := range h.order {
		p := h.pending[k]
		out = append(out, Input{Key: k, Method: p.req.Method, Params: p.req.Params})
	}
	return out
}

// Answer delivers the client's inputResponses to the requests waiting for
// them. Keys it does not know are ignored (the revision says so); it
// returns the keys still unanswered.
func (h *Held) Answer(responses map[string]json.RawMessage) (missing []string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, v := range responses {
		var obj map[string]json.RawMessage
		if _, ok := h.pending[k]; ok && json.Unmarshal(v, &obj) != nil {
			return nil, fmt.Errorf("inputResponses[%q] must be an object (the result of %s)", k, h.pending[k].req.Method)
		}
	}
	var keep []string
	for _, k := range h.order {
		p := h.pending[k]
		if v, ok := responses[k]; ok {
			p.answer <- v
			delete(h.pending, k)
			continue
		}
		keep = append(keep, k)
	}
	h.order = keep
	return append([]string(nil), keep...), nil
}

// Outcome is what Wait saw.
type Outcome int

// Outcomes of Wait.
const (
	// Done: the call finished; Result has its response.
	Done Outcome = iota
	// NeedsInput: the server waits for the client (Inputs).
	NeedsInput
	// Gone: ctx ended first (the client went away).
	Gone
)

// Wait waits until the call finishes or asks the client something that is
// not answered yet, or ctx ends.
func (h *Held) Wait(ctx context.Context) Outcome {
	for {
		h.mu.Lock()
		waiting := len(h.order) > 0
		h.mu.Unlock()
		if waiting {
			// Give concurrent requests of the server a moment to join.
			select {
			case <-h.done:
				return Done
			case <-time.After(gather):
			}
			return NeedsInput
		}
		select {
		case <-h.done:
			return Done
		case <-h.wake:
		case <-ctx.Done():
			return Gone
		}
	}
}

// Result returns the call's response once Wait returned Done.
func (h *Held) Result() (*jsonrpc.Response, error) { return h.resp, h.err }

// Cancel ends the call (the server is told by the upstream layer).
func (h *Held) Cancel() { h.cancel() }

// Expires is when the held call gives up waiting for the client.
func (h *Held) Expires() time.Time { return h.expires }

// Finished is closed when the call has ended.
func (h *Held) Finished() <-chan struct{} { return h.done }

// Table holds the calls held on this edge.
type Table struct {
	mu sync.Mutex
	m  map[string]*Held
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{m: map[string]*Held{}} }

// Put stores h until it finishes or expires.
func (t *Table) Put(h *Held) {
	t.mu.Lock()
	t.m[h.ID] = h
	t.mu.Unlock()
	go func() {
		<-h.done // the call's own context carries the TTL
		t.mu.Lock()
		delete(t.m, h.ID)
		t.mu.Unlock()
	}()
}

// Get returns the held call id, or nil.
func (t *Table) Get(id string) *Held {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// Len returns how many calls are held.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
