package downstream

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
)

// The streamable HTTP transport (2025-03-26, 2025-06-18, 2025-11-25) on
// one endpoint: POST carries messages (a request's answer comes back as
// JSON, or as an SSE stream when the call sends something first), GET opens
// the session's standalone stream, DELETE ends the session. Streams carry
// event ids, so a client whose connection broke resumes with Last-Event-ID.

const (
	headerSessionID = "Mcp-Session-Id"
	headerVersion   = "MCP-Protocol-Version"
	headerLastEvent = "Last-Event-ID"
	standaloneID    = "s"
)

// streamableSink routes a session's messages: those that belong to a
// request go on that request's POST stream while it is open, everything
// else on the standalone stream.
type streamableSink struct {
	h  *Handler
	st *sessionState
}

func (k streamableSink) Send(ctx context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.Encode(msg)
	if err != nil {
		return err
	}
	if id, ok := session.RelatedTo(ctx); ok {
		k.st.mu.Lock()
		var target *stream
		for _, p := range k.st.posts {
			if p.owns(id) {
				target = p
				break
			}
		}
		k.st.mu.Unlock()
		if target != nil {
			if n, ok := msg.(*jsonrpc.Request); ok && !n.IsCall() {
				return target.pushNote("", data)
			}
			return target.push("", data, false)
		}
	}
	k.st.mu.Lock()
	sa := k.st.standalone
	k.st.mu.Unlock()
	// Nobody may be listening on the standalone stream; messages wait for
	// the next GET, and beyond the cap the oldest give way.
	if trimmed, _ := sa.pushOrTrim(data); trimmed {
		k.h.log.Warn("standalone stream backlog trimmed: the client has no GET stream open", "session_transport", "streamable")
	}
	return nil
}

func (h *Handler) serveStreamable(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.streamablePOST(w, r)
	case http.MethodGet, http.MethodDelete:
		if r.Header.Get(headerSessionID) == "" && protocol.Stateless(r.Header.Get(headerVersion)) {
			statelessGETDELETE(w, r)
			return
		}
		if r.Method == http.MethodGet {
			h.streamableGET(w, r)
		} else {
			h.streamableDELETE(w, r)
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeJSONRPCError(w, http.StatusMethodNotAllowed, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "method %s is not allowed on /mcp", r.Method))
	}
}

// The Accept values clients send with every POST.
const (
	acceptBoth         = "application/json, text/event-stream"
	acceptBothReversed = "text/event-stream, application/json"
)

// mediaType returns the media type of a Content-Type value, lower case,
// without its parameters.
func mediaType(v string) string {
	mt, _, _ := mime.ParseMediaType(v)
	return mt
}

// accepts reports whether the Accept header lists both types (or a
// wildcard covering them).
func accepts(r *http.Request, types ...string) bool {
	// What SDK clients send, told without parsing anything.
	if v := r.Header["Accept"]; len(v) == 1 && (v[0] == acceptBoth || v[0] == acceptBothReversed) {
		return true
	}
	have := map[string]bool{}
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil {
				have[mt] = true
			}
		}
	}
	if have["*/*"] {
		return true
	}
	for _, t := range types {
		if !have[t] && !have[strings.Split(t, "/")[0]+"/*"] {
			return false
		}
	}
	return true
}

// lookup finds the session a request names, answering 400 or 404 itself.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request) (*session.Session, *sessionState, bool) {
	id := r.Header.Get(headerSessionID)
	if id == "" {
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Mcp-Session-Id header is required: initialize first"))
		return nil, nil, false
	}
	s := h.opts.Sessions.Get(id)
	if s == nil || s.Transport != session.TransportStreamable {
		// 404 tells the client to start a new session (the spec's rule).
		writeJSONRPCError(w, http.StatusNotFound, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session not found: initialize a new session"))
		return nil, nil, false
	}
	if !h.authorizeSession(w, r, s, false) {
		return nil, nil, false
	}
	if v := r.Header.Get(headerVersion); v != "" {
		if !protocol.Supported(v) {
			writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "unsupported MCP-Protocol-Version %q", v))
			return nil, nil, false
		}
		if v != s.Version() {
			writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "MCP-Protocol-Version %q differs from the session's %q", v, s.Version()))
			return nil, nil, false
		}
	}
	st := h.stateOf(s)
	if st == nil {
		writeJSONRPCError(w, http.StatusNotFound, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session not found: initialize a new session"))
		return nil, nil, false
	}
	s.Touch()
	return s, st, true
}

func (h *Handler) streamablePOST(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && mediaType(ct) != "application/json" {
		writeJSONRPCError(w, http.StatusUnsupportedMediaType, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Content-Type must be application/json"))
		return
	}
	if !accepts(r, "application/json", "text/event-stream") {
		writeJSONRPCError(w, http.StatusNotAcceptable, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Accept must list application/json and text/event-stream"))
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	msgs, batch, err := jsonrpc.Decode(body)
	if err != nil {
		writeJSONRPCError(w, http.StatusBadRequest, asError(err))
		return
	}
	if isStateless(r, msgs) {
		h.statelessPOST(w, r, msgs, batch)
		return
	}
	if r.Header.Get(headerSessionID) == "" {
		h.initialize(w, r, msgs, batch)
		return
	}
	s, st, ok := h.lookup(w, r)
	if !ok {
		return
	}
	if batch && s.Version() != protocol.V20250326 {
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "JSON-RPC batches are not allowed in revision %s", s.Version()))
		return
	}
	// Limits first: a refused POST has no effect at all.
	n, oneID := callsOf(msgs)
	release, err := h.opts.Limits.Begin(subjectOf(s.Principal), n)
	if err != nil {
		h.refuse(w, oneID, s.Principal, err)
		return
	}
	answered := false
	defer func() {
		if !answered {
			release()
		}
	}()
	var calls []*jsonrpc.Request
	for _, m := range msgs {
		switch m := m.(type) {
		case *jsonrpc.Response:
			s.Deliver(m)
		case *jsonrpc.Request:
			if m.IsCall() {
				if m.Method == protocol.MethodInitialize {
					writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "the session is already initialized"))
					return
				}
				calls = append(calls, m)
			} else {
				h.opts.Dispatcher.HandleNotification(r.Context(), s, m)
			}
		}
	}
	if len(calls) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	answered = true
	h.answer(w, r, s, st, calls, batch, release)
}

// initialize opens a session for an initialize request without a session
// id.
func (h *Handler) initialize(w http.ResponseWriter, r *http.Request, msgs []jsonrpc.Message, batch bool) {
	req, ok := msgs[0].(*jsonrpc.Request)
	if batch || len(msgs) != 1 || !ok || req.Method != protocol.MethodInitialize || !req.IsCall() {
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Mcp-Session-Id header is required: send initialize first"))
		return
	}
	p, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	releaseSession, err := h.opts.Limits.OpenSession(subjectOf(p))
	if err != nil {
		h.refuse(w, req.ID, p, err)
		return
	}
	releaseCall, err := h.opts.Limits.Begin(subjectOf(p), 1)
	if err != nil {
		releaseSession()
		h.refuse(w, req.ID, p, err)
		return
	}
	defer releaseCall()
	// posts is made by the first POST with calls: an idle session holds
	// no map for them.
	st := &sessionState{standalone: newStream(standaloneID, h.opts.StreamLimit), release: releaseSession}
	s := session.New(session.NewID(h.opts.RouteKey), session.TransportStreamable, p, streamableSink{h: h, st: st})
	res, jerr := h.opts.Dispatcher.Initialize(r.Context(), s, req.Params)
	var resp *jsonrpc.Response
	if jerr != nil {
		releaseSession()
		resp = jsonrpc.ErrorResponse(req.ID, jerr)
	} else {
		resp = jsonrpc.ResultResponse(req.ID, res)
		h.state.Store(s, st)
		h.opts.Sessions.Add(s)
		w.Header().Set(headerSessionID, s.ID)
	}
	data, _ := jsonrpc.Encode(resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// answer handles the requests of one POST. Their responses, and whatever
// the calls send first, go on a stream of this POST: written as plain JSON
// when nothing but the responses came, as SSE otherwise. release is called
// once every call has been answered.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, s *session.Session, st *sessionState, calls []*jsonrpc.Request, batch bool, release func()) {
	st.mu.Lock()
	st.seq++
	ps := newStream(strconv.Itoa(st.seq), h.opts.StreamLimit)
	if st.posts == nil {
		st.posts = map[string]*stream{}
	}
	st.posts[ps.id] = ps
	st.mu.Unlock()
	ids := make([]jsonrpc.ID, len(calls))
	for i, c := range calls {
		ids[i] = c.ID
	}
	ps.expect(ids)

	// The calls run on the session's context, not the POST's: a client
	// whose connection breaks may resume the stream. A POST that goes away
	// without resuming cancels them (see below).
	ctx, cancel := context.WithCancel(h.callContext(s.Context(), r))
	var wg sync.WaitGroup
	wg.Add(len(calls))
	for _, c := range calls {
		h.work.Go(func() {
			defer wg.Done()
			resp := h.dispatch(ctx, s, c)
			if complete, err := ps.answer(resp); err == nil && complete {
				ps.close(nil)
			}
			if len(calls) == 1 {
				release() // the only call: no goroutine to wait for it
			}
		})
	}
	if len(calls) > 1 {
		go func() {
			wg.Wait()
			release()
		}()
	}
	detach := s.Attach()
	defer detach()
	ps.attach()
	defer ps.detach()

	// Wait for the first event. If it completes the stream with nothing
	// but responses, write JSON.
	select {
	case <-ps.wake:
		ps.signal() // leave the wake-up for pump
	case <-r.Context().Done():
	}
	evs, closed, _ := ps.take(0)
	onlyResponses := closed && ps.complete()
	for _, e := range evs {
		onlyResponses = onlyResponses && e.resp
	}
	if onlyResponses && len(evs) > 0 {
		w.Header()["Content-Type"] = hdrJSON
		if n := jsonLength(evs, batch); n > 2048 {
			// Small answers get their length from net/http; a large one
			// (a list) says it too, instead of coming in chunks.
			w.Header()["Content-Length"] = []string{strconv.Itoa(n)}
		}
		w.WriteHeader(http.StatusOK)
		if batch {
			_, _ = w.Write([]byte("["))
		}
		for i, e := range evs {
			if i > 0 {
				_, _ = w.Write([]byte(","))
			}
			_, _ = w.Write(e.data)
		}
		if batch {
			_, _ = w.Write([]byte("]"))
		}
		h.forgetPost(st, ps)
		cancel()
		return
	}
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), s: ps, withIDs: true, timeout: h.opts.StreamWriteTimeout}
	_, err := sw.pump(r.Context(), 0, h.opts.KeepAlive, nil, true)
	if err == nil || ps.complete() {
		h.forgetPost(st, ps)
		cancel()
		return
	}
	// The client's connection broke before every answer was sent. The
	// spec lets it resume with GET and Last-Event-ID, so the calls go on
	// for a grace period; a stream nobody resumes by then is abandoned and
	// its calls are cancelled upstream.
	go func() {
		h.cancelIfAbandoned(ps, cancel)
		wg.Wait()
		cancel()
	}()
}

// jsonLength is the length of the JSON answer answer writes for evs.
func jsonLength(evs []event, batch bool) int {
	n := len(evs) - 1 // commas
	if batch {
		n += 2
	}
	for _, e := range evs {
		n += len(e.data)
	}
	return n
}

// cancelIfAbandoned cancels a POST stream's calls once it has been
// detached, and not complete, for a whole grace period.
func (h *Handler) cancelIfAbandoned(ps *stream, cancel context.CancelFunc) {
	t := time.NewTicker(h.opts.ResumeGrace)
	defer t.Stop()
	for range t.C {
		ps.mu.Lock()
		attached, closed := ps.attached, ps.closed
		ps.mu.Unlock()
		if closed || ps.complete() {
			return
		}
		if !attached {
			cancel()
			return
		}
	}
}

// forgetPost drops a finished POST stream.
func (h *Handler) forgetPost(st *sessionState, ps *stream) {
	st.mu.Lock()
	delete(st.posts, ps.id)
	st.mu.Unlock()
}

func (h *Handler) streamableGET(w http.ResponseWriter, r *http.Request) {
	if !accepts(r, "text/event-stream") {
		writeJSONRPCError(w, http.StatusNotAcceptable, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "Accept must list text/event-stream"))
		return
	}
	s, st, ok := h.lookup(w, r)
	if !ok {
		return
	}
	if err := h.opts.Limits.Allow(subjectOf(s.Principal), 1); err != nil {
		h.refuse(w, jsonrpc.ID{}, s.Principal, err)
		return
	}
	target, after := st.standalone, 0
	isPost := false
	if last := r.Header.Get(headerLastEvent); last != "" {
		sid, seq, ok := parseEventID(last)
		if !ok {
			writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "malformed Last-Event-ID"))
			return
		}
		st.mu.Lock()
		if sid != standaloneID {
			target = st.posts[sid]
			isPost = true
		}
		st.mu.Unlock()
		if target == nil {
			writeJSONRPCError(w, http.StatusNotFound, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "stream %q has ended or is unknown", sid))
			return
		}
		after = seq
	}
	if !target.attach() {
		writeJSONRPCError(w, http.StatusConflict, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "this stream is already open on another connection"))
		return
	}
	defer target.detach()
	detach := s.Attach()
	defer detach()
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	// The stream ends with the request or with the session (done): an idle
	// stream holds no goroutine and nothing registered on the session's
	// context for that.
	sw := &sseWriter{w: w, rc: rc, s: target, withIDs: true, done: s.Done(), timeout: h.opts.StreamWriteTimeout}
	ctx, stop := context.WithCancel(r.Context())
	if !isPost {
		// The standalone stream carries no answer: it ends at a drain.
		defer context.AfterFunc(h.draining, stop)()
	}
	defer stop()
	_, err := sw.pump(ctx, after, h.opts.KeepAlive, nil, true)
	if isPost && (err == nil || target.complete()) {
		h.forgetPost(st, target)
	}
	if stalled(err) {
		h.log.WarnContext(r.Context(), "client dropped: it stopped reading its stream", "session", s.ID)
		h.opts.Sessions.Remove(s)
	}
}

func (h *Handler) streamableDELETE(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.lookup(w, r)
	if !ok {
		return
	}
	h.opts.Sessions.Remove(s)
	w.WriteHeader(http.StatusNoContent)
}
