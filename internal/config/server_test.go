package config_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/config"
)

func TestServerValidate(t *testing.T) {
	// An API body: paths have no prefix, and a nil lookup leaves unset
	// variables to the edge.
	tests := []struct {
		name   string
		server config.Server
		path   string
		lookup config.LookupFunc
		want   []string
	}{
		{"stdio", config.Server{Name: "memory", Command: "npx", Args: []string{"-y", "${PKG}"}}, "", nil, nil},
		{"http from an unset variable", config.Server{Name: "gh", URL: "${BASE}/mcp"}, "", nil, nil},
		{"alias", config.Server{Name: "gh", TransportType: "streamable-http", URL: "https://x"}, "", nil, nil},
		{"no name", config.Server{Command: "x"}, "", nil,
			[]string{"name: a server name is required"}},
		{"bad name with a prefix path", config.Server{Name: "a/b", Command: "x"}, "mcpServers.a/b", nil,
			[]string{`mcpServers.a/b: invalid server name: use 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit`}},
		{"neither", config.Server{Name: "a"}, "", nil,
			[]string{`needs "command" (stdio) or "url" (sse, http)`}},
		{"malformed reference", config.Server{Name: "a", Command: "${", Env: map[string]string{"T": "${}"}}, "", nil,
			[]string{
				`command: malformed variable reference: "${" without a closing "}" (write "$${" for a literal "${")`,
				`env.T: malformed variable reference: empty name in "${}"`,
			}},
		{"unset variable with a lookup", config.Server{Name: "a", Command: "x", Env: map[string]string{"T": "${T}"}}, "", env(nil),
			[]string{`env.T: variable T is not set`}},
		{"url checked once expanded", config.Server{Name: "a", URL: "${BASE}/mcp"}, "", env(map[string]string{"BASE": "ftp://x"}),
			[]string{`url: must be an absolute http or https URL`}},
		{"http with command fields", config.Server{Name: "a", TransportType: "http", URL: "http://x", Args: []string{"x"}, Cwd: "/"}, "srv", nil,
			[]string{`srv.args: not allowed for an http server`, `srv.cwd: not allowed for an http server`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.server.Validate(tt.path, tt.lookup)
			if diff := cmp.Diff(tt.want, messages(t, err)); diff != "" {
				t.Errorf("Validate errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerTransport(t *testing.T) {
	tests := []struct {
		server config.Server
		want   string
	}{
		{config.Server{Command: "npx"}, config.TransportStdio},
		{config.Server{URL: "http://x"}, config.TransportHTTP},
		{config.Server{TransportType: "sse", URL: "http://x"}, config.TransportSSE},
		{config.Server{TransportType: "streamableHttp", URL: "http://x"}, config.TransportHTTP},
		{config.Server{TransportType: "streamable-http", URL: "http://x"}, config.TransportHTTP},
		{config.Server{}, ""},
	}
	for _, tt := range tests {
		if got := tt.server.Transport(); got != tt.want {
			t.Errorf("%+v.Transport() = %q, want %q", tt.server, got, tt.want)
		}
	}
}

func TestServerExpanded(t *testing.T) {
	s := config.Server{
		Name:    "github",
		Command: "${BIN:-npx}",
		Args:    []string{"-y", "${PKG}"},
		Env:     map[string]string{"GITHUB_TOKEN": "${GITHUB_TOKEN}"},
		Cwd:     "${HOME}/work",
		Timeout: "${TIMEOUT:-2m}",
		Tags:    []string{"${not-expanded}"},
		Prefix:  "gh",
	}
	lookup := env(map[string]string{"PKG": "server-github", "GITHUB_TOKEN": "ghp_x", "HOME": "/home/u"})
	got, err := s.Expanded(lookup)
	if err != nil {
		t.Fatalf("Expanded: %v", err)
	}
	want := config.Server{
		Name:    "github",
		Command: "npx",
		Args:    []string{"-y", "server-github"},
		Env:     map[string]string{"GITHUB_TOKEN": "ghp_x"},
		Cwd:     "/home/u/work",
		Timeout: "2m",
		Tags:    []string{"${not-expanded}"},
		Prefix:  "gh",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Expanded mismatch (-want +got):\n%s", diff)
	}
	if s.Env["GITHUB_TOKEN"] != "${GITHUB_TOKEN}" || s.Args[1] != "${PKG}" {
		t.Errorf("Expanded changed the original server: %+v", s)
	}
	if d, err := got.CallTimeout(); err != nil || d != 2*time.Minute {
		t.Errorf("CallTimeout() = %v, %v; want 2m", d, err)
	}

	_, err = config.Server{URL: "https://${HOST}/", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"}}.Expanded(env(nil))
	want2 := []string{"headers.Authorization: variable TOKEN is not set", "url: variable HOST is not set"}
	if diff := cmp.Diff(want2, messages(t, err)); diff != "" {
		t.Errorf("Expanded errors mismatch (-want +got):\n%s", diff)
	}
}

func TestServerCallTimeout(t *testing.T) {
	tests := []struct {
		timeout string
		want    time.Duration
		wantErr string
	}{
		{"", config.DefaultCallTimeout, ""},
		{"90s", 90 * time.Second, ""},
		{"0s", 0, `timeout: must be a positive duration such as "90s", "5m" or "1h"`},
		{"${T}", 0, `timeout: must be a positive duration such as "90s", "5m" or "1h"`},
	}
	for _, tt := range tests {
		got, err := config.Server{Timeout: tt.timeout}.CallTimeout()
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("CallTimeout(%q) = %v, %q; want %v, %q", tt.timeout, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestValidName(t *testing.T) {
	valid := []string{"a", "memory", "server-everything", "v1.2", "A_b-c.d", "0day", "a234567890123456789012345678901234567890123456_8"}
	invalid := []string{"", "-a", "_a", ".a", "a b", "a/b", "ä", "a234567890123456789012345678901234567890123456_89"}
	for _, name := range valid {
		if err := config.ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range invalid {
		if err := config.ValidName(name); err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", name)
		}
	}
}

func TestAllowCommands(t *testing.T) {
	a := config.AllowCommands{Commands: []string{"npx"}}
	if !a.Allowed("npx") || a.Allowed("sh") {
		t.Errorf("Commands %v: Allowed(npx), Allowed(sh) = %v, %v; want true, false", a.Commands, a.Allowed("npx"), a.Allowed("sh"))
	}
	if !(config.AllowCommands{All: true}).Allowed("sh") || (config.AllowCommands{}).Allowed("npx") {
		t.Error("All allows every command and the zero value none")
	}
}
