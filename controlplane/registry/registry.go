// Package registry holds the desired state of the MCP servers: their
// definitions, whether each should run, and when a restart was asked for.
// It validates every change, writes it to the store before it answers, and
// tells watchers about each change in order.
//
// Servers come from two places. Those named in the config file are defined
// by the file on every start and are read-only here (they may still be
// started, stopped and restarted); those created through the API live in
// the store.
//
// Several control planes may share one store (etcdstore). Each registry
// then writes only if no other replica wrote the servers since it last
// caught up (store.Conditional), and catches up through Apply, which the
// control plane calls with every write the store's watch reports; a write
// that lost such a race is tried again once the registry has caught up.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/serverdef"
)

// Errors the registry returns, wrapped with detail. The service layer maps
// them to gRPC codes.
var (
	ErrNotFound          = errors.New("server not found")
	ErrExists            = errors.New("server already exists")
	ErrReadOnly          = errors.New("server is defined by the config file")
	ErrInvalid           = errors.New("invalid server")
	ErrCommandNotAllowed = errors.New("command not allowed")
	ErrWatchLagged       = errors.New("watcher fell behind")
	// ErrNotPinned means tools were approved for a server without pinTools.
	ErrNotPinned = errors.New("server does not pin its tools")
	// ErrConflict means other control planes sharing the store kept
	// changing the servers while this one tried to write; the change was
	// not made and may be tried again.
	ErrConflict = errors.New("servers changed by another control plane")
)

// Retries of a write that another replica's write got in ahead of: each
// waits for the registry to catch up, at most conflictWait.
const (
	conflictRetries = 10
	conflictWait    = 500 * time.Millisecond
)

// Sources and states of a server.
const (
	SourceConfig = "config"
	SourceAPI    = "api"

	StateRunning = "running"
	StateStopped = "stopped"
)

// Events sent to watchers.
const (
	EventSnapshot = "snapshot"
	EventCreated  = "created"
	EventUpdated  = "updated"
	EventDeleted  = "deleted"
)

// Options configure a Registry.
type Options struct {
	Store store.Store
	// Config are the servers the config file defines, in file order.
	Config []config.Server
	// AllowCommands says which commands stdio servers created or changed
	// through the API may run.
	AllowCommands config.AllowCommands
	// OnChange is called after every change is stored (for snapshots).
	OnChange func()
	Logger   *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Registry is the server registry. It is safe for concurrent use; writes are
// serialized so that watchers see them in the order they were stored.
type Registry struct {
	store    store.Store
	allow    config.AllowCommands
	onChange func()
	log      *slog.Logger
	now      func() time.Time

	// cfg are the config file's servers, for the order after a change
	// another replica made.
	cfg []config.Server
	// shared is the store as several control planes write it; nil for a
	// store of this process alone.
	shared store.Conditional

	mu       sync.Mutex
	servers  map[string]*atraxv1.Server
	order    []string // config servers in file order, then API servers by name
	version  int64    // of the last change watchers were told, only growing
	watchers map[*watcher]struct{}
	dirty    bool // a change awaits onChange
	// applied is, with a shared store, the revision up to which every
	// write of the servers is reflected here: what conditional writes
	// are based on.
	applied int64
	// caughtUp is closed and replaced whenever Apply moves applied.
	caughtUp chan struct{}
}

// Change is one change, as watchers receive it.
type Change struct {
	Event   string
	Server  *atraxv1.Server
	Version int64
}

type watcher struct {
	ch     chan Change
	lagged bool
}

// Open loads the registry from the store and applies the config file's
// servers to it in one write.
func Open(ctx context.Context, opts Options) (*Registry, error) {
	r := &Registry{
		store:    opts.Store,
		allow:    opts.AllowCommands,
		onChange: opts.OnChange,
		log:      opts.Logger,
		now:      opts.Now,
		cfg:      opts.Config,
		servers:  map[string]*atraxv1.Server{},
		watchers: map[*watcher]struct{}{},
		caughtUp: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if c, ok := opts.Store.(store.Conditional); ok {
		r.shared = c
	}
	for attempt := 0; ; attempt++ {
		err := r.load(ctx, opts.Config)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt == conflictRetries {
			return nil, err
		}
		// Another replica wrote the servers meanwhile: read them again.
		r.log.Info("servers changed by another control plane while the config file was applied; applying it again")
	}
}

// load reads the servers from the store and writes the config file's ones.
// With a shared store the write is conditional on the servers read, and a
// conflict is returned as it came.
func (r *Registry) load(ctx context.Context, cfg []config.Server) error {
	var base int64
	if r.shared != nil {
		// Read the revision first: the servers read after it reflect every
		// write up to it, at least.
		var err error
		if base, err = r.store.Revision(ctx); err != nil {
			return fmt.Errorf("load servers: %w", err)
		}
	}
	stored, err := r.store.ListServers(ctx)
	if err != nil {
		return fmt.Errorf("load servers: %w", err)
	}
	byName := map[string]*atraxv1.Server{}
	for _, s := range stored {
		byName[s.GetName()] = s
	}
	now := timestamppb.New(r.now())
	var put []*atraxv1.Server
	inFile := map[string]bool{}
	for _, c := range cfg {
		inFile[c.Name] = true
		s := serverdef.FromConfig(c)
		s.Source = SourceConfig
		old := byName[c.Name]
		switch {
		case old == nil:
			s.State = initialState(s)
			s.CreateTime, s.UpdateTime = now, now
		case old.GetSource() != SourceConfig:
			r.log.Warn("the config file now defines a server that was created through the API; the file's definition replaces it",
				"server", c.Name)
			s.State = initialState(s)
			s.CreateTime, s.UpdateTime = now, now
		default:
			// Keep what the API did to this server (start, stop, restart)
			// unless the file changed whether it is disabled.
			s.State = old.GetState()
			if old.GetDisabled() != s.GetDisabled() {
				s.State = initialState(s)
			}
			s.CreateTime, s.RestartTime = old.GetCreateTime(), old.GetRestartTime()
			s.UpdateTime = old.GetUpdateTime()
			s.ApprovedTools = old.GetApprovedTools()
			if !sameDefinition(old, s) || old.GetState() != s.GetState() {
				s.UpdateTime = now
			}
		}
		put = append(put, s)
	}
	var del []string
	for _, s := range stored {
		if s.GetSource() == SourceConfig && !inFile[s.GetName()] {
			r.log.Info("server removed from the config file", "server", s.GetName())
			del = append(del, s.GetName())
		}
	}
	// Always write, even when nothing changed: the new revision marks this
	// start, so edges take the new snapshot (whose namespacing may differ).
	var rev int64
	if r.shared != nil {
		rev, err = r.shared.PutServersIf(ctx, base, put, del)
	} else {
		rev, err = r.store.PutServers(ctx, put, del)
	}
	if err != nil {
		return fmt.Errorf("apply config servers: %w", err)
	}
	for _, s := range stored {
		r.servers[s.GetName()] = s
	}
	for _, name := range del {
		delete(r.servers, name)
	}
	for _, s := range put {
		r.servers[s.GetName()] = s
	}
	r.version, r.applied = rev, rev
	r.reorder(cfg)
	return nil
}

// put writes servers to the store: with a shared store, only if no other
// replica wrote servers after what this registry reflects. r.mu is held.
func (r *Registry) put(ctx context.Context, put []*atraxv1.Server, del []string) (int64, error) {
	if r.shared == nil {
		return r.store.PutServers(ctx, put, del)
	}
	rev, err := r.shared.PutServersIf(ctx, r.applied, put, del)
	if err == nil {
		// No server write came between: this one is reflected too.
		r.applied = rev
	}
	return rev, err
}

// retry runs a write (fn takes r.mu itself) and, when another replica's
// write got in first, runs it again once Apply has caught the registry up,
// so that its checks (does the server exist, is it read-only) see the
// other write.
func (r *Registry) retry(ctx context.Context, fn func() (*atraxv1.Server, error)) (*atraxv1.Server, error) {
	for attempt := 0; ; attempt++ {
		r.mu.Lock()
		before := r.applied
		r.mu.Unlock()
		s, err := fn()
		if !errors.Is(err, store.ErrConflict) {
			return s, err
		}
		if attempt == conflictRetries {
			return nil, fmt.Errorf("%w: %w", ErrConflict, err)
		}
		r.mu.Lock()
		caughtUp := r.caughtUp
		moved := r.applied != before
		r.mu.Unlock()
		if moved {
			continue
		}
		timer := time.NewTimer(conflictWait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-caughtUp:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func initialState(s *atraxv1.Server) string {
	if s.GetDisabled() {
		return StateStopped
	}
	return StateRunning
}

// reorder puts config servers first in file order, then API servers by name:
// the order conflict strategies such as first-wins follow.
func (r *Registry) reorder(cfg []config.Server) {
	r.order = r.order[:0]
	seen := map[string]bool{}
	for _, c := range cfg {
		if _, ok := r.servers[c.Name]; ok {
			r.order = append(r.order, c.Name)
			seen[c.Name] = true
		}
	}
	var rest []string
	for name := range r.servers {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	r.order = append(r.order, rest...)
}

// List returns every server: config servers in file order, then API servers
// by name. The messages are copies.
func (r *Registry) List() ([]*atraxv1.Server, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked(), r.version
}

func (r *Registry) listLocked() []*atraxv1.Server {
	out := make([]*atraxv1.Server, 0, len(r.order))
	for _, name := range r.order {
		out = append(out, proto.Clone(r.servers[name]).(*atraxv1.Server))
	}
	return out
}

// Get returns a copy of one server.
func (r *Registry) Get(name string) (*atraxv1.Server, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.servers[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return proto.Clone(s).(*atraxv1.Server), nil
}

// Create adds an API server.
func (r *Registry) Create(ctx context.Context, s *atraxv1.Server) (*atraxv1.Server, error) {
	s = definitionOf(s)
	if err := config.ValidName(s.GetName()); err != nil {
		return nil, &FieldError{Path: "name", Msg: err.Error()}
	}
	if err := r.check(s); err != nil {
		return nil, err
	}
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	return r.retry(ctx, func() (*atraxv1.Server, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.servers[s.GetName()]; ok {
			return nil, fmt.Errorf("%w: %q", ErrExists, s.GetName())
		}
		s := proto.CloneOf(s)
		now := timestamppb.New(r.now())
		s.Source = SourceAPI
		s.State = initialState(s)
		s.CreateTime, s.UpdateTime = now, now
		if err := r.commit(ctx, EventCreated, s); err != nil {
			return nil, err
		}
		return proto.Clone(s).(*atraxv1.Server), nil
	})
}

// Update replaces an API server's definition (empty mask) or merges the
// fields that mask names (proto field names; a path into a nested message
// such as "tools.allow" sets that field alone, a map is replaced whole).
func (r *Registry) Update(ctx context.Context, s *atraxv1.Server, mask []string) (*atraxv1.Server, error) {
	name := s.GetName()
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	return r.retry(ctx, func() (*atraxv1.Server, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.update(ctx, name, s, mask)
	})
}

// update is Update with r.mu held.
func (r *Registry) update(ctx context.Context, name string, s *atraxv1.Server, mask []string) (*atraxv1.Server, error) {
	old, ok := r.servers[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if old.GetSource() == SourceConfig {
		return nil, fmt.Errorf("%w: change %q in %s instead", ErrReadOnly, name, "the config file")
	}
	var next *atraxv1.Server
	if len(mask) == 0 {
		next = definitionOf(s)
	} else {
		next = definitionOf(old)
		if err := merge(next, s, mask); err != nil {
			return nil, err
		}
	}
	next.Name = name
	if err := r.check(next); err != nil {
		return nil, err
	}
	next.Source = old.GetSource()
	next.State = old.GetState()
	if next.GetDisabled() != old.GetDisabled() {
		next.State = initialState(next)
	}
	next.CreateTime, next.RestartTime = old.GetCreateTime(), old.GetRestartTime()
	next.ApprovedTools = old.GetApprovedTools()
	next.UpdateTime = timestamppb.New(r.now())
	if err := r.commit(ctx, EventUpdated, next); err != nil {
		return nil, err
	}
	return proto.Clone(next).(*atraxv1.Server), nil
}

// Delete removes an API server.
func (r *Registry) Delete(ctx context.Context, name string) error {
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	_, err := r.retry(ctx, func() (*atraxv1.Server, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		old, ok := r.servers[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		if old.GetSource() == SourceConfig {
			return nil, fmt.Errorf("%w: remove %q from the config file instead", ErrReadOnly, name)
		}
		rev, err := r.put(ctx, nil, []string{name})
		if err != nil {
			return nil, fmt.Errorf("delete server %q: %w", name, err)
		}
		r.removeLocked(old, rev)
		return nil, nil
	})
	return err
}

// removeLocked drops a server and tells watchers. r.mu is held.
func (r *Registry) removeLocked(old *atraxv1.Server, rev int64) {
	name := old.GetName()
	delete(r.servers, name)
	r.order = slices.DeleteFunc(r.order, func(n string) bool { return n == name })
	r.version = max(r.version, rev)
	r.publishLocked(Change{Event: EventDeleted, Server: old, Version: r.version})
}

// SetState records whether a server should run. Setting the state it
// already has changes nothing.
func (r *Registry) SetState(ctx context.Context, name string, running bool) (*atraxv1.Server, error) {
	want := StateStopped
	if running {
		want = StateRunning
	}
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	return r.retry(ctx, func() (*atraxv1.Server, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		old, ok := r.servers[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		if old.GetState() == want {
			return proto.Clone(old).(*atraxv1.Server), nil
		}
		next := proto.Clone(old).(*atraxv1.Server)
		next.State = want
		next.UpdateTime = timestamppb.New(r.now())
		if err := r.commit(ctx, EventUpdated, next); err != nil {
			return nil, err
		}
		return proto.Clone(next).(*atraxv1.Server), nil
	})
}

// Restart asks every edge to restart the server; a stopped server starts.
func (r *Registry) Restart(ctx context.Context, name string) (*atraxv1.Server, error) {
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	return r.retry(ctx, func() (*atraxv1.Server, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		old, ok := r.servers[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		next := proto.Clone(old).(*atraxv1.Server)
		now := timestamppb.New(r.now())
		next.State = StateRunning
		next.RestartTime, next.UpdateTime = now, now
		if err := r.commit(ctx, EventUpdated, next); err != nil {
			return nil, err
		}
		return proto.Clone(next).(*atraxv1.Server), nil
	})
}

// ApproveTools records approved tool definitions of a pinned server:
// approved maps the server's own tool names to their digests, and is
// merged into what was approved before. approve computes it from the
// server as it is, under the registry's lock (nil, nil: nothing to do).
func (r *Registry) ApproveTools(ctx context.Context, name string, approve func(*atraxv1.Server) (map[string]string, error)) (*atraxv1.Server, error) {
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	return r.retry(ctx, func() (*atraxv1.Server, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.approveTools(ctx, name, approve)
	})
}

// approveTools is ApproveTools with r.mu held.
func (r *Registry) approveTools(ctx context.Context, name string, approve func(*atraxv1.Server) (map[string]string, error)) (*atraxv1.Server, error) {
	old, ok := r.servers[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if !old.GetPinTools() {
		return nil, fmt.Errorf("%w: %q has pinTools false, so every definition is served", ErrNotPinned, name)
	}
	approved, err := approve(proto.Clone(old).(*atraxv1.Server))
	if err != nil || len(approved) == 0 {
		return proto.Clone(old).(*atraxv1.Server), err
	}
	next := proto.Clone(old).(*atraxv1.Server)
	if next.ApprovedTools == nil {
		next.ApprovedTools = map[string]string{}
	}
	for tool, digest := range approved {
		next.ApprovedTools[tool] = digest
	}
	next.UpdateTime = timestamppb.New(r.now())
	if err := r.commit(ctx, EventUpdated, next); err != nil {
		return nil, err
	}
	return proto.Clone(next).(*atraxv1.Server), nil
}

// commit stores s and tells watchers. r.mu is held.
func (r *Registry) commit(ctx context.Context, event string, s *atraxv1.Server) error {
	rev, err := r.put(ctx, []*atraxv1.Server{s}, nil)
	if err != nil {
		return fmt.Errorf("store server %q: %w", s.GetName(), err)
	}
	r.setLocked(event, s, rev)
	return nil
}

// setLocked puts s in the registry and tells watchers. r.mu is held.
func (r *Registry) setLocked(event string, s *atraxv1.Server, rev int64) {
	if _, ok := r.servers[s.GetName()]; !ok {
		// Only API servers are added after Open: keep them by name after
		// the config servers, the order reorder gives on the next start.
		i := slices.IndexFunc(r.order, func(n string) bool {
			return r.servers[n].GetSource() != SourceConfig && n > s.GetName()
		})
		if i < 0 {
			i = len(r.order)
		}
		r.order = slices.Insert(r.order, i, s.GetName())
	}
	r.servers[s.GetName()] = s
	r.version = max(r.version, rev)
	r.publishLocked(Change{Event: event, Server: s, Version: r.version})
}

// Apply brings the registry up to date with one write to a shared store,
// as store.Watcher reports it, and tells watchers what changed. The control
// plane calls it with every event of the watch, in order; writes this
// registry made itself are already here and change nothing. A Reset event
// replaces the registry whole.
func (r *Registry) Apply(ev store.Event) {
	// onChange runs after the lock is released: it reads the registry.
	defer r.notify()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ev.Reset && ev.Revision <= r.applied {
		return
	}
	names := len(r.servers)
	if ev.Reset {
		keep := make(map[string]bool, len(ev.Servers))
		for _, s := range ev.Servers {
			keep[s.GetName()] = true
		}
		for _, name := range slices.Clone(r.order) {
			if !keep[name] {
				r.removeLocked(r.servers[name], ev.Revision)
			}
		}
	}
	for _, s := range ev.Servers {
		old, ok := r.servers[s.GetName()]
		switch {
		case !ok:
			r.setLocked(EventCreated, s, ev.Revision)
		case !proto.Equal(old, s):
			r.setLocked(EventUpdated, s, ev.Revision)
		}
	}
	for _, name := range ev.Deleted {
		if old, ok := r.servers[name]; ok {
			r.removeLocked(old, ev.Revision)
		}
	}
	if len(r.servers) != names || ev.Reset {
		// Another replica's config file may hold servers this one's does
		// not: keep the order of the file, then the rest by name.
		r.reorder(r.cfg)
	}
	// After a Reset the registry reflects exactly its revision, even when
	// a write of this registry's came after it: the watch brings that
	// write again.
	r.applied = ev.Revision
	close(r.caughtUp)
	r.caughtUp = make(chan struct{})
}

// Applied returns the revision up to which the registry reflects every
// write of the servers to a shared store.
func (r *Registry) Applied() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

func (r *Registry) publishLocked(c Change) {
	for w := range r.watchers {
		if w.lagged {
			continue
		}
		select {
		case w.ch <- Change{Event: c.Event, Server: proto.Clone(c.Server).(*atraxv1.Server), Version: c.Version}:
		default:
			// A watcher that does not keep up is cut off rather than
			// allowed to hold the registry or lose changes silently.
			w.lagged = true
			close(w.ch)
		}
	}
	r.dirty = true
}

// notify calls onChange if a change was published. It must be called
// without r.mu held.
func (r *Registry) notify() {
	r.mu.Lock()
	dirty := r.dirty
	r.dirty = false
	r.mu.Unlock()
	if dirty && r.onChange != nil {
		r.onChange()
	}
}

// Watch returns the registry as it is now and a channel of every later
// change, in order. The channel is closed when ctx ends or when the watcher
// falls too far behind (Lagged then reports true); stop releases it.
func (r *Registry) Watch() (servers []*atraxv1.Server, version int64, changes <-chan Change, lagged func() bool, stop func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &watcher{ch: make(chan Change, 256)}
	r.watchers[w] = struct{}{}
	lagged = func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return w.lagged
	}
	stop = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.watchers[w]; ok {
			delete(r.watchers, w)
			if !w.lagged {
				close(w.ch)
			}
		}
	}
	return r.listLocked(), r.version, w.ch, lagged, stop
}

// check validates a definition and the command policy. It folds "type"
// (the VS Code spelling) into transport_type and stores transport aliases
// in their canonical form, as the config file does.
func (r *Registry) check(s *atraxv1.Server) error {
	if t := s.GetType(); t != "" {
		ct, ok := config.CanonicalTransport(t)
		if !ok {
			return &FieldError{Path: "type", Msg: fmt.Sprintf("unknown value %q (want stdio, sse or http)", t)}
		}
		if s.GetTransportType() != "" {
			if cur, ok := config.CanonicalTransport(s.GetTransportType()); ok && cur != ct {
				return &FieldError{Path: "type", Msg: `conflicts with "transportType": set one of them`}
			}
		} else {
			s.TransportType = t
		}
		s.Type = ""
	}
	c := serverdef.ToConfig(s)
	if err := c.Validate("", nil); err != nil {
		return invalid(err)
	}
	if ct, ok := config.CanonicalTransport(s.GetTransportType()); ok {
		s.TransportType = ct
	}
	if c.Transport() == config.TransportStdio && !r.allow.Allowed(c.Command) {
		if !r.allow.All && len(r.allow.Commands) == 0 {
			return fmt.Errorf("%w: stdio servers run a command on every edge; set controlPlane.allowCommands in the config to allow them through the API", ErrCommandNotAllowed)
		}
		return fmt.Errorf("%w: %q is not in controlPlane.allowCommands", ErrCommandNotAllowed, c.Command)
	}
	return nil
}

// FieldError is a problem with one field of a server definition.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// invalid turns the config package's validation errors into FieldErrors.
func invalid(err error) error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *config.FieldError
		if errors.As(err, &fe) {
			out = append(out, &FieldError{Path: fe.Path, Msg: fe.Msg})
			return
		}
		out = append(out, &FieldError{Path: "server", Msg: err.Error()})
	}
	walk(err)
	return errors.Join(out...)
}

// FieldErrors returns the FieldErrors in err.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

// readOnly are the fields clients cannot set.
var readOnly = map[string]bool{
	"source": true, "state": true, "create_time": true, "update_time": true, "restart_time": true,
	"approved_tools": true,
}

// definitionOf returns a copy of s without its read-only fields.
func definitionOf(s *atraxv1.Server) *atraxv1.Server {
	d := proto.Clone(s).(*atraxv1.Server)
	d.Source, d.State = "", ""
	d.CreateTime, d.UpdateTime, d.RestartTime = nil, nil, nil
	d.ApprovedTools = nil
	return d
}

func sameDefinition(a, b *atraxv1.Server) bool {
	return proto.Equal(definitionOf(a), definitionOf(b))
}

// merge copies the fields named by mask from src into dst. src is not
// used afterwards.
func merge(dst, src *atraxv1.Server, mask []string) error {
	var errs []error
	for _, path := range mask {
		if err := mergePath(dst.ProtoReflect(), src.ProtoReflect(), strings.Split(path, "."), path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func mergePath(dst, src protoreflect.Message, parts []string, full string) error {
	fd := dst.Descriptor().Fields().ByName(protoreflect.Name(parts[0]))
	if fd == nil {
		return &FieldError{Path: "update_mask", Msg: fmt.Sprintf("unknown field %q", full)}
	}
	if dst.Descriptor().FullName() == (&atraxv1.Server{}).ProtoReflect().Descriptor().FullName() {
		if readOnly[parts[0]] {
			return &FieldError{Path: "update_mask", Msg: fmt.Sprintf("field %q is read-only", full)}
		}
		if parts[0] == "name" {
			// The name in the body must be the name in the path.
			if src.Get(fd).String() != "" && src.Get(fd).String() != dst.Get(fd).String() {
				return &FieldError{Path: "name", Msg: "a server cannot be renamed; create a new one"}
			}
			return nil
		}
	}
	if len(parts) > 1 {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			// Paths into maps or lists replace the whole field.
			return mergePath(dst, src, parts[:1], full)
		}
		return mergePath(dst.Mutable(fd).Message(), src.Get(fd).Message(), parts[1:], full)
	}
	if src.Has(fd) {
		// src is the caller's request, discarded after the update, so its
		// values may be shared rather than copied.
		dst.Set(fd, src.Get(fd))
	} else {
		dst.Clear(fd)
	}
	return nil
}
