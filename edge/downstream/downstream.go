// Package downstream serves MCP to clients over HTTP: the 2024-11-05
// HTTP+SSE transport on /sse and /message, and the streamable HTTP
// transport of the 2025 revisions on /mcp. It turns HTTP into messages of a
// session and hands them to a Dispatcher (the router); it knows no routing.
//
// Every request is authenticated; a session belongs to the principal that
// opened it, and another token cannot drive it.
package downstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/workpool"
)

// Dispatcher answers a session's messages.
type Dispatcher interface {
	// Initialize answers initialize and records what the client declared;
	// ctx carries the request's trace context and request id.
	Initialize(ctx context.Context, s *session.Session, params json.RawMessage) (json.RawMessage, *jsonrpc.Error)
	// Handle answers any other request; ctx ends when the request is
	// cancelled.
	Handle(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response
	// HandleNotification takes a notification.
	HandleNotification(ctx context.Context, s *session.Session, n *jsonrpc.Request)
	// Listen serves a stateless subscriptions/listen request until ctx
	// ends; what it sends goes to s.
	Listen(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response
	// Tool returns a tool's definition as clients see it, by its visible
	// name (for checking parameter headers).
	Tool(name string) (json.RawMessage, bool)
}

// Verifier checks tokens (authn.Verifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (*authn.Principal, error)
	IsRevoked(jti string) bool
}

// Defaults.
const (
	DefaultMaxBody     = 4 << 20
	DefaultKeepAlive   = 15 * time.Second
	DefaultSessionTTL  = 30 * time.Minute
	DefaultStreamLimit = 1024 // events waiting unread before a client is dropped
	DefaultResumeGrace = 10 * time.Second
)

// Options configure a Handler.
type Options struct {
	Dispatcher Dispatcher
	Verifier   Verifier
	Sessions   *session.Store
	// RouteKey starts every session id, naming this edge.
	RouteKey string
	// MaxBody caps a request body (DefaultMaxBody when 0).
	MaxBody int64
	// KeepAlive is the interval of keep-alive comments on idle streams.
	KeepAlive time.Duration
	// StreamLimit bounds the events held for one stream; beyond it the
	// oldest notifications give way.
	StreamLimit int
	// StreamWriteTimeout bounds one write to an SSE stream: a client that
	// stops reading is dropped after it (DefaultStreamWriteTimeout when 0).
	StreamWriteTimeout time.Duration
	// ResumeGrace is how long the calls of a POST whose connection broke go
	// on, waiting for the client to resume the stream (DefaultResumeGrace
	// when 0).
	ResumeGrace time.Duration
	// CallContext, when set, derives the context a client request is
	// handled on from the HTTP request that carried it. A session's calls
	// outlive their HTTP request (they run on the session's context), so
	// values of the HTTP request's context, such as a request id or the
	// client's trace context, reach them only through it.
	CallContext func(ctx context.Context, r *http.Request) context.Context
	// Guard checks Host and Origin and answers CORS.
	Guard *Guard
	// Limits, when set, rate-limits tokens and caps the requests in flight
	// and the sessions open, per token and in all (see limits.go).
	Limits *limits.Limiter
	// WriteTimeout bounds writing a response that is not a stream; 0 means
	// no bound.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Handler serves the MCP endpoints.
type Handler struct {
	opts Options
	log  *slog.Logger

	// work runs the calls: goroutines kept for reuse, with the stack a
	// call needs already grown.
	work *workpool.Pool
	// state is each session's streams, by session (*session.Session to
	// *sessionState): a sync.Map, so that requests find theirs without a
	// lock all of them share.
	state sync.Map

	// draining ends when Drain is called (the edge is shutting down).
	draining context.Context
	drain    context.CancelFunc
}

// sessionState is what a transport keeps per session.
type sessionState struct {
	mu         sync.Mutex
	standalone *stream            // GET stream (legacy: the only stream)
	posts      map[string]*stream // streamable: one per POST with requests
	seq        int
	release    func() // gives back the session's place (Options.Limits)
	// legacyCalls counts the legacy calls whose answers are still due on
	// the session's stream.
	legacyCalls atomic.Int64
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.ResumeGrace <= 0 {
		opts.ResumeGrace = DefaultResumeGrace
	}
	if opts.StreamLimit <= 0 {
		opts.StreamLimit = DefaultStreamLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Guard == nil {
		opts.Guard = &Guard{}
	}
	draining, drain := context.WithCancel(context.Background())
	return &Handler{opts: opts, log: opts.Logger, draining: draining, drain: drain, work: workpool.New(0, 0)}
}

// Drain prepares a graceful shutdown (the http.Server's RegisterOnShutdown
// calls it): the streams that carry no answer a client waits for end at
// once (streamable GET streams, stateless listen streams), a legacy SSE
// stream as soon as the answers of its calls in flight are written. POST
// streams end, as always, when their calls are answered, so that calls in
// flight finish within the server's grace period.
func (h *Handler) Drain() { h.drain() }

// endWhenDrained ends a legacy SSE stream (with end) once the handler
// drains and the stream owes its client nothing: no call in flight, every
// event written.
func (h *Handler) endWhenDrained(ctx context.Context, end func(), st *sessionState) {
	select {
	case <-ctx.Done():
		return
	case <-h.draining.Done():
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if st.legacyCalls.Load() == 0 && st.standalone.empty() {
			end()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Register adds the MCP endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	wt := h.opts.WriteTimeout
	mux.Handle("/sse", h.opts.Guard.Wrap(boundWrites(wt, http.HandlerFunc(h.serveSSE))))
	mux.Handle("/message", h.opts.Guard.Wrap(boundWrites(wt, http.HandlerFunc(h.serveMessage))))
	mux.Handle("/mcp", h.opts.Guard.Wrap(boundWrites(wt, http.HandlerFunc(h.serveStreamable))))
}

// SessionClosed forgets a session's streams; the store calls it.
func (h *Handler) SessionClosed(s *session.Session) {
	v, _ := h.state.LoadAndDelete(s)
	st, _ := v.(*sessionState)
	if st == nil {
		return
	}
	if st.release != nil {
		st.release()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.standalone != nil {
		st.standalone.close(session.ErrClosed)
	}
	for _, p := range st.posts {
		p.close(session.ErrClosed)
	}
}

func (h *Handler) stateOf(s *session.Session) *sessionState {
	v, _ := h.state.Load(s)
	st, _ := v.(*sessionState)
	return st
}

// authenticate returns the principal of r, answering 401 itself when there
// is none.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*authn.Principal, bool) {
	p, err := h.opts.Verifier.Verify(r.Context(), httpauth.Token(r))
	if err != nil {
		httpauth.Deny(w, r, err)
		return nil, false
	}
	return p, true
}

// authorizeSession checks that r may drive s: a token that is sent must be
// the principal's who opened s, and that principal must still be valid. A
// token may be left out only when allowTokenless (the legacy /message,
// whose URL clients build from the endpoint event without the query).
func (h *Handler) authorizeSession(w http.ResponseWriter, r *http.Request, s *session.Session, allowTokenless bool) bool {
	tok := httpauth.Token(r)
	if tok == "" && allowTokenless {
		if err := h.stillValid(s.Principal); err != nil {
			httpauth.Deny(w, r, err)
			return false
		}
		return true
	}
	p, err := h.opts.Verifier.Verify(r.Context(), tok)
	if err != nil {
		httpauth.Deny(w, r, err)
		return false
	}
	if !p.SameAs(s.Principal) {
		writeJSONRPCError(w, http.StatusForbidden, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "this session belongs to another principal"))
		return false
	}
	return true
}

// stillValid checks a session's principal again: expiry and revocation.
func (h *Handler) stillValid(p *authn.Principal) error {
	if !p.ExpiresAt.IsZero() && time.Now().After(p.ExpiresAt) {
		return authn.ErrExpired
	}
	if p.TokenID != "" && h.opts.Verifier.IsRevoked(p.TokenID) {
		return authn.ErrRevoked
	}
	return nil
}

// readAll reads r, at most max bytes, in one allocation when the length is
// known beforehand (Content-Length).
func readAll(r io.Reader, length, max int64) ([]byte, error) {
	if length < 0 || length > max {
		return io.ReadAll(r)
	}
	body := make([]byte, length, length+1)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	// Make sure the body ends where it said: a longer one is read on.
	var one [1]byte
	if n, err := r.Read(one[:]); n > 0 || err != nil && err != io.EOF {
		rest, rerr := io.ReadAll(r)
		if rerr != nil {
			return nil, rerr
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return append(append(body, one[:n]...), rest...), nil
	}
	return body, nil
}

// readBody reads a POST body within the size cap, answering 413 itself.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := readAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody), r.ContentLength, h.opts.MaxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSONRPCError(w, http.StatusRequestEntityTooLarge, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "request body exceeds %d bytes", mbe.Limit))
			return nil, false
		}
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeParseError, "could not read the request body"))
		return nil, false
	}
	return body, true
}

// callContext is ctx with what Options.CallContext carries over from r.
func (h *Handler) callContext(ctx context.Context, r *http.Request) context.Context {
	if h.opts.CallContext == nil {
		return ctx
	}
	return h.opts.CallContext(ctx, r)
}

// dispatch handles one request of s and returns its response.
func (h *Handler) dispatch(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	rctx, done := s.Begin(ctx, req.ID)
	defer done()
	resp := h.opts.Dispatcher.Handle(rctx, s, req)
	resp.ID = req.ID
	return resp
}

// hdrJSON is the Content-Type of JSON answers, shared (never changed).
var hdrJSON = []string{"application/json"}

// writeJSONRPCError writes a JSON-RPC error object as an HTTP error.
func writeJSONRPCError(w http.ResponseWriter, status int, e *jsonrpc.Error) {
	data, _ := jsonrpc.Encode(jsonrpc.ErrorResponse(jsonrpc.ID{}, e))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
