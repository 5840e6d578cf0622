package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/internal/workpool"
)

// httpConn is the client side of MCP's streamable HTTP transport
// (2025-03-26 and later): every message is a POST; a request's answer comes
// back as JSON or as an SSE stream that may carry the server's own requests
// and notifications for that call first; a standalone GET stream carries
// what belongs to no call. go-sdk's client transport needs go-sdk's Client
// to learn the negotiated revision and to open the GET stream, and it does
// not say which call a message came with, so the edge has its own.
type httpConn struct {
	d       HTTPDoer
	url     string
	headers map[string]string
	max     int
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	in     chan readResult
	// work runs the calls' round trips: goroutines kept for reuse, with
	// the stack an HTTP client needs already grown.
	work *workpool.Pool

	mu        sync.Mutex
	sessionID string
	version   string
	// The two as header values, made once (shared, never changed).
	sidHeader, versionHeader []string
	closed                   bool
	wg                       sync.WaitGroup
	// stateless is set once the server proved to speak the stateless
	// revision (server/discover): no session, headers on every request,
	// cancellation by closing the request.
	stateless bool
	inflight  map[int64]context.CancelFunc // stateless calls by id
	// tool returns a tool's definition by the server's own name, for the
	// parameter headers of a stateless call.
	tool func(name string) (json.RawMessage, bool)
	// respond, when set (Respond), takes a call's response straight from
	// the goroutine that read it, instead of through Read: one hand-over
	// less per call. It reports false for a response nobody waits for.
	respond func(id int64, r *jsonrpc.Response) bool
}

// Respond makes responses to calls go to f as soon as they are read,
// unless something the server sent for the same call is still on its way
// through Read (it would be overtaken).
func (c *httpConn) Respond(f func(id int64, r *jsonrpc.Response) bool) {
	c.mu.Lock()
	c.respond = f
	c.mu.Unlock()
}

// Header values the edge sends on every request, shared (never changed).
var (
	hdrJSON     = []string{"application/json"}
	hdrAccept   = []string{"application/json, text/event-stream"}
	hdrEventStr = []string{"text/event-stream"}
)

func newHTTPConn(d HTTPDoer, u string, headers map[string]string, maxMessage int, log *slog.Logger) *httpConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &httpConn{
		d: d, url: u, headers: headers, max: maxMessage, log: log,
		ctx: ctx, cancel: cancel, in: make(chan readResult, 64), work: workpool.New(0, 0),
		inflight: map[int64]context.CancelFunc{},
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// redactURL drops a URL's query and credentials, which may hold secrets.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Stateless switches the connection to the stateless revision: every
// request then names its revision, method and name in headers, and no
// session or GET stream is used. tool looks up a tool's definition by the
// server's name, for parameter headers.
func (c *httpConn) Stateless(version string, tool func(string) (json.RawMessage, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stateless, c.tool = true, tool
	c.setVersion(version)
}

// setVersion records the revision sent as MCP-Protocol-Version. c.mu is
// held.
func (c *httpConn) setVersion(v string) {
	c.version, c.versionHeader = v, []string{v}
}

// Initialized records the negotiated revision (sent as MCP-Protocol-Version
// from now on) and opens the standalone GET stream.
func (c *httpConn) Initialized(version string) {
	c.mu.Lock()
	c.setVersion(version)
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.standalone()
	}()
}

func (c *httpConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case r := <-c.in:
		return r.msg, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, io.EOF
	}
}

// push hands a message to Read, or gives up when the connection closes.
func (c *httpConn) push(r readResult) {
	select {
	case c.in <- r:
	case <-c.ctx.Done():
	}
}

// fail ends the connection with err (seen by Read).
func (c *httpConn) fail(err error) {
	select {
	case c.in <- readResult{err: err}:
	default:
	}
	c.cancel()
}

func (c *httpConn) newRequest(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url, r)
	if err != nil {
		return nil, err
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	c.mu.Lock()
	if c.sessionID != "" {
		req.Header["Mcp-Session-Id"] = c.sidHeader
	}
	if c.version != "" {
		req.Header["Mcp-Protocol-Version"] = c.versionHeader
	}
	c.mu.Unlock()
	return req, nil
}

// Write posts one message. A call's answer is read in the background and
// handed to Read; a notification or response must be accepted (202).
func (c *httpConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.Encode(msg)
	if err != nil {
		return err
	}
	call, isCall := msg.(*jsonrpc.Request)
	isCall = isCall && call.IsCall()
	c.mu.Lock()
	stateless := c.stateless
	c.mu.Unlock()
	if stateless && !isCall {
		// The stateless revision cancels a call by closing its request,
		// and has nothing else for a client to notify.
		if n, ok := msg.(*jsonrpc.Request); ok && n.Method == protocol.NotificationCancelled {
			c.cancelCall(n.Params)
		}
		return nil
	}
	// A call's POST lives as long as the call: it is bound to the
	// connection, not to the caller's ctx, which Write returns before.
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if isCall {
		// A stateless call is cancelled by closing its request: it gets a
		// context of its own, which forgetCall or cancelCall ends.
		rctx, cancel = context.WithCancel(c.ctx)
		if id, ok := call.ID.Raw().(int64); ok && stateless {
			c.mu.Lock()
			c.inflight[id] = cancel
			c.mu.Unlock()
		}
	}
	req, err := c.newRequest(rctx, http.MethodPost, data)
	if err != nil {
		cancel()
		return err
	}
	req.Header["Content-Type"] = hdrJSON
	req.Header["Accept"] = hdrAccept
	if stateless {
		c.statelessHeaders(req.Header, call)
	}
	// The caller's trace context (the edge's span of the call) goes on as
	// W3C traceparent and tracestate headers.
	traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if !isCall {
		defer cancel()
		resp, err := c.d.Do(req)
		if err != nil {
			return fmt.Errorf("post to %s: %w", redactURL(c.url), err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode == http.StatusNotFound && c.hasSession() {
			c.fail(errors.New("server ended the session (404)"))
			return errors.New("session ended")
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("server answered %s", resp.Status)
		}
		return nil
	}
	c.wg.Add(1)
	c.work.Go(func() {
		defer c.wg.Done()
		defer cancel()
		defer c.forgetCall(call.ID)
		c.roundTrip(req, call)
	})
	return nil
}

// traceContext writes the W3C trace context headers.
var traceContext propagation.TraceContext

// statelessHeaders sets the headers the stateless revision mirrors from
// the body: the method, the name the server knows (which differs from the
// prefixed name the client used) and the parameter headers of its tool.
func (c *httpConn) statelessHeaders(h http.Header, call *jsonrpc.Request) {
	h.Set(protocol.HeaderMethod, call.Method)
	if name, ok := protocol.NameOf(call.Method, call.Params); ok {
		h.Set(protocol.HeaderName, protocol.EncodeHeaderValue(name))
	}
	if call.Method == protocol.MethodToolsCall && c.tool != nil {
		name, _ := protocol.NameOf(call.Method, call.Params)
		if def, ok := c.tool(name); ok {
			for k, v := range protocol.ParamHeaders(def, call.Params) {
				h.Set(k, v)
			}
		}
	}
}

// cancelCall closes the request of the call a notifications/cancelled
// names.
func (c *httpConn) cancelCall(params json.RawMessage) {
	var p struct {
		RequestID int64 `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	c.mu.Lock()
	cancel := c.inflight[p.RequestID]
	delete(c.inflight, p.RequestID)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *httpConn) forgetCall(id jsonrpc.ID) {
	n, ok := id.Raw().(int64)
	if !ok {
		return
	}
	c.mu.Lock()
	cancel := c.inflight[n]
	delete(c.inflight, n)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *httpConn) hasSession() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID != ""
}

// roundTrip performs a call's POST and delivers what comes back.
func (c *httpConn) roundTrip(req *http.Request, call *jsonrpc.Request) {
	resp, err := c.d.Do(req)
	if err != nil {
		if c.ctx.Err() == nil {
			c.push(readResult{msg: httpError(call.ID, 0, fmt.Sprintf("post to %s: %v", redactURL(c.url), err))})
		}
		return
	}
	defer resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && call.Method == protocol.MethodInitialize {
		c.mu.Lock()
		c.sessionID, c.sidHeader = sid, []string{sid}
		c.mu.Unlock()
	}
	if resp.StatusCode == http.StatusNotFound && c.hasSession() {
		c.fail(errors.New("server ended the session (404): the edge will initialize again"))
		return
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode/100 != 2:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		// A JSON-RPC error body is the server's own answer; pass it on.
		if msgs, _, err := jsonrpc.Decode(body); err == nil && len(msgs) == 1 {
			if r, ok := msgs[0].(*jsonrpc.Response); ok {
				c.push(readResult{msg: r})
				return
			}
		}
		c.push(readResult{msg: httpError(call.ID, resp.StatusCode, strings.TrimSpace(string(body)))})
	case ct == "text/event-stream":
		id, _ := call.ID.Raw().(int64)
		c.readStream(resp.Body, id, call.ID)
	default:
		body, err := readBody(resp, c.max)
		if err != nil || len(body) > c.max {
			c.push(readResult{msg: httpError(call.ID, 0, "response too large or unreadable")})
			return
		}
		msgs, _, derr := jsonrpc.Decode(body)
		if derr != nil {
			c.push(readResult{msg: httpError(call.ID, 0, "response is not JSON-RPC")})
			return
		}
		if len(msgs) == 1 && c.answer(msgs[0]) {
			return // the common case: the body is the call's response
		}
		for _, m := range msgs {
			c.push(readResult{msg: m})
		}
	}
}

// answer hands a call's response to Respond's function, if one is set. A
// response that came alone in its POST's answer overtakes nothing.
func (c *httpConn) answer(m jsonrpc.Message) bool {
	r, ok := m.(*jsonrpc.Response)
	if !ok {
		return false
	}
	id, ok := r.ID.Raw().(int64)
	if !ok {
		return false
	}
	c.mu.Lock()
	respond := c.respond
	c.mu.Unlock()
	return respond != nil && respond(id, r)
}

// readBody reads a response body of at most max bytes (and one more, to
// tell that it is too long), in one allocation when its length is known.
func readBody(resp *http.Response, max int) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= int64(max) {
		body := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
}

// mediaType returns the media type of a Content-Type value, lower case,
// without parameters; without allocating for the usual values.
func mediaType(v string) string {
	switch {
	case strings.HasPrefix(v, "application/json") && (len(v) == len("application/json") || v[len("application/json")] == ';'):
		return "application/json"
	case strings.HasPrefix(v, "text/event-stream") && (len(v) == len("text/event-stream") || v[len("text/event-stream")] == ';'):
		return "text/event-stream"
	}
	mt, _, _ := mime.ParseMediaType(v)
	return mt
}

// httpError is the error response a call gets when the HTTP exchange
// itself failed.
func httpError(id jsonrpc.ID, status int, detail string) *jsonrpc.Response {
	msg := "upstream HTTP request failed"
	if status != 0 {
		msg = fmt.Sprintf("upstream answered HTTP %d", status)
	}
	if len(detail) > 200 {
		detail = detail[:200]
	}
	if detail != "" {
		msg += ": " + detail
	}
	return jsonrpc.ErrorResponse(id, jsonrpc.NewError(jsonrpc.CodeInternalError, "%s", msg))
}

// readStream reads one SSE stream. For a call's stream, messages are tagged
// with the call (Request.Extra) and the stream is resumed with GET and
// Last-Event-ID if it ends before the answer.
func (c *httpConn) readStream(body io.Reader, callID int64, id jsonrpc.ID) {
	lastEvent := ""
	answered := false
	pushed := false // something of this call went through Read already
	retry := time.Second
	for attempt := 0; ; attempt++ {
		sc := newEventScanner(body, c.max)
		for sc.Next() {
			ev := sc.Event()
			if ev.ID != "" {
				lastEvent = ev.ID
			}
			if ev.Retry > 0 {
				retry = ev.Retry
			}
			if len(bytes.TrimSpace(ev.Data)) == 0 {
				continue
			}
			msgs, _, err := jsonrpc.Decode(ev.Data)
			if err != nil {
				c.log.Warn("upstream sent an SSE event that is not JSON-RPC; skipped", "err", err)
				continue
			}
			for _, m := range msgs {
				switch m := m.(type) {
				case *jsonrpc.Request:
					if callID != 0 {
						m.Extra = relatedCall(callID)
					}
				case *jsonrpc.Response:
					if m.ID.Raw() == id.Raw() {
						answered = true
						if !pushed && c.answer(m) {
							continue // nothing of the call to overtake
						}
					}
				}
				pushed = true
				c.push(readResult{msg: m})
			}
		}
		if err := sc.Err(); err != nil && c.ctx.Err() == nil {
			c.log.Warn("upstream SSE stream broke", "err", err)
		}
		if callID == 0 || answered || c.ctx.Err() != nil {
			return
		}
		if lastEvent == "" || attempt >= 5 {
			c.push(readResult{msg: jsonrpc.ErrorResponse(id, jsonrpc.NewError(jsonrpc.CodeConnectionClosed, "upstream closed the stream before answering"))})
			return
		}
		select {
		case <-time.After(retry):
		case <-c.ctx.Done():
			return
		}
		resp, err := c.get(lastEvent)
		if err != nil {
			c.push(readResult{msg: jsonrpc.ErrorResponse(id, jsonrpc.NewError(jsonrpc.CodeConnectionClosed, "could not resume the upstream stream: %v", err))})
			return
		}
		defer resp.Body.Close()
		body = resp.Body
	}
}

// get opens a GET stream, resuming after lastEvent when it is set.
func (c *httpConn) get(lastEvent string) (*http.Response, error) {
	req, err := c.newRequest(c.ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	req.Header["Accept"] = hdrEventStr
	if lastEvent != "" {
		req.Header.Set("Last-Event-ID", lastEvent)
	}
	resp, err := c.d.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	return resp, nil
}

// standalone keeps the GET stream open for messages that belong to no
// call, reconnecting with backoff. A server without one (405) is fine.
func (c *httpConn) standalone() {
	backoff := time.Second
	lastEvent := ""
	for c.ctx.Err() == nil {
		resp, err := c.get(lastEvent)
		if err != nil {
			if strings.Contains(err.Error(), "405") {
				return
			}
			if strings.Contains(err.Error(), "404") && c.hasSession() {
				c.fail(errors.New("server ended the session (404)"))
				return
			}
		} else {
			backoff = time.Second
			sc := newEventScanner(resp.Body, c.max)
			for sc.Next() {
				ev := sc.Event()
				if ev.ID != "" {
					lastEvent = ev.ID
				}
				if len(bytes.TrimSpace(ev.Data)) == 0 {
					continue
				}
				msgs, _, derr := jsonrpc.Decode(ev.Data)
				if derr != nil {
					continue
				}
				for _, m := range msgs {
					c.push(readResult{msg: m})
				}
			}
			resp.Body.Close()
		}
		select {
		case <-time.After(backoff):
		case <-c.ctx.Done():
			return
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// Close ends the session on the server (DELETE) and every request.
func (c *httpConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	sid := c.sessionID
	c.mu.Unlock()
	if sid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if req, err := c.newRequest(ctx, http.MethodDelete, nil); err == nil {
			if resp, err := c.d.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		cancel()
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

// event is one server-sent event.
type event struct {
	Name  string
	ID    string
	Data  []byte
	Retry time.Duration
}

// eventScanner reads server-sent events (the HTML standard's format) with
// a cap on one event's size.
type eventScanner struct {
	r   *lineReader
	ev  event
	err error
}

func newEventScanner(r io.Reader, max int) *eventScanner {
	return &eventScanner{r: newLineReader(r, max)}
}

func (s *eventScanner) Next() bool {
	s.ev = event{}
	var data bytes.Buffer
	has := false
	for {
		line, err := s.r.line()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
			if has {
				s.ev.Data = data.Bytes()
				return true
			}
			return false
		}
		if len(line) == 0 {
			if has {
				s.ev.Data = data.Bytes()
				return true
			}
			continue
		}
		if line[0] == ':' {
			continue // comment (keep-alive)
		}
		field, value, _ := strings.Cut(string(line), ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			s.ev.Name, has = value, true
		case "id":
			s.ev.ID, has = value, true
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				s.ev.Retry = time.Duration(ms) * time.Millisecond
			}
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			has = true
			if data.Len() > s.r.max {
				s.err = ErrMessageTooLarge
				return false
			}
		}
	}
}

func (s *eventScanner) Event() event { return s.ev }
func (s *eventScanner) Err() error   { return s.err }

// lineReader reads CR, LF or CRLF terminated lines with a cap.
type lineReader struct {
	r   io.Reader
	buf []byte
	max int
	// skipLF is set when a line ended with a CR that was the last byte
	// read: a LF that follows it belongs to the same line break.
	skipLF bool
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: r, max: max}
}

func (l *lineReader) line() ([]byte, error) {
	for {
		if l.skipLF && len(l.buf) > 0 {
			if l.buf[0] == '\n' {
				l.buf = append(l.buf[:0], l.buf[1:]...)
			}
			l.skipLF = false
		}
		if i := bytes.IndexAny(l.buf, "\r\n"); i >= 0 {
			line := l.buf[:i]
			rest := l.buf[i+1:]
			if l.buf[i] == '\r' {
				if len(rest) > 0 && rest[0] == '\n' {
					rest = rest[1:]
				} else if len(rest) == 0 {
					l.skipLF = true
				}
			}
			out := append([]byte(nil), line...)
			l.buf = append(l.buf[:0], rest...)
			return out, nil
		}
		if l.max > 0 && len(l.buf) > l.max {
			return nil, ErrMessageTooLarge
		}
		var tmp [32 << 10]byte
		n, err := l.r.Read(tmp[:])
		l.buf = append(l.buf, tmp[:n]...)
		if err != nil {
			if n > 0 {
				continue
			}
			if len(l.buf) > 0 {
				out := l.buf
				l.buf = nil
				return out, nil
			}
			return nil, err
		}
	}
}
