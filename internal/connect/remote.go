package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Transports of the remote.
const (
	TransportAuto = "auto" // streamable HTTP, falling back to SSE on a 4xx
	TransportHTTP = "http" // streamable HTTP (2025-03-26 and later)
	TransportSSE  = "sse"  // HTTP+SSE (2024-11-05)
)

// HTTP headers of the streamable HTTP transport.
const (
	headerSessionID   = "Mcp-Session-Id"
	headerVersion     = "Mcp-Protocol-Version"
	headerLastEventID = "Last-Event-ID"
)

// callTimeout bounds the relay's own calls (initialize and the replays
// after a reconnect).
const callTimeout = 30 * time.Second

// link is one connection to the remote: one MCP session. A link is lost
// once, for good; the bridge then makes a new one.
type link struct {
	gen    int
	kind   string // TransportHTTP or TransportSSE
	url    string
	client *http.Client
	conn   mcp.Connection
	ctx    context.Context // ends when the link is shut
	cancel context.CancelFunc

	mu      sync.Mutex
	version string // negotiated protocol version, once initialized
	own     map[jsonrpc.ID]chan *jsonrpc.Response
	nextOwn int

	lostOnce sync.Once
	lostCh   chan struct{}
	lostErr  error
}

// lose marks the link lost with the first reason given.
func (l *link) lose(err error) {
	l.lostOnce.Do(func() {
		l.lostErr = err
		close(l.lostCh)
	})
}

func (l *link) isLost() bool {
	select {
	case <-l.lostCh:
		return true
	default:
		return false
	}
}

func (l *link) protocolVersion() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version
}

func (l *link) setProtocolVersion(v string) {
	l.mu.Lock()
	l.version = v
	l.mu.Unlock()
}

// shut ends the link. A graceful shut lets go-sdk end the remote session
// (DELETE, bounded by go-sdk to 5 s) before the link's context is
// cancelled; otherwise the context goes first and the connection is closed
// in the background.
func (l *link) shut(graceful bool) {
	l.lose(errShut)
	if l.conn == nil {
		l.cancel()
		return
	}
	if graceful {
		_ = l.conn.Close()
		l.cancel()
		return
	}
	l.cancel()
	// go-sdk's streamable Close may still send its DELETE (its context is
	// detached from ours); a lost remote must not hold up the reconnect.
	go l.conn.Close()
}

var errShut = errors.New("the relay closed the connection")

// deliverOwn hands a response to one of the relay's own calls; it reports
// whether the response was one.
func (l *link) deliverOwn(resp *jsonrpc.Response) bool {
	l.mu.Lock()
	ch, ok := l.own[resp.ID]
	delete(l.own, resp.ID)
	l.mu.Unlock()
	if ok {
		ch <- resp
	}
	return ok
}

// call sends a request of the relay's own (its id cannot clash with the
// client's) and waits for the answer.
func (l *link) call(ctx context.Context, method string, params json.RawMessage) (*jsonrpc.Response, error) {
	l.mu.Lock()
	l.nextOwn++
	id, _ := jsonrpc.MakeID(fmt.Sprintf("atrax-connect-%d-%d", l.gen, l.nextOwn))
	ch := make(chan *jsonrpc.Response, 1)
	l.own[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.own, id)
		l.mu.Unlock()
	}()
	out := &outcome{}
	if err := l.conn.Write(withOutcome(l.ctx, out), &jsonrpc.Request{ID: id, Method: method, Params: params}); err != nil {
		return nil, classify(l, out, err)
	}
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case resp := <-ch:
		return resp, nil
	case <-l.lostCh:
		return nil, l.lostErr
	case <-timer.C:
		return nil, fmt.Errorf("the remote did not answer %s within %v", method, callTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// outcome records what happened to one HTTP request sent for a message;
// the roundTripper fills it in.
type outcome struct {
	mu          sync.Mutex
	status      int   // HTTP status, 0 if none came
	err         error // transport error
	undelivered bool  // the remote surely did not process the message
}

func (o *outcome) get() (status int, err error, undelivered bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.status, o.err, o.undelivered
}

type outcomeKey struct{}

func withOutcome(ctx context.Context, o *outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, o)
}

// roundTripper adds the token, the negotiated protocol version and the
// extra headers to every request of one link, and watches the answers for
// signs that the link is lost.
//
// go-sdk's streamable client sends MCP-Protocol-Version and opens its GET
// stream only after its own mcp.Client reports the initialize result
// through an unexported hook, which a relay that passes raw messages never
// calls. So the version header is added here, and the GET stream is the
// relay's own (stream.go).
type roundTripper struct {
	base      http.RoundTripper
	token     string
	header    http.Header
	userAgent string
	link      *link
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	for k, vs := range rt.header {
		r.Header[k] = append([]string(nil), vs...)
	}
	if rt.token != "" {
		r.Header.Set("Authorization", "Bearer "+rt.token)
	}
	if rt.userAgent != "" {
		r.Header.Set("User-Agent", rt.userAgent)
	}
	if v := rt.link.protocolVersion(); v != "" && rt.link.kind == TransportHTTP && r.Header.Get(headerVersion) == "" {
		r.Header.Set(headerVersion, v)
	}
	out, _ := r.Context().Value(outcomeKey{}).(*outcome)
	resp, err := rt.base.RoundTrip(r)
	if err != nil {
		if out != nil {
			out.mu.Lock()
			out.err, out.undelivered = err, isDialError(err)
			out.mu.Unlock()
		}
		if r.Context().Err() == nil {
			rt.link.lose(&lostError{reason: "connection lost", err: err})
		}
		return nil, err
	}
	sessionGone := resp.StatusCode == http.StatusNotFound &&
		(r.Header.Get(headerSessionID) != "" || (rt.link.kind == TransportSSE && r.Method == http.MethodPost))
	if out != nil {
		out.mu.Lock()
		out.status = resp.StatusCode
		out.undelivered = sessionGone
		out.mu.Unlock()
	}
	if sessionGone {
		rt.link.lose(&lostError{reason: "the remote no longer knows the session (HTTP 404; it may have restarted)"})
	}
	return resp, nil
}

// isDialError reports whether err happened before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// lostError says why a link was lost.
type lostError struct {
	reason string
	err    error
}

func (e *lostError) Error() string {
	if e.err == nil {
		return e.reason
	}
	return e.reason + ": " + e.err.Error()
}

func (e *lostError) Unwrap() error { return e.err }

// dialError is a failure to open a link.
type dialError struct {
	msg    string
	status int  // HTTP status that caused it, if any
	auth   bool // the remote refused the credentials: retrying will not help soon
	err    error
}

func (e *dialError) Error() string { return e.msg }
func (e *dialError) Unwrap() error { return e.err }

// fallback reports whether another transport may work where this failed:
// any 4xx but the credential ones, as the TypeScript SDK's clients decide.
func (e *dialError) fallback() bool {
	return e.status >= 400 && e.status < 500 && !e.auth
}

// classify turns a failed Write or Connect into a dialError.
func classify(l *link, out *outcome, err error) error {
	status, terr, _ := out.get()
	host := redact(l.url)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &dialError{status: status, auth: true, err: err,
			msg: fmt.Sprintf("%s refused the token (HTTP %d): set --token or ATRAX_TOKEN to a token it accepts", host, status)}
	case status >= 400:
		return &dialError{status: status, err: err,
			msg: fmt.Sprintf("%s answered HTTP %d %s over %s", host, status, http.StatusText(status), transportName(l.kind))}
	case terr != nil:
		return &dialError{err: err, msg: fmt.Sprintf("cannot reach %s: %v", host, rootCause(terr))}
	}
	var lost *lostError
	if l.isLost() && errors.As(l.lostErr, &lost) {
		return &dialError{err: err, msg: fmt.Sprintf("%s: %v", host, lost)}
	}
	return &dialError{err: err, msg: fmt.Sprintf("%s over %s: %v", host, transportName(l.kind), err)}
}

// rootCause strips url.Error and net.OpError wrappers down to what a
// person can act on ("connection refused").
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return fmt.Errorf("%s: %w", op.Op, op.Err)
	}
	return err
}

func transportName(kind string) string {
	if kind == TransportSSE {
		return "SSE"
	}
	return "streamable HTTP"
}

// redact drops the query (which may carry ?token=) and user info from a
// URL for messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the remote"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// newLink prepares a link of kind; open connects it.
func (b *bridge) newLink(ctx context.Context, gen int, kind string) *link {
	lctx, cancel := context.WithCancel(ctx)
	l := &link{
		gen:    gen,
		kind:   kind,
		url:    b.opts.URL,
		ctx:    lctx,
		cancel: cancel,
		own:    map[jsonrpc.ID]chan *jsonrpc.Response{},
		lostCh: make(chan struct{}),
	}
	rt := &roundTripper{base: b.base, token: b.opts.Token, header: b.opts.Header, userAgent: b.userAgent, link: l}
	// No client timeout: streams live as long as the link.
	l.client = &http.Client{Transport: rt}
	return l
}

// open connects l and, when init is set, initializes the remote session
// with the client's initialize params. It returns the remote's answer to
// initialize (possibly a JSON-RPC error).
func (b *bridge) open(ctx context.Context, l *link, init *jsonrpc.Request) (*jsonrpc.Response, error) {
	var t mcp.Transport
	switch l.kind {
	case TransportSSE:
		t = &mcp.SSEClientTransport{Endpoint: l.url, HTTPClient: l.client}
	default:
		t = &mcp.StreamableClientTransport{
			Endpoint:   l.url,
			HTTPClient: l.client,
			// A broken response stream fails the link at once: the
			// relay reconnects itself, with a new session.
			MaxRetries: -1,
			// The relay opens its own GET stream (see roundTripper).
			DisableStandaloneSSE: true,
		}
	}
	out := &outcome{}
	conn, err := t.Connect(withOutcome(l.ctx, out))
	if err != nil {
		return nil, classify(l, out, err)
	}
	l.conn = conn
	go b.readLink(l)
	if init == nil {
		return nil, nil
	}
	resp, err := l.call(ctx, init.Method, init.Params)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return resp, nil
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(resp.Result, &res)
	l.setProtocolVersion(res.ProtocolVersion)
	if l.kind == TransportHTTP && res.ProtocolVersion < "2026-07-28" {
		go b.listen(l)
	}
	return resp, nil
}

// dial opens a link, trying the transports the options allow: with auto,
// streamable HTTP and then SSE, until one has worked; after that the one
// that worked.
func (b *bridge) dial(ctx context.Context, gen int, init *jsonrpc.Request) (*link, *jsonrpc.Response, error) {
	kinds := []string{b.opts.Transport}
	if b.opts.Transport == TransportAuto {
		switch {
		case b.kind != "":
			kinds = []string{b.kind}
		case init == nil:
			kinds = []string{TransportHTTP}
		default:
			kinds = []string{TransportHTTP, TransportSSE}
		}
	}
	var errs []string
	for i, kind := range kinds {
		l := b.newLink(ctx, gen, kind)
		resp, err := b.open(ctx, l, init)
		if err == nil {
			if b.kind == "" && b.opts.Transport == TransportAuto {
				b.log.Info("remote transport chosen", "transport", transportName(kind))
			}
			b.kind = kind
			return l, resp, nil
		}
		l.shut(false)
		var de *dialError
		if i+1 < len(kinds) && errors.As(err, &de) && de.fallback() {
			b.log.Debug("streamable HTTP refused; trying SSE", "err", err)
			errs = append(errs, err.Error())
			continue
		}
		if len(errs) > 0 {
			var de *dialError
			errors.As(err, &de)
			return nil, nil, &dialError{msg: fmt.Sprintf("%s is neither a streamable HTTP nor an SSE MCP endpoint (%s; %s): check the URL (Atrax serves /mcp and /sse)",
				redact(b.opts.URL), errs[0], err), err: err, status: statusOf(de)}
		}
		return nil, nil, err
	}
	return nil, nil, errors.New("no transport to try")
}

func statusOf(de *dialError) int {
	if de == nil {
		return 0
	}
	return de.status
}
