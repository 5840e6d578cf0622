package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parameter headers of the stateless revision: a tool's input schema may
// mark a primitive property with "x-mcp-header": NAME, and a call of that
// tool then mirrors the argument's value in the header Mcp-Param-NAME, so
// that intermediaries can route on it without reading the body. Values
// that are not plain ASCII travel base64-encoded as =?base64?...?=.

const (
	b64Prefix = "=?base64?"
	b64Suffix = "?="
)

// ParamBinding ties an argument (a property path in the arguments object)
// to the header that mirrors it.
type ParamBinding struct {
	Path   []string
	Header string // the full header name, Mcp-Param-NAME
}

type schemaProperty struct {
	XMCPHeader json.RawMessage           `json:"x-mcp-header,omitempty"`
	Properties map[string]schemaProperty `json:"properties,omitempty"`
}

// ParamBindings returns the bindings a tool definition (its JSON) declares
// in its inputSchema.
func ParamBindings(tool json.RawMessage) []ParamBinding {
	if !bytes.Contains(tool, []byte(`x-mcp-header`)) && !bytes.Contains(tool, []byte(`\u`)) {
		return nil // most tools: nothing to decode (the key is not there, even escaped)
	}
	var t struct {
		InputSchema schemaProperty `json:"inputSchema"`
	}
	if json.Unmarshal(tool, &t) != nil {
		return nil
	}
	return collectBindings(t.InputSchema.Properties, nil, nil)
}

func collectBindings(props map[string]schemaProperty, prefix []string, out []ParamBinding) []ParamBinding {
	for name, p := range props {
		path := append(append([]string(nil), prefix...), name)
		var h string
		if json.Unmarshal(p.XMCPHeader, &h) == nil && h != "" {
			out = append(out, ParamBinding{Path: path, Header: HeaderParamPrefix + h})
		}
		if len(p.Properties) > 0 {
			out = collectBindings(p.Properties, path, out)
		}
	}
	return out
}

// argument returns the raw value at path in a call's params.arguments.
func argument(params json.RawMessage, path []string) (json.RawMessage, bool) {
	var p struct {
		Arguments map[string]json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal(params, &p) != nil || p.Arguments == nil {
		return nil, false
	}
	cur, ok := p.Arguments[path[0]]
	for _, part := range path[1:] {
		if !ok {
			return nil, false
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil, false
		}
		cur, ok = obj[part]
	}
	return cur, ok
}

// primitive returns the string form of a JSON string, boolean or safe
// integer, as its header carries it.
func primitive(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v != math.Trunc(v) || math.Abs(v) > 1<<53-1 {
			return "", false
		}
		return strconv.FormatInt(int64(v), 10), true
	}
	return "", false
}

// EncodeHeaderValue returns the header form of a value.
func EncodeHeaderValue(s string) string {
	needs := s != "" && (s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t')
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			needs = true
		}
	}
	if strings.HasPrefix(s, b64Prefix) && strings.HasSuffix(s, b64Suffix) {
		needs = true
	}
	if !needs {
		return s
	}
	return b64Prefix + base64.StdEncoding.EncodeToString([]byte(s)) + b64Suffix
}

// DecodeHeaderValue returns the value a header carries.
func DecodeHeaderValue(h string) (string, bool) {
	if enc, ok := strings.CutPrefix(h, b64Prefix); ok {
		if enc, ok = strings.CutSuffix(enc, b64Suffix); ok {
			b, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				return "", false
			}
			return string(b), true
		}
	}
	return h, true
}

// ParamHeaders returns the headers a call of tool mirrors from params.
func ParamHeaders(tool, params json.RawMessage) map[string]string {
	out := map[string]string{}
	for _, b := range ParamBindings(tool) {
		raw, ok := argument(params, b.Path)
		if !ok || string(raw) == "null" {
			continue
		}
		if v, ok := primitive(raw); ok {
			out[b.Header] = EncodeHeaderValue(v)
		}
	}
	return out
}

// CheckParamHeaders reports the first disagreement between a call's
// parameter headers (get returns a header's value) and its arguments.
func CheckParamHeaders(tool, params json.RawMessage, get func(string) string) error {
	for _, b := range ParamBindings(tool) {
		hv := get(b.Header)
		raw, ok := argument(params, b.Path)
		path := strings.Join(b.Path, ".")
		if !ok || string(raw) == "null" {
			if hv != "" {
				return fmt.Errorf("%s is set but argument %q is absent", b.Header, path)
			}
			continue
		}
		if hv == "" {
			// An empty string argument mirrors as an empty value, which a
			// header lookup cannot tell from an absent header.
			if v, ok := primitive(raw); ok && v == "" {
				continue
			}
			return fmt.Errorf("%s is missing for argument %q", b.Header, path)
		}
		got, ok := DecodeHeaderValue(hv)
		if !ok {
			return fmt.Errorf("%s is not valid base64", b.Header)
		}
		want, ok := primitive(raw)
		if !ok {
			return fmt.Errorf("argument %q of %s is not a string, number or boolean", path, b.Header)
		}
		if got != want {
			if n, err := strconv.ParseFloat(got, 64); err == nil {
				if w, err := strconv.ParseFloat(want, 64); err == nil && n == w {
					continue
				}
			}
			return fmt.Errorf("%s does not match argument %q", b.Header, path)
		}
	}
	return nil
}
