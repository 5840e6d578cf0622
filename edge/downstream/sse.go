package downstream

import (
	"context"
	"net/http"
	"net/url"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
)

// The 2024-11-05 HTTP+SSE transport: GET /sse opens the session's one
// stream, whose first event names the endpoint to POST messages to;
// POST /message?sessionId=ID answers 202 and the reply comes on the stream.

// legacySink sends everything on the session's one stream.
type legacySink struct{ s *stream }

func (l legacySink) Send(_ context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.Encode(msg)
	if err != nil {
		return err
	}
	_, isResp := msg.(*jsonrpc.Response)
	if n, ok := msg.(*jsonrpc.Request); ok && !n.IsCall() {
		return l.s.pushNote("message", data)
	}
	return l.s.push("message", data, isResp)
}

func (h *Handler) serveSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeJSONRPCError(w, http.StatusMethodNotAllowed, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "use GET to open the SSE stream"))
		return
	}
	p, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if err := h.opts.Limits.Allow(subjectOf(p), 1); err != nil {
		h.refuse(w, jsonrpc.ID{}, p, err)
		return
	}
	release, err := h.opts.Limits.OpenSession(subjectOf(p))
	if err != nil {
		h.refuse(w, jsonrpc.ID{}, p, err)
		return
	}
	st := newStream("", h.opts.StreamLimit)
	s := session.New(session.NewID(h.opts.RouteKey), session.TransportSSE, p, legacySink{st})
	ss := &sessionState{standalone: st, release: release}
	h.state.Store(s, ss)
	h.opts.Sessions.Add(s)
	defer h.opts.Sessions.Remove(s)
	detach := s.Attach()
	defer detach()

	// The endpoint is relative, so it works behind any proxy prefix; the
	// token stays out of it (the client keeps its own header).
	endpoint := "message?sessionId=" + url.QueryEscape(s.ID)
	if err := st.push("endpoint", []byte(endpoint), false); err != nil {
		return
	}
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), s: st, done: s.Done(), timeout: h.opts.StreamWriteTimeout}
	st.attach()
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	// No goroutine waits for a drain per idle session: one starts when
	// the drain does.
	defer context.AfterFunc(h.draining, func() { h.endWhenDrained(ctx, stop, ss) })()
	_, err = sw.pump(ctx, 0, h.opts.KeepAlive, nil, false)
	if stalled(err) {
		h.log.WarnContext(r.Context(), "legacy SSE client dropped: it stopped reading its stream", "session", s.ID)
	}
}

func (h *Handler) serveMessage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSONRPCError(w, http.StatusMethodNotAllowed, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "use POST to send a message"))
		return
	}
	id := r.URL.Query().Get("sessionId")
	if id == "" {
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "sessionId is required"))
		return
	}
	s := h.opts.Sessions.Get(id)
	if s == nil || s.Transport != session.TransportSSE {
		writeJSONRPCError(w, http.StatusNotFound, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "unknown session: open a new one with GET /sse"))
		return
	}
	if !h.authorizeSession(w, r, s, true) {
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	msgs, _, err := jsonrpc.Decode(body)
	if err != nil {
		writeJSONRPCError(w, http.StatusBadRequest, asError(err))
		return
	}
	n, oneID := callsOf(msgs)
	release, err := h.opts.Limits.Begin(subjectOf(s.Principal), n)
	if err != nil {
		h.refuse(w, oneID, s.Principal, err)
		return
	}
	done := releaseAfter(n, release)
	s.Touch()
	w.WriteHeader(http.StatusAccepted)
	// The answers go on the session's stream, after this POST has ended.
	ctx := h.callContext(s.Context(), r)
	for _, m := range msgs {
		switch m := m.(type) {
		case *jsonrpc.Response:
			s.Deliver(m)
		case *jsonrpc.Request:
			if !m.IsCall() {
				h.opts.Dispatcher.HandleNotification(ctx, s, m)
				continue
			}
			st := h.stateOf(s)
			if st != nil {
				st.legacyCalls.Add(1)
			}
			h.work.Go(func() {
				defer done()
				h.legacyCall(ctx, s, m)
				if st != nil {
					st.legacyCalls.Add(-1)
				}
			})
		}
	}
}

// legacyCall answers one request on the session's stream; ctx is the
// session's context with what CallContext carried over.
func (h *Handler) legacyCall(ctx context.Context, s *session.Session, req *jsonrpc.Request) {
	var resp *jsonrpc.Response
	if req.Method == protocol.MethodInitialize {
		res, jerr := h.opts.Dispatcher.Initialize(ctx, s, req.Params)
		if jerr != nil {
			resp = jsonrpc.ErrorResponse(req.ID, jerr)
		} else {
			resp = jsonrpc.ResultResponse(req.ID, res)
		}
	} else {
		resp = h.dispatch(ctx, s, req)
	}
	if err := s.Send(s.Context(), resp); err != nil {
		h.log.DebugContext(ctx, "response not delivered", "session", s.ID, "err", err)
	}
}

// asError returns the *jsonrpc.Error in err, or a parse error.
func asError(err error) *jsonrpc.Error {
	if je, ok := err.(*jsonrpc.Error); ok {
		return je
	}
	return jsonrpc.NewError(jsonrpc.CodeParseError, "%v", err)
}
