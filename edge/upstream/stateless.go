package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// Stateless servers (2026-07-28). The edge finds out with server/discover
// before any handshake: a server that lists the stateless revision gets no
// initialize and no session; every request carries the revision and the
// client's capabilities in _meta (and, over HTTP, the headers that mirror
// the body); list changes and resource updates arrive on a
// subscriptions/listen stream the edge keeps open.

// statelessConn is a connection that can speak the stateless revision.
type statelessConn interface {
	Stateless(version string, tool func(name string) (json.RawMessage, bool))
}

// edgeCapabilities are what the edge declares to servers: it can pass
// roots, sampling and elicitation on to clients that have them.
var edgeCapabilities = json.RawMessage(`{"roots":{"listChanged":true},"sampling":{},"elicitation":{}}`)

func (s *session) clientInfo() json.RawMessage {
	if s.u.opts.ClientInfo != nil {
		return s.u.opts.ClientInfo
	}
	return json.RawMessage(`{"name":"atrax","version":"dev"}`)
}

// discover asks the server which revisions it speaks. ok is false when it
// does not speak a stateless one the edge knows (the caller then
// initializes); an error means the connection cannot go on.
func (s *session) discover(ctx context.Context, sc statelessConn) (*Lists, bool, error) {
	meta := map[string]json.RawMessage{
		protocol.MetaProtocolVersion:    mustJSON(protocol.V20260728),
		protocol.MetaClientCapabilities: edgeCapabilities,
		protocol.MetaClientInfo:         s.clientInfo(),
	}
	sc.Stateless(protocol.V20260728, nil) // discover itself is a stateless request
	resp, err := s.call(ctx, protocol.MethodServerDiscover, mustJSON(map[string]any{"_meta": meta}), CallOptions{})
	if err != nil && !errors.Is(err, ErrConnectionLost) {
		return nil, false, err
	}
	var res struct {
		SupportedVersions []string                    `json:"supportedVersions"`
		Capabilities      protocol.ServerCapabilities `json:"capabilities"`
		Instructions      string                      `json:"instructions"`
	}
	if err != nil || resp.Error != nil || json.Unmarshal(resp.Result, &res) != nil ||
		!slices.Contains(res.SupportedVersions, protocol.V20260728) {
		// A session-era server: back to the handshake, without the
		// stateless headers.
		if h, ok := s.conn.(*httpConn); ok {
			h.mu.Lock()
			h.stateless, h.version = false, ""
			h.mu.Unlock()
		}
		return nil, false, nil
	}
	s.stateless = protocol.V20260728
	lists := &Lists{InitRaw: resp.Result}
	lists.Init.ProtocolVersion = protocol.V20260728
	lists.Init.Capabilities = res.Capabilities
	lists.Init.Instructions = res.Instructions
	sc.Stateless(protocol.V20260728, func(name string) (json.RawMessage, bool) {
		for _, t := range s.u.lists.Load().Tools {
			if n, _ := jsonrpc.StringField(t, "name"); n == name {
				return t, true
			}
		}
		return nil, false
	})
	if err := s.fetchLists(ctx, lists); err != nil {
		return nil, false, err
	}
	return lists, true, nil
}

// statelessParams adds the _meta a stateless request needs: the revision,
// the capabilities of the client the call is for (the edge's own for its
// own calls) and the edge's identity.
func (s *session) statelessParams(params json.RawMessage, o CallOptions) (json.RawMessage, error) {
	meta := jsonrpc.Meta(params)
	meta[protocol.MetaProtocolVersion] = mustJSON(s.stateless)
	if _, ok := meta[protocol.MetaClientCapabilities]; !ok {
		caps := o.ClientCaps
		if caps == nil {
			caps = edgeCapabilities
		}
		meta[protocol.MetaClientCapabilities] = caps
	}
	if _, ok := meta[protocol.MetaClientInfo]; !ok {
		meta[protocol.MetaClientInfo] = s.clientInfo()
	}
	if o.LogLevel != "" {
		if _, ok := meta[protocol.MetaLogLevel]; !ok {
			meta[protocol.MetaLogLevel] = mustJSON(o.LogLevel)
		}
	}
	f, err := jsonrpc.Fields(params)
	if err != nil {
		return nil, err
	}
	f["_meta"] = mustJSON(meta)
	return json.Marshal(f)
}

// resourceSubscription records a subscription the stateless revision
// carries on the listen stream, and has the stream opened again with it.
func (s *session) resourceSubscription(method string, params json.RawMessage) (*jsonrpc.Response, error) {
	uri, ok := jsonrpc.StringField(params, "uri")
	if !ok || uri == "" {
		return jsonrpc.ErrorResponse(jsonrpc.ID{}, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: uri is required")), nil
	}
	s.subsMu.Lock()
	if method == protocol.MethodResourcesSubscribe {
		s.subscribed[uri] = true
	} else {
		delete(s.subscribed, uri)
	}
	s.subsMu.Unlock()
	select {
	case s.relisten <- struct{}{}:
	default:
	}
	return jsonrpc.ResultResponse(jsonrpc.ID{}, json.RawMessage(`{}`)), nil
}

// listen keeps a subscriptions/listen request open to a stateless server
// for what the server's capabilities offer and the resources subscribed,
// opening it again when it ends or the subscriptions change.
func (s *session) listen(ctx context.Context) {
	caps := s.u.lists.Load().Init.Capabilities
	backoff := time.Second
	for ctx.Err() == nil {
		s.subsMu.Lock()
		uris := make([]string, 0, len(s.subscribed))
		for u := range s.subscribed {
			uris = append(uris, u)
		}
		s.subsMu.Unlock()
		slices.Sort(uris)
		filter := map[string]any{
			"toolsListChanged":     caps.Tools != nil && caps.Tools.ListChanged,
			"promptsListChanged":   caps.Prompts != nil && caps.Prompts.ListChanged,
			"resourcesListChanged": caps.Resources != nil && caps.Resources.ListChanged,
		}
		if len(uris) > 0 {
			filter["resourceSubscriptions"] = uris
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := s.callFor(lctx, protocol.MethodSubscriptionsListen, mustJSON(map[string]any{"notifications": filter}), CallOptions{}, 0)
			done <- err
		}()
		start := time.Now()
		select {
		case <-s.relisten:
			cancel()
			<-done
			continue
		case err := <-done:
			cancel()
			if ctx.Err() != nil {
				return
			}
			if time.Since(start) > time.Minute {
				backoff = time.Second
			}
			s.u.log.Debug("listen stream to the server ended; opening it again", "err", err, "retry_in", backoff.String())
		case <-ctx.Done():
			cancel()
			<-done
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// mustJSON marshals values that always marshal (strings, maps of them).
func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
