package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
		line, err := c.readLine()
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
		select {
		case c.msgs <- readResult{msg: msgs[0]}:
		case <-c.closed:
			return
		}
	}
}

// readLine returns the next line. A line longer than the cap is consumed
// and reported (the message is lost; the connection is not).
func (c *lineConn) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		if c.max > 0 && len(buf)+len(chunk) > c.max {
			// Drop the rest of this line without keeping it.
			n := len(buf) + len(chunk)
			for errors.Is(err, bufio.ErrBufferFull) {
				chunk, err = c.r.ReadSlice('\n')
				n += len(chunk)
			}
			c.skip(fmt.Sprintf("line of %d bytes exceeds the %d-byte cap", n, c.max), nil, ErrMessageTooLarge)
			if err != nil {
				return nil, err
			}
			buf = buf[:0]
			continue
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if len(bytes.TrimSpace(buf)) > 0 && errors.Is(err, io.EOF) {
				return buf, nil
			}
			return nil, err
		}
		return buf, nil
	}
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
	select {
	case r := <-c.msgs:
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
