package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The benchmark's own MCP clients: raw JSON-RPC over net/http and pipes,
// no SDK, so that the load generator costs little of the two cores it
// shares with what it measures. Each speaks one transport:
//
//	streamClient     streamable HTTP with a session (2025-11-25)
//	statelessClient  streamable HTTP, 2026-07-28: every request stands alone
//	sseClient        the 2024-11-05 HTTP+SSE transport
//	stdioProc        a child on stdin/stdout (procs.go)
//
// They check answers only as much as a benchmark must: a response with the
// request's id and a result that is not an error.

const (
	versionSession   = "2025-11-25"
	versionStateless = "2026-07-28"
	initParams       = `{"protocolVersion":"` + versionSession + `","capabilities":{},"clientInfo":{"name":"atraxbench","version":"1"}}`
	statelessMeta    = `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + versionStateless + `","io.modelcontextprotocol/clientCapabilities":{}}`
	callTimeout      = 30 * time.Second
)

// caller makes one request and returns its response.
type caller interface {
	call(ctx context.Context, method string, params []byte) ([]byte, error)
	close()
}

// newHTTPClient returns the client every HTTP client of the benchmark
// shares: keep-alive connections, enough of them for the most sessions a
// figure opens, nothing else.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

func appendRequest(b []byte, id int64, method string, params []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":"`...)
	b = append(b, method...)
	b = append(b, '"')
	if len(params) > 0 {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// responseID returns the numeric id of a response (a message with result
// or error and no method).
func responseID(msg []byte) (int64, bool) {
	var m struct {
		ID     *int64          `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(msg, &m) != nil || m.ID == nil || m.Method != "" || (m.Result == nil && m.Error == nil) {
		return 0, false
	}
	return *m.ID, true
}

// checkResult fails a response that carries an error or an error result.
func checkResult(msg []byte) error {
	if bytes.Contains(msg, []byte(`"error":{`)) || bytes.Contains(msg, []byte(`"isError":true`)) {
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return fmt.Errorf("error answer: %s", msg)
	}
	return nil
}

// streamClient speaks streamable HTTP in a session.
type streamClient struct {
	hc      *http.Client
	url     string
	auth    string // "Bearer TOKEN", or "" for none
	sid     string
	version string
	next    int64
	buf     []byte
	body    bytes.Buffer
}

// openStream initializes a session at url.
func openStream(ctx context.Context, hc *http.Client, url, token string) (*streamClient, error) {
	c := &streamClient{hc: hc, url: url}
	if token != "" {
		c.auth = "Bearer " + token
	}
	if _, err := c.call(ctx, "initialize", []byte(initParams)); err != nil {
		return nil, fmt.Errorf("initialize %s: %w", url, err)
	}
	c.version = versionSession
	if err := c.notify(ctx, "notifications/initialized"); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *streamClient) newRequest(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url, r)
	if err != nil {
		return nil, err
	}
	h := req.Header
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	h["Accept"] = []string{"application/json, text/event-stream"}
	if c.auth != "" {
		h["Authorization"] = []string{c.auth}
	}
	if c.sid != "" {
		h["Mcp-Session-Id"] = []string{c.sid}
	}
	if c.version != "" {
		h["Mcp-Protocol-Version"] = []string{c.version}
	}
	return req, nil
}

func (c *streamClient) notify(ctx context.Context, method string) error {
	req, err := c.newRequest(ctx, http.MethodPost, []byte(`{"jsonrpc":"2.0","method":"`+method+`"}`))
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s answered %s", method, resp.Status)
	}
	return nil
}

func (c *streamClient) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.next++
	c.buf = appendRequest(c.buf[:0], c.next, method, params)
	req, err := c.newRequest(ctx, http.MethodPost, c.buf)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && method == "initialize" {
		c.sid = sid
	}
	return readAnswer(resp, &c.body, c.next)
}

// readAnswer reads the response to request id from a POST's answer: a JSON
// body, or an SSE stream that ends with it.
func readAnswer(resp *http.Response, body *bytes.Buffer, id int64) ([]byte, error) {
	body.Reset()
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	data := body.Bytes()
	if resp.StatusCode != http.StatusOK {
		if len(data) > 300 {
			data = data[:300]
		}
		return nil, fmt.Errorf("HTTP %s: %s", resp.Status, data)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for _, line := range bytes.Split(data, []byte("\n")) {
			msg, ok := bytes.CutPrefix(line, []byte("data: "))
			if !ok {
				continue
			}
			if got, ok := responseID(msg); ok && got == id {
				return msg, checkResult(msg)
			}
		}
		return nil, errors.New("the SSE answer had no response")
	}
	return data, checkResult(data)
}

// stream opens the session's standalone GET stream and returns its body,
// which the caller keeps open (an idle session as SDK clients hold one).
func (c *streamClient) stream(ctx context.Context) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	req.Header["Accept"] = []string{"text/event-stream"}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET stream: %s", resp.Status)
	}
	return resp.Body, nil
}

func (c *streamClient) close() {
	if c.sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if req, err := c.newRequest(ctx, http.MethodDelete, nil); err == nil {
		if resp, err := c.hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	c.sid = ""
}

// statelessClient speaks the 2026-07-28 revision: no session; every POST
// carries the revision in a header and in _meta, and the method and name
// in headers.
type statelessClient struct {
	hc     *http.Client
	url    string
	auth   string
	next   int64
	buf    []byte
	params []byte
	body   bytes.Buffer
}

func newStateless(hc *http.Client, url, token string) *statelessClient {
	c := &statelessClient{hc: hc, url: url}
	if token != "" {
		c.auth = "Bearer " + token
	}
	return c
}

// call adds the stateless _meta to params (an object) and posts it.
func (c *statelessClient) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.params = append(c.params[:0], '{')
	c.params = append(c.params, statelessMeta...)
	if inner := bytes.TrimSpace(params); len(inner) > 2 {
		c.params = append(c.params, ',')
		c.params = append(c.params, inner[1:]...)
	} else {
		c.params = append(c.params, '}')
	}
	c.next++
	c.buf = appendRequest(c.buf[:0], c.next, method, c.params)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.buf))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{"application/json, text/event-stream"}
	h["Mcp-Protocol-Version"] = []string{versionStateless}
	h["Mcp-Method"] = []string{method}
	if name := nameOf(params); name != "" {
		h["Mcp-Name"] = []string{name}
	}
	if c.auth != "" {
		h["Authorization"] = []string{c.auth}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readAnswer(resp, &c.body, c.next)
}

func (c *statelessClient) close() {}

// nameOf returns the "name" of a params object, "" for none.
func nameOf(params []byte) string {
	var p struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(params, &p)
	return p.Name
}

// sseClient speaks the 2024-11-05 transport: one GET /sse stream carries
// every answer; requests are POSTed to the endpoint it names.
type sseClient struct {
	hc       *http.Client
	auth     string
	endpoint string
	body     io.ReadCloser
	cancel   context.CancelFunc

	next int64
	buf  []byte

	mu      sync.Mutex
	waiting map[int64]chan []byte
	err     error
	done    chan struct{}
}

// openSSE opens the stream at base+"/sse" and reads the endpoint event.
// With read, responses are read and handed to callers; without, the
// stream is only held open (an idle session).
func openSSE(ctx context.Context, hc *http.Client, base, token string, read bool) (*sseClient, error) {
	sctx, cancel := context.WithCancel(context.Background())
	c := &sseClient{hc: hc, cancel: cancel, waiting: map[int64]chan []byte{}, done: make(chan struct{})}
	if token != "" {
		c.auth = "Bearer " + token
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base+"/sse", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header["Accept"] = []string{"text/event-stream"}
	if c.auth != "" {
		req.Header["Authorization"] = []string{c.auth}
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /sse: %s", resp.Status)
	}
	c.body = resp.Body
	br := bufio.NewReaderSize(resp.Body, 4096)
	ev, data, err := readEvent(br)
	if err != nil || ev != "endpoint" {
		c.close()
		return nil, fmt.Errorf("no endpoint event (%q): %v", ev, err)
	}
	ep := string(data)
	switch {
	case strings.HasPrefix(ep, "http://"):
		c.endpoint = ep
	case strings.HasPrefix(ep, "/"):
		c.endpoint = base + ep
	default:
		c.endpoint = base + "/" + ep
	}
	if read {
		go c.readLoop(br)
	}
	_ = ctx
	return c, nil
}

// readEvent reads one SSE event: its name and data.
func readEvent(br *bufio.Reader) (string, []byte, error) {
	name := "message"
	var data []byte
	has := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if has {
				return name, data, nil
			}
		case bytes.HasPrefix(line, []byte("event:")):
			name = string(bytes.TrimSpace(line[6:]))
			has = true
		case bytes.HasPrefix(line, []byte("data:")):
			v := line[5:]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			data = append(data, v...)
			has = true
		}
	}
}

func (c *sseClient) readLoop(br *bufio.Reader) {
	defer close(c.done)
	for {
		ev, data, err := readEvent(br)
		if err != nil {
			c.mu.Lock()
			c.err = err
			for id, ch := range c.waiting {
				close(ch)
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			return
		}
		if ev != "message" {
			continue
		}
		id, ok := responseID(data)
		if !ok {
			continue
		}
		c.mu.Lock()
		ch := c.waiting[id]
		delete(c.waiting, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- data
		}
	}
}

func (c *sseClient) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	if c.auth != "" {
		req.Header["Authorization"] = []string{c.auth}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST message: %s", resp.Status)
	}
	return nil
}

// initialize performs the handshake over the stream.
func (c *sseClient) initialize(ctx context.Context) error {
	if _, err := c.call(ctx, "initialize", []byte(initParams)); err != nil {
		return err
	}
	return c.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
}

func (c *sseClient) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.next++
	id := c.next
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.waiting[id] = ch
	c.mu.Unlock()
	c.buf = appendRequest(c.buf[:0], id, method, params)
	if err := c.post(ctx, c.buf); err != nil {
		return nil, err
	}
	select {
	case msg, ok := <-ch:
		if !ok {
			return nil, errors.New("the SSE stream ended")
		}
		return msg, checkResult(msg)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *sseClient) close() {
	c.cancel()
	if c.body != nil {
		c.body.Close()
	}
}
