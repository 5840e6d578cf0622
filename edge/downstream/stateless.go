package downstream

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
)

// The stateless revision (2026-07-28) on /mcp, beside the session
// revisions and told apart per request: by the MCP-Protocol-Version header
// or the _meta protocolVersion of a request that names no session. Each
// POST is one request and stands alone; its answer is JSON, or an SSE
// stream when the call sends progress or log messages first (and for
// subscriptions/listen, which streams until the client closes it).

// isStateless reports whether a POST belongs to the stateless revision.
func isStateless(r *http.Request, msgs []jsonrpc.Message) bool {
	if r.Header.Get(headerSessionID) != "" {
		return false
	}
	if v := r.Header.Get(headerVersion); v != "" && protocol.Stateless(v) {
		return true
	}
	if len(msgs) != 1 {
		return false
	}
	req, ok := msgs[0].(*jsonrpc.Request)
	if !ok {
		return false
	}
	_, has := jsonrpc.Meta(req.Params)[protocol.MetaProtocolVersion]
	return has
}

// statusOf is the HTTP status of an error answer in the stateless
// revision.
func statusOf(resp *jsonrpc.Response) int {
	e := jsonrpc.WireError(resp)
	if e == nil {
		return http.StatusOK
	}
	switch e.Code {
	case jsonrpc.CodeMethodNotFound:
		return http.StatusNotFound
	case jsonrpc.CodeInvalidParams, jsonrpc.CodeInvalidRequest, jsonrpc.CodeParseError,
		protocol.CodeHeaderMismatch, protocol.CodeMissingRequiredClientCapability, protocol.CodeUnsupportedProtocolVersion:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// writeResponse writes one JSON-RPC response as a JSON body.
func writeResponse(w http.ResponseWriter, resp *jsonrpc.Response) {
	data, _ := jsonrpc.Encode(resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf(resp))
	_, _ = w.Write(data)
}

func (h *Handler) statelessPOST(w http.ResponseWriter, r *http.Request, msgs []jsonrpc.Message, batch bool) {
	if batch || len(msgs) != 1 {
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "revision %s takes one message per request, not a batch", protocol.V20260728))
		return
	}
	req, ok := msgs[0].(*jsonrpc.Request)
	if !ok {
		writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "revision %s has no server-to-client requests to answer", protocol.V20260728))
		return
	}
	if !req.IsCall() {
		// Cancellation is by closing the request; other notifications
		// have nothing to act on without a session.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	p, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	fail := func(code int64, data any, format string, args ...any) {
		e := jsonrpc.NewError(code, format, args...)
		if data != nil {
			e.Data, _ = json.Marshal(data)
		}
		writeResponse(w, jsonrpc.ErrorResponse(req.ID, e))
	}
	meta := jsonrpc.Meta(req.Params)
	var version string
	if raw, ok := meta[protocol.MetaProtocolVersion]; !ok || json.Unmarshal(raw, &version) != nil || version == "" {
		fail(jsonrpc.CodeInvalidParams, nil, "invalid params: _meta must carry %s", protocol.MetaProtocolVersion)
		return
	}
	caps, ok := meta[protocol.MetaClientCapabilities]
	if !ok || !isObject(caps) {
		fail(jsonrpc.CodeInvalidParams, nil, "invalid params: _meta must carry %s (an object)", protocol.MetaClientCapabilities)
		return
	}
	if hv := r.Header.Get(headerVersion); hv != version {
		fail(protocol.CodeHeaderMismatch, nil, "header mismatch: %s is %q but _meta says %q", headerVersion, hv, version)
		return
	}
	if !protocol.SupportedStateless(version) {
		fail(protocol.CodeUnsupportedProtocolVersion,
			map[string]any{"supported": protocol.SupportedVersions(), "requested": version},
			"unsupported protocol version %q", version)
		return
	}
	if mh := r.Header.Get(protocol.HeaderMethod); mh != req.Method {
		fail(protocol.CodeHeaderMismatch, nil, "header mismatch: %s is %q but the body's method is %q", protocol.HeaderMethod, mh, req.Method)
		return
	}
	if name, ok := protocol.NameOf(req.Method, req.Params); ok {
		if nh := r.Header.Get(protocol.HeaderName); nh != name {
			fail(protocol.CodeHeaderMismatch, nil, "header mismatch: %s is %q but the body names %q", protocol.HeaderName, nh, name)
			return
		}
	}
	if req.Method == protocol.MethodToolsCall {
		if err := h.checkParamHeaders(r, req); err != nil {
			fail(protocol.CodeHeaderMismatch, nil, "header mismatch: %v", err)
			return
		}
	}
	var logLevel string
	if raw, ok := meta[protocol.MetaLogLevel]; ok {
		_ = json.Unmarshal(raw, &logLevel)
	}

	// A listen stream is a session in all but name: it holds a session
	// place while it is open. Any other request holds an in-flight place
	// until it is answered.
	var release func()
	var err error
	if req.Method == protocol.MethodSubscriptionsListen {
		if err := h.opts.Limits.Allow(subjectOf(p), 1); err != nil {
			h.refuse(w, req.ID, p, err)
			return
		}
		release, err = h.opts.Limits.OpenSession(subjectOf(p))
	} else {
		release, err = h.opts.Limits.Begin(subjectOf(p), 1)
	}
	if err != nil {
		h.refuse(w, req.ID, p, err)
		return
	}

	ps := newStream("", h.opts.StreamLimit)
	s := session.New("", session.TransportStateless, p, statelessSink{ps})
	s.SetStateless(version, caps, meta[protocol.MetaClientInfo], logLevel)
	h.opts.Sessions.Add(s)
	defer h.opts.Sessions.Remove(s)
	ps.expect([]jsonrpc.ID{req.ID})

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if req.Method == protocol.MethodSubscriptionsListen {
		defer release()
		h.listen(ctx, w, s, ps, req)
		return
	}
	h.work.Go(func() {
		defer release()
		resp := h.opts.Dispatcher.Handle(ctx, s, req)
		resp.ID = req.ID
		_, _ = ps.answer(resp)
	})
	h.respond(w, r, ps, true)
}

// respond writes a POST's stream: plain JSON (with the revision's status
// for errors) when nothing but the answer came, SSE otherwise.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, ps *stream, stateless bool) {
	select {
	case <-ps.wake:
		ps.signal()
	case <-r.Context().Done():
		return
	}
	evs, closed, _ := ps.take(0)
	if closed && ps.complete() && len(evs) == 1 && evs[0].resp {
		status := http.StatusOK
		if stateless {
			if msgs, _, err := jsonrpc.Decode(evs[0].data); err == nil {
				if resp, ok := msgs[0].(*jsonrpc.Response); ok {
					status = statusOf(resp)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(evs[0].data)
		return
	}
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), s: ps, timeout: h.opts.StreamWriteTimeout}
	_, _ = sw.pump(r.Context(), 0, h.opts.KeepAlive, nil, false)
}

// listen serves subscriptions/listen: an SSE stream open until the client
// closes it.
func (h *Handler) listen(ctx context.Context, w http.ResponseWriter, s *session.Session, ps *stream, req *jsonrpc.Request) {
	// A listen stream carries no answer a client waits for: it ends at a
	// drain.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(h.draining, stop)()
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	detach := s.Attach()
	defer detach()
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp := h.opts.Dispatcher.Listen(ctx, s, req)
		resp.ID = req.ID
		_, _ = ps.answer(resp)
	}()
	sw := &sseWriter{w: w, rc: rc, s: ps, timeout: h.opts.StreamWriteTimeout}
	_, err := sw.pump(ctx, 0, h.opts.KeepAlive, nil, false)
	if stalled(err) {
		h.log.WarnContext(ctx, "listen stream dropped: the client stopped reading it")
	}
	// The client closed the stream (or the edge stops): end the listener.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// statelessSink puts everything of a stateless request on its one stream.
type statelessSink struct{ s *stream }

func (k statelessSink) Send(_ context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.Encode(msg)
	if err != nil {
		return err
	}
	if n, ok := msg.(*jsonrpc.Request); ok && !n.IsCall() {
		return k.s.pushNote("", data)
	}
	return k.s.push("", data, false)
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// statelessGETDELETE answers GET and DELETE of a stateless client: there
// is no session to stream or end.
func statelessGETDELETE(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST")
	writeJSONRPCError(w, http.StatusMethodNotAllowed, jsonrpc.NewError(jsonrpc.CodeInvalidRequest,
		"%s on /mcp needs a session; revision %s has none (POST each request)", r.Method, protocol.V20260728))
}

// checkParamHeaders checks a tool call's Mcp-Param-* headers against its
// arguments, by the tool's definition as this client sees it.
func (h *Handler) checkParamHeaders(r *http.Request, req *jsonrpc.Request) error {
	name, _ := jsonrpc.StringField(req.Params, "name")
	tool, ok := h.opts.Dispatcher.Tool(name)
	if !ok {
		return nil // unknown tools are the router's to refuse
	}
	return protocol.CheckParamHeaders(tool, req.Params, r.Header.Get)
}
