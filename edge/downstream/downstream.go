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
	"time"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Dispatcher answers a session's messages.
type Dispatcher interface {
	// Initialize answers initialize and records what the client declared.
	Initialize(s *session.Session, params json.RawMessage) (json.RawMessage, *jsonrpc.Error)
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
	// StreamLimit bounds the events held for one stream.
	StreamLimit int
	// ResumeGrace is how long the calls of a POST whose connection broke go
	// on, waiting for the client to resume the stream (DefaultResumeGrace
	// when 0).
	ResumeGrace time.Duration
	// Guard checks Host and Origin and answers CORS.
	Guard  *Guard
	Logger *slog.Logger
}

// Handler serves the MCP endpoints.
type Handler struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	state map[*session.Session]*sessionState
}

// sessionState is what a transport keeps per session.
type sessionState struct {
	mu         sync.Mutex
	standalone *stream            // GET stream (legacy: the only stream)
	posts      map[string]*stream // streamable: one per POST with requests
	seq        int
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
	return &Handler{opts: opts, log: opts.Logger, state: map[*session.Session]*sessionState{}}
}

// Register adds the MCP endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/sse", h.opts.Guard.Wrap(http.HandlerFunc(h.serveSSE)))
	mux.Handle("/message", h.opts.Guard.Wrap(http.HandlerFunc(h.serveMessage)))
	mux.Handle("/mcp", h.opts.Guard.Wrap(http.HandlerFunc(h.serveStreamable)))
}

// SessionClosed forgets a session's streams; the store calls it.
func (h *Handler) SessionClosed(s *session.Session) {
	h.mu.Lock()
	st := h.state[s]
	delete(h.state, s)
	h.mu.Unlock()
	if st == nil {
		return
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
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state[s]
}

// authenticate returns the principal of r, answering 401 itself when there
// is none.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*authn.Principal, bool) {
	p, err := h.opts.Verifier.Verify(r.Context(), httpauth.Token(r))
	if err != nil {
		httpauth.Unauthorized(w, err)
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
			httpauth.Unauthorized(w, err)
			return false
		}
		return true
	}
	p, err := h.opts.Verifier.Verify(r.Context(), tok)
	if err != nil {
		httpauth.Unauthorized(w, err)
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

// readBody reads a POST body within the size cap, answering 413 itself.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
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

// dispatch handles one request of s and returns its response.
func (h *Handler) dispatch(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	rctx, done := s.Begin(ctx, req.ID)
	defer done()
	resp := h.opts.Dispatcher.Handle(rctx, s, req)
	resp.ID = req.ID
	return resp
}

// writeJSONRPCError writes a JSON-RPC error object as an HTTP error.
func writeJSONRPCError(w http.ResponseWriter, status int, e *jsonrpc.Error) {
	data, _ := jsonrpc.Encode(jsonrpc.ErrorResponse(jsonrpc.ID{}, e))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
