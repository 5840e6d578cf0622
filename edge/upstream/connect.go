package upstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/atrax-mcp/atrax/edge/protocol"
)

// HTTPDoer sends HTTP requests (an *http.Client).
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// connect opens the transport the spec names and returns it with the
// transport's name for reports.
func (u *Upstream) connect(ctx context.Context) (conn, string, error) {
	s := &u.spec
	switch s.Transport {
	case "stdio":
		c, err := startStdio(s, s.MaxMessage, u.log)
		return c, "stdio", err
	case "sse":
		c, err := u.connectSSE(ctx)
		return c, "sse", err
	case "http":
		return newHTTPConn(u.client(), s.URL, s.Headers, s.MaxMessage, u.log), "http", nil
	case "":
		// A URL without a transport: streamable HTTP, falling back to the
		// legacy SSE transport when the server does not take a POST, as the
		// spec's backwards-compatibility section tells clients to do.
		ok, err := probeStreamable(ctx, u.client(), s.URL, s.Headers)
		if err != nil {
			return nil, "", err
		}
		if ok {
			return newHTTPConn(u.client(), s.URL, s.Headers, s.MaxMessage, u.log), "http", nil
		}
		u.log.Info("server does not take streamable HTTP; using legacy SSE", "url", redactURL(s.URL))
		c, err := u.connectSSE(ctx)
		return c, "sse", err
	}
	return nil, "", fmt.Errorf("unknown transport %q", s.Transport)
}

func (u *Upstream) client() HTTPDoer {
	if u.opts.HTTPClient != nil {
		return u.opts.HTTPClient
	}
	return u.http
}

// maxIdlePerServer is how many idle keep-alive connections the edge keeps
// to one remote server. Every call is a POST of its own, so as many calls
// as run at once need a connection each; with net/http's default of 2,
// the rest would be dialled anew and closed after every call (a TCP
// handshake per call, and TIME_WAIT sockets piling up under load).
const maxIdlePerServer = 512

// newHTTPClient returns the client of one remote server: its own pool of
// keep-alive connections, closed with the upstream.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdlePerServer
	t.MaxIdleConnsPerHost = maxIdlePerServer
	return &http.Client{Transport: t}
}

// doerTransport lets go-sdk's SSE client send through an HTTPDoer, with
// the server's configured headers on every request.
type doerTransport struct {
	d       HTTPDoer
	headers map[string]string
}

func (t doerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	// A message POSTed for a call carries the call's trace context.
	traceContext.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.d.Do(r)
}

func (u *Upstream) connectSSE(ctx context.Context) (conn, error) {
	client := &http.Client{Transport: doerTransport{d: u.client(), headers: u.spec.Headers}}
	t := &mcp.SSEClientTransport{Endpoint: u.spec.URL, HTTPClient: client, MaxEventSize: u.spec.MaxMessage}
	c, err := t.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to legacy SSE server %s: %w", redactURL(u.spec.URL), err)
	}
	return c, nil
}

// probeStreamable reports whether url answers a streamable HTTP initialize
// POST (true) or refuses POST the way a legacy SSE server does (false):
// 404 or 405 where no POST route exists, 400 where POST needs the session
// of an SSE stream (go-sdk's SSE handler). The probe is an initialize, as
// the spec's backwards-compatibility section says, because a stateful
// streamable server may answer 400 to anything else without a session; a
// session the probe opened is ended at once.
func probeStreamable(ctx context.Context, d HTTPDoer, url string, headers map[string]string) (bool, error) {
	body := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + protocol.Latest +
		`","capabilities":{},"clientInfo":{"name":"atrax-probe","version":"0"}}}`
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, stringsReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := d.Do(req)
	if err != nil {
		return false, fmt.Errorf("reach %s: %w", redactURL(url), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		return false, nil
	}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		if del, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil); err == nil {
			for k, v := range headers {
				del.Header.Set(k, v)
			}
			del.Header.Set("Mcp-Session-Id", sid)
			if r, err := d.Do(del); err == nil {
				r.Body.Close()
			}
		}
	}
	return true, nil
}

// logLines logs each line of r (a child's stderr) until it ends.
func logLines(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		log.Info(sc.Text())
	}
}
