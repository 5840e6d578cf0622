package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/upstream"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/serverdef"
)

// serverRef is a server as the router sees it: a name resolved to the
// pool's current upstream on every use, so that a restarted connection
// takes over without the router noticing.
type serverRef struct {
	name  string
	pool  *upstream.Pool
	cache atomic.Pointer[catalogCache]
	obs   *observer
	m     serverMetrics
	// gate bounds the calls in flight toward the server
	// (limits.maxInFlightPerUpstream).
	gate *limits.Gate
}

type catalogCache struct {
	lists *upstream.Lists
	cat   *router.Catalog
}

var _ router.Server = (*serverRef)(nil)

func (r *serverRef) Name() string { return r.name }

// Catalog returns the upstream's lists while it runs, converted once per
// version of the lists.
func (r *serverRef) Catalog() *router.Catalog {
	u := r.pool.Get(r.name)
	if u == nil || u.Status().State != upstream.StateRunning {
		return nil
	}
	l := u.Lists()
	if c := r.cache.Load(); c != nil && c.lists == l {
		return c.cat
	}
	cat := &router.Catalog{
		Tools: l.Tools, Prompts: l.Prompts, Resources: l.Resources,
		ResourceTemplates: l.ResourceTemplates, Init: l.Init,
	}
	r.cache.Store(&catalogCache{lists: l, cat: cat})
	return cat
}

func (r *serverRef) Call(ctx context.Context, method string, params json.RawMessage, o router.CallOptions) (*jsonrpc.Response, error) {
	leave, err := r.gate.Enter()
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeLimitExceeded, "server %s: %v", r.name, err)
	}
	defer leave()
	noteServer(ctx, r)
	u, err := r.pool.ForCaller(ctx, r.name, o.Tag)
	if err != nil {
		if errors.Is(err, upstream.ErrTooManySessions) {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "server %s: %v; try again later", r.name, err)
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeConnectionClosed, "server %s: %v", r.name, err)
	}
	ctx, params, call := r.obs.startUpstream(ctx, r.name, r.m, method, params)
	resp, err := u.Call(ctx, method, params, upstream.CallOptions{Tag: o.Tag, Notify: o.Notify, Request: o.Request, ClientCaps: o.ClientCaps, LogLevel: o.LogLevel})
	call.end(resp, err)
	switch {
	case err == nil:
		return resp, nil
	case errors.Is(err, upstream.ErrTimeout):
		return nil, jsonrpc.NewError(jsonrpc.CodeRequestTimeout, "server %s: %v", r.name, err)
	case errors.Is(err, upstream.ErrConnectionLost), errors.Is(err, upstream.ErrUnavailable):
		return nil, jsonrpc.NewError(jsonrpc.CodeConnectionClosed, "server %s: %v", r.name, err)
	}
	return nil, err
}

func (r *serverRef) Notify(ctx context.Context, method string, params json.RawMessage) error {
	u := r.pool.Get(r.name)
	if u == nil {
		return fmt.Errorf("server %s is not running", r.name)
	}
	return u.Notify(ctx, method, params)
}

// desired turns the snapshot's servers into what the pool should run and
// what the router should route to. ${VAR} is expanded here, from the
// edge's own environment, when the server starts.
func (e *edgeServer) desired(servers []*atraxv1.Server) ([]upstream.Desired, []*router.Entry) {
	var want []upstream.Desired
	var entries []*router.Entry
	for _, s := range servers {
		if s.GetState() != "running" {
			continue
		}
		c := serverdef.ToConfig(s)
		d := upstream.Desired{
			Key:         specKey(s),
			Isolated:    c.Isolation == config.IsolationSession,
			MaxSessions: c.MaxSessions,
		}
		exp, err := c.Expanded(os.LookupEnv)
		if err == nil {
			var timeout = config.DefaultCallTimeout
			if timeout, err = exp.CallTimeout(); err == nil {
				d.Spec = upstream.Spec{
					Name: s.GetName(), Transport: c.TransportType,
					Command: exp.Command, Args: exp.Args, Env: exp.Env, Cwd: exp.Cwd,
					URL: exp.URL, Headers: exp.Headers, Timeout: timeout,
				}
				if d.Spec.Transport == "" && exp.Command != "" {
					d.Spec.Transport = config.TransportStdio
				}
			}
		}
		if err != nil {
			d.Spec.Name = s.GetName()
			d.Err = fmt.Errorf("cannot start: %w", err)
		}
		want = append(want, d)
		ref := e.refs[s.GetName()]
		if ref == nil {
			ref = &serverRef{name: s.GetName(), pool: e.pool, obs: e.obs, m: e.metrics.forServer(s.GetName()),
				gate: limits.NewGate(e.cfg.Limits.MaxInFlightPerUpstream)}
			e.refs[s.GetName()] = ref
		}
		prefix := s.GetPrefix()
		if prefix == "" {
			prefix = s.GetName()
		}
		entries = append(entries, &router.Entry{
			Server: ref, Prefix: prefix,
			Allow: s.GetTools().GetAllow(), Deny: s.GetTools().GetDeny(),
			PinTools: s.GetPinTools(), Approved: s.GetApprovedTools(),
		})
	}
	return want, entries
}

// specKey identifies a server's definition and its last restart request:
// the connection is made again exactly when it changes.
func specKey(s *atraxv1.Server) string {
	c := serverdef.ToConfig(s)
	b, _ := json.Marshal(struct {
		C config.Server
		R int64
	}{c, s.GetRestartTime().AsTime().UnixNano()})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
