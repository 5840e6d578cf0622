package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/protocol"
)

func TestSupported(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{protocol.V20241105, true},
		{protocol.V20250326, true},
		{protocol.V20250618, true},
		{protocol.V20251125, true},
		{"2026-07-28", false}, // stateless era: not on the session-based paths
		{"2024-10-07", false},
		{"", false},
		{"latest", false},
	}
	for _, tt := range tests {
		if got := protocol.Supported(tt.v); got != tt.want {
			t.Errorf("Supported(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct{ asked, want string }{
		{protocol.V20241105, protocol.V20241105},
		{protocol.V20250326, protocol.V20250326},
		{protocol.V20250618, protocol.V20250618},
		{protocol.V20251125, protocol.V20251125},
		{"1999-01-01", protocol.Latest},
		{"2030-01-01", protocol.Latest},
		{"", protocol.Latest},
	}
	for _, tt := range tests {
		if got := protocol.Negotiate(tt.asked); got != tt.want {
			t.Errorf("Negotiate(%q) = %q, want %q", tt.asked, got, tt.want)
		}
	}
	if protocol.Latest != protocol.V20251125 {
		t.Errorf("Latest = %q, want the newest session-based revision %q", protocol.Latest, protocol.V20251125)
	}
}

func TestClientCapabilitiesAllows(t *testing.T) {
	methods := []string{
		protocol.MethodSamplingCreateMessage, protocol.MethodElicitationCreate,
		protocol.MethodRootsList, protocol.MethodPing, "tools/call", "x/unknown",
	}
	tests := []struct {
		name string
		caps string // the capabilities object of initialize
		want []string
	}{
		{"none", `{}`, []string{protocol.MethodPing}},
		{"sampling", `{"sampling":{}}`, []string{protocol.MethodSamplingCreateMessage, protocol.MethodPing}},
		{"elicitation", `{"elicitation":{"form":{}}}`, []string{protocol.MethodElicitationCreate, protocol.MethodPing}},
		{"roots", `{"roots":{"listChanged":true}}`, []string{protocol.MethodRootsList, protocol.MethodPing}},
		{"all", `{"roots":{},"sampling":{},"elicitation":{},"experimental":{"x":{}}}`, []string{
			protocol.MethodSamplingCreateMessage, protocol.MethodElicitationCreate, protocol.MethodRootsList, protocol.MethodPing,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p protocol.InitializeParams
			if err := json.Unmarshal([]byte(`{"protocolVersion":"2025-06-18","capabilities":`+tt.caps+`}`), &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range methods {
				if p.Capabilities.Allows(m) {
					got = append(got, m)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("allowed methods mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInitializeResultDecode(t *testing.T) {
	raw := `{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true},"logging":{},"x":{}},"serverInfo":{"name":"s"},"instructions":"use it"}`
	var r protocol.InitializeResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	c := r.Capabilities
	got := []bool{c.Tools != nil && c.Tools.ListChanged, c.Prompts != nil, c.Resources != nil && c.Resources.Subscribe, c.Logging != nil, c.Completions != nil}
	want := []bool{true, false, true, true, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("capabilities [tools.listChanged prompts resources.subscribe logging completions] (-want +got):\n%s", diff)
	}
	if r.ProtocolVersion != protocol.V20250618 || r.Instructions != "use it" {
		t.Errorf("version, instructions = %q, %q", r.ProtocolVersion, r.Instructions)
	}
}
