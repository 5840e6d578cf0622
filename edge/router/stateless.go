package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/edge/bridge"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// The stateless revision (2026-07-28). Each request stands alone: it
// carries its revision and the client's capabilities, and the session the
// downstream transport gives the router lives only as long as the request.
// The router answers server/discover from the servers the token may use,
// marks results with resultType and caching hints, routes calls as for the
// session revisions, and bridges to session-era servers that ask the
// client something mid-call (input_required results with sealed state).

// Defaults of the stateless revision.
const (
	// DefaultHeldTTL is how long a held call waits for the client to come
	// back with its input.
	DefaultHeldTTL = 5 * time.Minute
	// listTTL is the caching hint on merged lists: the edge learns of
	// changes by list_changed and tells listen streams at once, so a short
	// hint costs little.
	listTTL = 30 * time.Second
)

// handleStateless answers one request of a stateless client.
func (r *Router) handleStateless(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	if protocol.Removed(req.Method) {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound,
			"method not found: %s (not part of revision %s)", req.Method, s.Version()))
	}
	switch req.Method {
	case protocol.MethodServerDiscover:
		return r.discover(s, req)
	case protocol.MethodSubscriptionsListen:
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "subscriptions/listen needs a stream"))
	case protocol.MethodToolsList, protocol.MethodPromptsList, protocol.MethodResourcesList, protocol.MethodResourceTemplatesList:
		k := map[string]kind{
			protocol.MethodToolsList: kindTools, protocol.MethodPromptsList: kindPrompts,
			protocol.MethodResourcesList: kindResources, protocol.MethodResourceTemplatesList: kindTemplates,
		}[req.Method]
		if !r.offers(s, k) {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound,
				"method not found: %s (no server this token may use offers it)", req.Method))
		}
		return cacheable(r.list(s, req, k), listTTL, scopeFor(s))
	case protocol.MethodToolsCall, protocol.MethodPromptsGet:
		it, errResp := r.lookup(s, req)
		if errResp != nil {
			return errResp
		}
		return r.bridged(ctx, s, it.entry.Server, req, it.orig)
	case protocol.MethodResourcesRead:
		uri, ok := jsonrpc.StringField(req.Params, "uri")
		if !ok || uri == "" {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: uri is required"))
		}
		e := r.owner(s, uri)
		if e == nil {
			// The stateless revision answers an unknown URI with -32602.
			return jsonrpc.ErrorResponse(req.ID, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "resource not found", Data: mustJSON(map[string]string{"uri": uri})})
		}
		resp := r.bridged(ctx, s, e.Server, req, "")
		return cacheable(resp, 0, scopeFor(s))
	}
	return r.handle(ctx, s, req)
}

// requestMeta are the _meta keys of a stateless request that name the
// client's revision to the edge, not the edge's to a server. The client's
// capabilities and identity stay: a server decides by them what it may ask
// (go-sdk's does, even for a session), and a stateless server gets them
// again from CallOptions.
var requestMeta = []string{protocol.MetaProtocolVersion}

// lookup finds the tool or prompt a call names, as byName does.
func (r *Router) lookup(s *session.Session, req *jsonrpc.Request) (*item, *jsonrpc.Response) {
	name, ok := jsonrpc.StringField(req.Params, "name")
	if !ok || name == "" {
		return nil, jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: name is required"))
	}
	t := r.table.Load()
	by, what, k := t.toolBy, "tool", kindTools
	if req.Method == protocol.MethodPromptsGet {
		by, what, k = t.promptBy, "prompt", kindPrompts
	}
	it := by[name]
	if it == nil || !r.allowed(s, it, k) {
		return nil, jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown %s: %s", what, name))
	}
	return it, nil
}

// offers reports whether a server s may use offers lists of kind k.
func (r *Router) offers(s *session.Session, k kind) bool {
	for _, e := range r.visibleServers(s) {
		caps := initOf(e).Capabilities
		switch k {
		case kindTools:
			if caps.Tools != nil {
				return true
			}
		case kindPrompts:
			if caps.Prompts != nil {
				return true
			}
		default:
			if caps.Resources != nil {
				return true
			}
		}
	}
	return false
}

// scopeFor is the cache scope of an answer to s: "private" whenever a
// token shaped it, "public" only without auth.
func scopeFor(s *session.Session) string {
	if s.Principal != nil && s.Principal.Kind == authn.KindAnonymous {
		return "public"
	}
	return "private"
}

// discover answers server/discover with the merged capabilities of the
// servers the token may use.
func (r *Router) discover(s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	caps := map[string]any{}
	extensions := map[string]json.RawMessage{}
	for _, e := range r.visibleServers(s) {
		init := initOf(e)
		c := init.Capabilities
		if c.Tools != nil {
			caps["tools"] = map[string]any{"listChanged": true}
		}
		if c.Prompts != nil {
			caps["prompts"] = map[string]any{"listChanged": true}
		}
		if c.Resources != nil {
			caps["resources"] = map[string]any{"listChanged": true, "subscribe": true}
		}
		if c.Completions != nil {
			caps["completions"] = map[string]any{}
		}
		if c.Logging != nil {
			caps["logging"] = map[string]any{}
		}
		for k, v := range c.Extensions {
			extensions[k] = v
		}
	}
	if len(extensions) > 0 {
		caps["extensions"] = extensions
	}
	res := map[string]any{
		"supportedVersions": protocol.SupportedVersions(),
		"capabilities":      caps,
		"_meta":             map[string]json.RawMessage{protocol.MetaServerInfo: r.opts.ServerInfo},
		"resultType":        protocol.ResultComplete,
		"ttlMs":             listTTL.Milliseconds(),
		"cacheScope":        scopeFor(s),
	}
	if ins := r.instructions(s); ins != "" {
		res["instructions"] = ins
	}
	return jsonrpc.ResultResponse(req.ID, mustJSON(res))
}

// cacheable adds the caching hints to a successful result: the shortest
// TTL and the narrowest scope of what the server said and what the edge
// knows.
func cacheable(resp *jsonrpc.Response, ttl time.Duration, scope string) *jsonrpc.Response {
	if resp.Error != nil {
		return resp
	}
	ms := ttl.Milliseconds()
	if raw, ok := jsonrpc.TopField(resp.Result, "ttlMs"); ok {
		var up int64
		if json.Unmarshal(raw, &up) == nil && up >= 0 && up < ms {
			ms = up
		}
	}
	if raw, ok := jsonrpc.TopField(resp.Result, "cacheScope"); ok && string(raw) == `"private"` {
		scope = "private"
	}
	set := []jsonrpc.Member{
		{Key: "ttlMs", Value: strconv.AppendInt(nil, ms, 10)},
		{Key: "cacheScope", Value: mustJSON(scope)},
	}
	if _, ok := jsonrpc.TopField(resp.Result, "resultType"); !ok {
		set = append(set, jsonrpc.Member{Key: "resultType", Value: resultComplete})
	}
	// The result is rewritten without being decoded: a merged list stays
	// a copy of bytes.
	if out, ok := jsonrpc.AppendPatched(make([]byte, 0, len(resp.Result)+64), resp.Result, set); ok {
		resp.Result = out
	}
	return resp
}

// resultComplete is the JSON of resultType "complete".
var resultComplete = json.RawMessage(`"` + protocol.ResultComplete + `"`)

// complete marks a successful result as complete unless it says otherwise.
func complete(resp *jsonrpc.Response) *jsonrpc.Response {
	if resp.Error != nil || len(resp.Result) == 0 {
		return resp
	}
	if _, ok := jsonrpc.TopField(resp.Result, "resultType"); ok {
		return resp
	}
	if meta, ok := jsonrpc.TopField(resp.Result, "_meta"); ok && len(meta) > 0 && meta[0] == '{' {
		if _, ok := jsonrpc.TopField(meta, "resultType"); ok {
			return resp
		}
	}
	if out, ok := jsonrpc.AppendPatched(make([]byte, 0, len(resp.Result)+32), resp.Result, []jsonrpc.Member{{Key: "resultType", Value: resultComplete}}); ok {
		resp.Result = out
	}
	return resp
}

// bridged sends a stateless client's call to srv. A retry that carries
// sealed requestState continues a held call or resumes a stateless
// server's own input_required flow; a new call runs as a held call, so
// that a session-era server may ask the client for input mid-call.
func (r *Router) bridged(ctx context.Context, s *session.Session, srv Server, req *jsonrpc.Request, origName string) *jsonrpc.Response {
	if !bytes.Contains(req.Params, []byte(`"requestState"`)) && !bytes.Contains(req.Params, []byte(`"inputResponses"`)) {
		// A new call, as almost every call is: its params are rewritten in
		// place, without decoding them, and its request key is made only
		// if the call comes to need the client.
		params, ok := bridgeParams(req.Params, origName)
		if !ok {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: must be an object"))
		}
		return r.hold(ctx, s, srv, req, "", params)
	}
	f, err := jsonrpc.Fields(req.Params)
	if err != nil {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: must be an object"))
	}
	key := bridge.RequestKey(req.Method, req.Params)
	var responses map[string]json.RawMessage
	if raw, ok := f["inputResponses"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &responses); err != nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: inputResponses must be an object"))
		}
	}
	var token string
	if raw, ok := f["requestState"]; ok {
		if err := json.Unmarshal(raw, &token); err != nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: requestState must be a string"))
		}
	}
	if origName != "" {
		f["name"] = mustJSON(origName)
	}
	// The revision in _meta is the client's to the edge. The call to the
	// server carries the server's own (a stateless server gets it from the
	// upstream layer): a session-era server may refuse a request that names
	// a revision it does not speak (go-sdk's streamable server answers
	// -32022).
	if meta, ok := f["_meta"]; ok {
		if m, err := jsonrpc.Fields(meta); err == nil {
			for _, k := range requestMeta {
				delete(m, k)
			}
			if len(m) == 0 {
				delete(f, "_meta")
			} else {
				f["_meta"] = mustJSON(m)
			}
		}
	}
	subject := ""
	if s.Principal != nil {
		subject = s.Principal.Subject
	}

	if token != "" {
		if r.opts.Sealer == nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "requestState is not valid here"))
		}
		st, err := r.opts.Sealer.Open(token, subject, key)
		if err != nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
		}
		switch st.Kind {
		case bridge.KindHeld:
			if st.Edge != r.opts.Sealer.Edge {
				return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams,
					"invalid params: this call is held by edge %s; retry the request from the start, without requestState and inputResponses (or route it to that edge)", st.Edge))
			}
			h := r.held.Get(st.ID)
			if h == nil {
				return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", bridge.ErrExpired))
			}
			if _, err := h.Answer(responses); err != nil {
				return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
			}
			return r.awaitHeld(ctx, s, req, key, srv, h)
		case bridge.KindUpstream:
			if st.Server != srv.Name() {
				return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", bridge.ErrOtherRequest))
			}
			if st.Upstream == "" {
				delete(f, "requestState")
			} else {
				f["requestState"] = mustJSON(st.Upstream)
			}
		default:
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", bridge.ErrInvalidState))
		}
	} else {
		// Input answers without state belong to nothing the edge holds.
		delete(f, "inputResponses")
	}
	return r.hold(ctx, s, srv, req, key, mustJSON(f))
}

// bridgeParams returns the params of a new call for the server: its own
// name for the item, the client's revision out of _meta; everything else
// as it was.
func bridgeParams(raw json.RawMessage, origName string) (json.RawMessage, bool) {
	var set []jsonrpc.Member
	remove := []string{"inputResponses"}
	if origName != "" {
		name, _ := json.Marshal(origName)
		set = append(set, jsonrpc.Member{Key: "name", Value: name})
	}
	if meta, ok := jsonrpc.TopField(raw, "_meta"); ok && len(meta) > 0 && meta[0] == '{' {
		m, ok := jsonrpc.AppendPatched(nil, meta, nil, requestMeta...)
		switch {
		case !ok:
		case string(m) == "{}":
			remove = append(remove, "_meta")
		default:
			set = append(set, jsonrpc.Member{Key: "_meta", Value: m})
		}
	}
	out, ok := jsonrpc.AppendPatched(make([]byte, 0, len(raw)+len(origName)+16), raw, set, remove...)
	return out, ok
}

// hold makes the call a held one (so that a session-era server may ask the
// client for input mid-call) and answers the client's current request.
// key is the request's key, "" to make it when needed.
func (r *Router) hold(ctx context.Context, s *session.Session, srv Server, req *jsonrpc.Request, key string, params json.RawMessage) *jsonrpc.Response {
	caps := s.RawCapabilities()
	ttl := r.opts.HeldTTL
	if ttl <= 0 {
		ttl = DefaultHeldTTL
	}
	var abort sync.Once
	var abortErr *jsonrpc.Error
	h := bridge.Start(ttl, func(hctx context.Context, h *bridge.Held) (*jsonrpc.Response, error) {
		return srv.Call(valuesFrom{hctx, ctx}, req.Method, params, CallOptions{
			Tag:        h,
			ClientCaps: caps,
			LogLevel:   s.LogLevel(),
			Notify:     h.Notify,
			Request: func(rctx context.Context, sreq *jsonrpc.Request) *jsonrpc.Response {
				if !s.Capabilities().Allows(sreq.Method) {
					// The client cannot do what the server asks: its
					// request fails with the revision's error, and the
					// server's call ends.
					abort.Do(func() {
						abortErr = &jsonrpc.Error{
							Code:    protocol.CodeMissingRequiredClientCapability,
							Message: fmt.Sprintf("the server needs the client capability %q, which the request did not declare", protocol.Capability(sreq.Method)),
							Data:    mustJSON(map[string]any{"requiredCapabilities": map[string]any{protocol.Capability(sreq.Method): map[string]any{}}}),
						}
						h.Cancel()
					})
					return jsonrpc.ErrorResponse(sreq.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "the client did not declare %s", protocol.Capability(sreq.Method)))
				}
				return h.Ask(rctx, sreq)
			},
		})
	})
	r.held.Put(h)
	resp := r.awaitHeld(ctx, s, req, key, srv, h)
	if abortErr != nil {
		return jsonrpc.ErrorResponse(req.ID, abortErr)
	}
	return resp
}

// awaitHeld waits for a held call to finish or to need the client, and
// answers the client's current request accordingly.
func (r *Router) awaitHeld(ctx context.Context, s *session.Session, req *jsonrpc.Request, key string, srv Server, h *bridge.Held) *jsonrpc.Response {
	h.SetNotify(func(n *jsonrpc.Request) {
		if n.Method == protocol.NotificationMessage && !wantsLog(s.LogLevel(), n.Params) {
			return // the stateless revision logs only when asked to
		}
		if err := s.Send(ctx, n); err != nil {
			r.log.DebugContext(ctx, "notification not delivered", "method", n.Method, "err", err)
		}
	})
	defer h.SetNotify(nil)
	subject := ""
	if s.Principal != nil {
		subject = s.Principal.Subject
	}
	switch h.Wait(ctx) {
	case bridge.Gone:
		// The client went away or cancelled: the server's call ends too.
		h.Cancel()
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeRequestCancelled, "request cancelled"))
	case bridge.NeedsInput:
		if key == "" {
			key = bridge.RequestKey(req.Method, req.Params)
		}
		inputs := map[string]any{}
		for _, in := range h.Inputs() {
			inputs[in.Key] = map[string]any{"method": in.Method, "params": in.Params}
		}
		st, err := r.opts.Sealer.Seal(bridge.State{
			Kind: bridge.KindHeld, ID: h.ID, Edge: r.opts.Sealer.Edge,
			Request: key, Expires: h.Expires().UnixMilli(),
		}, subject)
		if err != nil {
			h.Cancel()
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "cannot hold the call: %v", err))
		}
		return jsonrpc.ResultResponse(req.ID, mustJSON(map[string]any{
			"resultType":    protocol.ResultInputRequired,
			"inputRequests": inputs,
			"requestState":  st,
		}))
	}
	resp, err := h.Result()
	if err != nil {
		var je *jsonrpc.Error
		if errors.As(err, &je) {
			return jsonrpc.ErrorResponse(req.ID, je)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeRequestCancelled, "request cancelled"))
		}
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "server %s: %v", srv.Name(), err))
	}
	resp.ID = req.ID
	return r.wrapUpstreamState(resp, srv, req, key, subject)
}

// wrapUpstreamState seals a stateless server's own input_required state,
// binding it to the principal and the request, so that a retry through any
// edge reaches the same server with the state it issued.
func (r *Router) wrapUpstreamState(resp *jsonrpc.Response, srv Server, req *jsonrpc.Request, key, subject string) *jsonrpc.Response {
	if resp.Error != nil {
		return resp
	}
	f, err := jsonrpc.Fields(resp.Result)
	if err != nil {
		return resp
	}
	if !isInputRequired(f) {
		return complete(resp)
	}
	f["resultType"] = mustJSON(protocol.ResultInputRequired)
	if key == "" {
		// Made only now: most calls never need the client.
		key = bridge.RequestKey(req.Method, req.Params)
	}
	var upstream string
	_ = json.Unmarshal(f["requestState"], &upstream)
	ttl := r.opts.HeldTTL
	if ttl <= 0 {
		ttl = DefaultHeldTTL
	}
	st, err := r.opts.Sealer.Seal(bridge.State{
		Kind: bridge.KindUpstream, Server: srv.Name(), Upstream: upstream,
		Request: key, Expires: time.Now().Add(ttl).UnixMilli(),
	}, subject)
	if err != nil {
		return jsonrpc.ErrorResponse(resp.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "cannot seal the server's state: %v", err))
	}
	f["requestState"] = mustJSON(st)
	resp.Result = mustJSON(f)
	return resp
}

// isInputRequired reports whether a result asks for client input: it says
// so, or (from a session-era server whose SDK speaks input_required results
// but leaves resultType out for older clients) it carries inputRequests
// and no resultType.
func isInputRequired(f map[string]json.RawMessage) bool {
	if rt, ok := f["resultType"]; ok {
		return string(rt) == strconv.Quote(protocol.ResultInputRequired)
	}
	var in map[string]json.RawMessage
	return json.Unmarshal(f["inputRequests"], &in) == nil && len(in) > 0
}

// logLevels orders the syslog levels MCP uses.
var logLevels = map[string]int{
	"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7,
}

// wantsLog reports whether a log message (notifications/message params) is
// at or above the level a stateless request asked for; nothing is wanted
// without a level.
func wantsLog(level string, params json.RawMessage) bool {
	if level == "" {
		return false
	}
	msgLevel, _ := jsonrpc.StringField(params, "level")
	want, ok := logLevels[strings.ToLower(level)]
	if !ok {
		return true
	}
	got, ok := logLevels[strings.ToLower(msgLevel)]
	return !ok || got >= want
}

// valuesFrom is a context that ends as its Context does and finds values
// there or, failing that, in values. A held call outlives the client
// request that started it, yet its upstream call belongs to that request
// (its trace, its request id).
type valuesFrom struct {
	context.Context
	values context.Context
}

func (v valuesFrom) Value(key any) any {
	if x := v.Context.Value(key); x != nil {
		return x
	}
	return v.values.Value(key)
}
