package protocol

import (
	"strings"
	"testing"
)

// FuzzHeaderValue checks the header form of parameter values: any string
// encodes to a valid HTTP header value (visible ASCII, no space at either
// end) that decodes to the string again, and decoding any header value
// never panics. The seed corpus is in testdata/fuzz/FuzzHeaderValue.
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"", "eu-west-1", " padded ", "\tx", "naïve", "=?base64?aGk=?=", "=?base64?=", "a\r\nInjected: yes", "\xff\xfe", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeHeaderValue(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("EncodeHeaderValue(%q) = %q holds byte %#x", s, enc, c)
			}
		}
		if enc != "" && (enc[0] == ' ' || enc[len(enc)-1] == ' ') {
			t.Fatalf("EncodeHeaderValue(%q) = %q has space at an end", s, enc)
		}
		dec, ok := DecodeHeaderValue(enc)
		if !ok || dec != s {
			t.Fatalf("DecodeHeaderValue(EncodeHeaderValue(%q)) = %q, %v", s, dec, ok)
		}
		// Any header a client sends.
		if dec, ok := DecodeHeaderValue(s); ok && !strings.HasPrefix(s, b64Prefix) && dec != s {
			t.Fatalf("DecodeHeaderValue(%q) = %q: a plain value must stand for itself", s, dec)
		}
	})
}

// FuzzCheckParamHeaders checks the stateless revision's parameter headers
// on any tool definition, call params and header value: the check never
// panics; a header sent for an argument the call leaves out, or a wrong
// value, is refused; and the headers a well-behaved client derives from
// its arguments (ParamHeaders) pass, unless a bound argument is not a
// string, number or boolean, or two arguments claim one header. The seed
// corpus is in testdata/fuzz/FuzzCheckParamHeaders.
func FuzzCheckParamHeaders(f *testing.F) {
	const tool = `{"name":"t","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"opts":{"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}}}}}}`
	for _, s := range [][3]string{
		{tool, `{"name":"t","arguments":{"region":"eu","opts":{"n":3}}}`, "eu"},
		{tool, `{"name":"t","arguments":{"region":"日本"}}`, "=?base64?5pel5pys?="},
		{tool, `{"name":"t","arguments":{"region":""}}`, ""},
		{tool, `{"name":"t","arguments":{"opts":{"n":1e2}}}`, "100"},
		{tool, `{"name":"t","arguments":{"region":{"a":1}}}`, "x"},
		{tool, `{"name":"t","arguments":{"region":null}}`, "x"},
		{`{"inputSchema":{"properties":{"a":{"x-mcp-header":"H"},"b":{"x-mcp-header":"H"}}}}`, `{"arguments":{"a":"1","b":"2"}}`, "1"},
		{`{"inputSchema":{"properties":{"a":{"x-mcp-header":""}}}}`, `{"arguments":{"a":true}}`, "true"},
		{`not json`, `{"arguments":{}}`, ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, tool, params, header string) {
		// Any header value, for every header: no panic.
		_ = CheckParamHeaders([]byte(tool), []byte(params), func(string) string { return header })

		bindings := ParamBindings([]byte(tool))
		derived := ParamHeaders([]byte(tool), []byte(params))
		err := CheckParamHeaders([]byte(tool), []byte(params), func(h string) string { return derived[h] })
		if err == nil {
			return
		}
		claimed := map[string]int{}
		for _, b := range bindings {
			claimed[b.Header]++
		}
		for _, b := range bindings {
			raw, ok := argument([]byte(params), b.Path)
			if !ok || string(raw) == "null" {
				continue
			}
			if _, prim := primitive(raw); !prim || claimed[b.Header] > 1 {
				return // expected: such a call cannot be mirrored
			}
		}
		t.Fatalf("the headers ParamHeaders derives (%v) fail the check: %v\ntool %s\nparams %s", derived, err, tool, params)
	})
}
