package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// The wire form without reflection. A message is checked once with
// json.Valid; then one pass over its top level finds the members routing
// needs, and params, result and error data stay as the slices of the input
// they were (no copy): the input must not change afterwards. Encoding
// appends the same members back, and raw values as they are, compacted
// only when they hold a line break (SSE and stdio frame by lines).

// maxDepth bounds the nesting of a message, as go-sdk's decoder does.
const maxDepth = 1000

var (
	errNotObject = errors.New("not a JSON object")
	errSyntax    = errors.New("malformed JSON")
)

// decodeWire decodes one message that json.Valid accepted.
func decodeWire(data []byte) (Message, error) {
	if len(data) == 0 || data[0] != '{' {
		return nil, NewError(CodeInvalidRequest, "invalid request: not a JSON-RPC object")
	}
	if err := checkDepth(data); err != nil {
		return nil, NewError(CodeInvalidRequest, "invalid request: %v", err)
	}
	var (
		version, method, id, params, result, errRaw []byte
		hasMethod                                   bool
	)
	err := eachMember(data, func(key, value []byte) error {
		switch string(key) {
		case "jsonrpc":
			version = value
		case "id":
			id = value
		case "method":
			method, hasMethod = value, true
		case "params":
			params = value
		case "result":
			result = value
		case "error":
			errRaw = value
		}
		return nil
	})
	if err != nil {
		return nil, NewError(CodeInvalidRequest, "invalid request: %v", err)
	}
	if !isVersion(version) {
		return nil, NewError(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)
	}
	rid, err := parseWireID(id)
	if err != nil {
		return nil, NewError(CodeInvalidRequest, "invalid request: %v", err)
	}
	if hasMethod {
		m, ok := unquote(method)
		if !ok {
			return nil, NewError(CodeInvalidRequest, "invalid request: method must be a string")
		}
		if m == "" {
			return nil, NewError(CodeInvalidRequest, "invalid request: empty method")
		}
		return &Request{ID: rid, Method: m, Params: raw(params)}, nil
	}
	if !rid.IsValid() {
		return nil, NewError(CodeInvalidRequest, "invalid request: a response needs an id")
	}
	resp := &Response{ID: rid, Result: raw(result)}
	if len(errRaw) > 0 && string(errRaw) != "null" {
		we, err := decodeError(errRaw)
		if err != nil {
			return nil, NewError(CodeInvalidRequest, "invalid request: error must be an object with a numeric code and a string message")
		}
		resp.Error = we
	}
	return resp, nil
}

// decodeError reads an error object, its keys matched exactly as go-sdk
// matches them.
func decodeError(v []byte) (*Error, error) {
	if v[0] != '{' {
		return nil, errNotObject
	}
	var e Error
	err := eachMember(v, func(key, value []byte) error {
		switch string(key) {
		case "code":
			if string(value) == "null" {
				return nil
			}
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return err
			}
			e.Code = n
		case "message":
			if string(value) == "null" {
				return nil
			}
			m, ok := unquote(value)
			if !ok {
				return errSyntax
			}
			e.Message = m
		case "data":
			e.Data = raw(value)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

func raw(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(b)
}

// isVersion reports whether v is the JSON string "2.0".
func isVersion(v []byte) bool {
	if string(v) == `"2.0"` {
		return true
	}
	s, ok := unquote(v)
	return ok && s == "2.0"
}

// parseWireID reads an id: a number, a string, null or absent.
func parseWireID(v []byte) (ID, error) {
	if len(v) == 0 || string(v) == "null" {
		return ID{}, nil
	}
	switch c := v[0]; {
	case c == '"':
		s, ok := unquote(v)
		if !ok {
			return ID{}, errSyntax
		}
		return sdk.MakeID(s)
	case c == '-' || c >= '0' && c <= '9':
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return IntID(n), nil
		}
		// A fraction or an exponent: go-sdk reads ids as float64 and
		// truncates them.
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return ID{}, errSyntax
		}
		return sdk.MakeID(f)
	}
	return ID{}, errors.New("invalid ID type")
}

// unquote returns the string a JSON string literal stands for. Literals
// without escapes cost one allocation (none for the methods the edge
// routes most).
func unquote(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		if s, ok := knownString(body); ok {
			return s, true
		}
		if utf8.Valid(body) {
			return string(body), true
		}
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// knownString returns the interned form of strings that most messages
// carry, so that decoding them allocates nothing.
func knownString(b []byte) (string, bool) {
	switch string(b) {
	case "tools/call":
		return "tools/call", true
	case "tools/list":
		return "tools/list", true
	case "ping":
		return "ping", true
	case "initialize":
		return "initialize", true
	case "notifications/initialized":
		return "notifications/initialized", true
	case "notifications/cancelled":
		return "notifications/cancelled", true
	case "notifications/progress":
		return "notifications/progress", true
	case "notifications/message":
		return "notifications/message", true
	case "resources/read":
		return "resources/read", true
	case "prompts/get":
		return "prompts/get", true
	case "2.0":
		return "2.0", true
	}
	return "", false
}

// checkDepth fails data nested deeper than maxDepth.
func checkDepth(data []byte) error {
	if len(data) <= maxDepth {
		return nil // too short to nest that deep
	}
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			j, ok := skipString(data, i)
			if !ok {
				return errSyntax
			}
			i = j - 1
		case '{', '[':
			depth++
			if depth > maxDepth {
				return errors.New("nested too deep")
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// eachMember calls f with the raw key (without quotes, escapes kept) and
// raw value of each member of the object data, which must be valid JSON.
func eachMember(data []byte, f func(key, value []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errNotObject
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil
	}
	for i < len(data) {
		if data[i] != '"' {
			return errSyntax
		}
		end, ok := skipString(data, i)
		if !ok {
			return errSyntax
		}
		key := data[i+1 : end-1]
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return errSyntax
		}
		i = skipSpace(data, i+1)
		vend, ok := skipValue(data, i)
		if !ok {
			return errSyntax
		}
		if err := f(key, data[i:vend]); err != nil {
			return err
		}
		i = skipSpace(data, vend)
		if i >= len(data) {
			return errSyntax
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return nil
		default:
			return errSyntax
		}
	}
	return errSyntax
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string literal at data[i].
func skipString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); {
		k := bytes.IndexAny(data[j:], "\"\\")
		if k < 0 {
			return 0, false
		}
		j += k
		if data[j] == '"' {
			return j + 1, true
		}
		j += 2 // an escape: skip the escaped character
	}
	return 0, false
}

// skipValue returns the index after the value at data[i]. It trusts data
// to be valid JSON and only finds where the value ends.
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				k, ok := skipString(data, j)
				if !ok {
					return 0, false
				}
				j = k - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j, j > i
		}
		j++
	}
	return j, j > i
}

// TopField returns the raw value of the member key of the object raw, as a
// slice of raw, without decoding anything else. raw must be valid JSON (as
// everything Decode returned is); ok is false when raw is not an object or
// has no such member. With duplicate keys the last one counts, as with
// encoding/json.
func TopField(raw []byte, key string) (value []byte, ok bool) {
	_ = eachMember(raw, func(k, v []byte) error {
		if string(k) == key {
			value, ok = v, true
		}
		return nil
	})
	return value, ok
}

// StringBytes returns the bytes of the string member key of the object raw:
// a slice of raw when the string has no escapes (no allocation), a decoded
// copy otherwise.
func StringBytes(raw []byte, key string) ([]byte, bool) {
	v, ok := TopField(raw, key)
	if !ok || len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

// AppendWithString appends to dst the object raw with its member key set to
// the JSON string value: replaced in place when raw has it (every other
// byte kept as it was), added at the end otherwise. raw must be a valid JSON
// object (or empty, for none); ok is false when it is not an object.
func AppendWithString(dst, raw []byte, key, value string) ([]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		dst = append(dst, '{')
		dst = appendString(dst, key)
		dst = append(dst, ':')
		dst = appendString(dst, value)
		return append(dst, '}'), true
	}
	start, end := -1, -1
	err := eachMember(raw, func(k, v []byte) error {
		if string(k) == key {
			// The offsets of v within raw (the last one wins).
			start = offset(raw, v)
			end = start + len(v)
		}
		return nil
	})
	if err != nil {
		return dst, false
	}
	if start < 0 {
		// Add before the closing brace.
		closing := bytes.LastIndexByte(raw, '}')
		body := bytes.TrimSpace(raw[1:closing])
		dst = append(dst, '{')
		dst = append(dst, body...)
		if len(body) > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, key)
		dst = append(dst, ':')
		dst = appendString(dst, value)
		return append(dst, '}'), true
	}
	dst = append(dst, raw[:start]...)
	dst = appendString(dst, value)
	return append(dst, raw[end:]...), true
}

// offset returns where sub, a slice of s, starts in s.
func offset(s, sub []byte) int {
	return cap(s) - cap(sub)
}

// appendString appends s as a JSON string literal, escaped as
// encoding/json would (without HTML escaping).
func appendString(dst []byte, s string) []byte {
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			safe = false
			break
		}
	}
	if safe {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(dst, bytes.TrimRight(b.Bytes(), "\n")...)
}

// appendRaw appends a raw JSON value, compacted when it holds line breaks
// (which valid JSON has only between tokens).
func appendRaw(dst []byte, v json.RawMessage) ([]byte, error) {
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, v...), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return dst, err
	}
	return append(dst, b.Bytes()...), nil
}

// toWireError is the error object of err, as go-sdk writes it: err itself
// when it is an *Error; else its text, with the code of an *Error it wraps.
func toWireError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	e := &Error{Message: err.Error()}
	var wrapped *Error
	if errors.As(err, &wrapped) {
		e.Code = wrapped.Code
	}
	return e
}

func appendID(dst []byte, id ID) []byte {
	switch v := id.Raw().(type) {
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case string:
		return appendString(dst, v)
	}
	return append(dst, "null"...)
}

// AppendMessage appends the wire form of msg to dst. Params, results and
// error data are written as they are: they must hold valid JSON, as they
// do when they come from Decode or json.Marshal.
func AppendMessage(dst []byte, msg Message) ([]byte, error) {
	dst = append(dst, `{"jsonrpc":"2.0"`...)
	var err error
	switch m := msg.(type) {
	case *Request:
		if m.ID.IsValid() {
			dst = append(dst, `,"id":`...)
			dst = appendID(dst, m.ID)
		}
		dst = append(dst, `,"method":`...)
		dst = appendString(dst, m.Method)
		if len(m.Params) > 0 {
			dst = append(dst, `,"params":`...)
			if dst, err = appendRaw(dst, m.Params); err != nil {
				return dst, err
			}
		}
	case *Response:
		if m.ID.IsValid() {
			dst = append(dst, `,"id":`...)
			dst = appendID(dst, m.ID)
		}
		if m.Error != nil {
			e := toWireError(m.Error)
			dst = append(dst, `,"error":{"code":`...)
			dst = strconv.AppendInt(dst, e.Code, 10)
			dst = append(dst, `,"message":`...)
			dst = appendString(dst, e.Message)
			if len(e.Data) > 0 {
				dst = append(dst, `,"data":`...)
				if dst, err = appendRaw(dst, e.Data); err != nil {
					return dst, err
				}
			}
			dst = append(dst, '}')
		} else if len(m.Result) > 0 {
			dst = append(dst, `,"result":`...)
			if dst, err = appendRaw(dst, m.Result); err != nil {
				return dst, err
			}
		}
	default:
		return sdk.EncodeMessage(msg)
	}
	return append(dst, '}'), nil
}

// Member is one member of a JSON object: its key and its raw JSON value.
type Member struct {
	Key   string
	Value []byte
}

// AppendPatched appends to dst the object raw with the members of set put
// in (replacing a member of the same key where it stood, else added at the
// end) and the members named in remove left out; every other byte of raw
// is kept as it was. raw must be a valid JSON object, or empty for none;
// ok is false when it is not an object.
func AppendPatched(dst, raw []byte, set []Member, remove ...string) ([]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return dst, false
	}
	var done uint64 // set members written, by index (at most 64 are tracked)
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	err := eachMember(raw, func(k, v []byte) error {
		for _, r := range remove {
			if string(k) == r {
				return nil
			}
		}
		for i, m := range set {
			if string(k) == m.Key {
				if i < 64 && done&(1<<i) != 0 {
					return nil // a duplicate key: written once
				}
				sep()
				dst = appendString(dst, m.Key)
				dst = append(dst, ':')
				dst = append(dst, m.Value...)
				if i < 64 {
					done |= 1 << i
				}
				return nil
			}
		}
		sep()
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":`...)
		dst = append(dst, v...)
		return nil
	})
	if err != nil {
		return dst, false
	}
	for i, m := range set {
		if i < 64 && done&(1<<i) != 0 {
			continue
		}
		sep()
		dst = appendString(dst, m.Key)
		dst = append(dst, ':')
		dst = append(dst, m.Value...)
	}
	return append(dst, '}'), true
}
