package router

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
)

// listener is one open subscriptions/listen stream of a stateless client:
// the notifications it asked for, delivered tagged with its subscription
// id.
type listener struct {
	s      *session.Session
	ctx    context.Context
	id     json.RawMessage // the listen request's id, as subscriptionId
	filter subscriptionFilter
}

// subscriptionFilter is the notifications object of subscriptions/listen.
type subscriptionFilter struct {
	ToolsListChanged      bool     `json:"toolsListChanged,omitempty"`
	PromptsListChanged    bool     `json:"promptsListChanged,omitempty"`
	ResourcesListChanged  bool     `json:"resourcesListChanged,omitempty"`
	ResourceSubscriptions []string `json:"resourceSubscriptions,omitempty"`
}

func (f subscriptionFilter) wants(method string) bool {
	switch method {
	case protocol.NotificationToolsChanged:
		return f.ToolsListChanged
	case protocol.NotificationPromptsChanged:
		return f.PromptsListChanged
	case protocol.NotificationResourcesChanged:
		return f.ResourcesListChanged
	}
	return false
}

// Listen serves a subscriptions/listen request until ctx ends: it
// acknowledges what it will deliver, then sends the list changes and
// resource updates the client asked for, each tagged with the request's id
// as subscriptionId, as they happen. Resource updates of session-era
// servers come through one upstream subscription shared by every
// listener and session.
func (r *Router) Listen(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	var p struct {
		Notifications *subscriptionFilter `json:"notifications"`
	}
	if err := json.Unmarshal(nonNull(req.Params), &p); err != nil || p.Notifications == nil {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: notifications is required"))
	}
	l := &listener{s: s, ctx: ctx, id: jsonrpc.MarshalID(req.ID), filter: *p.Notifications}
	// Hold an upstream subscription for each URI the client may read.
	var held []subKey
	var honored []string
	for _, uri := range l.filter.ResourceSubscriptions {
		e := r.owner(s, uri)
		if e == nil {
			continue
		}
		key := subKey{e.Server.Name(), uri}
		r.subMu.Lock()
		r.subs[key]++
		first := r.subs[key] == 1
		r.subMu.Unlock()
		if first {
			params := mustJSON(map[string]string{"uri": uri})
			resp, err := e.Server.Call(ctx, protocol.MethodResourcesSubscribe, params, CallOptions{Tag: s, ClientCaps: s.RawCapabilities()})
			if err != nil || resp.Error != nil {
				r.log.DebugContext(ctx, "upstream resource subscription not taken", "server", e.Server.Name(), "uri", uri, "err", err)
			}
		}
		held = append(held, key)
		honored = append(honored, uri)
	}
	defer func() {
		for _, key := range held {
			if r.release(key) {
				params := mustJSON(map[string]string{"uri": key.uri})
				if srv := r.serverNamed(key.server); srv != nil {
					_, _ = srv.Call(context.WithoutCancel(ctx), protocol.MethodResourcesUnsubscribe, params, CallOptions{})
				}
			}
		}
	}()
	l.filter.ResourceSubscriptions = honored

	if err := l.send(protocol.NotificationSubscriptionAck, map[string]any{"notifications": l.filter}); err != nil {
		return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "listen stream: %v", err))
	}
	r.lisMu.Lock()
	r.listeners[l] = struct{}{}
	r.lisMu.Unlock()
	defer func() {
		r.lisMu.Lock()
		delete(r.listeners, l)
		r.lisMu.Unlock()
	}()
	<-ctx.Done()
	return jsonrpc.ResultResponse(req.ID, mustJSON(map[string]any{"resultType": protocol.ResultComplete}))
}

func (r *Router) serverNamed(name string) Server {
	if e := r.table.Load().byServer[name]; e != nil {
		return e.Server
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.Server.Name() == name {
			return e.Server
		}
	}
	return nil
}

// send writes a notification tagged with the listener's subscription id.
func (l *listener) send(method string, params any) error {
	raw := mustJSON(params)
	raw, err := jsonrpc.WithMeta(raw, protocol.MetaSubscriptionID, l.id)
	if err != nil {
		return err
	}
	return l.s.Send(l.ctx, &jsonrpc.Request{Method: method, Params: raw})
}

// notifyListeners passes list changes to the listeners that asked for them.
func (r *Router) notifyListeners(methods []string) {
	r.lisMu.Lock()
	ls := make([]*listener, 0, len(r.listeners))
	for l := range r.listeners {
		ls = append(ls, l)
	}
	r.lisMu.Unlock()
	for _, l := range ls {
		for _, m := range methods {
			if l.filter.wants(m) {
				if err := l.send(m, map[string]any{}); err != nil {
					r.log.Debug("listen notification not delivered", "method", m, "err", err)
				}
			}
		}
	}
}

// updateListeners passes a resource update of server to the listeners
// subscribed to its URI.
func (r *Router) updateListeners(server string, params json.RawMessage) {
	uri, _ := jsonrpc.StringField(params, "uri")
	r.lisMu.Lock()
	ls := make([]*listener, 0, len(r.listeners))
	for l := range r.listeners {
		ls = append(ls, l)
	}
	r.lisMu.Unlock()
	for _, l := range ls {
		if !slices.Contains(l.filter.ResourceSubscriptions, uri) || !l.s.Principal.AllowsServer(server) {
			continue
		}
		var p map[string]json.RawMessage
		_ = json.Unmarshal(params, &p)
		if err := l.send(protocol.NotificationResourceUpdated, p); err != nil {
			r.log.Debug("resource update not delivered", "uri", uri, "err", err)
		}
	}
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("{}")
	}
	return raw
}

// Tool returns a tool's definition as clients see it.
func (r *Router) Tool(name string) (json.RawMessage, bool) {
	it := r.table.Load().toolBy[name]
	if it == nil {
		return nil, false
	}
	return it.raw, true
}
