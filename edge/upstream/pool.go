package upstream

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// Desired is one server the pool should run, or report as failed.
type Desired struct {
	Spec Spec
	// Key changes whenever the connection must be made again: a changed
	// definition or a restart request. Equal keys keep the connection.
	Key string
	// Err, when set, means the server cannot be started (for example an
	// unset variable); it is reported as failed and not run.
	Err error
}

// PoolOptions configure a Pool.
type PoolOptions struct {
	ClientInfo json.RawMessage
	HTTPClient HTTPDoer
	// OnChange is called when any upstream's state or lists change.
	OnChange func()
	// OnNotify receives notifications that belong to no call.
	OnNotify func(server string, n *Notification)
	// OnRequest answers server-to-client requests that belong to no call.
	OnRequest func(ctx context.Context, server string, req *Request) *Response
	Logger    *slog.Logger
}

// Pool runs one upstream per desired server.
type Pool struct {
	opts PoolOptions
	ctx  context.Context

	mu      sync.Mutex
	ups     map[string]*poolEntry
	order   []string
	stopped sync.WaitGroup
}

type poolEntry struct {
	u   *Upstream
	key string
	err error
}

// NewPool returns a pool whose upstreams live until ctx ends (or Close).
func NewPool(ctx context.Context, opts PoolOptions) *Pool {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{opts: opts, ctx: ctx, ups: map[string]*poolEntry{}}
}

// Apply makes the pool run exactly the desired servers: new ones start,
// removed ones stop, and only those whose key changed reconnect.
func (p *Pool) Apply(desired []Desired) {
	p.mu.Lock()
	want := map[string]bool{}
	p.order = p.order[:0]
	var stop []*Upstream
	for _, d := range desired {
		name := d.Spec.Name
		want[name] = true
		p.order = append(p.order, name)
		cur := p.ups[name]
		if cur != nil && cur.key == d.Key && (cur.err == nil) == (d.Err == nil) {
			continue
		}
		if cur != nil && cur.u != nil {
			stop = append(stop, cur.u)
		}
		if d.Err != nil {
			p.ups[name] = &poolEntry{key: d.Key, err: d.Err}
			continue
		}
		u := New(Options{
			Spec:       d.Spec,
			ClientInfo: p.opts.ClientInfo,
			HTTPClient: p.opts.HTTPClient,
			OnChange:   p.opts.OnChange,
			OnNotify: func(n *Notification) {
				if p.opts.OnNotify != nil {
					p.opts.OnNotify(name, n)
				}
			},
			OnRequest: func(ctx context.Context, req *Request) *Response {
				if p.opts.OnRequest != nil {
					return p.opts.OnRequest(ctx, name, req)
				}
				return nil
			},
			Logger: p.opts.Logger,
		})
		p.ups[name] = &poolEntry{u: u, key: d.Key}
		u.Start(p.ctx)
	}
	for name, e := range p.ups {
		if !want[name] {
			if e.u != nil {
				stop = append(stop, e.u)
			}
			delete(p.ups, name)
		}
	}
	p.mu.Unlock()
	// Stopping waits for children to exit; it must not hold up the caller.
	for _, u := range stop {
		p.stopped.Add(1)
		go func() {
			defer p.stopped.Done()
			u.Stop()
		}()
	}
	if p.opts.OnChange != nil {
		p.opts.OnChange()
	}
}

// Get returns the upstream of a server, or nil.
func (p *Pool) Get(name string) *Upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.ups[name]; e != nil {
		return e.u
	}
	return nil
}

// Statuses returns every server's status, in the desired order.
func (p *Pool) Statuses() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Status, 0, len(p.order))
	for _, name := range p.order {
		e := p.ups[name]
		if e == nil {
			continue
		}
		if e.u == nil {
			out = append(out, Status{Name: name, State: StateFailed, LastError: e.err.Error(), Since: time.Now()})
			continue
		}
		out = append(out, e.u.Status())
	}
	return out
}

// Close stops every upstream and waits for them.
func (p *Pool) Close() {
	p.mu.Lock()
	var all []*Upstream
	for name, e := range p.ups {
		if e.u != nil {
			all = append(all, e.u)
		}
		delete(p.ups, name)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, u := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.Stop()
		}()
	}
	wg.Wait()
	p.stopped.Wait()
}
