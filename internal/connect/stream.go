package connect

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// maxStreamFailures is how many times in a row the standalone stream may
// end or fail without delivering anything before the link counts as lost.
const maxStreamFailures = 5

// healthyStream is how long a standalone stream must last to count as
// healthy though it delivered nothing.
const healthyStream = 5 * time.Second

// listen keeps the standalone GET stream of a streamable HTTP link open
// (MCP 2025-03-26 to 2025-11-25, "Listening for Messages from the
// Server"), forwarding what the remote sends on it, until the link ends.
// A remote that offers no stream (405, or another 4xx but 404) is left
// alone; 404 on a session means the session is gone, and a request that
// cannot be sent means the remote is, either of which loses the link (the
// roundTripper notices both).
func (b *bridge) listen(l *link) {
	var lastID string
	var delay time.Duration
	failures := 0
	for {
		if failures > 0 {
			if delay == 0 {
				delay = time.Duration(failures) * 250 * time.Millisecond
			}
			select {
			case <-time.After(delay):
			case <-l.lostCh:
				return
			case <-l.ctx.Done():
				return
			}
			delay = 0
		}
		if l.isLost() || l.ctx.Err() != nil {
			return
		}
		req, err := http.NewRequestWithContext(l.ctx, http.MethodGet, l.url, nil)
		if err != nil {
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		if sid := l.conn.SessionID(); sid != "" {
			req.Header.Set(headerSessionID, sid)
		}
		if lastID != "" {
			req.Header.Set(headerLastEventID, lastID)
		}
		resp, err := l.client.Do(req)
		if err != nil {
			return // the roundTripper has lost the link, or it was shut
		}
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		switch {
		case resp.StatusCode == http.StatusNotFound && req.Header.Get(headerSessionID) != "":
			resp.Body.Close()
			return // lost by the roundTripper
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			resp.Body.Close()
			l.lose(&lostError{reason: "the remote refused the token on the standalone stream (HTTP " + strconv.Itoa(resp.StatusCode) + ")"})
			return
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			resp.Body.Close()
			b.log.Debug("the remote offers no standalone stream", "status", resp.StatusCode)
			return
		case resp.StatusCode/100 != 2:
			resp.Body.Close()
			failures++
		case ct != "text/event-stream":
			resp.Body.Close()
			b.log.Debug("the remote offers no standalone stream", "content_type", ct)
			return
		default:
			start := time.Now()
			n, id, retry := b.readStream(l, resp.Body)
			resp.Body.Close()
			if id != "" {
				lastID = id
			}
			delay = retry
			// A stream that delivered or lasted was healthy; one that
			// ends at once, again and again, is not.
			if n > 0 || time.Since(start) > healthyStream {
				failures = 0
			}
			failures++
		}
		if failures > maxStreamFailures {
			l.lose(&lostError{reason: "the remote keeps closing the standalone stream"})
			return
		}
	}
}

// readStream forwards the messages of one SSE body and returns how many it
// forwarded, the last event id and the retry delay the remote asked for.
func (b *bridge) readStream(l *link, body io.Reader) (n int, lastID string, retry time.Duration) {
	for ev := range sseEvents(body) {
		if ev.id != "" {
			lastID = ev.id
		}
		if ev.retry > 0 {
			retry = ev.retry
		}
		if len(ev.data) == 0 || (ev.name != "" && ev.name != "message") {
			continue
		}
		msg, err := jsonrpc.DecodeMessage(ev.data)
		if err != nil {
			b.log.Warn("the remote sent an event that is not JSON-RPC; skipped", "err", err)
			continue
		}
		n++
		b.fromRemote(l, msg)
	}
	return n, lastID, retry
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name  string
	id    string
	data  []byte
	retry time.Duration
}

// sseEvents yields the events of a text/event-stream body (the WHATWG
// "event stream interpretation", without BOM handling) until it ends.
func sseEvents(r io.Reader) func(yield func(sseEvent) bool) {
	return func(yield func(sseEvent) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLineLength)
		var ev sseEvent
		var data bytes.Buffer
		hasData := false
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				if hasData || ev.id != "" || ev.retry > 0 {
					ev.data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
					if !yield(ev) {
						return
					}
				}
				ev, hasData = sseEvent{}, false
				data = bytes.Buffer{}
				continue
			}
			if line[0] == ':' {
				continue
			}
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.name = string(value)
			case "data":
				data.Write(value)
				data.WriteByte('\n')
				hasData = true
			case "id":
				ev.id = string(value)
			case "retry":
				if ms, err := strconv.Atoi(string(value)); err == nil && ms > 0 {
					ev.retry = time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
}
