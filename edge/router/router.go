// Package router makes many MCP servers look like one. It owns the routing
// tables built from the servers' lists (names prefixed and filtered,
// collisions settled, pages cut), answers what the edge answers itself
// (initialize, ping, the merged lists), and routes every other request by
// name or URI to one server, filtered by the session's principal.
//
// The router knows no HTTP and no process: it sees sessions through the
// session package and servers through the Server interface it declares.
package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/bridge"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Server is one upstream MCP server as the router uses it.
type Server interface {
	Name() string
	// Catalog returns the server's lists, or nil while it is not running.
	Catalog() *Catalog
	// Call sends a request and returns the server's response. An error
	// that is a *jsonrpc.Error is passed to the client as it is. params
	// is the caller's again once Call returns (the router reuses its
	// buffers): a Server that keeps it longer keeps a copy.
	Call(ctx context.Context, method string, params json.RawMessage, o CallOptions) (*jsonrpc.Response, error)
	// Notify sends a notification.
	Notify(ctx context.Context, method string, params json.RawMessage) error
}

// CallOptions tell a server where what belongs to a call goes.
type CallOptions struct {
	// Tag identifies the caller (the session).
	Tag any
	// Notify receives notifications that belong to the call.
	Notify func(*jsonrpc.Request)
	// Request answers server-to-client requests that belong to the call.
	Request func(context.Context, *jsonrpc.Request) *jsonrpc.Response
	// ClientCaps are the capabilities of the client the call is for, which
	// a stateless server reads from each request's _meta.
	ClientCaps json.RawMessage
	// LogLevel is the log level the client asked for ("" for none), which a
	// stateless server reads from each request's _meta.
	LogLevel string
}

// Catalog is a server's lists and its initialize result.
type Catalog struct {
	Tools             []json.RawMessage
	Prompts           []json.RawMessage
	Resources         []json.RawMessage
	ResourceTemplates []json.RawMessage
	Init              protocol.InitializeResult
}

// DefaultPageSize is how many items one list page holds.
const DefaultPageSize = 500

// Options configure a Router.
type Options struct {
	// ServerInfo is the implementation the edge declares to clients.
	ServerInfo json.RawMessage
	// PageSize is the size of list pages; DefaultPageSize when 0.
	PageSize int
	// Sessions visits every open session (to tell them of changes).
	Sessions func(func(*session.Session))
	// Sealer seals the requestState of input_required results; without
	// one, stateless clients cannot be bridged to session-era servers.
	Sealer *bridge.Sealer
	// HeldTTL bounds how long a held call waits for its client to come
	// back (DefaultHeldTTL when 0).
	HeldTTL time.Duration
	// OnToolChange, when set, is told of each tool whose definition
	// changed under a running server, once per new definition (see
	// pins.go). It is called without the router's locks held.
	OnToolChange func(ToolChange)
	Logger       *slog.Logger
}

// Router routes client requests to servers.
type Router struct {
	opts Options
	log  *slog.Logger

	table atomic.Pointer[table]

	mu      sync.Mutex // serializes Update
	entries []*Entry
	ns      Namespacing
	pins    pinBook // digests of the servers' tools (pins.go)

	subMu sync.Mutex
	subs  map[subKey]int // upstream subscriptions, counted over sessions

	held *bridge.Table // calls held for stateless clients

	lisMu     sync.Mutex
	listeners map[*listener]struct{}
}

type subKey struct{ server, uri string }

// New returns a router with no servers.
func New(opts Options) *Router {
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ServerInfo == nil {
		opts.ServerInfo = json.RawMessage(`{"name":"atrax","version":"dev"}`)
	}
	r := &Router{opts: opts, log: opts.Logger, subs: map[subKey]int{}, held: bridge.NewTable(), listeners: map[*listener]struct{}{}}
	r.table.Store(build(nil, Namespacing{}, r.log))
	return r
}

// SetServers replaces the servers (in config order) and the namespacing.
func (r *Router) SetServers(entries []*Entry, ns Namespacing) {
	r.mu.Lock()
	r.entries, r.ns = entries, ns
	r.mu.Unlock()
	r.Refresh()
}

// Refresh rebuilds the table from the servers' current lists and tells
// every session which lists changed.
func (r *Router) Refresh() {
	r.mu.Lock()
	entries, toolChanges := r.pins.apply(r.entries)
	t := build(entries, r.ns, r.log)
	old := r.table.Swap(t)
	r.mu.Unlock()
	if r.opts.OnToolChange != nil {
		for _, c := range toolChanges {
			r.opts.OnToolChange(c)
		}
	}
	var changed []string
	if old.toolsHash != t.toolsHash {
		changed = append(changed, protocol.NotificationToolsChanged)
	}
	if old.promptsHash != t.promptsHash {
		changed = append(changed, protocol.NotificationPromptsChanged)
	}
	if old.resourcesHash != t.resourcesHash {
		changed = append(changed, protocol.NotificationResourcesChanged)
	}
	if len(changed) == 0 {
		return
	}
	r.notifyListeners(changed)
	if r.opts.Sessions == nil {
		return
	}
	r.opts.Sessions(func(s *session.Session) {
		if protocol.Stateless(s.Version()) {
			return // stateless clients hear of changes on listen streams
		}
		for _, m := range changed {
			if err := s.Notify(s.Context(), m, nil); err != nil {
				r.log.Debug("list_changed not delivered", "session", s.ID, "err", err)
			}
		}
	})
}

// Pins returns, for every running server that pins its tools, each tool
// with the digest of its definition; tools hidden until an admin approves
// them are marked Pending.
func (r *Router) Pins() map[string][]PinStatus { return r.pins.pins() }

// Conflicts returns the collisions the reject strategy refused.
func (r *Router) Conflicts() []Conflict {
	return append([]Conflict(nil), r.table.Load().conflicts...)
}

// Initialize answers a client's initialize for s and returns the result.
func (r *Router) Initialize(s *session.Session, params json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	var p protocol.InitializeParams
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid initialize params: %v", err)
		}
	}
	version := protocol.Negotiate(p.ProtocolVersion)
	s.SetInitialize(version, p)
	res := map[string]any{
		"protocolVersion": version,
		// A gateway's servers come and go, so every list may change, and
		// it can pass on every capability its servers may have.
		"capabilities": map[string]any{
			"tools":       map[string]any{"listChanged": true},
			"prompts":     map[string]any{"listChanged": true},
			"resources":   map[string]any{"listChanged": true, "subscribe": true},
			"logging":     map[string]any{},
			"completions": map[string]any{},
		},
		"serverInfo": r.opts.ServerInfo,
	}
	if ins := r.instructions(s); ins != "" {
		res["instructions"] = ins
	}
	out, err := json.Marshal(res)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "encode initialize result")
	}
	return out, nil
}

// instructions joins the instructions of the servers s may use.
func (r *Router) instructions(s *session.Session) string {
	var b strings.Builder
	for _, e := range r.table.Load().servers {
		ins := initOf(e).Instructions
		if ins == "" || !s.Principal.AllowsServer(e.Server.Name()) {
			continue
		}
		fmt.Fprintf(&b, "## %s\n%s\n\n", e.Server.Name(), strings.TrimSpace(ins))
	}
	return strings.TrimSpace(b.String())
}

// Handle answers one client request. ctx carries the request's lifetime
// (cancelled by notifications/cancelled or the session's end).
func (r *Router) Handle(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	var resp *jsonrpc.Response
	if protocol.Stateless(s.Version()) {
		resp = r.handleStateless(ctx, s, req)
	} else {
		resp = r.handle(ctx, s, req)
	}
	resp.ID = req.ID
	return resp
}

func (r *Router) handle(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	switch req.Method {
	case protocol.MethodPing:
		return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
	case protocol.MethodInitialize:
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "the session is already initialized"))
	case protocol.MethodToolsList:
		return r.list(s, req, kindTools)
	case protocol.MethodPromptsList:
		return r.list(s, req, kindPrompts)
	case protocol.MethodResourcesList:
		return r.list(s, req, kindResources)
	case protocol.MethodResourceTemplatesList:
		return r.list(s, req, kindTemplates)
	case protocol.MethodToolsCall:
		return r.byName(ctx, s, req, kindTools)
	case protocol.MethodPromptsGet:
		return r.byName(ctx, s, req, kindPrompts)
	case protocol.MethodResourcesRead:
		return r.byURI(ctx, s, req)
	case protocol.MethodResourcesSubscribe, protocol.MethodResourcesUnsubscribe:
		return r.subscribe(ctx, s, req)
	case protocol.MethodCompletionComplete:
		return r.complete(ctx, s, req)
	case protocol.MethodLoggingSetLevel:
		return r.setLevel(ctx, s, req)
	}
	// A method the edge does not know can only go to a server when there
	// is exactly one the session may use.
	visible := r.visibleServers(s)
	if len(visible) != 1 {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method not found: %s", req.Method))
	}
	return r.forward(ctx, s, visible[0].Server, req, req.Params)
}

// visibleServers are the running servers s may use.
func (r *Router) visibleServers(s *session.Session) []*Entry {
	var out []*Entry
	for _, e := range r.table.Load().servers {
		if s.Principal.AllowsServer(e.Server.Name()) {
			out = append(out, e)
		}
	}
	return out
}

// list answers a list request from the table, filtered for s and cut into
// pages. Items are written as they are stored: no decoding per request.
func (r *Router) list(s *session.Session, req *jsonrpc.Request, k kind) *jsonrpc.Response {
	t := r.table.Load()
	var all []*item
	key := "tools"
	switch k {
	case kindTools:
		all = t.tools
	case kindPrompts:
		all, key = t.prompts, "prompts"
	case kindResources:
		all, key = t.resources, "resources"
	case kindTemplates:
		all, key = t.templates, "resourceTemplates"
	}
	offset := 0
	if c, ok := jsonrpc.StringField(req.Params, "cursor"); ok && c != "" {
		n, err := decodeCursor(c)
		if err != nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid cursor"))
		}
		offset = n
	}
	// A token that may see everything sees the same pages as every other
	// such token: they are made once per table.
	everything := allowsAll(s.Principal)
	if everything {
		if page, ok := t.pages[k].Load(offset); ok {
			return jsonrpc.ResultResponse(req.ID, page.(json.RawMessage))
		}
	}
	size := 64
	for _, it := range all {
		size += len(it.raw) + 1
	}
	buf := make([]byte, 0, min(size, r.opts.PageSize*1024+64))
	buf = append(buf, `{"`...)
	buf = append(buf, key...)
	buf = append(buf, `":[`...)
	n, seen, next := 0, 0, 0
	for _, it := range all {
		if !r.allowed(s, it, k) {
			continue
		}
		seen++
		if seen <= offset {
			continue
		}
		if n == r.opts.PageSize {
			next = offset + n
			break
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it.raw...)
		n++
	}
	buf = append(buf, ']')
	if next > 0 {
		buf = append(buf, `,"nextCursor":`...)
		buf = strconv.AppendQuote(buf, encodeCursor(next))
	}
	buf = append(buf, '}')
	if everything {
		t.pages[k].Store(offset, json.RawMessage(buf))
	}
	return jsonrpc.ResultResponse(req.ID, buf)
}

// allowsAll reports whether p may use every server and see every tool, so
// that nothing is filtered for it.
func allowsAll(p *authn.Principal) bool {
	return p != nil && len(p.Servers) == 1 && p.Servers[0] == "*" && len(p.Tools) == 1 && p.Tools[0] == "*"
}

// allowed reports whether s may see it: its server is allowed, and for
// tools and prompts its visible name is.
func (r *Router) allowed(s *session.Session, it *item, k kind) bool {
	if !s.Principal.AllowsServer(it.server) {
		return false
	}
	if k == kindTools || k == kindPrompts {
		return s.Principal.AllowsTool(it.name)
	}
	return true
}

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "o:") {
		return 0, errors.New("invalid cursor")
	}
	n, err := strconv.Atoi(string(b[2:]))
	if err != nil || n < 0 {
		return 0, errors.New("invalid cursor")
	}
	return n, nil
}

// byName routes tools/call and prompts/get by the visible name.
func (r *Router) byName(ctx context.Context, s *session.Session, req *jsonrpc.Request, k kind) *jsonrpc.Response {
	buf := paramsPool.Get().(*[]byte)
	defer paramsPool.Put(buf)
	it, params, errResp := r.route(s, req, k, (*buf)[:0])
	if errResp != nil {
		return errResp
	}
	if cap(params) <= maxPooledParams {
		*buf = params[:0]
	}
	// params may be the pooled buffer: Server.Call does not keep it.
	return r.forward(ctx, s, it.entry.Server, req, params)
}

// paramsPool holds the buffers calls' params are rewritten into (the
// server's own name for the visible one).
var paramsPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledParams bounds the buffers kept in paramsPool.
const maxPooledParams = 64 << 10

// route finds the tool or prompt a call names and returns it with the
// call's params for its server: req.Params itself, or when the server
// knows the item by another name, a copy with that name appended to dst.
// It decodes nothing but the name, and allocates nothing on success (given
// room in dst).
func (r *Router) route(s *session.Session, req *jsonrpc.Request, k kind, dst []byte) (*item, json.RawMessage, *jsonrpc.Response) {
	name, ok := jsonrpc.StringBytes(req.Params, "name")
	if !ok || len(name) == 0 {
		return nil, nil, jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: name is required"))
	}
	t := r.table.Load()
	by, what := t.toolBy, "tool"
	if k == kindPrompts {
		by, what = t.promptBy, "prompt"
	}
	it := by[string(name)]
	if it == nil || !r.allowed(s, it, k) {
		// Unknown and forbidden look the same: a token does not learn what
		// exists beyond its scopes.
		return nil, nil, jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown %s: %s", what, name))
	}
	if it.orig == it.name {
		return it, req.Params, nil
	}
	params, ok := jsonrpc.AppendWithString(dst, req.Params, "name", it.orig)
	if !ok {
		return nil, nil, jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params"))
	}
	return it, params, nil
}

// owner finds the server of a resource URI for s: a listed resource, then
// a template that matches, then the only server offering resources. A URI
// that a server s may not use lists or matches has no owner for s.
func (r *Router) owner(s *session.Session, uri string) *Entry {
	t := r.table.Load()
	if it := t.resBy[uri]; it != nil {
		if s.Principal.AllowsServer(it.server) {
			return it.entry
		}
		// Another server's resource, which this token may not use: it
		// is not sent to a server the token may use instead.
		return nil
	}
	claimed := false
	for _, it := range t.templates {
		if it.uri.Match(uri) {
			if s.Principal.AllowsServer(it.server) {
				return it.entry
			}
			claimed = true
		}
	}
	if claimed {
		return nil
	}
	var only *Entry
	for _, e := range r.visibleServers(s) {
		if initOf(e).Capabilities.Resources == nil {
			continue
		}
		if only != nil {
			return nil
		}
		only = e
	}
	return only
}

func (r *Router) byURI(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	uri, ok := jsonrpc.StringField(req.Params, "uri")
	if !ok || uri == "" {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: uri is required"))
	}
	e := r.owner(s, uri)
	if e == nil {
		return jsonrpc.ErrorResponse(req.ID, &jsonrpc.Error{Code: jsonrpc.CodeResourceNotFound, Message: "resource not found", Data: mustJSON(map[string]string{"uri": uri})})
	}
	return r.forward(ctx, s, e.Server, req, req.Params)
}

// subscribe routes resources/subscribe and unsubscribe, sharing one
// upstream subscription among the sessions that want it.
func (r *Router) subscribe(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	uri, ok := jsonrpc.StringField(req.Params, "uri")
	if !ok || uri == "" {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: uri is required"))
	}
	e := r.owner(s, uri)
	if e == nil {
		return jsonrpc.ErrorResponse(req.ID, &jsonrpc.Error{Code: jsonrpc.CodeResourceNotFound, Message: "resource not found", Data: mustJSON(map[string]string{"uri": uri})})
	}
	key := subKey{e.Server.Name(), uri}
	if req.Method == protocol.MethodResourcesSubscribe {
		if !s.Subscribe(uri) {
			return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
		}
		r.subMu.Lock()
		r.subs[key]++
		first := r.subs[key] == 1
		r.subMu.Unlock()
		if !first {
			return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
		}
		resp := r.forward(ctx, s, e.Server, req, req.Params)
		if resp.Error != nil {
			s.Unsubscribe(uri)
			r.release(key)
		}
		return resp
	}
	if !s.Unsubscribe(uri) {
		return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
	}
	if r.release(key) {
		return r.forward(ctx, s, e.Server, req, req.Params)
	}
	return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
}

// release drops one session's hold on an upstream subscription and reports
// whether it was the last.
func (r *Router) release(key subKey) bool {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.subs[key]--
	if r.subs[key] <= 0 {
		delete(r.subs, key)
		return true
	}
	return false
}

// SessionClosed releases what a session held upstream.
func (r *Router) SessionClosed(s *session.Session) {
	for _, uri := range s.Subscriptions() {
		e := r.owner(s, uri)
		if e == nil {
			continue
		}
		if r.release(subKey{e.Server.Name(), uri}) {
			p, _ := json.Marshal(map[string]string{"uri": uri})
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = e.Server.Call(ctx, protocol.MethodResourcesUnsubscribe, p, CallOptions{})
			}()
		}
	}
}

// complete routes completion/complete by its ref: a prompt by name, a
// resource template by URI.
func (r *Router) complete(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	f, err := jsonrpc.Fields(req.Params)
	if err != nil {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params"))
	}
	var ref struct {
		Type string `json:"type"`
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if err := json.Unmarshal(f["ref"], &ref); err != nil {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: ref is required"))
	}
	t := r.table.Load()
	switch ref.Type {
	case "ref/prompt":
		it := t.promptBy[ref.Name]
		if it == nil || !r.allowed(s, it, kindPrompts) {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown prompt: %s", ref.Name))
		}
		refRaw, _ := jsonrpc.WithField(f["ref"], "name", it.orig)
		f["ref"] = refRaw
		params, _ := json.Marshal(f)
		return r.forward(ctx, s, it.entry.Server, req, params)
	case "ref/resource":
		for _, it := range t.templates {
			if (it.name == ref.URI || it.uri.Match(ref.URI)) && s.Principal.AllowsServer(it.server) {
				return r.forward(ctx, s, it.entry.Server, req, req.Params)
			}
		}
		if e := r.owner(s, ref.URI); e != nil {
			return r.forward(ctx, s, e.Server, req, req.Params)
		}
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown resource: %s", ref.URI))
	}
	return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: unknown ref type %q", ref.Type))
}

// setLevel sends logging/setLevel to every server s may use that logs.
func (r *Router) setLevel(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	level, _ := jsonrpc.StringField(req.Params, "level")
	s.SetLogLevel(level)
	var wg sync.WaitGroup
	for _, e := range r.visibleServers(s) {
		init := initOf(e)
		if init.Capabilities.Logging == nil || protocol.Stateless(init.ProtocolVersion) {
			// A stateless server has no logging/setLevel: the level goes
			// with each of this session's requests instead.
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.Server.Call(ctx, req.Method, req.Params, CallOptions{Tag: s})
			if err != nil || (resp != nil && resp.Error != nil) {
				r.log.WarnContext(ctx, "logging/setLevel not applied", "server", e.Server.Name(), "err", err)
			}
		}()
	}
	wg.Wait()
	return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
}

// forward sends the request to srv on behalf of s. Notifications and
// server-to-client requests that belong to the call go to s, on the
// request's stream.
func (r *Router) forward(ctx context.Context, s *session.Session, srv Server, req *jsonrpc.Request, params json.RawMessage) *jsonrpc.Response {
	o := CallOptions{
		Tag: s,
		Notify: func(n *jsonrpc.Request) {
			if err := s.Send(ctx, n); err != nil {
				r.log.DebugContext(ctx, "notification not delivered", "method", n.Method, "err", err)
			}
		},
		Request: func(rctx context.Context, sreq *jsonrpc.Request) *jsonrpc.Response {
			// The request lives as long as the server wants it and the
			// client's call lasts, and travels on that call's stream.
			rctx, cancel := context.WithCancel(session.WithRelatedFrom(rctx, ctx))
			defer cancel()
			stop := context.AfterFunc(ctx, cancel)
			defer stop()
			return r.ask(rctx, s, sreq)
		},
	}
	o.ClientCaps = s.RawCapabilities()
	o.LogLevel = s.LogLevel()
	for round := 0; ; round++ {
		resp, err := srv.Call(ctx, req.Method, params, o)
		if err != nil {
			var je *jsonrpc.Error
			if errors.As(err, &je) {
				return jsonrpc.ErrorResponse(req.ID, je)
			}
			if ctx.Err() != nil {
				return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeRequestCancelled, "request cancelled"))
			}
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "server %s: %v", srv.Name(), err))
		}
		inputs, state, ok := inputRequired(resp)
		if !ok {
			return resp
		}
		// A stateless server wants input: a session client is asked for
		// it with real requests, and the server's call is made again with
		// the answers.
		if round == maxInputRounds {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "server %s asked for input more than %d times", srv.Name(), maxInputRounds))
		}
		answers, jerr := r.fulfil(ctx, s, inputs)
		if jerr != nil {
			return jsonrpc.ErrorResponse(req.ID, jerr)
		}
		f, err := jsonrpc.Fields(params)
		if err != nil {
			return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params"))
		}
		f["inputResponses"] = mustJSON(answers)
		if state == "" {
			delete(f, "requestState")
		} else {
			f["requestState"] = mustJSON(state)
		}
		params = mustJSON(f)
	}
}

// maxInputRounds bounds the input_required rounds of one bridged call.
const maxInputRounds = 16

// inputRequired returns the input requests and state of an input_required
// result.
func inputRequired(resp *jsonrpc.Response) (map[string]struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}, string, bool) {
	if resp == nil || resp.Error != nil || !bytes.Contains(resp.Result, []byte(protocol.ResultInputRequired)) {
		// The common case, told without decoding the result.
		return nil, "", false
	}
	var r struct {
		ResultType    string `json:"resultType"`
		InputRequests map[string]struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		} `json:"inputRequests"`
		RequestState string `json:"requestState"`
	}
	if json.Unmarshal(resp.Result, &r) != nil || r.ResultType != protocol.ResultInputRequired {
		return nil, "", false
	}
	return r.InputRequests, r.RequestState, true
}

// fulfil asks a session client for each input a stateless server needs.
func (r *Router) fulfil(ctx context.Context, s *session.Session, inputs map[string]struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}) (map[string]json.RawMessage, *jsonrpc.Error) {
	answers := map[string]json.RawMessage{}
	for key, in := range inputs {
		if !s.Capabilities().Allows(in.Method) {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "the server needs %s from the client, which did not declare the capability", in.Method)
		}
		resp, err := s.Request(ctx, in.Method, in.Params)
		if err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "the client did not answer %s: %v", in.Method, err)
		}
		if e := jsonrpc.WireError(resp); e != nil {
			return nil, e
		}
		answers[key] = resp.Result
	}
	return answers, nil
}

// ask passes a server-to-client request to s, if s declared the
// capability it needs.
func (r *Router) ask(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	if !s.Capabilities().Allows(req.Method) {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the client did not declare the capability %s needs", req.Method))
	}
	resp, err := s.Request(ctx, req.Method, req.Params)
	if err != nil {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "client did not answer %s: %v", req.Method, err))
	}
	return resp
}

// ServerNotification passes on a notification of server that belongs to
// no call: resource updates to the sessions subscribed, anything else to
// every session that may use the server. owner, when set, is the one
// session a session-isolated connection serves.
func (r *Router) ServerNotification(server string, owner *session.Session, n *jsonrpc.Request) {
	if n.Method == protocol.NotificationResourceUpdated && owner == nil {
		r.updateListeners(server, n.Params)
	}
	sessions := r.opts.Sessions
	if owner != nil {
		sessions = func(f func(*session.Session)) { f(owner) }
	}
	if sessions == nil {
		return
	}
	uri := ""
	if n.Method == protocol.NotificationResourceUpdated {
		uri, _ = jsonrpc.StringField(n.Params, "uri")
	}
	sessions(func(s *session.Session) {
		if !s.Principal.AllowsServer(server) || protocol.Stateless(s.Version()) && owner == nil {
			return
		}
		if n.Method == protocol.NotificationResourceUpdated && !s.Subscribed(uri) {
			return
		}
		if err := s.Notify(s.Context(), n.Method, n.Params); err != nil {
			r.log.Debug("notification not delivered", "method", n.Method, "session", s.ID, "err", err)
		}
	})
}

// ServerRequest answers a server-to-client request of server that belongs
// to no call: it goes to a client only when exactly one session may use
// the server and declared the capability (or owner, the session a
// session-isolated connection serves); otherwise the server is told.
func (r *Router) ServerRequest(ctx context.Context, server string, owner *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	if owner != nil {
		return r.ask(ctx, owner, req)
	}
	var only *session.Session
	n := 0
	if r.opts.Sessions != nil {
		r.opts.Sessions(func(s *session.Session) {
			if s.Principal.AllowsServer(server) && !protocol.Stateless(s.Version()) && s.Capabilities().Allows(req.Method) {
				only = s
				n++
			}
		})
	}
	if n != 1 {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError,
			"%s cannot be routed to a client: it came outside any client's call and %d clients could take it", req.Method, n))
	}
	return r.ask(ctx, only, req)
}

// HandleNotification takes a client notification.
func (r *Router) HandleNotification(ctx context.Context, s *session.Session, n *jsonrpc.Request) {
	switch n.Method {
	case protocol.NotificationInitialized:
		s.MarkInitialized()
	case protocol.NotificationCancelled:
		f, err := jsonrpc.Fields(n.Params)
		if err != nil {
			return
		}
		if id, err := jsonrpc.ParseID(f["requestId"]); err == nil {
			s.Cancel(id)
		}
	case protocol.NotificationRootsChanged:
		for _, e := range r.visibleServers(s) {
			_ = e.Server.Notify(ctx, n.Method, n.Params)
		}
	default:
		r.log.DebugContext(ctx, "client notification not routed", "method", n.Method)
	}
}

// initOf returns a server's initialize result. A server that went down
// since the table was built has a nil Catalog until the next Refresh, and
// then no result.
func initOf(e *Entry) protocol.InitializeResult {
	if c := e.Server.Catalog(); c != nil {
		return c.Init
	}
	return protocol.InitializeResult{}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
