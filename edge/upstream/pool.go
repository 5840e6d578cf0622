package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// Isolated gives each caller (tag) its own upstream session, made on
	// its first call (ForCaller) and ended by Release. The shared upstream
	// still runs, for the lists.
	Isolated bool
	// MaxSessions caps an isolated server's per-caller upstreams.
	MaxSessions int
}

// ErrTooManySessions is returned when an isolated server is at its cap.
var ErrTooManySessions = errors.New("the server has as many client sessions as it may")

// callerStartTimeout bounds the start of a per-caller upstream.
const callerStartTimeout = initTimeout

// PoolOptions configure a Pool.
type PoolOptions struct {
	ClientInfo json.RawMessage
	HTTPClient HTTPDoer
	// OnChange is called when any upstream's state or lists change.
	OnChange func()
	// OnNotify receives notifications that belong to no call. caller is
	// the tag of a per-caller upstream, nil for the shared one.
	OnNotify func(server string, caller any, n *Notification)
	// OnRequest answers server-to-client requests that belong to no call.
	OnRequest func(ctx context.Context, server string, caller any, req *Request) *Response
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
	// view is a copy of ups, replaced whenever ups changes, so that the
	// request path (Get, ForCaller of a shared server) finds a server
	// without taking mu. Entries are replaced, never changed, but for the
	// callers of isolated servers, which stay under mu.
	view atomic.Pointer[map[string]*poolEntry]
}

type poolEntry struct {
	u       *Upstream
	key     string
	err     error
	desired Desired
	callers map[any]*Upstream // per-caller upstreams of an isolated server
}

// NewPool returns a pool whose upstreams live until ctx ends (or Close).
func NewPool(ctx context.Context, opts PoolOptions) *Pool {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{opts: opts, ctx: ctx, ups: map[string]*poolEntry{}}
	p.publish()
	return p
}

// publish makes the current ups the view of lookups. p.mu is held (or p
// is not shared yet).
func (p *Pool) publish() {
	v := make(map[string]*poolEntry, len(p.ups))
	for k, e := range p.ups {
		v[k] = e
	}
	p.view.Store(&v)
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
		if cur != nil {
			stop = append(stop, cur.all()...)
		}
		if d.Err != nil {
			p.ups[name] = &poolEntry{key: d.Key, err: d.Err}
			continue
		}
		u := p.newUpstream(d.Spec, nil)
		p.ups[name] = &poolEntry{u: u, key: d.Key, desired: d, callers: map[any]*Upstream{}}
		u.Start(p.ctx)
	}
	for name, e := range p.ups {
		if !want[name] {
			stop = append(stop, e.all()...)
			delete(p.ups, name)
		}
	}
	p.publish()
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
	if e := (*p.view.Load())[name]; e != nil {
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
		all = append(all, e.all()...)
		delete(p.ups, name)
	}
	p.publish()
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

// all returns the entry's upstreams: the shared one and every caller's.
func (e *poolEntry) all() []*Upstream {
	var out []*Upstream
	if e.u != nil {
		out = append(out, e.u)
	}
	for _, u := range e.callers {
		out = append(out, u)
	}
	return out
}

func (p *Pool) newUpstream(spec Spec, caller any) *Upstream {
	name := spec.Name
	log := p.opts.Logger
	onChange := p.opts.OnChange
	if caller != nil {
		// A caller's own connection does not change what is listed.
		onChange = nil
		log = log.With("isolated", true)
	}
	return New(Options{
		Spec:       spec,
		ClientInfo: p.opts.ClientInfo,
		HTTPClient: p.opts.HTTPClient,
		OnChange:   onChange,
		OnNotify: func(n *Notification) {
			if p.opts.OnNotify != nil {
				p.opts.OnNotify(name, caller, n)
			}
		},
		OnRequest: func(ctx context.Context, req *Request) *Response {
			if p.opts.OnRequest != nil {
				return p.opts.OnRequest(ctx, name, caller, req)
			}
			return nil
		},
		Logger: log,
	})
}

// ForCaller returns the upstream that serves caller: the shared one, or for
// an isolated server the caller's own, started on first use (and waited
// for, within ctx).
func (p *Pool) ForCaller(ctx context.Context, name string, caller any) (*Upstream, error) {
	e := (*p.view.Load())[name]
	if e == nil || e.u == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, name)
	}
	if !e.desired.Isolated || caller == nil {
		return e.u, nil // the shared connection: no lock on the way
	}
	p.mu.Lock()
	if p.ups[name] != e {
		// Replaced or removed meanwhile.
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, name)
	}
	u := e.callers[caller]
	if u == nil {
		max := e.desired.MaxSessions
		if max <= 0 {
			max = 100
		}
		if len(e.callers) >= max {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w (%d)", ErrTooManySessions, max)
		}
		u = p.newUpstream(e.desired.Spec, caller)
		e.callers[caller] = u
		u.Start(p.ctx)
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, callerStartTimeout)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

// Release stops every per-caller upstream of caller (its session ended).
func (p *Pool) Release(caller any) {
	p.mu.Lock()
	var stop []*Upstream
	for _, e := range p.ups {
		if u := e.callers[caller]; u != nil {
			stop = append(stop, u)
			delete(e.callers, caller)
		}
	}
	p.mu.Unlock()
	for _, u := range stop {
		p.stopped.Add(1)
		go func() {
			defer p.stopped.Done()
			u.Stop()
		}()
	}
}

// Callers returns how many per-caller upstreams a server has.
func (p *Pool) Callers(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.ups[name]; e != nil {
		return len(e.callers)
	}
	return 0
}
