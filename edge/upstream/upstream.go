// Package upstream runs the edge's connections to MCP servers: one
// supervised connection per server (a stdio child, a legacy SSE server or a
// streamable HTTP server), restarted with capped exponential backoff when it
// dies. It performs the initialize handshake itself, keeps the server's
// lists cached (refreshed on list_changed), and remaps request ids and
// progress tokens so that many clients can share one connection.
//
// The package knows no names, prefixes, sessions or tokens: a caller is an
// opaque tag with callbacks, and routing belongs to the router.
package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// States of an upstream.
const (
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateFailed     = "failed"
	StateStopped    = "stopped"
)

// Message types the pool's callbacks use.
type (
	Notification = jsonrpc.Request
	Request      = jsonrpc.Request
	Response     = jsonrpc.Response
)

// Errors a call can end with besides the server's own error response.
var (
	ErrUnavailable    = errors.New("server is not running")
	ErrConnectionLost = errors.New("connection to the server was lost before it answered")
	ErrTimeout        = errors.New("server did not answer within its timeout")
)

// Backoff between restarts.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
	// healthyAfter is how long a connection must live for the backoff to
	// start again from minBackoff.
	healthyAfter = time.Minute
	// initTimeout bounds the handshake and the first listing.
	initTimeout = 60 * time.Second
	// maxListPages bounds the pages fetched for one list.
	maxListPages = 1000
)

// DefaultMaxMessage is the default cap on one message from an upstream.
const DefaultMaxMessage = 16 << 20

// Spec is everything needed to connect to one server, with every ${VAR}
// already expanded.
type Spec struct {
	Name string
	// Transport is "stdio", "sse" or "http"; "" with a URL means streamable
	// HTTP with a fallback to legacy SSE, as clients do.
	Transport string
	Command   string
	Args      []string
	Env       map[string]string
	Cwd       string
	URL       string
	Headers   map[string]string
	// Timeout bounds one call; progress notifications reset it.
	Timeout time.Duration
	// MaxMessage caps one message from the server (DefaultMaxMessage when 0).
	MaxMessage int
}

// Options configure an Upstream.
type Options struct {
	Spec Spec
	// ClientInfo is the implementation the edge declares in initialize.
	ClientInfo json.RawMessage
	// OnChange is called when the state or the lists change.
	OnChange func()
	// OnNotify receives notifications that belong to no call
	// (resources/updated, messages while several clients are calling, ...).
	OnNotify func(n *jsonrpc.Request)
	// OnRequest answers server-to-client requests that cannot be attributed
	// to exactly one caller.
	OnRequest func(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response
	Logger    *slog.Logger
	// HTTPClient is used for remote servers; a default one when nil.
	HTTPClient HTTPDoer
}

// Lists is an upstream's catalogue, as raw JSON objects.
type Lists struct {
	Tools             []json.RawMessage
	Prompts           []json.RawMessage
	Resources         []json.RawMessage
	ResourceTemplates []json.RawMessage
	Init              protocol.InitializeResult
	// InitRaw is the whole initialize result.
	InitRaw json.RawMessage
}

// Status is an upstream's state for reports.
type Status struct {
	Name            string
	State           string
	Transport       string
	ProtocolVersion string
	LastError       string
	Restarts        int
	Since           time.Time
	Tools           int
	Prompts         int
	Resources       int
}

// CallOptions say who is calling and where what belongs to the call goes.
type CallOptions struct {
	// Tag identifies the caller; server-to-client requests are attributed
	// to a caller when every call in flight has the same tag.
	Tag any
	// Notify receives notifications that belong to this call: progress
	// (with the caller's own token restored) and attributed messages.
	Notify func(n *jsonrpc.Request)
	// Request answers a server-to-client request attributed to this call.
	Request func(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response
	// ClientCaps are the capabilities of the client the call is for; a
	// stateless server gets them in the request's _meta.
	ClientCaps json.RawMessage
	// LogLevel is the level a session client set with logging/setLevel; a
	// stateless server gets it in the request's _meta.
	LogLevel string
}

// responder is a connection that can hand a call's response straight to
// the session from the goroutine that read it, instead of through Read.
type responder interface {
	Respond(func(id int64, r *jsonrpc.Response) bool)
}

// conn is a JSON-RPC connection to one server.
type conn interface {
	Read(ctx context.Context) (jsonrpc.Message, error)
	Write(ctx context.Context, msg jsonrpc.Message) error
	Close() error
}

// Upstream is one supervised server connection.
type Upstream struct {
	opts Options
	spec Spec
	log  *slog.Logger

	lists atomic.Pointer[Lists]
	// http is the client of a remote server when Options.HTTPClient is
	// nil: its own pool of keep-alive connections.
	http *http.Client

	mu        sync.Mutex
	state     string
	lastErr   string
	restarts  int
	since     time.Time
	protocol  string
	transport string
	cur       *session // the live connection, nil while down

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	// ready is closed the first time the upstream runs.
	ready     chan struct{}
	readyOnce sync.Once
}

// New returns an upstream; Start runs it.
func New(opts Options) *Upstream {
	u := &Upstream{opts: opts, spec: opts.Spec, state: StateStarting, since: time.Now(), done: make(chan struct{}), ready: make(chan struct{})}
	u.log = opts.Logger
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.log = u.log.With("server", opts.Spec.Name)
	if u.spec.Timeout <= 0 {
		u.spec.Timeout = 5 * time.Minute
	}
	if u.spec.MaxMessage == 0 {
		u.spec.MaxMessage = DefaultMaxMessage
	}
	u.lists.Store(&Lists{})
	if opts.HTTPClient == nil && opts.Spec.URL != "" {
		u.http = newHTTPClient()
	}
	return u
}

// Name returns the server's name.
func (u *Upstream) Name() string { return u.spec.Name }

// Lists returns the cached catalogue; empty while the server is down.
func (u *Upstream) Lists() *Lists { return u.lists.Load() }

// Status returns the current state.
func (u *Upstream) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.lists.Load()
	return Status{
		Name: u.spec.Name, State: u.state, Transport: u.transport, ProtocolVersion: u.protocol,
		LastError: u.lastErr, Restarts: u.restarts, Since: u.since,
		Tools: len(l.Tools), Prompts: len(l.Prompts), Resources: len(l.Resources),
	}
}

// Start runs the supervision loop until Stop.
func (u *Upstream) Start(ctx context.Context) {
	ctx, u.cancel = context.WithCancel(ctx)
	go func() {
		defer close(u.done)
		u.run(ctx)
	}()
}

// Stop ends the connection and waits for it to be closed (a stdio child
// and its process group have exited).
func (u *Upstream) Stop() {
	u.stopOnce.Do(func() {
		if u.cancel != nil {
			u.cancel()
			<-u.done
		}
		if u.http != nil {
			u.http.CloseIdleConnections()
		}
		u.setState(StateStopped, nil)
	})
}

// setState records the upstream's state and, with err, why it went down.
// OnChange hears of every new state and of every failure: a server that
// crash-loops stays "failed" while its restart count and last error move
// on, and /status must show them.
func (u *Upstream) setState(state string, err error) {
	u.mu.Lock()
	changed := u.state != state
	u.state = state
	if err != nil {
		u.lastErr = err.Error()
	}
	if changed {
		u.since = time.Now()
	}
	u.mu.Unlock()
	if (changed || err != nil) && u.opts.OnChange != nil {
		u.opts.OnChange()
	}
}

func (u *Upstream) run(ctx context.Context) {
	backoff := minBackoff
	for {
		start := time.Now()
		err := u.serve(ctx)
		u.lists.Store(&Lists{})
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > healthyAfter {
			backoff = minBackoff
		}
		u.mu.Lock()
		u.restarts++
		wasRunning := u.state == StateRunning
		u.mu.Unlock()
		state := StateFailed
		if wasRunning {
			state = StateRestarting
		}
		u.log.Warn("upstream down; restarting after backoff", "err", err, "retry_in", backoff.String())
		u.setState(state, err)
		// Jitter keeps many crashed servers from restarting in step.
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// serve connects, initializes, lists, and then reads until the connection
// fails or ctx ends.
func (u *Upstream) serve(ctx context.Context) error {
	// Everything of this connection (its read loop, its refresher) ends
	// with it, not with the upstream.
	ctx, cancelConn := context.WithCancel(ctx)
	defer cancelConn()
	c, transport, err := u.connect(ctx)
	if err != nil {
		return err
	}
	s := newSession(u, c)
	if r, ok := c.(responder); ok {
		r.Respond(s.deliverID)
	}
	u.mu.Lock()
	u.transport = transport
	u.mu.Unlock()
	readErr := make(chan error, 1)
	go func() {
		readErr <- s.readLoop(ctx)
		// Fail the calls in flight at once, the handshake's too: a server
		// that dies while it initializes must not hold the handshake (and
		// the restart) for initTimeout.
		s.close(ErrConnectionLost)
	}()
	defer func() {
		u.mu.Lock()
		u.cur = nil
		u.mu.Unlock()
		s.close(ErrConnectionLost)
		c.Close()
	}()

	ictx, cancel := context.WithTimeout(ctx, initTimeout)
	lists, err := s.initialize(ictx)
	cancel()
	if err != nil {
		select {
		case rerr := <-readErr:
			err = rerr // how the connection ended says more
		default:
		}
		// A child that died during the handshake says more by how it
		// exited than the read that ended.
		if ex, ok := c.(exiter); ok {
			select {
			case <-ex.Exited():
				if xerr := ex.ExitErr(); xerr != nil {
					return fmt.Errorf("initialize: %w", xerr)
				}
			case <-time.After(time.Second):
			}
		}
		return fmt.Errorf("initialize: %w", err)
	}
	u.lists.Store(lists)
	close(s.listed)
	u.mu.Lock()
	u.cur = s
	u.protocol = lists.Init.ProtocolVersion
	u.lastErr = ""
	u.mu.Unlock()
	u.log.Info("upstream running", "protocol", lists.Init.ProtocolVersion, "tools", len(lists.Tools),
		"prompts", len(lists.Prompts), "resources", len(lists.Resources), "transport", transport)
	u.setState(StateRunning, nil)
	u.readyOnce.Do(func() { close(u.ready) })
	if s.stateless != "" {
		go s.listen(ctx)
	}
	if u.opts.OnChange != nil {
		u.opts.OnChange() // the lists are new even when the state is not
	}

	select {
	case err := <-readErr:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready waits until the upstream runs for the first time, or ctx ends. It
// returns the last error of the attempts so far when ctx ends first.
func (u *Upstream) Ready(ctx context.Context) error {
	select {
	case <-u.ready:
		return nil
	case <-u.done:
		return fmt.Errorf("%w (stopped)", ErrUnavailable)
	case <-ctx.Done():
		st := u.Status()
		if st.LastError != "" {
			return fmt.Errorf("%w: %s", ErrUnavailable, st.LastError)
		}
		return fmt.Errorf("%w (%s)", ErrUnavailable, st.State)
	}
}

// Call sends a request and waits for its response.
func (u *Upstream) Call(ctx context.Context, method string, params json.RawMessage, o CallOptions) (*jsonrpc.Response, error) {
	u.mu.Lock()
	s := u.cur
	u.mu.Unlock()
	if s == nil {
		return nil, u.unavailable()
	}
	return s.call(ctx, method, params, o)
}

// Notify sends a notification.
func (u *Upstream) Notify(ctx context.Context, method string, params json.RawMessage) error {
	u.mu.Lock()
	s := u.cur
	u.mu.Unlock()
	if s == nil {
		return u.unavailable()
	}
	return s.conn.Write(ctx, &jsonrpc.Request{Method: method, Params: params})
}

func idString(id jsonrpc.ID) string {
	switch v := id.Raw().(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return v
	}
	return fmt.Sprint(id.Raw())
}

// unavailable says why there is no connection to call on. Between a
// connection's end and the state change it is "closing".
func (u *Upstream) unavailable() error {
	st := u.Status().State
	if st == StateRunning {
		st = "its connection is closing"
	}
	return fmt.Errorf("%w (%s)", ErrUnavailable, st)
}

// exiter is a connection to a child process.
type exiter interface {
	Exited() <-chan struct{}
	ExitErr() error
}
