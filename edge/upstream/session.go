package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
)

// session is one live connection to a server: the calls in flight on it and
// the server-to-client requests it has made.
type session struct {
	u    *Upstream
	conn conn

	nextID atomic.Int64

	mu       sync.Mutex
	calls    map[int64]*call
	progress map[int64]*call               // calls with a progress token, by id
	incoming map[string]context.CancelFunc // server→client requests being answered
	closed   error

	refresh chan string // list methods to fetch again

	// stateless is the revision of a stateless server ("" for a session
	// one): every request then carries _meta, and resource subscriptions
	// ride on the listen stream.
	stateless  string
	subsMu     sync.Mutex
	subscribed map[string]bool
	relisten   chan struct{}
	// listed is closed once the lists initialize fetched are in place;
	// refreshes start from them.
	listed chan struct{}
}

// call is one request in flight on a connection, under the id the edge
// gave it. Calls are pooled: a call is reused once forgotten, so anything
// that looks one up under s.mu and uses it after unlocking copies what it
// needs first, or checks gen.
type call struct {
	id       int64
	gen      uint64 // changes each time the call is reused
	opts     CallOptions
	token    json.RawMessage        // the caller's progress token (reused buffer)
	edgeTok  bool                   // the server got "atrax-<id>" as the token
	params   []byte                 // params rewritten with the edge's token
	resp     chan *jsonrpc.Response // buffered; sent to only under s.mu
	progress chan struct{}          // a progress notification arrived (resets the timeout)
	timer    *time.Timer
	started  time.Time
	asking   int // server-to-client requests of this call waiting on the client
}

// callPool recycles calls with their channels and timer, so that a call's
// bookkeeping allocates nothing.
var callPool = sync.Pool{New: func() any {
	return &call{resp: make(chan *jsonrpc.Response, 1), progress: make(chan struct{}, 1)}
}}

func newCall(id int64, o CallOptions) *call {
	c := callPool.Get().(*call)
	c.id, c.opts, c.started = id, o, time.Now()
	return c
}

// release returns a call to the pool once it is forgotten (finish) or was
// never registered. Nothing sends to it any more: sends happen under s.mu
// while the call is registered.
func (c *call) release() {
	select {
	case <-c.resp:
	default:
	}
	select {
	case <-c.progress:
	default:
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.opts, c.token, c.edgeTok, c.asking = CallOptions{}, c.token[:0], false, 0
	if cap(c.params) > 64<<10 {
		c.params = nil // keep no large buffer in the pool
	}
	callPool.Put(c)
}

func newSession(u *Upstream, c conn) *session {
	return &session{
		u:          u,
		conn:       c,
		calls:      map[int64]*call{},
		progress:   map[int64]*call{},
		incoming:   map[string]context.CancelFunc{},
		refresh:    make(chan string, 8),
		relisten:   make(chan struct{}, 1),
		subscribed: map[string]bool{},
		listed:     make(chan struct{}),
	}
}

// close fails every call in flight with err.
func (s *session) close(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		return
	}
	s.closed = err
	for id, c := range s.calls {
		delete(s.calls, id)
		delete(s.progress, id)
		c.resp <- nil // the connection is gone (the buffer is free: see deliver)
	}
	for _, cancel := range s.incoming {
		cancel()
	}
}

// call sends a request with an id of the edge's own and waits for the
// response, the timeout (reset by progress), ctx, or the connection's end.
func (s *session) call(ctx context.Context, method string, params json.RawMessage, o CallOptions) (*jsonrpc.Response, error) {
	return s.callFor(ctx, method, params, o, s.u.spec.Timeout)
}

// callFor is call with a timeout of its own; 0 waits as long as ctx lets
// it (the long-lived subscriptions/listen request).
func (s *session) callFor(ctx context.Context, method string, params json.RawMessage, o CallOptions, timeout time.Duration) (*jsonrpc.Response, error) {
	if s.stateless != "" {
		switch method {
		case protocol.MethodResourcesSubscribe, protocol.MethodResourcesUnsubscribe:
			// The stateless revision subscribes on the listen stream.
			return s.resourceSubscription(method, params)
		}
		p, err := s.statelessParams(params, o)
		if err != nil {
			return nil, err
		}
		params = p
	}
	c, params, err := s.begin(params, o)
	if err != nil {
		return nil, err
	}
	defer s.finish(c)
	req := &jsonrpc.Request{ID: jsonrpc.IntID(c.id), Method: method, Params: params}
	if err := s.conn.Write(ctx, req); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return s.wait(ctx, c, timeout)
}

// begin gives a call an id of the edge's own and registers it, so that its
// response and what the server sends for it find their way back. A
// progress token in params is the caller's: the server gets one of the
// edge's, unique on this connection, mapped back in notifications. Without
// one, begin allocates nothing.
func (s *session) begin(params json.RawMessage, o CallOptions) (*call, json.RawMessage, error) {
	c := newCall(s.nextID.Add(1), o)
	if tok, ok := progressToken(params); ok {
		// tok is a slice of params: the token's bytes are replaced where
		// they are, everything else kept (params is parsed only this far).
		c.token = append(c.token[:0], tok...)
		c.edgeTok = true
		at := cap(params) - cap(tok)
		c.params = append(c.params[:0], params[:at]...)
		c.params = append(c.params, `"`+edgeTokenPrefix...)
		c.params = strconv.AppendInt(c.params, c.id, 10)
		c.params = append(c.params, '"')
		c.params = append(c.params, params[at+len(tok):]...)
		params = c.params
	}
	s.mu.Lock()
	if s.closed != nil {
		err := s.closed
		s.mu.Unlock()
		c.release()
		return nil, nil, err
	}
	s.calls[c.id] = c
	if c.edgeTok {
		s.progress[c.id] = c
	}
	s.mu.Unlock()
	return c, params, nil
}

// edgeTokenPrefix starts the progress tokens the edge gives servers.
const edgeTokenPrefix = "atrax-"

// progressToken returns the progress token in params' _meta (a slice of
// params), reading nothing else.
func progressToken(params json.RawMessage) (json.RawMessage, bool) {
	if !bytes.Contains(params, []byte(`"progressToken"`)) {
		return nil, false // the common case, without parsing
	}
	meta, ok := jsonrpc.TopField(params, "_meta")
	if !ok || len(meta) == 0 || meta[0] != '{' {
		return nil, false
	}
	tok, ok := jsonrpc.TopField(meta, "progressToken")
	if !ok || string(tok) == "null" {
		return nil, false
	}
	return json.RawMessage(tok), true
}

// wait waits for c's response, the timeout (reset by progress), ctx, or
// the connection's end.
func (s *session) wait(ctx context.Context, c *call, timeout time.Duration) (*jsonrpc.Response, error) {
	var timeouts <-chan time.Time
	if timeout > 0 {
		if c.timer == nil {
			c.timer = time.NewTimer(timeout)
		} else {
			c.timer.Reset(timeout)
		}
		timeouts = c.timer.C
	}
	for {
		select {
		case r := <-c.resp:
			if r == nil {
				return nil, ErrConnectionLost
			}
			return r, nil
		case <-c.progress:
			if timeouts != nil {
				c.timer.Reset(timeout)
			}
		case <-timeouts:
			s.cancelUpstream(c, "timeout")
			return nil, fmt.Errorf("%w (%s)", ErrTimeout, timeout)
		case <-ctx.Done():
			s.cancelUpstream(c, "the client cancelled the request")
			return nil, ctx.Err()
		}
	}
}

// finish forgets c and returns it to the pool.
func (s *session) finish(c *call) {
	s.mu.Lock()
	if s.calls[c.id] == c {
		delete(s.calls, c.id)
	}
	if c.edgeTok {
		delete(s.progress, c.id)
	}
	c.gen++ // what attribute copied of it is no longer its
	s.mu.Unlock()
	c.release()
}

// cancelUpstream tells the server to stop working on c.
func (s *session) cancelUpstream(c *call, reason string) {
	params, _ := json.Marshal(map[string]any{"requestId": c.id, "reason": reason})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, &jsonrpc.Request{Method: protocol.NotificationCancelled, Params: params}); err != nil {
		s.u.log.Debug("could not send notifications/cancelled", "err", err)
	}
}

// readLoop dispatches everything the server sends until the connection
// fails.
func (s *session) readLoop(ctx context.Context) error {
	go s.refresher(ctx)
	for {
		msg, err := s.conn.Read(ctx)
		if err != nil {
			if ex, ok := s.conn.(interface{ ExitErr() error }); ok {
				if xerr := ex.ExitErr(); xerr != nil {
					return xerr
				}
			}
			return fmt.Errorf("read: %w", err)
		}
		switch m := msg.(type) {
		case *jsonrpc.Response:
			s.deliver(m)
		case *jsonrpc.Request:
			if m.IsCall() {
				go s.serverRequest(ctx, m)
			} else {
				s.notification(m)
			}
		}
	}
}

func (s *session) deliver(r *jsonrpc.Response) {
	id, ok := r.ID.Raw().(int64)
	if !ok {
		s.u.log.Warn("response with an id the edge never sent; dropped", "id", r.ID.Raw())
		return
	}
	s.deliverID(id, r)
}

// deliverID hands r to the call with the edge's id, if it still waits.
// The send happens under s.mu, while the call is registered, so that a
// call returned to the pool never receives a response that was not its
// own; the buffer of one is free, as each call gets one answer.
func (s *session) deliverID(id int64, r *jsonrpc.Response) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok {
		// Late answer to a call that timed out or was cancelled.
		return false
	}
	delete(s.calls, id)
	c.resp <- r
	return true
}

// attribute finds the call a server-to-client message belongs to: the call
// whose HTTP stream carried it; else, among the client calls in flight
// (the edge's own list and handshake calls ask nobody), the newest when
// they all have one caller. With several callers, a call whose server is
// already waiting on its client is likely blocked, so the others decide;
// when every call waits on its client, the newest is the one asking more.
// Anything else is ambiguous: nil.
func (s *session) attribute(m *jsonrpc.Request) (attributed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.attributeLocked(m)
	if c == nil {
		return attributed{}, false
	}
	return attributed{c: c, gen: c.gen, opts: c.opts}, true
}

// attributed is a call as attribute found it: what it needs of the call,
// copied under s.mu (calls are reused once they end).
type attributed struct {
	c    *call
	gen  uint64
	opts CallOptions
}

// asking counts a server-to-client request of the call waiting on its
// client (delta 1) or answered (-1), if the call is still the same.
func (s *session) asking(a attributed, delta int) {
	s.mu.Lock()
	if a.c.gen == a.gen {
		a.c.asking += delta
	}
	s.mu.Unlock()
}

func (s *session) attributeLocked(m *jsonrpc.Request) *call {
	if rel, ok := m.Extra.(relatedCall); ok {
		if c, ok := s.calls[int64(rel)]; ok {
			return c
		}
	}
	var all, free []*call
	for _, c := range s.calls {
		if c.opts.Tag == nil {
			continue
		}
		all = append(all, c)
		if c.asking == 0 {
			free = append(free, c)
		}
	}
	switch {
	case len(all) == 0:
		return nil
	case oneCaller(all):
		return newest(all)
	case len(free) > 0 && oneCaller(free):
		return newest(free)
	case len(free) == 0:
		return newest(all)
	}
	return nil
}

func oneCaller(calls []*call) bool {
	for _, c := range calls[1:] {
		if c.opts.Tag != calls[0].opts.Tag {
			return false
		}
	}
	return true
}

func newest(calls []*call) *call {
	n := calls[0]
	for _, c := range calls[1:] {
		if c.started.After(n.started) {
			n = c
		}
	}
	return n
}

func (s *session) serverRequest(ctx context.Context, req *jsonrpc.Request) {
	ctx, cancel := context.WithCancel(ctx)
	key := idString(req.ID)
	s.mu.Lock()
	s.incoming[key] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.incoming, key)
		s.mu.Unlock()
		cancel()
	}()

	var resp *jsonrpc.Response
	switch {
	case req.Method == protocol.MethodPing:
		resp = jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
	default:
		if a, ok := s.attribute(req); ok && a.opts.Request != nil {
			s.asking(a, 1)
			resp = a.opts.Request(ctx, req)
			s.asking(a, -1)
		} else if s.u.opts.OnRequest != nil {
			resp = s.u.opts.OnRequest(ctx, req)
		} else {
			resp = jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no client to forward %s to", req.Method))
		}
	}
	if resp == nil {
		return // cancelled by the server
	}
	resp.ID = req.ID
	if err := s.conn.Write(context.WithoutCancel(ctx), resp); err != nil {
		s.u.log.Debug("could not answer a server request", "method", req.Method, "err", err)
	}
}

func (s *session) notification(n *jsonrpc.Request) {
	switch n.Method {
	case protocol.NotificationProgress:
		s.progressNotification(n)
	case protocol.NotificationCancelled:
		// The server gives up on one of its own requests to a client.
		raw, ok := jsonrpc.Fields(n.Params)
		if ok != nil {
			return
		}
		id, err := jsonrpc.ParseID(raw["requestId"])
		if err != nil {
			return
		}
		s.mu.Lock()
		cancel := s.incoming[idString(id)]
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case protocol.NotificationToolsChanged:
		s.queueRefresh(protocol.MethodToolsList)
	case protocol.NotificationPromptsChanged:
		s.queueRefresh(protocol.MethodPromptsList)
	case protocol.NotificationResourcesChanged:
		s.queueRefresh(protocol.MethodResourcesList)
		s.queueRefresh(protocol.MethodResourceTemplatesList)
	case protocol.NotificationMessage:
		if a, ok := s.attribute(n); ok && a.opts.Notify != nil {
			a.opts.Notify(n)
			return
		}
		fallthrough
	default:
		if s.u.opts.OnNotify != nil {
			s.u.opts.OnNotify(n)
		}
	}
}

func (s *session) progressNotification(n *jsonrpc.Request) {
	f, err := jsonrpc.Fields(n.Params)
	if err != nil {
		return
	}
	var tok string
	if json.Unmarshal(f["progressToken"], &tok) != nil {
		return
	}
	// What the call's owner needs is copied under the lock: the call may
	// end, and be reused, right after.
	id, ok := strings.CutPrefix(tok, edgeTokenPrefix)
	if !ok {
		return
	}
	n64, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	c := s.progress[n64]
	var notify func(*jsonrpc.Request)
	var token json.RawMessage
	if c != nil {
		select {
		case c.progress <- struct{}{}:
		default:
		}
		// A copy: the call's buffer goes with it when it ends.
		notify, token = c.opts.Notify, append(json.RawMessage(nil), c.token...)
	}
	s.mu.Unlock()
	if notify == nil {
		return // progress for a call that has ended, or nobody to tell
	}
	f["progressToken"] = token
	params, err := json.Marshal(f)
	if err != nil {
		return
	}
	notify(&jsonrpc.Request{Method: n.Method, Params: params})
}

func (s *session) queueRefresh(method string) {
	select {
	case s.refresh <- method:
	default: // a refresh of everything is already due
	}
}

// refresher fetches lists again after list_changed, one at a time, so that
// a server flooding notifications costs one fetch per burst.
func (s *session) refresher(ctx context.Context) {
	// A list_changed that comes during the handshake (servers often add
	// tools once initialized) waits for the lists initialize fetched:
	// refreshing from the empty lists before them would drop every list
	// but the one refreshed when stored over them.
	select {
	case <-ctx.Done():
		return
	case <-s.listed:
	}
	for {
		select {
		case <-ctx.Done():
			return
		case method := <-s.refresh:
			pending := map[string]bool{method: true}
			// Coalesce the burst.
			for more := true; more; {
				select {
				case m := <-s.refresh:
					pending[m] = true
				default:
					more = false
				}
			}
			old := s.u.lists.Load()
			next := *old
			for m := range pending {
				items, err := s.list(ctx, m)
				if err != nil {
					s.u.log.Warn("refresh after list_changed failed", "method", m, "err", err)
					continue
				}
				switch m {
				case protocol.MethodToolsList:
					next.Tools = items
				case protocol.MethodPromptsList:
					next.Prompts = items
				case protocol.MethodResourcesList:
					next.Resources = items
				case protocol.MethodResourceTemplatesList:
					next.ResourceTemplates = items
				}
			}
			s.mu.Lock()
			live := s.closed == nil
			s.mu.Unlock()
			if live {
				s.u.lists.Store(&next)
				if s.u.opts.OnChange != nil {
					s.u.opts.OnChange()
				}
			}
		}
	}
}

// initialize performs the handshake as a client that can route roots,
// sampling and elicitation, then fetches every list the server offers.
func (s *session) initialize(ctx context.Context) (*Lists, error) {
	if sc, ok := s.conn.(statelessConn); ok {
		lists, ok, err := s.discover(ctx, sc)
		if err != nil {
			return nil, err
		}
		if ok {
			return lists, nil
		}
	}
	clientInfo := s.clientInfo()
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": protocol.Latest,
		"capabilities": map[string]any{
			"roots":       map[string]any{"listChanged": true},
			"sampling":    map[string]any{},
			"elicitation": map[string]any{},
		},
		"clientInfo": clientInfo,
	})
	resp, err := s.call(ctx, protocol.MethodInitialize, params, CallOptions{})
	if err != nil {
		return nil, err
	}
	if e := jsonrpc.WireError(resp); e != nil {
		return nil, fmt.Errorf("server refused initialize: %s (code %d)", e.Message, e.Code)
	}
	lists := &Lists{InitRaw: resp.Result}
	if err := json.Unmarshal(resp.Result, &lists.Init); err != nil {
		return nil, fmt.Errorf("initialize result: %w", err)
	}
	if !protocol.Supported(lists.Init.ProtocolVersion) {
		return nil, fmt.Errorf("server answered with protocol version %q, which the edge does not speak", lists.Init.ProtocolVersion)
	}
	if in, ok := s.conn.(interface{ Initialized(version string) }); ok {
		in.Initialized(lists.Init.ProtocolVersion)
	}
	if err := s.conn.Write(ctx, &jsonrpc.Request{Method: protocol.NotificationInitialized}); err != nil {
		return nil, fmt.Errorf("send initialized: %w", err)
	}
	if err := s.fetchLists(ctx, lists); err != nil {
		return nil, err
	}
	return lists, nil
}

// fetchLists fetches every list the server's capabilities offer.
func (s *session) fetchLists(ctx context.Context, lists *Lists) error {
	caps := lists.Init.Capabilities
	fetch := []struct {
		offered bool
		method  string
		into    *[]json.RawMessage
	}{
		{caps.Tools != nil, protocol.MethodToolsList, &lists.Tools},
		{caps.Prompts != nil, protocol.MethodPromptsList, &lists.Prompts},
		{caps.Resources != nil, protocol.MethodResourcesList, &lists.Resources},
		{caps.Resources != nil, protocol.MethodResourceTemplatesList, &lists.ResourceTemplates},
	}
	for _, f := range fetch {
		if !f.offered {
			continue
		}
		items, err := s.list(ctx, f.method)
		if err != nil {
			return fmt.Errorf("%s: %w", f.method, err)
		}
		*f.into = items
	}
	return nil
}

// listKeys names the array in each list result.
var listKeys = map[string]string{
	protocol.MethodToolsList:             "tools",
	protocol.MethodPromptsList:           "prompts",
	protocol.MethodResourcesList:         "resources",
	protocol.MethodResourceTemplatesList: "resourceTemplates",
}

// list fetches every page of a list.
func (s *session) list(ctx context.Context, method string) ([]json.RawMessage, error) {
	key := listKeys[method]
	var all []json.RawMessage
	cursor := ""
	for page := 0; page < maxListPages; page++ {
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		resp, err := s.call(ctx, method, params, CallOptions{})
		if err != nil {
			return nil, err
		}
		if e := jsonrpc.WireError(resp); e != nil {
			if e.Code == jsonrpc.CodeMethodNotFound {
				return nil, nil // offered but not implemented: an empty list
			}
			return nil, fmt.Errorf("server error: %s (code %d)", e.Message, e.Code)
		}
		var r struct {
			NextCursor string `json:"nextCursor"`
		}
		f, err := jsonrpc.Fields(resp.Result)
		if err != nil {
			return nil, err
		}
		var items []json.RawMessage
		if raw, ok := f[key]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("%s is not an array", key)
			}
		}
		all = append(all, items...)
		_ = json.Unmarshal(resp.Result, &r)
		if r.NextCursor == "" {
			return all, nil
		}
		if r.NextCursor == cursor {
			return nil, errors.New("server repeated its cursor")
		}
		cursor = r.NextCursor
	}
	return nil, fmt.Errorf("more than %d pages", maxListPages)
}

// relatedCall is set as Request.Extra by transports that know which call's
// stream carried a server-to-client message.
type relatedCall int64
