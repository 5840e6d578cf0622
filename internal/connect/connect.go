// Package connect is `atrax connect`: a stdio MCP server that relays every
// message to a remote MCP endpoint (an Atrax edge, or any MCP server) over
// streamable HTTP or the legacy HTTP+SSE transport, so that clients which
// only launch stdio servers (Claude Desktop and the like) can use a shared
// gateway.
//
//	err := connect.Run(ctx, connect.Options{
//		URL:   "http://127.0.0.1:4000/mcp",
//		Token: os.Getenv("ATRAX_TOKEN"),
//	})
//
// The relay is a transparent JSON-RPC pipe: messages are passed as go-sdk's
// raw jsonrpc types, params and results untouched, unknown fields
// included. Client requests read from stdin go to the remote; responses,
// notifications and server-to-client requests from the remote go to
// stdout. Nothing but protocol is written to stdout; diagnostics go to the
// logger.
//
// The relay remembers the client's initialize request. When the remote
// session ends (HTTP 404 on the session, the remote restarted, the
// connection was lost) it connects again with backoff and initializes a new
// session with the same params, swallowing the remote's answer, then sends
// notifications/initialized and replays logging/setLevel and
// resources/subscribe, so the client keeps its session. Requests that were
// in flight on the lost session are answered with a JSON-RPC error
// ([CodeUnavailable]); requests that surely never reached the remote are
// sent again on the new session; requests that arrive while the relay
// reconnects wait for it, at most [Options.ReconnectWait].
package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// CodeUnavailable is the JSON-RPC error code of the answers the relay
// gives itself: the remote could not be reached, or the session a request
// was sent on was lost before the remote answered.
const CodeUnavailable = -32000

// Defaults of Options.
const (
	DefaultReconnectWait = 30 * time.Second
	DefaultMinBackoff    = 200 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
	DefaultDrainTimeout  = 10 * time.Second
)

// Options configure Run. The zero value of every field but URL works.
type Options struct {
	// URL is the remote MCP endpoint, such as http://127.0.0.1:4000/mcp
	// (streamable HTTP) or http://127.0.0.1:4000/sse (HTTP+SSE).
	URL string
	// Token is sent as Authorization: Bearer TOKEN on every request; none
	// when empty.
	Token string
	// Transport is TransportAuto (the default: streamable HTTP, then SSE if
	// the remote answers the first initialize with a 4xx other than 401 and
	// 403, as the TypeScript SDK's clients do), TransportHTTP or
	// TransportSSE.
	Transport string
	// Header holds more HTTP headers for every request to the remote.
	Header http.Header
	// Stdin and Stdout carry the client's messages, one per line; nil means
	// os.Stdin and os.Stdout.
	Stdin  io.Reader
	Stdout io.Writer
	// Logger receives diagnostics (never tokens, never URL queries); nil
	// discards them.
	Logger *slog.Logger
	// HTTPTransport sends the requests; nil means http.DefaultTransport.
	HTTPTransport http.RoundTripper
	// UserAgent is sent to the remote; empty means "atrax-connect".
	UserAgent string
	// ReconnectWait bounds how long a request waits for the remote while the
	// relay connects before it is answered with an error;
	// DefaultReconnectWait when 0.
	ReconnectWait time.Duration
	// MinBackoff and MaxBackoff bound the delay between attempts to connect;
	// DefaultMinBackoff and DefaultMaxBackoff when 0.
	MinBackoff, MaxBackoff time.Duration
	// DrainTimeout bounds the wait for answers to requests in flight once
	// stdin ends; DefaultDrainTimeout when 0.
	DrainTimeout time.Duration
}

// ErrOptions is matched (errors.Is) by the errors Run returns for invalid
// Options.
var ErrOptions = errors.New("invalid options")

type optionsError struct{ msg string }

func (e *optionsError) Error() string        { return e.msg }
func (e *optionsError) Is(target error) bool { return target == ErrOptions }

func (o Options) withDefaults() (Options, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, &optionsError{fmt.Sprintf("URL %q: want an absolute http:// or https:// URL such as http://127.0.0.1:4000/mcp", redact(o.URL))}
	}
	switch o.Transport {
	case "":
		o.Transport = TransportAuto
	case TransportAuto, TransportHTTP, TransportSSE:
	default:
		return o, &optionsError{fmt.Sprintf("transport %q: want auto, http or sse", o.Transport)}
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPTransport == nil {
		o.HTTPTransport = http.DefaultTransport
	}
	if o.UserAgent == "" {
		o.UserAgent = "atrax-connect"
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	return o, nil
}

// Run relays between stdin/stdout and the remote until stdin ends (after
// answers to the requests in flight have come, or DrainTimeout), stdout
// fails or ctx ends. It returns nil at the end of stdin and when ctx ends;
// an error for bad options, unreadable stdin or unwritable stdout.
func Run(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	b := &bridge{
		opts:        opts,
		log:         opts.Logger,
		out:         newStdoutWriter(opts.Stdout),
		base:        opts.HTTPTransport,
		userAgent:   opts.UserAgent,
		wake:        make(chan struct{}, 1),
		changed:     make(chan struct{}),
		subs:        map[string]json.RawMessage{},
		pending:     map[jsonrpc.ID]*pendingCall{},
		serverCalls: map[jsonrpc.ID]*link{},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	supervised := make(chan struct{})
	go func() {
		defer close(supervised)
		b.supervise(ctx)
	}()
	b.log.Info("relaying stdio to the remote", "url", redact(opts.URL), "transport", opts.Transport)
	readErr := b.readClient(ctx)
	if errors.Is(readErr, io.EOF) {
		b.drain(ctx)
	}
	cancel()
	<-supervised
	if err := b.out.failure(); err != nil {
		return fmt.Errorf("write to stdout (has the client gone?): %w", err)
	}
	if readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, context.Canceled) {
		return readErr
	}
	return nil
}

// bridge is the state of one Run.
type bridge struct {
	opts      Options
	log       *slog.Logger
	out       *stdoutWriter
	base      http.RoundTripper
	userAgent string
	wake      chan struct{} // wakes the supervisor; capacity 1

	// kind is the transport that worked, once one has; only the supervisor
	// touches it.
	kind string

	mu      sync.Mutex
	link    *link         // the published link; nil while connecting
	changed chan struct{} // closed and replaced when link, lastErr or inflight change
	lastErr error         // why the last attempt to connect failed
	gen     int
	// started is set by the first client message; stateless when that
	// message was not initialize (the 2026-07-28 revision has none).
	started, stateless bool
	initReq            *jsonrpc.Request // the client's initialize
	initReply          *jsonrpc.ID      // its id, while the client waits for the answer
	initSince          time.Time
	initialized        *jsonrpc.Request           // the client's notifications/initialized
	firstVersion       string                     // protocol version of the first session
	logLevel           json.RawMessage            // params of the last logging/setLevel
	subs               map[string]json.RawMessage // resources/subscribe params by uri
	pending            map[jsonrpc.ID]*pendingCall
	serverCalls        map[jsonrpc.ID]*link // server-to-client calls awaiting the client
	inflight           int                  // client calls not yet answered
}

// pendingCall is a client call handed to a link.
type pendingCall struct {
	link *link
	sent bool // Write returned: the remote has it
}

// notify wakes everyone waiting for a change; b.mu must be held.
func (b *bridge) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *bridge) wakeSupervisor() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// readClient reads stdin until it ends, fails or ctx ends.
func (b *bridge) readClient(ctx context.Context) error {
	type batch struct {
		msgs []jsonrpc.Message
		err  error
	}
	in := make(chan batch)
	r := newStdinReader(b.opts.Stdin)
	go func() {
		for {
			msgs, err := r.next()
			select {
			case in <- batch{msgs, err}:
			case <-ctx.Done():
				return
			}
			var pe *errParse
			if err != nil && !errors.As(err, &pe) {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.out.gone:
			return b.out.failure()
		case bt := <-in:
			var pe *errParse
			switch {
			case errors.As(bt.err, &pe):
				b.log.Warn("the client sent a line that is not JSON-RPC", "err", pe)
				b.out.writeRaw(parseErrorLine(pe))
				continue
			case bt.err != nil:
				return bt.err
			}
			for _, m := range bt.msgs {
				b.fromClient(ctx, m)
			}
		}
	}
}

// fromClient routes one message from the client.
func (b *bridge) fromClient(ctx context.Context, msg jsonrpc.Message) {
	switch m := msg.(type) {
	case *jsonrpc.Request:
		if m.IsCall() {
			b.begin()
			if m.Method == "initialize" {
				b.clientInitialize(m)
				return
			}
			b.start(false)
			b.remember(m)
			go b.forwardCall(ctx, m)
			return
		}
		if m.Method == "notifications/initialized" {
			b.mu.Lock()
			b.initialized = m
			b.mu.Unlock()
		}
		b.start(false)
		b.forwardOneWay(m, nil)
	case *jsonrpc.Response:
		b.mu.Lock()
		l, ok := b.serverCalls[m.ID]
		delete(b.serverCalls, m.ID)
		b.mu.Unlock()
		if !ok {
			b.log.Debug("dropped the client's answer to a request of a lost session", "id", m.ID.Raw())
			return
		}
		b.forwardOneWay(m, l)
	}
}

// start marks the bridge started by the first client message.
func (b *bridge) start(initialize bool) {
	b.mu.Lock()
	first := !b.started
	if first {
		b.started = true
		b.stateless = !initialize
	}
	b.mu.Unlock()
	if first {
		b.wakeSupervisor()
	}
}

// clientInitialize takes the client's initialize: the next link is opened
// with it, and the remote's answer goes to the client.
func (b *bridge) clientInitialize(m *jsonrpc.Request) {
	b.start(true)
	b.mu.Lock()
	if b.initReply != nil {
		// An earlier initialize is still unanswered: it will not be now.
		old := *b.initReply
		b.mu.Unlock()
		b.answer(errorResponse(old, CodeUnavailable, "atrax connect: superseded by a later initialize"))
		b.mu.Lock()
	}
	id := m.ID
	b.initReq, b.initReply, b.initSince = m, &id, time.Now()
	b.initialized = nil
	l := b.link
	b.mu.Unlock()
	if l != nil {
		l.lose(errReinit)
	}
	b.wakeSupervisor()
}

var errReinit = errors.New("the client initialized again")

// remember keeps what a new session must be told again.
func (b *bridge) remember(m *jsonrpc.Request) {
	var p struct {
		URI string `json:"uri"`
	}
	switch m.Method {
	case "logging/setLevel":
		b.mu.Lock()
		b.logLevel = m.Params
		b.mu.Unlock()
	case "resources/subscribe", "resources/unsubscribe":
		if json.Unmarshal(m.Params, &p) != nil || p.URI == "" {
			return
		}
		b.mu.Lock()
		if m.Method == "resources/subscribe" {
			b.subs[p.URI] = m.Params
		} else {
			delete(b.subs, p.URI)
		}
		b.mu.Unlock()
	}
}

// begin counts a client call that awaits its answer.
func (b *bridge) begin() {
	b.mu.Lock()
	b.inflight++
	b.mu.Unlock()
}

// answer writes the answer to a client call counted by begin.
func (b *bridge) answer(resp *jsonrpc.Response) {
	b.out.write(resp)
	b.mu.Lock()
	b.inflight--
	b.notifyLocked()
	b.mu.Unlock()
}

// unavailable answers a client call with the relay's own error.
func (b *bridge) unavailable(id jsonrpc.ID, format string, args ...any) {
	b.answer(errorResponse(id, CodeUnavailable, "atrax connect: "+fmt.Sprintf(format, args...)))
}

// drain waits, at most DrainTimeout, for the answers to calls in flight.
func (b *bridge) drain(ctx context.Context) {
	timer := time.NewTimer(b.opts.DrainTimeout)
	defer timer.Stop()
	for {
		b.mu.Lock()
		n, changed := b.inflight, b.changed
		b.mu.Unlock()
		if n <= 0 {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			b.log.Warn("stdin ended; not waiting any longer for answers", "requests", n)
			return
		case <-ctx.Done():
			return
		case <-b.out.gone:
			return
		}
	}
}

// maxResends is how often a call that surely did not reach the remote is
// sent again on a new session.
const maxResends = 2

// forwardCall sends a client call to the remote and leaves its answer to
// readLink; it answers the call itself when it cannot be sent.
func (b *bridge) forwardCall(ctx context.Context, m *jsonrpc.Request) {
	deadline := time.Now().Add(b.opts.ReconnectWait)
	for resends := 0; ; resends++ {
		l, err := b.waitLink(ctx, deadline)
		if err != nil {
			b.unavailable(m.ID, "%v", err)
			return
		}
		b.mu.Lock()
		p := &pendingCall{link: l}
		b.pending[m.ID] = p
		b.mu.Unlock()
		out := &outcome{}
		werr := l.conn.Write(withOutcome(l.ctx, out), m)
		_, _, undelivered := out.get()

		b.mu.Lock()
		cur, ok := b.pending[m.ID]
		ok = ok && cur == p
		if ok && (werr != nil || l.isLost()) {
			delete(b.pending, m.ID)
		} else if ok {
			p.sent = true
		}
		b.mu.Unlock()
		switch {
		case !ok:
			return // answered already
		case werr == nil && !l.isLost():
			return // the answer will come through readLink
		case werr == nil:
			b.unavailable(m.ID, "the connection to the remote was lost before it answered (%v); retry the request", l.lostErr)
			return
		case undelivered && resends < maxResends:
			b.log.Debug("the request did not reach the remote; sending it again on a new session", "method", m.Method)
			continue
		}
		if we := remoteError(werr); we != nil {
			// The remote refused the message with a JSON-RPC error of its own.
			b.answer(&jsonrpc.Response{ID: m.ID, Error: we})
			return
		}
		if l.isLost() {
			b.unavailable(m.ID, "the session was lost before the remote answered (%v); retry the request", l.lostErr)
			return
		}
		b.unavailable(m.ID, "the remote did not take the request: %v", classify(l, out, werr))
		return
	}
}

// remoteError returns the JSON-RPC error the remote answered a POST with,
// if err carries one. go-sdk also wraps its own marker for "the transport
// rejected the request" (code -32005) into transport failures: that one is
// not the remote's.
func remoteError(err error) *jsonrpc.Error {
	for _, e := range unwrapAll(err) {
		if we, ok := e.(*jsonrpc.Error); ok && !(we.Code == codeRejected && we.Message == "rejected by transport") {
			return we
		}
	}
	return nil
}

// codeRejected is go-sdk's jsonrpc2.ErrRejected code.
const codeRejected = -32005

// unwrapAll lists err and every error it wraps, depth first.
func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, unwrapAll(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
	}
	return out
}

// oneWayTimeout bounds the sending of a notification or response.
const oneWayTimeout = 10 * time.Second

// forwardOneWay sends a notification or a response to the remote, on link
// l when given (the session a server-to-client call came from), otherwise
// on the current link. With no such link it is dropped: the session it
// belongs to is gone, and a new one is told what it needs by the relay.
func (b *bridge) forwardOneWay(m jsonrpc.Message, l *link) {
	b.mu.Lock()
	cur := b.link
	b.mu.Unlock()
	if l == nil {
		l = cur
	}
	if l == nil || l != cur || l.isLost() {
		b.log.Debug("dropped a one-way message while no session is up", "message", describe(m))
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, oneWayTimeout)
	defer cancel()
	if err := l.conn.Write(ctx, m); err != nil {
		b.log.Warn("could not pass a message to the remote", "message", describe(m), "err", err)
	}
}

func describe(m jsonrpc.Message) string {
	switch m := m.(type) {
	case *jsonrpc.Request:
		return m.Method
	case *jsonrpc.Response:
		return fmt.Sprintf("response %v", m.ID.Raw())
	}
	return "?"
}

// waitLink returns the published link, waiting for one until deadline; a
// link that is lost but not yet taken away counts as none. It fails at once
// when the remote refused the token or is no MCP endpoint.
func (b *bridge) waitLink(ctx context.Context, deadline time.Time) (*link, error) {
	for {
		b.mu.Lock()
		l, changed, lastErr := b.link, b.changed, b.lastErr
		want := b.wantLinkLocked()
		b.mu.Unlock()
		if l != nil && !l.isLost() {
			return l, nil
		}
		if !want {
			return nil, errors.New("the session is not initialized: send initialize first")
		}
		if permanent(lastErr) {
			return nil, lastErr
		}
		left := time.Until(deadline)
		if left <= 0 {
			if lastErr != nil {
				return nil, fmt.Errorf("still connecting after %v: %w", b.opts.ReconnectWait, lastErr)
			}
			return nil, fmt.Errorf("still connecting to %s after %v", redact(b.opts.URL), b.opts.ReconnectWait)
		}
		timer := time.NewTimer(left)
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, errors.New("shutting down")
		}
		timer.Stop()
	}
}

// permanent reports whether err will not go away by trying again soon: the
// remote refused the token, or is no MCP endpoint.
func permanent(err error) bool {
	var de *dialError
	return errors.As(err, &de) && (de.auth || de.status >= 400 && de.status < 500)
}

func (b *bridge) wantLinkLocked() bool {
	return b.stateless || b.initReq != nil
}

// readLink passes what the remote sends on l's connection on, until it
// fails; then l is lost.
func (b *bridge) readLink(l *link) {
	for {
		msg, err := l.conn.Read(l.ctx)
		if err != nil {
			if l.ctx.Err() == nil {
				l.lose(&lostError{reason: "the connection to the remote ended", err: err})
			}
			return
		}
		b.fromRemote(l, msg)
	}
}

// fromRemote routes one message from the remote, received on l.
func (b *bridge) fromRemote(l *link, msg jsonrpc.Message) {
	switch m := msg.(type) {
	case *jsonrpc.Response:
		if l.deliverOwn(m) {
			return
		}
		b.mu.Lock()
		p, ok := b.pending[m.ID]
		ok = ok && p.link == l
		if ok {
			delete(b.pending, m.ID)
		}
		b.mu.Unlock()
		if !ok {
			b.log.Debug("dropped an answer to no request in flight", "id", m.ID.Raw())
			return
		}
		b.answer(m)
	case *jsonrpc.Request:
		if l.isLost() {
			return
		}
		if m.IsCall() {
			b.mu.Lock()
			b.serverCalls[m.ID] = l
			b.mu.Unlock()
		}
		b.out.write(m)
	}
}

// supervise keeps a link to the remote while one is wanted: it connects
// with backoff, publishes the link, and when the link is lost fails what
// was in flight on it and connects again.
func (b *bridge) supervise(ctx context.Context) {
	attempt := 0
	var lastLogged string
	for {
		b.mu.Lock()
		want := b.wantLinkLocked()
		b.mu.Unlock()
		if !want {
			select {
			case <-b.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		b.mu.Lock()
		b.gen++
		gen, init, reply := b.gen, b.initReq, b.initReply
		b.mu.Unlock()

		l, resp, err := b.dial(ctx, gen, init)
		if ctx.Err() != nil {
			if l != nil {
				l.shut(true)
			}
			return
		}
		if err == nil {
			b.mu.Lock()
			superseded := b.initReq != init
			b.mu.Unlock()
			if superseded {
				l.shut(false)
				continue
			}
		}
		if err == nil && resp != nil && resp.Error != nil {
			l.shut(false)
			if reply != nil {
				// The remote refused the client's own initialize: that is the
				// client's answer; wait for it to try again.
				b.mu.Lock()
				b.initReq, b.initReply = nil, nil
				b.mu.Unlock()
				r := *resp
				r.ID = *reply
				b.answer(&r)
				continue
			}
			err = fmt.Errorf("the remote refused to initialize a new session: %v", resp.Error)
		}
		if err == nil {
			err = b.resume(ctx, l, resp, reply != nil)
		}
		if err != nil {
			if l != nil {
				l.shut(false)
			}
			attempt++
			delay := b.backoff(attempt, err)
			b.failed(err)
			if msg := err.Error(); msg != lastLogged {
				b.log.Warn("cannot connect to the remote; retrying", "err", err, "retry_in", delay.Round(time.Millisecond))
				lastLogged = msg
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		if attempt > 0 || gen > 1 {
			b.log.Info("connected to the remote", "transport", transportName(l.kind), "attempts", attempt+1)
		}
		attempt, lastLogged = 0, ""
		b.publish(l, resp, reply)

		select {
		case <-l.lostCh:
		case <-ctx.Done():
			b.unpublish(l)
			l.shut(true)
			return
		}
		b.unpublish(l)
		l.shut(false)
		if !errors.Is(l.lostErr, errReinit) {
			b.log.Warn("lost the remote session; reconnecting", "reason", l.lostErr)
		}
		select {
		case <-time.After(b.opts.MinBackoff):
		case <-ctx.Done():
			return
		}
	}
}

// resume readies a new link before it is published: on a reconnect it
// tells the new session what the client told the old one.
func (b *bridge) resume(ctx context.Context, l *link, resp *jsonrpc.Response, first bool) error {
	if resp == nil {
		return nil // no initialize: a stateless client
	}
	version := l.protocolVersion()
	b.mu.Lock()
	if b.firstVersion == "" {
		b.firstVersion = version
	}
	firstVersion := b.firstVersion
	initialized := b.initialized
	logLevel := b.logLevel
	subs := make([]json.RawMessage, 0, len(b.subs))
	for _, p := range b.subs {
		subs = append(subs, p)
	}
	b.mu.Unlock()
	if first {
		return nil
	}
	if version != firstVersion {
		b.log.Warn("the new session speaks another protocol version than the client negotiated", "client", firstVersion, "remote", version)
	}
	if initialized != nil {
		wctx, cancel := context.WithTimeout(l.ctx, oneWayTimeout)
		err := l.conn.Write(wctx, initialized)
		cancel()
		if err != nil {
			return fmt.Errorf("send notifications/initialized: %w", err)
		}
	}
	if logLevel != nil {
		if r, err := l.call(ctx, "logging/setLevel", logLevel); err != nil || r.Error != nil {
			b.log.Warn("could not set the log level again on the new session", "err", errors.Join(err, errOf(r)))
		}
	}
	for _, p := range subs {
		if r, err := l.call(ctx, "resources/subscribe", p); err != nil || r.Error != nil {
			b.log.Warn("could not subscribe again on the new session", "err", errors.Join(err, errOf(r)))
		}
	}
	return nil
}

func errOf(r *jsonrpc.Response) error {
	if r == nil {
		return nil
	}
	return r.Error
}

// failed records a failed attempt to connect for the waiters, and answers
// the client's initialize with it when that waited long enough or trying
// again will not help.
func (b *bridge) failed(err error) {
	b.mu.Lock()
	b.lastErr = err
	b.notifyLocked()
	var reply *jsonrpc.ID
	if b.initReply != nil && (permanent(err) || time.Since(b.initSince) >= b.opts.ReconnectWait) {
		reply = b.initReply
		b.initReq, b.initReply = nil, nil
	}
	b.mu.Unlock()
	if reply != nil {
		b.unavailable(*reply, "%v", err)
	}
}

// backoff is the delay before attempt n (from 1): doubling from MinBackoff
// to MaxBackoff, with jitter; MaxBackoff when trying again will not help.
func (b *bridge) backoff(n int, err error) time.Duration {
	d := b.opts.MaxBackoff
	if !permanent(err) && n < 30 {
		d = min(b.opts.MinBackoff<<(n-1), b.opts.MaxBackoff)
	}
	// ±20 %
	return d - d/5 + rand.N(d*2/5+1)
}

// publish makes l the link calls go to, and answers the client's
// initialize with the remote's answer (under the client's id). On a
// reconnect it tells the client to list again what may have changed.
func (b *bridge) publish(l *link, resp *jsonrpc.Response, reply *jsonrpc.ID) {
	b.mu.Lock()
	b.link = l
	b.lastErr = nil
	if reply != nil && b.initReply != nil && *b.initReply == *reply {
		b.initReply = nil
	} else {
		reply = nil
	}
	b.notifyLocked()
	b.mu.Unlock()
	if resp == nil {
		return
	}
	if reply != nil {
		r := *resp
		r.ID = *reply
		b.answer(&r)
		return
	}
	// The remote restarted: its lists may differ from what the client holds.
	var res struct {
		Capabilities map[string]struct {
			ListChanged bool `json:"listChanged"`
		} `json:"capabilities"`
	}
	_ = json.Unmarshal(resp.Result, &res)
	for _, kind := range []string{"tools", "prompts", "resources"} {
		if res.Capabilities[kind].ListChanged {
			b.out.write(&jsonrpc.Request{Method: "notifications/" + kind + "/list_changed", Params: json.RawMessage("{}")})
		}
	}
}

// unpublish takes l away and answers every call the remote had taken on it.
func (b *bridge) unpublish(l *link) {
	b.mu.Lock()
	if b.link == l {
		b.link = nil
	}
	var lost []jsonrpc.ID
	for id, p := range b.pending {
		if p.link == l && p.sent {
			delete(b.pending, id)
			lost = append(lost, id)
		}
	}
	for id, sl := range b.serverCalls {
		if sl == l {
			delete(b.serverCalls, id)
		}
	}
	b.notifyLocked()
	b.mu.Unlock()
	reason := l.lostErr
	if errors.Is(reason, errReinit) {
		reason = errReinit
	}
	for _, id := range lost {
		b.unavailable(id, "the session was lost before the remote answered (%v); retry the request", reason)
	}
}
