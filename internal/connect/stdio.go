package connect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// maxLineLength bounds one message from the client, as go-sdk's
// mcp.DefaultMaxLineLength does.
const maxLineLength = 16 << 20

// The stdio side is framed here rather than with go-sdk's mcp.IOTransport:
// that connection stops reading for good after the first malformed line
// (its read loop exits and later Reads block), which would leave a client
// hanging. A relay answers a parse error and carries on. The messages are
// go-sdk's jsonrpc types either way, so params and results stay raw JSON.

// stdinReader reads newline-delimited JSON-RPC messages (the MCP stdio
// transport).
type stdinReader struct {
	sc *bufio.Scanner
}

func newStdinReader(r io.Reader) *stdinReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineLength)
	return &stdinReader{sc: sc}
}

// errParse wraps a line that is not a JSON-RPC message or batch.
type errParse struct{ err error }

func (e *errParse) Error() string { return e.err.Error() }
func (e *errParse) Unwrap() error { return e.err }

// next returns the messages of the next non-empty line: one, or the
// elements of a batch. At the end of input it returns io.EOF; a line that
// does not parse gives an *errParse, after which reading may go on.
func (r *stdinReader) next() ([]jsonrpc.Message, error) {
	for r.sc.Scan() {
		line := bytes.TrimSpace(r.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if line[0] == '[' {
			var raws []json.RawMessage
			if err := json.Unmarshal(line, &raws); err != nil {
				return nil, &errParse{err}
			}
			if len(raws) == 0 {
				return nil, &errParse{errors.New("empty batch")}
			}
			msgs := make([]jsonrpc.Message, 0, len(raws))
			for _, raw := range raws {
				m, err := jsonrpc.DecodeMessage(raw)
				if err != nil {
					return nil, &errParse{err}
				}
				msgs = append(msgs, m)
			}
			return msgs, nil
		}
		m, err := jsonrpc.DecodeMessage(line)
		if err != nil {
			return nil, &errParse{err}
		}
		return []jsonrpc.Message{m}, nil
	}
	if err := r.sc.Err(); err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return nil, io.EOF
}

// stdoutWriter writes one message per line; it is safe for concurrent use.
// After the first failed write (the client has gone) it writes nothing more
// and closes gone.
type stdoutWriter struct {
	mu   sync.Mutex
	w    io.Writer
	err  error
	gone chan struct{}
}

func newStdoutWriter(w io.Writer) *stdoutWriter {
	return &stdoutWriter{w: w, gone: make(chan struct{})}
}

func (o *stdoutWriter) write(msg jsonrpc.Message) {
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		// Only a Response with an unmarshalable error can get here; say so
		// rather than leave the request unanswered.
		if resp, ok := msg.(*jsonrpc.Response); ok {
			data, _ = jsonrpc.EncodeMessage(errorResponse(resp.ID, jsonrpc.CodeInternalError, "atrax connect: cannot encode the response: "+err.Error()))
		}
		if data == nil {
			return
		}
	}
	o.writeRaw(data)
}

// writeRaw writes one encoded message and a newline.
func (o *stdoutWriter) writeRaw(data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	if _, err := o.w.Write(append(data, '\n')); err != nil {
		o.err = err
		close(o.gone)
	}
}

func (o *stdoutWriter) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// parseErrorLine is the answer to a line that is not JSON-RPC: JSON-RPC 2.0
// wants "id": null here, which jsonrpc.EncodeMessage would omit.
func parseErrorLine(err error) []byte {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": jsonrpc.CodeParseError, "message": "atrax connect: not a JSON-RPC message: " + err.Error()},
	})
	return b
}

// errorResponse is a JSON-RPC error answer to the call id.
func errorResponse(id jsonrpc.ID, code int64, msg string) *jsonrpc.Response {
	return &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg}}
}
