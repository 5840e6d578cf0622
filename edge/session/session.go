// Package session holds one client session: who opened it (the principal),
// the revision and capabilities it negotiated, the requests it has in
// flight, the server-to-client requests the edge made of it, and its
// resource subscriptions. The downstream transports create sessions and
// give each a Sink to write to; the router reads and drives them.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Transports a session can arrive on.
const (
	TransportSSE        = "sse"        // 2024-11-05 HTTP+SSE
	TransportStreamable = "streamable" // 2025 revisions
	TransportStateless  = "stateless"  // 2026-07-28: one request, no session
)

// ErrClosed is returned for work on a session that has ended.
var ErrClosed = errors.New("session closed")

// Sink is where a session's outgoing messages go: the transport's streams.
// ctx may carry the id of the client request a message belongs to
// (RelatedTo), so that a transport with one stream per request can put it
// on that request's stream.
type Sink interface {
	Send(ctx context.Context, msg jsonrpc.Message) error
}

type relatedKey struct{}

// WithRelated returns a context saying that messages sent with it belong to
// the client request id.
func WithRelated(ctx context.Context, id jsonrpc.ID) context.Context {
	return context.WithValue(ctx, relatedKey{}, id)
}

// WithRelatedFrom returns ctx carrying the related request of from, if any.
func WithRelatedFrom(ctx, from context.Context) context.Context {
	if id, ok := RelatedTo(from); ok {
		return WithRelated(ctx, id)
	}
	return ctx
}

// RelatedTo returns the client request id a message sent with ctx belongs
// to, if any.
func RelatedTo(ctx context.Context) (jsonrpc.ID, bool) {
	id, ok := ctx.Value(relatedKey{}).(jsonrpc.ID)
	return id, ok && id.IsValid()
}

// Session is one client session.
type Session struct {
	// ID is the session id the client presents; "" for none.
	ID        string
	Transport string
	Principal *authn.Principal
	Created   time.Time

	sink Sink

	mu           sync.Mutex
	version      string
	caps         protocol.ClientCapabilities
	rawCaps      json.RawMessage
	clientInfo   json.RawMessage
	logLevel     string
	initialized  bool
	inflight     map[any]context.CancelFunc // client request id → cancel
	pending      map[int64]chan *jsonrpc.Response
	subs         map[string]bool
	streams      int // open streams to the client
	lastActivity time.Time

	nextID    atomic.Int64
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// New returns a session writing to sink. The session's context ends when
// the session is closed.
func New(id, transport string, p *authn.Principal, sink Sink) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	// The maps are made on first use: most sessions are idle most of the
	// time, and many never subscribe or get asked anything.
	return &Session{
		ID: id, Transport: transport, Principal: p, Created: now, sink: sink,
		lastActivity: now, ctx: ctx, cancel: cancel,
	}
}

// NewID returns an unguessable session id that starts with routeKey (the
// edge that holds the session), so that a load balancer can route by it.
func NewID(routeKey string) string {
	b := make([]byte, 24)
	rand.Read(b)
	return routeKey + "." + base64.RawURLEncoding.EncodeToString(b)
}

// Context ends when the session closes.
func (s *Session) Context() context.Context { return s.ctx }

// SetInitialize records what the client said in initialize and the
// revision the edge answered with.
func (s *Session) SetInitialize(version string, p protocol.InitializeParams) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = version
	s.caps = p.Capabilities
	s.rawCaps = nil // made again from caps by RawCapabilities
	s.clientInfo = p.ClientInfo
}

// SetStateless records what a stateless request declared in its _meta: the
// revision, the client's capabilities (kept raw, to pass on), its info and
// the log level it asked for ("" for no logging).
func (s *Session) SetStateless(version string, caps json.RawMessage, clientInfo json.RawMessage, logLevel string) {
	var c protocol.ClientCapabilities
	_ = json.Unmarshal(caps, &c)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = version
	s.caps = c
	s.rawCaps = caps
	s.clientInfo = clientInfo
	s.logLevel = logLevel
	s.initialized = true
}

// RawCapabilities returns the client's capabilities as it sent them, or
// the JSON form of what it declared in initialize (made once).
func (s *Session) RawCapabilities() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rawCaps == nil {
		s.rawCaps, _ = json.Marshal(s.caps)
	}
	return s.rawCaps
}

// SetLogLevel records the level a session client set with
// logging/setLevel; calls to stateless servers carry it.
func (s *Session) SetLogLevel(level string) {
	s.mu.Lock()
	s.logLevel = level
	s.mu.Unlock()
}

// LogLevel is the log level the client asked for, "" for none.
func (s *Session) LogLevel() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLevel
}

// MarkInitialized records the client's notifications/initialized.
func (s *Session) MarkInitialized() {
	s.mu.Lock()
	s.initialized = true
	s.mu.Unlock()
}

// Version returns the negotiated revision.
func (s *Session) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Capabilities returns the client's capabilities.
func (s *Session) Capabilities() protocol.ClientCapabilities {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps
}

// Touch records activity, for the idle timeout.
func (s *Session) Touch() {
	s.mu.Lock()
	s.lastActivity = time.Now()
	s.mu.Unlock()
}

// Idle returns how long the session has had no activity and no request in
// flight (0 while one is).
func (s *Session) Idle(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) > 0 || len(s.pending) > 0 || s.streams > 0 {
		return 0
	}
	return now.Sub(s.lastActivity)
}

// Attach records an open stream to the client (a session with one is not
// idle) and returns the function that records its end.
func (s *Session) Attach() (detach func()) {
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.streams--
			s.lastActivity = time.Now()
			s.mu.Unlock()
		})
	}
}

// Begin registers a client request in flight and returns its context,
// which ends when the client cancels it (Cancel), the session closes, or
// done is called.
func (s *Session) Begin(ctx context.Context, id jsonrpc.ID) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	key := jsonrpc.IDKey(id)
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = map[any]context.CancelFunc{}
	}
	s.inflight[key] = cancel
	s.lastActivity = time.Now()
	s.mu.Unlock()
	return WithRelated(ctx, id), func() {
		stop()
		cancel()
		s.mu.Lock()
		delete(s.inflight, key)
		s.lastActivity = time.Now()
		s.mu.Unlock()
	}
}

// Cancel cancels the client request id, as notifications/cancelled asks.
func (s *Session) Cancel(id jsonrpc.ID) {
	s.mu.Lock()
	cancel := s.inflight[jsonrpc.IDKey(id)]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Send writes a message to the client.
func (s *Session) Send(ctx context.Context, msg jsonrpc.Message) error {
	select {
	case <-s.ctx.Done():
		return ErrClosed
	default:
	}
	return s.sink.Send(ctx, msg)
}

// Notify sends a notification.
func (s *Session) Notify(ctx context.Context, method string, params json.RawMessage) error {
	return s.Send(ctx, &jsonrpc.Request{Method: method, Params: params})
}

// Request sends a server-to-client request with an id of the edge's own and
// waits for the client's answer, ctx, or the session's end. When ctx ends
// first the client is told with notifications/cancelled.
func (s *Session) Request(ctx context.Context, method string, params json.RawMessage) (*jsonrpc.Response, error) {
	id := s.nextID.Add(1)
	ch := make(chan *jsonrpc.Response, 1)
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[int64]chan *jsonrpc.Response{}
	}
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	if err := s.Send(ctx, &jsonrpc.Request{ID: jsonrpc.IntID(id), Method: method, Params: params}); err != nil {
		return nil, fmt.Errorf("send %s to the client: %w", method, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		p, _ := json.Marshal(map[string]any{"requestId": id, "reason": "the server cancelled the request"})
		_ = s.Notify(context.WithoutCancel(ctx), protocol.NotificationCancelled, p)
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, ErrClosed
	}
}

// Deliver hands the client's answer to the request waiting for it. It
// reports false for an answer nobody waits for.
func (s *Session) Deliver(r *jsonrpc.Response) bool {
	id, ok := r.ID.Raw().(int64)
	if !ok {
		return false
	}
	s.mu.Lock()
	ch := s.pending[id]
	delete(s.pending, id)
	s.lastActivity = time.Now()
	s.mu.Unlock()
	if ch == nil {
		return false
	}
	ch <- r
	return true
}

// Subscribe records a resource subscription; it reports whether it is new.
func (s *Session) Subscribe(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[uri] {
		return false
	}
	if s.subs == nil {
		s.subs = map[string]bool{}
	}
	s.subs[uri] = true
	return true
}

// Unsubscribe removes a subscription; it reports whether there was one.
func (s *Session) Unsubscribe(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	had := s.subs[uri]
	delete(s.subs, uri)
	return had
}

// Subscribed reports whether the session subscribed to uri.
func (s *Session) Subscribed(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[uri]
}

// Subscriptions returns the subscribed URIs.
func (s *Session) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs))
	for u := range s.subs {
		out = append(out, u)
	}
	return out
}

// Close ends the session: every request in flight is cancelled and every
// waiting server-to-client request fails.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
	})
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }
