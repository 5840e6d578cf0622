package downstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// Header values of SSE answers, shared (never changed; net/http copies
// them when it writes the header).
var (
	hdrEventStream = []string{"text/event-stream"}
	hdrNoCache     = []string{"no-cache, no-transform"}
	hdrNo          = []string{"no"}
)

// setStreamHeaders sets the headers of an SSE answer.
func setStreamHeaders(h http.Header) {
	h["Content-Type"] = hdrEventStream
	h["Cache-Control"] = hdrNoCache
	h["X-Accel-Buffering"] = hdrNo
}

// errSlowClient ends a session whose client does not read its stream.
var errSlowClient = errors.New("client does not read its stream")

// event is one message on an SSE stream.
type event struct {
	seq  int
	name string // "" for "message"
	data []byte
	resp bool // a response to a client request
	// note marks a notification (progress, a log message): under pressure
	// it gives way, where an answer or a request never does.
	note bool
}

// stream is one logical SSE stream of a session: the legacy GET stream,
// the streamable standalone GET stream, or the stream of one POST. Senders
// append events; the HTTP handler attached to it writes them. Events are
// kept (up to a cap) so that a client can resume with Last-Event-ID after a
// broken connection, and a client that stops reading is found out by the
// cap instead of by memory.
type stream struct {
	id    string // "" on the legacy transport, which has no event ids
	limit int

	mu       sync.Mutex
	events   []event // retained events, ascending seq
	next     int     // seq of the next event
	attached bool
	wake     chan struct{}
	closed   bool
	err      error
	waiting  map[any]bool // request ids whose responses are still due
	dropped  int          // notifications that gave way
}

func newStream(id string, limit int) *stream {
	return &stream{id: id, limit: limit, wake: make(chan struct{}, 1), next: 1}
}

// push appends an event. Beyond limit events held, the oldest
// notifications give way (a server flooding progress must not cost the
// client its answer); only a backlog of answers and requests beyond limit
// fails the stream with errSlowClient. A reader that stops reading is
// caught by the write deadline, not here.
func (s *stream) push(name string, data []byte, resp bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushLocked(name, data, resp, false)
}

// pushNote appends a notification, which may give way under pressure.
func (s *stream) pushNote(name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushLocked(name, data, false, true)
}

func (s *stream) pushLocked(name string, data []byte, resp, note bool) error {
	if s.closed {
		return s.errLocked()
	}
	s.events = append(s.events, event{seq: s.next, name: name, data: data, resp: resp, note: note})
	s.next++
	if len(s.events) > s.limit {
		s.dropNotesLocked(len(s.events) - s.limit/2)
	}
	if len(s.events) > s.limit {
		s.closed, s.err = true, errSlowClient
	}
	s.signal()
	return nil
}

// dropNotesLocked drops up to n of the oldest notifications.
func (s *stream) dropNotesLocked(n int) {
	kept := s.events[:0]
	for _, e := range s.events {
		if n > 0 && e.note {
			n--
			s.dropped++
			continue
		}
		kept = append(kept, e)
	}
	clear(s.events[len(kept):])
	s.events = kept
}

// pushOrTrim appends an event to a stream that may have no reader (the
// standalone stream): while none is attached, the oldest half of the
// events give way beyond limit instead of the stream failing, so that a
// client that opens its GET stream late is not dropped for it. It reports
// whether events were dropped.
func (s *stream) pushOrTrim(data []byte) (trimmed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.attached && len(s.events) >= s.limit {
		s.events = s.events[len(s.events)/2:]
		trimmed = true
	}
	return trimmed, s.pushLocked("", data, false, isNote(data))
}

func (s *stream) errLocked() error {
	if s.err != nil {
		return s.err
	}
	return errors.New("stream closed")
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// expect records request ids whose responses will go on this stream.
func (s *stream) expect(ids []jsonrpc.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting = map[any]bool{}
	for _, id := range ids {
		s.waiting[jsonrpc.IDKey(id)] = true
	}
}

// answer appends a response and reports whether every expected response
// has now been sent (the stream is complete).
func (s *stream) answer(r *jsonrpc.Response) (complete bool, err error) {
	data, err := jsonrpc.Encode(r)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pushLocked("", data, true, false); err != nil {
		return false, err
	}
	delete(s.waiting, jsonrpc.IDKey(r.ID))
	if len(s.waiting) > 0 {
		return false, nil
	}
	// The last answer ends the stream in the same step, so that a reader
	// woken by it never sees every answer but not the end (and writes SSE
	// where plain JSON was due).
	s.closed = true
	return true, nil
}

// empty reports whether every event has been written (and let go).
func (s *stream) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events) == 0
}

// owns reports whether the response to id goes on this stream.
func (s *stream) owns(id jsonrpc.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting[jsonrpc.IDKey(id)]
}

// complete reports whether every expected response has been sent.
func (s *stream) complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting != nil && len(s.waiting) == 0
}

// close ends the stream for writers; retained events can still be read.
func (s *stream) close(err error) {
	s.mu.Lock()
	if !s.closed {
		s.closed, s.err = true, err
	}
	s.signal()
	s.mu.Unlock()
}

// attach claims the stream for one HTTP response; false when another
// holds it.
func (s *stream) attach() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached {
		return false
	}
	s.attached = true
	return true
}

func (s *stream) detach() {
	s.mu.Lock()
	s.attached = false
	s.mu.Unlock()
}

// take returns events after seq, and whether the stream is closed.
func (s *stream) take(after int) ([]event, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event
	for _, e := range s.events {
		if e.seq > after {
			out = append(out, e)
		}
	}
	return out, s.closed, s.err
}

// ack forgets events up to seq once written, unless the stream keeps them
// for resumption (keep), in which case only the oldest beyond limit/2 go.
func (s *stream) ack(seq int, keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.events) && s.events[i].seq <= seq {
		i++
	}
	if keep {
		// Keep some history for Last-Event-ID, but bounded.
		if extra := i - s.limit/2; extra > 0 {
			s.events = s.events[extra:]
		}
		return
	}
	s.events = s.events[i:]
}

// eventID names an event for Last-Event-ID.
func (s *stream) eventID(seq int) string {
	return s.id + "_" + strconv.Itoa(seq)
}

// parseEventID splits a Last-Event-ID into stream id and seq.
func parseEventID(v string) (string, int, bool) {
	i := bytes.LastIndexByte([]byte(v), '_')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(v[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return v[:i], n, true
}

// sseWriter writes events to an HTTP response.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	withIDs bool
	s       *stream
	// done, when set, ends the pump too (the session's end); a nil
	// channel never does.
	done <-chan struct{}
	// timeout bounds each write (DefaultStreamWriteTimeout when 0).
	timeout time.Duration
}

func (w *sseWriter) write(e event) error {
	var b bytes.Buffer
	if w.withIDs {
		b.WriteString("id: ")
		b.WriteString(w.s.eventID(e.seq))
		b.WriteByte('\n')
	}
	if e.name != "" {
		b.WriteString("event: ")
		b.WriteString(e.name)
		b.WriteByte('\n')
	}
	b.WriteString("data: ")
	b.Write(e.data)
	b.WriteString("\n\n")
	_, err := w.w.Write(b.Bytes())
	return err
}

// DefaultStreamWriteTimeout bounds one write to an SSE stream. A client
// that takes longer than this to take a few kilobytes has stopped reading:
// the write fails and the client is dropped. Without it a write to a
// connection whose peer reads nothing blocks once the socket buffers are
// full, forever.
const DefaultStreamWriteTimeout = 10 * time.Second

func (w *sseWriter) writeTimeout() time.Duration {
	if w.timeout > 0 {
		return w.timeout
	}
	return DefaultStreamWriteTimeout
}

// pump writes the stream's events after seq until the stream is complete
// or closed, ctx ends, or writing fails, sending a keep-alive comment when
// idle. It returns the seq of the last event written.
func (w *sseWriter) pump(ctx context.Context, after int, keepAlive time.Duration, until func() bool, keep bool) (int, error) {
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		evs, closed, err := w.s.take(after)
		if len(evs) > 0 {
			_ = w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout()))
		}
		for _, e := range evs {
			if werr := w.write(e); werr != nil {
				return after, w.failure(werr)
			}
			after = e.seq
		}
		if len(evs) > 0 {
			if ferr := w.rc.Flush(); ferr != nil {
				return after, w.failure(ferr)
			}
			_ = w.rc.SetWriteDeadline(time.Time{})
			w.s.ack(after, keep)
		}
		if closed {
			return after, err
		}
		if until != nil && until() {
			return after, nil
		}
		select {
		case <-ctx.Done():
			return after, ctx.Err()
		case <-w.done:
			return after, context.Canceled
		case <-w.s.wake:
		case <-ticker.C:
			_ = w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout()))
			if _, err := w.w.Write([]byte(": keep-alive\n\n")); err != nil {
				return after, w.failure(err)
			}
			if err := w.rc.Flush(); err != nil {
				return after, w.failure(err)
			}
			_ = w.rc.SetWriteDeadline(time.Time{})
		}
	}
}

// failure is the error a failed write ends the pump with: errSlowClient
// when the stream reached its cap meanwhile (the write blocked because the
// client stopped reading), the write's own error otherwise.
func (w *sseWriter) failure(err error) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.err == errSlowClient {
		return errSlowClient
	}
	return err
}

// isNote reports whether an encoded message is a notification: a method
// and no id.
func isNote(data []byte) bool {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	return json.Unmarshal(data, &m) == nil && m.Method != "" && len(m.ID) == 0
}

// stalled reports whether a stream ended because its client stopped
// reading: a write that timed out, or a backlog of what may not be dropped.
func stalled(err error) bool {
	return errors.Is(err, errSlowClient) || errors.Is(err, os.ErrDeadlineExceeded)
}
