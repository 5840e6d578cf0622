package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// lineConn frames JSON-RPC as newline-delimited JSON over a pipe, as the
// stdio transport says. Unlike a strict decoder it survives a server that
// writes something else to stdout: a line that is not a JSON-RPC message is
// logged and skipped, and a line over the size cap is dropped whole, so
// neither breaks the connection nor grows memory without bound.
type lineConn struct {
	r   *bufio.Reader
	w   io.WriteCloser
	max int
	log *slog.Logger

	wmu sync.Mutex

	closeOnce sync.Once
	closed    chan struct{}
	msgs      chan readResult

	skipped     int
	lastSkipLog time.Time

	// respond: see Respond. pending counts the messages on their way
	// through Read or being handled by its reader; held is the reader's
	// own note that it holds one.
	respond atomic.Pointer[func(id int64, r *jsonrpc.Response) bool]
	pending atomic.Int64
	held    bool
}

type readResult struct {
	msg jsonrpc.Message
	err error
}

// ErrMessageTooLarge reports an upstream message over the size cap.
var ErrMessageTooLarge = errors.New("message exceeds the size cap")

func newLineConn(r io.Reader, w io.WriteCloser, maxMessage int, log *slog.Logger) *lineConn {
	c := &lineConn{
		r:      bufio.NewReaderSize(r, 64<<10),
		w:      w,
		max:    maxMessage,
		log:    log,
		closed: make(chan struct{}),
		msgs:   make(chan readResult),
	}
	go c.readLoop()
	return c
}

func (c *lineConn) readLoop() {
	for {
		line, dropped, err := c.readLine()
		if dropped != nil {
			// A response over the cap still ends its call: with an error
			// saying why, instead of a wait for the call's timeout.
			if resp := oversizedResponse(dropped, c.max); resp != nil {
				if !c.hand(resp) {
					return
				}
			}
		}
		if err != nil {
			select {
			case c.msgs <- readResult{err: err}:
			case <-c.closed:
			}
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		msgs, batch, derr := jsonrpc.Decode(line)
		if derr != nil || batch {
			c.skip("not a JSON-RPC message", line, derr)
			continue
		}
		if c.answer(msgs[0]) {
			continue
		}
		if !c.hand(msgs[0]) {
			return
		}
	}
}

// hand passes a message to Read; false when the connection closed first.
func (c *lineConn) hand(m jsonrpc.Message) bool {
	c.pending.Add(1)
	select {
	case c.msgs <- readResult{msg: m}:
		return true
	case <-c.closed:
		return false
	}
}

// Respond makes responses go to f as soon as they are read, while the
// reader of Read has handled everything before them (the stream is one
// ordered line of messages: a response must not overtake a notification
// of its call still being handled). f reports false for a response nobody
// waits for.
func (c *lineConn) Respond(f func(id int64, r *jsonrpc.Response) bool) {
	c.respond.Store(&f)
}

func (c *lineConn) answer(m jsonrpc.Message) bool {
	f := c.respond.Load()
	if f == nil || c.pending.Load() > 0 {
		return false
	}
	r, ok := m.(*jsonrpc.Response)
	if !ok {
		return false
	}
	id, ok := r.ID.Raw().(int64)
	return ok && (*f)(id, r)
}

// readLine returns the next line. A line longer than the cap is consumed
// and reported (the message is lost; the connection is not): its first
// bytes come back as dropped, the line itself as nil.
func (c *lineConn) readLine() (line, dropped []byte, err error) {
	var buf []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		if c.max > 0 && len(buf)+len(chunk) > c.max {
			// Drop the rest of this line, keeping only its start.
			head := append(buf[:min(len(buf), oversizedHead)], chunk[:min(len(chunk), oversizedHead-min(len(buf), oversizedHead))]...)
			head = bytes.Clone(head)
			n := len(buf) + len(chunk)
			for errors.Is(err, bufio.ErrBufferFull) {
				chunk, err = c.r.ReadSlice('\n')
				n += len(chunk)
			}
			c.skip(fmt.Sprintf("line of %d bytes exceeds the %d-byte cap", n, c.max), head, ErrMessageTooLarge)
			if err != nil {
				return nil, nil, err // the line never ended: nor does its message
			}
			return nil, head, nil
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if len(bytes.TrimSpace(buf)) > 0 && errors.Is(err, io.EOF) {
				return buf, nil, nil
			}
			return nil, nil, err
		}
		return buf, nil, nil
	}
}

// oversizedHead is how much of a line over the cap is kept to find the id
// of the response it carried.
const oversizedHead = 4 << 10

// oversizedResponse returns an error response for the call whose response
// was the dropped line that starts with head, or nil when head does not
// show a response's id before its result or error (the line was a request
// or a notification, the id came after the result, or it is no JSON).
func oversizedResponse(head []byte, max int) *jsonrpc.Response {
	dec := json.NewDecoder(bytes.NewReader(head))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var id json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		switch key, _ := tok.(string); key {
		case "result", "error":
			if id == nil {
				return nil
			}
			pid, err := jsonrpc.ParseID(id)
			if err != nil || !pid.IsValid() {
				return nil
			}
			return jsonrpc.ErrorResponse(pid, jsonrpc.NewError(jsonrpc.CodeInternalError,
				"the server's response exceeds the edge's cap of %d bytes on one message", max))
		case "method":
			return nil // a request or a notification: nobody waits for it
		case "id":
			if err := dec.Decode(&id); err != nil {
				return nil
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil
			}
		}
	}
	return nil
}

// skip logs a dropped line, at most once a second with a count, so that a
// server flooding stdout cannot flood the log.
func (c *lineConn) skip(why string, line []byte, err error) {
	c.skipped++
	if time.Since(c.lastSkipLog) < time.Second {
		return
	}
	c.lastSkipLog = time.Now()
	const show = 200
	if len(line) > show {
		line = line[:show]
	}
	c.log.Warn("upstream wrote a line that is not an MCP message; skipped",
		"reason", why, "err", err, "skipped_total", c.skipped, "line_start", string(line))
}

// Read returns the next message.
func (c *lineConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	// The reader is done with what it read before (Read has one reader,
	// which handles a message before it reads the next).
	if c.held {
		c.held = false
		c.pending.Add(-1)
	}
	select {
	case r := <-c.msgs:
		c.held = r.msg != nil
		return r.msg, r.err
	case <-c.closed:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Write sends one message as one line.
func (c *lineConn) Write(_ context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.Encode(msg)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return io.ErrClosedPipe
	default:
	}
	_, err = c.w.Write(data)
	return err
}

// Close closes the write side; the read loop ends when the pipe does.
func (c *lineConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.w.Close()
	})
	return nil
}
