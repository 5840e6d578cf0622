package edge

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/edge/bridge"
	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/seal"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/edge/upstream"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// mcpParts wires the MCP data path: sessions → router → upstream pool.
// Upstreams live on upCtx, which outlasts the HTTP server's shutdown.
func (e *edgeServer) mcpParts(upCtx context.Context, opts Options) {
	info, _ := json.Marshal(map[string]string{"name": "atrax", "version": opts.Version})
	e.sessions = session.NewStore()
	cfg := opts.Config
	e.seal = &seal.Ring{}
	e.router = router.New(router.Options{
		ServerInfo: info,
		PageSize:   cfg.HTTP.PageSize,
		Sealer:     &bridge.Sealer{Ring: e.seal, Edge: e.id},
		Sessions:   e.sessions.Each,
		// Tool definitions that change under a running server are logged,
		// audited and reported (pins.go).
		OnToolChange: e.toolChanged,
		Logger:       e.log.With("part", "router"),
	})
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	e.obs = &observer{
		tracer:    tp.Tracer(tracerName),
		metrics:   e.metrics,
		audit:     func(ev *atraxv1.AuditEvent) { e.watcher.Audit(ev) },
		auditArgs: cfg.Audit.ToolArguments,
		log:       e.log.With("part", "mcp"),
	}
	e.pool = upstream.NewPool(upCtx, upstream.PoolOptions{
		ClientInfo: info,
		OnChange: func() {
			e.router.Refresh()
			e.queueReport()
		},
		OnNotify: func(server string, caller any, n *jsonrpc.Request) {
			owner, _ := caller.(*session.Session)
			e.router.ServerNotification(server, owner, n)
		},
		OnRequest: func(ctx context.Context, server string, caller any, req *jsonrpc.Request) *jsonrpc.Response {
			owner, _ := caller.(*session.Session)
			return e.router.ServerRequest(ctx, server, owner, req)
		},
		Logger: e.log.With("part", "upstream"),
	})
	e.limits = newLimiter(cfg.Limits)
	e.mcp = downstream.New(downstream.Options{
		Dispatcher: &observed{o: e.obs, r: e.router},
		// An OAuth token without a server is refused with
		// insufficient_scope (oauth.go).
		Verifier:  mcpAccess{e.counted},
		Sessions:  e.sessions,
		RouteKey:  routeKey(e.id),
		MaxBody:   cfg.HTTP.MaxBodyBytes,
		KeepAlive: cfg.HTTP.KeepAlive,
		// A session's calls run on its context, not their HTTP request's:
		// the request id and trace context are carried over.
		CallContext:  callContext,
		Limits:       e.limits,
		WriteTimeout: writeTimeout(cfg.HTTP),
		Guard: &downstream.Guard{
			AllowedHosts:   append(allowedHosts(cfg.Host), cfg.HTTP.AllowedHosts...),
			AllowedOrigins: cfg.HTTP.AllowedOrigins,
			// The console's pages call /mcp from the edge's own origin.
			SameOrigin: cfg.UI.Enabled,
		},
		Logger: e.log.With("part", "mcp"),
	})
	e.sessions.OnClose = func(s *session.Session) {
		e.router.SessionClosed(s)
		e.pool.Release(s)
		e.mcp.SessionClosed(s)
		e.queueReport()
	}
}

// routeKey is the part of the edge id that starts session ids.
func routeKey(edgeID string) string {
	return strings.ReplaceAll(edgeID, ".", "-")
}

// allowedHosts are the Host values the MCP endpoints accept: loopback
// names, and the configured host when it names one interface.
func allowedHosts(host string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	switch host {
	case "", "0.0.0.0", "::":
		// Every interface: only loopback names are known to be ours;
		// others must be listed (DNS rebinding protection).
	default:
		hosts = append(hosts, host)
	}
	return hosts
}

func (e *edgeServer) queueReport() {
	select {
	case e.reports <- struct{}{}:
	default:
	}
}

// reportLoop sends the edge's state to the control plane when it changes,
// at most a few times a second.
func (e *edgeServer) reportLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.reports:
		}
		e.watcher.Report(e.report())
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (e *edgeServer) report() *atraxv1.EdgeReport {
	r := &atraxv1.EdgeReport{}
	// A collision the reject strategy refused shows on both servers.
	conflicts := map[string]string{}
	for _, c := range e.router.Conflicts() {
		for _, s := range c.Servers {
			if conflicts[s] == "" {
				conflicts[s] = c.String()
			}
		}
	}
	for _, s := range e.pool.Statuses() {
		if s.LastError == "" && conflicts[s.Name] != "" {
			s.LastError = conflicts[s.Name]
		}
		r.Upstreams = append(r.Upstreams, &atraxv1.UpstreamStatus{
			Name: s.Name, State: s.State, TransportType: s.Transport, ProtocolVersion: s.ProtocolVersion,
			LastError: s.LastError, Restarts: int32(s.Restarts), ToolCount: int32(s.Tools),
			PromptCount: int32(s.Prompts), ResourceCount: int32(s.Resources), SinceTime: timestamppb.New(s.Since),
		})
	}
	if stopped := e.stopped.Load(); stopped != nil {
		for _, name := range *stopped {
			r.Upstreams = append(r.Upstreams, &atraxv1.UpstreamStatus{Name: name, State: upstream.StateStopped})
		}
	}
	withPins(r.Upstreams, e.router.Pins())
	for transport, n := range e.sessions.Counts() {
		r.Sessions = append(r.Sessions, &atraxv1.SessionCount{Transport: transport, Count: int32(n)})
	}
	return r
}
