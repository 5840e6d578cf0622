package downstream

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Limits on the MCP endpoints (Options.Limits): each HTTP request that
// carries calls takes them from its token's rate and holds one in-flight
// place per call until the call is answered; opening a stream (GET) takes
// one from the rate; a session holds a session place until it ends (a
// stateless subscriptions/listen stream too, while it is open). What is
// over a limit gets 429 with Retry-After and a JSON-RPC error naming the
// limit, at once.

// subjectOf is the key limits are kept by: the principal's subject.
func subjectOf(p *authn.Principal) string {
	if p == nil {
		return ""
	}
	return p.Subject
}

// refuse answers a request refused by a limit: 429, Retry-After, and a
// JSON-RPC error (with the request's id when it carried one call).
func (h *Handler) refuse(w http.ResponseWriter, id jsonrpc.ID, p *authn.Principal, err error) {
	retry := 1
	var le *limits.Error
	if errors.As(err, &le) {
		retry = le.RetryAfterSeconds()
	}
	h.log.Debug("request refused by a limit", "principal", subjectOf(p), "err", err)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	data, _ := jsonrpc.Encode(jsonrpc.ErrorResponse(id, jsonrpc.NewError(jsonrpc.CodeLimitExceeded, "%v", err)))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(data)
}

// callsOf counts the requests (messages with an id) among msgs.
func callsOf(msgs []jsonrpc.Message) (n int, first jsonrpc.ID) {
	for _, m := range msgs {
		if r, ok := m.(*jsonrpc.Request); ok && r.IsCall() {
			if n == 0 {
				first = r.ID
			}
			n++
		}
	}
	if n != 1 {
		first = jsonrpc.ID{}
	}
	return n, first
}

// releaseAfter returns a function to call once per call; release runs
// after the n-th.
func releaseAfter(n int, release func()) func() {
	var left atomic.Int64
	left.Store(int64(n))
	return func() {
		if left.Add(-1) == 0 {
			release()
		}
	}
}

// boundWrites gives every response of next that is not an SSE stream a
// write deadline of timeout (the config's http.writeTimeout): a client that
// does not read its answer cannot hold a connection forever. Streams have
// none (the edge's http.Server has no WriteTimeout); a client that stops
// reading one is dropped by the stream's cap. net/http lifts the deadline
// once the response is done, so the next request on the connection starts
// without it; and the server's ReadTimeout ends once the body is read, so
// it cuts no stream either.
func boundWrites(timeout time.Duration, next http.Handler) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}, r)
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	wrote   bool
}

func (d *deadlineWriter) WriteHeader(code int) {
	if !d.wrote {
		d.wrote = true
		if !strings.HasPrefix(d.Header().Get("Content-Type"), "text/event-stream") {
			_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
		}
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	if !d.wrote {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
