package config

import (
	"testing"
	"time"
)

func TestJoin(t *testing.T) {
	tests := []struct {
		path, key, want string
	}{
		{"", "port", "port"},
		{"", "$schema", "$schema"},
		{"mcpServers", "github", "mcpServers.github"},
		{"mcpServers", "my server", `mcpServers["my server"]`},
		{"mcpServers", "v1.2", `mcpServers["v1.2"]`},
		{"mcpServers", "", `mcpServers[""]`},
		{"", "a.b", `["a.b"]`},
	}
	for _, tt := range tests {
		if got := join(tt.path, tt.key); got != tt.want {
			t.Errorf("join(%q, %q) = %q, want %q", tt.path, tt.key, got, tt.want)
		}
	}
	if got := index("args", 3); got != "args[3]" {
		t.Errorf("index = %q, want args[3]", got)
	}
}

func TestFieldErrorWithoutPath(t *testing.T) {
	e := &FieldError{Msg: "syntax error at line 1, column 1"}
	if got := e.Error(); got != e.Msg {
		t.Errorf("Error() = %q, want the message alone", got)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"0.0.0.0", false},
		{"::", false},
		{"", false},
		{"10.0.0.1", false},
		{"localhost.example.com", false},
	}
	for _, tt := range tests {
		if got := isLoopbackHost(tt.host); got != tt.want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if isLoopbackAddress(":4001") || !isLoopbackAddress("[::1]:4001") {
		t.Error(`isLoopbackAddress: ":4001" is every interface, "[::1]:4001" is loopback`)
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "1h30m"},
		{10 * time.Minute, "10m"},
		{90 * time.Second, "1m30s"},
		{10 * time.Second, "10s"},
	}
	for _, tt := range tests {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
