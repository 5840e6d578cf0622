// Package jsonrpc is the edge's raw-message JSON-RPC core. Messages keep
// their params and results as raw JSON: the edge decodes only what routing
// needs (method, id, a name, a URI, a progress token) and passes everything
// else through untouched, unknown fields included.
//
// The message types are go-sdk's (github.com/modelcontextprotocol/go-sdk/
// jsonrpc), so that go-sdk transports carry them without conversion.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Message types, shared with go-sdk's transports.
type (
	ID       = sdk.ID
	Message  = sdk.Message
	Request  = sdk.Request
	Response = sdk.Response
	Error    = sdk.Error
)

// Standard JSON-RPC codes and the MCP codes the edge uses.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeResourceNotFound is MCP's code for an unknown resource URI.
	CodeResourceNotFound = -32002
	// CodeRequestTimeout is the code the edge uses when an upstream call
	// outlives its timeout (the TypeScript SDK's RequestTimeout).
	CodeRequestTimeout = -32001
	// CodeConnectionClosed is the code for a call whose upstream went away
	// before answering (the TypeScript SDK's ConnectionClosed).
	CodeConnectionClosed = -32000
	// CodeRequestCancelled reports a call cancelled by the client.
	CodeRequestCancelled = -32800
	// CodeLimitExceeded reports a request refused because one of the
	// edge's limits (the config's limits object) was reached; the message
	// names the limit. Over HTTP it comes with status 429 and Retry-After.
	CodeLimitExceeded = -32029
)

// StringID returns a string id.
func StringID(s string) ID {
	id, _ := sdk.MakeID(s)
	return id
}

// IntID returns a numeric id.
func IntID(n int64) ID {
	id, _ := sdk.MakeID(float64(n))
	return id
}

// NewError returns an error object.
func NewError(code int64, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorResponse returns a response carrying err.
func ErrorResponse(id ID, err *Error) *Response {
	return &Response{ID: id, Error: err}
}

// ResultResponse returns a response carrying result.
func ResultResponse(id ID, result json.RawMessage) *Response {
	return &Response{ID: id, Result: result}
}

// WireError returns the error of a response as an *Error, or nil.
func WireError(r *Response) *Error {
	if r == nil || r.Error == nil {
		return nil
	}
	var e *Error
	if errors.As(r.Error, &e) {
		return e
	}
	return &Error{Code: CodeInternalError, Message: r.Error.Error()}
}

// Encode returns the wire form of msg. Params, results and error data are
// written as they are (compacted only when they hold line breaks): they
// must hold valid JSON, as they do when they come from Decode or
// json.Marshal.
func Encode(msg Message) ([]byte, error) {
	return AppendMessage(make([]byte, 0, encodedSize(msg)), msg)
}

// encodedSize estimates the wire size of msg, to allocate once.
func encodedSize(msg Message) int {
	switch m := msg.(type) {
	case *Request:
		return 48 + len(m.Method) + len(m.Params)
	case *Response:
		return 48 + len(m.Result)
	}
	return 64
}

// ErrBatch is returned by Decode for a batch where the caller forbids them.
var ErrBatch = errors.New("JSON-RPC batches are not allowed")

// Decode parses one message or a batch. batch reports whether the body was
// an array. Every error wraps a *Error with the JSON-RPC code to answer with.
//
// The messages' params, results and error data are slices of data, not
// copies: data must not change while they are in use.
func Decode(data []byte) (msgs []Message, batch bool, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, false, NewError(CodeInvalidRequest, "empty body")
	}
	isBatch := data[0] == '['
	if !json.Valid(data) {
		return nil, isBatch, NewError(CodeParseError, "parse error: not valid JSON")
	}
	if !isBatch {
		m, err := decodeWire(data)
		if err != nil {
			return nil, false, err
		}
		return []Message{m}, false, nil
	}
	if err := checkDepth(data); err != nil {
		return nil, true, NewError(CodeInvalidRequest, "invalid request: %v", err)
	}
	for i := skipSpace(data, 1); i < len(data) && data[i] != ']'; {
		end, ok := skipValue(data, i)
		if !ok {
			return nil, true, NewError(CodeParseError, "parse error: malformed batch")
		}
		m, err := decodeWire(data[i:end])
		if err != nil {
			return nil, true, err
		}
		msgs = append(msgs, m)
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if len(msgs) == 0 {
		return nil, true, NewError(CodeInvalidRequest, "empty batch")
	}
	return msgs, true, nil
}

// Params helpers. They decode only the top level of params, leaving every
// value raw.

// Fields decodes the top level of a params or result object. A nil or
// "null" value gives an empty map.
func Fields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return m, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, NewError(CodeInvalidParams, "invalid params: must be an object")
	}
	return m, nil
}

// StringField returns the string value of key in the object raw.
func StringField(raw json.RawMessage, key string) (string, bool) {
	v, ok := TopField(raw, key)
	if !ok {
		return "", false
	}
	return unquote(v)
}

// WithField returns raw with key set to value (a JSON value), keeping every
// other field as it was.
func WithField(raw json.RawMessage, key string, value any) (json.RawMessage, error) {
	f, err := Fields(raw)
	if err != nil {
		return nil, err
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	f[key] = v
	return json.Marshal(f)
}

// Meta returns the _meta object of params, or an empty map.
func Meta(params json.RawMessage) map[string]json.RawMessage {
	f, err := Fields(params)
	if err != nil {
		return map[string]json.RawMessage{}
	}
	m, err := Fields(f["_meta"])
	if err != nil {
		return map[string]json.RawMessage{}
	}
	return m
}

// WithMeta returns params with _meta.key set to value, or removed when
// value is nil.
func WithMeta(params json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	f, err := Fields(params)
	if err != nil {
		return nil, err
	}
	meta, err := Fields(f["_meta"])
	if err != nil {
		return nil, NewError(CodeInvalidParams, "invalid params: _meta must be an object")
	}
	if value == nil {
		delete(meta, key)
	} else {
		meta[key] = value
	}
	if len(meta) == 0 {
		delete(f, "_meta")
	} else {
		mb, err := json.Marshal(meta)
		if err != nil {
			return nil, err
		}
		f["_meta"] = mb
	}
	return json.Marshal(f)
}

// Notification returns a notification message.
func Notification(method string, params any) (*Request, error) {
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	return &Request{Method: method, Params: raw}, nil
}

// IDKey returns a comparable key for an id, for maps.
func IDKey(id ID) any { return id.Raw() }

// MarshalID returns the JSON form of id.
func MarshalID(id ID) json.RawMessage {
	b, _ := json.Marshal(id.Raw())
	return b
}

// ParseID reads an id from its JSON form.
func ParseID(raw json.RawMessage) (ID, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ID{}, err
	}
	return sdk.MakeID(v)
}
