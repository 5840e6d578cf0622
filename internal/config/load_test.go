package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/config"
)

// env returns a LookupFunc over a fixed environment, so that no test
// depends on the environment it runs in.
func env(vars map[string]string) config.LookupFunc {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// messages returns the text of each joined error, checking that every one
// is a *FieldError as Parse promises.
func messages(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not an errors.Join: %v", err, err)
	}
	var out []string
	for _, e := range joined.Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("error %T is not a *FieldError: %v", e, e)
		}
		out = append(out, e.Error())
	}
	return out
}

func TestParseSeed(t *testing.T) {
	// The seed's example, its comment included, and its ${MCP_TOKEN} variant.
	tests := []struct {
		name string
		in   string
		env  map[string]string
		want string
	}{{
		name: "inline token",
		in: `{
"port": 4000,
"host": "localhost",
"auth": {
"type": "token",
"options": {
"token": "your-secret-token"
}
},
"mcpServers": {
// Your MCP server configurations
}
}`,
		want: "your-secret-token",
	}, {
		name: "token from the environment",
		in: `{
"auth": {
"type": "token",
"options": {
"token": "${MCP_TOKEN}"
}
}
}`,
		env:  map[string]string{"MCP_TOKEN": "from-the-env"},
		want: "from-the-env",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.in), config.Options{LookupEnv: env(tt.env)})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tok := config.StaticToken{
				Name:  "default",
				Token: tt.want,
				Grant: config.Grant{Scopes: []string{"admin", "edge"}},
			}
			if diff := cmp.Diff([]config.StaticToken{tok}, got.Auth.Tokens); diff != "" {
				t.Errorf("Auth.Tokens mismatch (-want +got):\n%s", diff)
			}
			if got.Auth.Type != config.AuthToken || got.Port != config.DefaultPort {
				t.Errorf("got type %q port %d, want %q %d", got.Auth.Type, got.Port, config.AuthToken, config.DefaultPort)
			}
			if got.ControlPlane.Token != tt.want {
				t.Errorf("ControlPlane.Token = %q, want the first static token", got.ControlPlane.Token)
			}
			if got.Servers != nil {
				t.Errorf("Servers = %v, want none", got.Servers)
			}
		})
	}
}

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "full.jsonc"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"MCP_TOKEN":     "first-static-token",
		"CI_TOKEN":      "ci-static-token",
		"CLIENT_SECRET": "agent-secret",
		"HOME":          "/home/atrax",
		"GITHUB_TOKEN":  "ghp_example",
	}
	got, err := config.Parse(data, config.Options{LookupEnv: env(vars)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	full := config.Grant{Scopes: []string{"admin", "edge"}}
	want := &config.Config{
		Port: 4100,
		Host: "localhost",
		Auth: config.Auth{
			Type: config.AuthJWT,
			Tokens: []config.StaticToken{
				{Name: "default", Token: "first-static-token", Grant: full},
				{Name: "tokens[0]", Token: "second-static-token", Grant: full},
				{Name: "ci", Token: "ci-static-token", Grant: config.Grant{
					Servers: []string{"github"},
					Tools:   []string{"github__*"},
				}},
			},
			Clients: []config.Client{{
				ID:     "agent",
				Secret: "agent-secret",
				Grant:  config.Grant{Scopes: []string{"edge"}, Servers: []string{"*"}},
			}},
			TTL:         30 * 60e9,
			MaxTTL:      12 * 3600e9,
			KeyRotation: 7 * 24 * 3600e9,
			Issuer:      "https://atrax.example",
			Audience:    "atrax-test",
		},
		ControlPlane: config.ControlPlane{
			Address:        "127.0.0.1:4101",
			Token:          "edge-token-fallback",
			AllowCommands:  config.AllowCommands{Commands: []string{"npx", "uvx"}},
			MetricsAddress: "127.0.0.1:9464",
			TLS:            &config.TLS{Cert: "cp.pem", Key: "cp-key.pem", ClientCA: "/etc/atrax/edges-ca.pem"},
			CA:             "ca.pem",
			ClientCert:     "edge.pem",
			ClientKey:      "edge-key.pem",
		},
		TLS:     &config.TLS{Cert: "/home/atrax/edge.pem", Key: "edge-key.pem"},
		DataDir: "state",
		Namespacing: config.Namespacing{
			Mode:      "conditional",
			Separator: ".",
			Conflict:  "prefer-server",
			Prefer:    []string{"memory"},
		},
		HTTP: config.HTTP{
			AllowedHosts:       []string{"atrax.example.com", "*.internal"},
			AllowedOrigins:     []string{"https://app.example.com"},
			MaxBodyBytes:       1 << 20,
			SessionIdleTimeout: 10 * 60e9,
			KeepAlive:          20e9,
			PageSize:           100,
			Metrics:            config.MetricsPublic,
			ReadHeaderTimeout:  5e9,
			ReadTimeout:        30e9,
			WriteTimeout:       45e9,
			IdleTimeout:        90e9,
		},
		Audit: config.Audit{ToolArguments: true},
		Limits: config.Limits{
			RequestsPerSecond:      2.5,
			Burst:                  10,
			MaxInFlightPerToken:    16,
			MaxSessionsPerToken:    8,
			MaxInFlight:            100,
			MaxSessions:            0,
			MaxInFlightPerUpstream: 32,
		},
		Servers: []config.Server{{
			Name:    "memory",
			Command: "npx",
			Args:    []string{"-y", "@modelcontextprotocol/server-memory"},
			// Kept as written: the edge expands it from its own environment.
			Env:  map[string]string{"MEMORY_FILE_PATH": "${HOME}/memory.json"},
			Tags: []string{"local"},
		}, {
			Name:          "github",
			TransportType: config.TransportHTTP, // written "streamable-http"
			URL:           "https://api.githubcopilot.com/mcp/",
			Headers:       map[string]string{"Authorization": "Bearer ${GITHUB_TOKEN}"},
			Description:   "GitHub's remote server",
			Tools:         config.ToolFilter{Allow: []string{"*"}, Deny: []string{"delete_*"}},
			Prefix:        "gh",
			Timeout:       "90s",
			Isolation:     "session",
			PinTools:      true,
			MaxSessions:   5,
		}, {
			Name:          "everything",
			TransportType: config.TransportSSE,
			URL:           "http://localhost:3001/sse",
			Headers:       map[string]string{"X-Api-Key": "${EVERYTHING_KEY}"},
			Disabled:      true,
		}, {
			Name:    "cwd-server",
			Command: "./run.sh",
			Cwd:     "/opt/tools",
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := config.Parse([]byte(`{"auth": {"type": "none"}}`), config.Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &config.Config{
		Port: config.DefaultPort,
		Host: config.DefaultHost,
		Auth: config.Auth{
			Type:        config.AuthNone,
			TTL:         config.DefaultTokenTTL,
			MaxTTL:      config.DefaultMaxTokenTTL,
			KeyRotation: config.DefaultKeyRotation,
			Issuer:      config.DefaultIssuer,
			Audience:    config.DefaultAudience,
		},
		ControlPlane: config.ControlPlane{Address: config.DefaultControlPlaneAddress},
		Namespacing: config.Namespacing{
			Mode:      "always",
			Separator: config.DefaultSeparator,
			Conflict:  "first-wins",
		},
		HTTP: config.HTTP{
			MaxBodyBytes:       config.DefaultMaxBodyBytes,
			SessionIdleTimeout: config.DefaultSessionIdleTimeout,
			KeepAlive:          config.DefaultKeepAlive,
			PageSize:           config.DefaultPageSize,
			Metrics:            config.MetricsToken,
			ReadHeaderTimeout:  config.DefaultReadHeaderTimeout,
			ReadTimeout:        config.DefaultReadTimeout,
			WriteTimeout:       config.DefaultWriteTimeout,
			IdleTimeout:        config.DefaultIdleTimeout,
		},
		Limits: config.Limits{
			MaxInFlightPerToken:    config.DefaultMaxInFlightPerToken,
			MaxSessionsPerToken:    config.DefaultMaxSessionsPerToken,
			MaxInFlight:            config.DefaultMaxEdgeInFlight,
			MaxSessions:            config.DefaultMaxEdgeSessions,
			MaxInFlightPerUpstream: config.DefaultMaxInFlightPerUpstream,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestParseAccepts(t *testing.T) {
	// Inputs that must load; each checks one value of the result.
	tests := []struct {
		name  string
		in    string
		env   map[string]string
		check func(*config.Config) any
		want  any
	}{
		{"port as a string", `{"port": "8080", "auth": {"type": "none"}}`, nil,
			func(c *config.Config) any { return c.Port }, 8080},
		{"port from the environment", `{"port": "${PORT}", "auth": {"type": "none"}}`, map[string]string{"PORT": "9000"},
			func(c *config.Config) any { return c.Port }, 9000},
		{"none on ::1", `{"host": "::1", "controlPlane": {"address": "[::1]:4001"}, "auth": {"type": "none"}}`, nil,
			func(c *config.Config) any { return c.Host }, "::1"},
		{"none on 127.0.0.2", `{"host": "127.0.0.2", "auth": {"type": "none"}}`, nil,
			func(c *config.Config) any { return c.Host }, "127.0.0.2"},
		{"token mode on every interface", `{"host": "0.0.0.0", "auth": {"type": "token", "options": {"token": "t"}}}`, nil,
			func(c *config.Config) any { return c.Host }, "0.0.0.0"},
		{"host name", `{"host": "gateway.example.com", "auth": {"type": "token", "options": {"token": "t"}}}`, nil,
			func(c *config.Config) any { return c.Host }, "gateway.example.com"},
		{"tokens only", `{"auth": {"type": "token", "options": {"tokens": ["a", "b"]}}}`, nil,
			func(c *config.Config) any { return c.ControlPlane.Token }, "a"},
		{"explicit control plane token", `{"auth": {"type": "token", "options": {"token": "a"}}, "controlPlane": {"token": "b"}}`, nil,
			func(c *config.Config) any { return c.ControlPlane.Token }, "b"},
		{"jwt leaves the control plane token empty", `{"auth": {"type": "jwt", "options": {"token": "a"}}}`, nil,
			func(c *config.Config) any { return c.ControlPlane.Token }, ""},
		{"jwt with clients only", `{"auth": {"type": "jwt", "options": {"clients": [{"id": "a", "secret": "s"}]}}}`, nil,
			func(c *config.Config) any { return len(c.Auth.Clients) }, 1},
		{"token object without scopes", `{"auth": {"type": "token", "options": {"tokens": [{"token": "t"}]}}}`, nil,
			func(c *config.Config) any { return c.Auth.Tokens[0] }, config.StaticToken{Name: "tokens[0]", Token: "t"}},
		{"empty servers list allows none", `{"auth": {"type": "token", "options": {"tokens": [{"token": "t", "servers": []}]}}}`, nil,
			func(c *config.Config) any { return c.Auth.Tokens[0].Servers != nil }, true},
		{"allowCommands true", `{"auth": {"type": "none"}, "controlPlane": {"allowCommands": true}}`, nil,
			func(c *config.Config) any { return c.ControlPlane.AllowCommands }, config.AllowCommands{All: true}},
		{"allowCommands false", `{"auth": {"type": "none"}, "controlPlane": {"allowCommands": false}}`, nil,
			func(c *config.Config) any { return c.ControlPlane.AllowCommands }, config.AllowCommands{}},
		{"streamableHttp alias", `{"auth": {"type": "none"}, "mcpServers": {"a": {"type": "streamableHttp", "url": "http://x"}}}`, nil,
			func(c *config.Config) any { return c.Servers[0].TransportType }, "http"},
		{"type and transportType agreeing", `{"auth": {"type": "none"}, "mcpServers": {"a": {"type": "http", "transportType": "streamable-http", "url": "http://x"}}}`, nil,
			func(c *config.Config) any { return c.Servers[0].TransportType }, "http"},
		{"inferred transport left empty", `{"auth": {"type": "none"}, "mcpServers": {"a": {"url": "http://x"}}}`, nil,
			func(c *config.Config) any { return c.Servers[0].TransportType }, ""},
		{"disabled server with an unset variable", `{"auth": {"type": "none"}, "mcpServers": {"a": {"command": "${NOPE}", "disabled": true}}}`, nil,
			func(c *config.Config) any { return c.Servers[0].Command }, "${NOPE}"},
		{"url from the environment", `{"auth": {"type": "none"}, "mcpServers": {"a": {"url": "${BASE}/mcp"}}}`, map[string]string{"BASE": "https://example.com"},
			func(c *config.Config) any { return c.Servers[0].URL }, "${BASE}/mcp"},
		{"escaped reference", `{"auth": {"type": "none"}, "dataDir": "$${literal}"}`, nil,
			func(c *config.Config) any { return c.DataDir }, "${literal}"},
		{"byte order mark", "\ufeff{\"auth\": {\"type\": \"none\"}}", nil,
			func(c *config.Config) any { return c.Auth.Type }, "none"},
		{"server name with a dot", `{"auth": {"type": "none"}, "mcpServers": {"v1.2": {"command": "x"}}}`, nil,
			func(c *config.Config) any { return c.Servers[0].Name }, "v1.2"},
		{"metrics default", `{"auth": {"type": "none"}}`, nil,
			func(c *config.Config) any {
				return []any{c.HTTP.Metrics, c.ControlPlane.MetricsAddress, c.Audit.ToolArguments}
			},
			[]any{"token", "", false}},
		{"metrics public on a listener", `{"auth": {"type": "none"}, "http": {"metrics": "public"}, "controlPlane": {"metricsAddress": "127.0.0.1:9464"}}`, nil,
			func(c *config.Config) any { return []any{c.HTTP.Metrics, c.ControlPlane.MetricsAddress} },
			[]any{"public", "127.0.0.1:9464"}},
		{"metrics address from the environment", `{"auth": {"type": "token", "options": {"token": "t"}}, "controlPlane": {"metricsAddress": "${METRICS:-}"}}`, nil,
			func(c *config.Config) any { return c.ControlPlane.MetricsAddress }, ""},
		{"audit tool arguments", `{"auth": {"type": "none"}, "audit": {"toolArguments": true}}`, nil,
			func(c *config.Config) any { return c.Audit.ToolArguments }, true},
		{"ui off by default", `{"auth": {"type": "none"}}`, nil,
			func(c *config.Config) any { return c.UI.Enabled }, false},
		{"ui enabled", `{"auth": {"type": "none"}, "ui": {"enabled": true}}`, nil,
			func(c *config.Config) any { return c.UI.Enabled }, true},
		{"ui empty object", `{"auth": {"type": "none"}, "ui": {}}`, nil,
			func(c *config.Config) any { return c.UI.Enabled }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.in), config.Options{LookupEnv: env(tt.env)})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, tt.check(c)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseServerOrder(t *testing.T) {
	// Conflict strategies go by file order, so it must survive parsing
	// (a map would shuffle it).
	names := []string{"zeta", "alpha", "mu", "beta", "omega", "gamma", "kappa", "delta"}
	var b strings.Builder
	b.WriteString(`{"auth": {"type": "none"}, "mcpServers": {`)
	for i, n := range names {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + n + `": {"command": "run-` + n + `"}`)
	}
	b.WriteString("}}")
	c, err := config.Parse([]byte(b.String()), config.Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got []string
	for _, s := range c.Servers {
		got = append(got, s.Name)
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("server order mismatch (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	// Each input is wrong in one way (or a few); want is every error, so a
	// spurious follow-on error fails the test as much as a missing one.
	const none = `"auth": {"type": "none"}`
	tests := []struct {
		name string
		in   string
		env  map[string]string
		want []string
	}{
		// The file as a whole.
		{"syntax error", "{\n  \"port\": 4000\n  \"host\": \"x\"\n}", nil,
			[]string{`syntax error at line 3, column 3: invalid character '"' after object value (expecting ',' or '}')`}},
		{"empty file", "", nil,
			[]string{`syntax error at line 1, column 1: parsing value: unexpected EOF`}},
		{"not an object", `["auth"]`, nil,
			[]string{`a config file must hold a JSON object`}},
		{"unknown key", `{"foo": 1, ` + none + `}`, nil,
			[]string{`foo: unknown key`}},
		{"duplicate key", `{"port": 1, "port": 2, ` + none + `}`, nil,
			[]string{`port: duplicate key`}},
		{"schema not a string", `{"$schema": 1, ` + none + `}`, nil,
			[]string{`$schema: must be a string, not a number`}},
		{"dataDir empty", `{"dataDir": "", ` + none + `}`, nil,
			[]string{`dataDir: must not be empty`}},

		// port and host.
		{"port negative", `{"port": -1, ` + none + `}`, nil,
			[]string{`port: must be a number between 0 and 65535`}},
		{"port too big", `{"port": 65536, ` + none + `}`, nil,
			[]string{`port: must be a number between 0 and 65535`}},
		{"port fraction", `{"port": 4000.5, ` + none + `}`, nil,
			[]string{`port: must be a number between 0 and 65535`}},
		{"port not a number", `{"port": "http", ` + none + `}`, nil,
			[]string{`port: must be a number between 0 and 65535`}},
		{"port boolean", `{"port": true, ` + none + `}`, nil,
			[]string{`port: must be a number between 0 and 65535`}},
		{"port unset variable", `{"port": "${PORT}", ` + none + `}`, nil,
			[]string{`port: variable PORT is not set`}},
		{"host empty", `{"host": "", ` + none + `}`, nil,
			[]string{`host: must not be empty (use "0.0.0.0" to listen on every interface)`}},
		{"host invalid", `{"host": "a b", ` + none + `}`, nil,
			[]string{`host: must be an IP address or a host name such as "localhost"`}},

		// auth.
		{"auth missing", `{}`, nil,
			[]string{`auth: required: set "type" to "token", "jwt" or "oauth" (or, for a gateway listening only on loopback, "auth": {"type": "none"})`}},
		{"auth not an object", `{"auth": "none"}`, nil,
			[]string{`auth: must be an object, not a string`}},
		{"auth type missing", `{"auth": {}}`, nil,
			[]string{`auth.type: required: "none", "token", "jwt" or "oauth"`}},
		{"auth type unknown", `{"auth": {"type": "basic"}}`, nil,
			[]string{`auth.type: unknown value "basic" (want none, token, jwt or oauth)`}},
		{"auth unknown key", `{"auth": {"type": "none", "mode": "x"}}`, nil,
			[]string{`auth.mode: unknown key`}},
		{"none on every interface", `{"host": "0.0.0.0", ` + none + `}`, nil,
			[]string{`auth.type: "none" is only allowed on a loopback address (127.0.0.1, ::1 or localhost), and host is not: use "token" or "jwt"`}},
		{"none with a public control plane", `{"controlPlane": {"address": ":4001"}, ` + none + `}`, nil,
			[]string{`auth.type: "none" is only allowed on a loopback address (127.0.0.1, ::1 or localhost), and controlPlane.address is not: use "token" or "jwt"`}},
		{"token mode without tokens", `{"auth": {"type": "token"}}`, nil,
			[]string{`auth.options.token: required when auth.type is "token" (or set auth.options.tokens)`}},
		{"token mode with an empty list", `{"auth": {"type": "token", "options": {"tokens": []}}}`, nil,
			[]string{`auth.options.token: required when auth.type is "token" (or set auth.options.tokens)`}},
		{"jwt mode without credentials", `{"auth": {"type": "jwt", "options": {"ttl": "1h"}}}`, nil,
			[]string{`auth.options.clients: required when auth.type is "jwt" (or set auth.options.token or auth.options.tokens): credentials are exchanged for tokens at /auth`}},
		{"options not an object", `{"auth": {"type": "token", "options": []}}`, nil,
			[]string{`auth.options: must be an object, not an array`}},
		{"options unknown key", `{"auth": {"type": "token", "options": {"token": "t", "secret": "x"}}}`, nil,
			[]string{`auth.options.secret: unknown key`}},
		{"token empty", `{"auth": {"type": "token", "options": {"token": ""}}}`, nil,
			[]string{`auth.options.token: must not be empty`}},
		{"token unset variable", `{"auth": {"type": "token", "options": {"token": "${MCP_TOKEN}"}}}`, nil,
			[]string{`auth.options.token: variable MCP_TOKEN is not set`}},
		{"tokens element of the wrong type", `{"auth": {"type": "token", "options": {"tokens": [1]}}}`, nil,
			[]string{`auth.options.tokens[0]: must be a string or an object, not a number`}},
		{"token object without token", `{"auth": {"type": "token", "options": {"tokens": [{"name": "x"}]}}}`, nil,
			[]string{`auth.options.tokens[0].token: required`}},
		{"token object unknown key", `{"auth": {"type": "token", "options": {"tokens": [{"token": "t", "admin": true}]}}}`, nil,
			[]string{`auth.options.tokens[0].admin: unknown key`}},
		{"unknown scope", `{"auth": {"type": "token", "options": {"tokens": [{"token": "t", "scopes": ["admin", "root"]}]}}}`, nil,
			[]string{`auth.options.tokens[0].scopes[1]: unknown value "root" (want admin or edge)`}},
		{"empty server pattern", `{"auth": {"type": "token", "options": {"tokens": [{"token": "t", "servers": [""], "tools": "x"}]}}}`, nil,
			[]string{`auth.options.tokens[0].servers[0]: must not be empty`, `auth.options.tokens[0].tools: must be an array, not a string`}},
		{"duplicate token values", `{"auth": {"type": "token", "options": {"token": "same", "tokens": ["other", {"token": "same"}]}}}`, nil,
			[]string{`auth.options.tokens[1].token: same token as auth.options.token: each token must be unique`}},
		{"duplicate token names", `{"auth": {"type": "token", "options": {"tokens": [{"name": "ci", "token": "a"}, {"name": "ci", "token": "b"}]}}}`, nil,
			[]string{`auth.options.tokens[1].token: token name "ci" is already used by auth.options.tokens[0].token`}},
		{"client without id and secret", `{"auth": {"type": "jwt", "options": {"clients": [{"scopes": []}]}}}`, nil,
			[]string{`auth.options.clients[0].id: required`, `auth.options.clients[0].secret: required`}},
		{"client secret unset", `{"auth": {"type": "jwt", "options": {"clients": [{"id": "a", "secret": "${CLIENT_SECRET}"}]}}}`, nil,
			[]string{`auth.options.clients[0].secret: variable CLIENT_SECRET is not set`}},
		{"duplicate client ids", `{"auth": {"type": "jwt", "options": {"clients": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "y"}]}}}`, nil,
			[]string{`auth.options.clients[1].id: duplicate client id "a" (also auth.options.clients[0].id)`}},
		{"client not an object", `{"auth": {"type": "jwt", "options": {"clients": ["a"]}}}`, nil,
			[]string{`auth.options.clients[0]: must be an object, not a string`}},
		{"ttl invalid", `{"auth": {"type": "token", "options": {"token": "t", "ttl": "1 hour", "maxTtl": "0s"}}}`, nil,
			[]string{`auth.options.maxTtl: must be a positive duration such as "90s", "5m" or "1h"`, `auth.options.ttl: must be a positive duration such as "90s", "5m" or "1h"`}},
		{"ttl above maxTtl", `{"auth": {"type": "token", "options": {"token": "t", "ttl": "48h"}}}`, nil,
			[]string{`auth.options.ttl: must not be longer than maxTtl (24h)`}},
		{"maxTtl below the default ttl", `{"auth": {"type": "token", "options": {"token": "t", "maxTtl": "30m"}}}`, nil,
			[]string{`auth.options.maxTtl: must not be shorter than ttl (1h by default)`}},
		{"bad ttl hides the comparison", `{"auth": {"type": "token", "options": {"token": "t", "ttl": "x", "maxTtl": "30m"}}}`, nil,
			[]string{`auth.options.ttl: must be a positive duration such as "90s", "5m" or "1h"`}},
		{"keyRotation invalid", `{"auth": {"type": "token", "options": {"token": "t", "keyRotation": "monthly"}}}`, nil,
			[]string{`auth.options.keyRotation: must be a positive duration such as "90s", "5m" or "1h", or "off"`}},
		{"keyRotation too short", `{"auth": {"type": "token", "options": {"token": "t", "keyRotation": "10m"}}}`, nil,
			[]string{`auth.options.keyRotation: must be at least 1h (a rotation is checked for hourly), or "off"`}},
		{"keyRotation not a string", `{"auth": {"type": "token", "options": {"token": "t", "keyRotation": 3600}}}`, nil,
			[]string{`auth.options.keyRotation: must be a string, not a number`}},
		{"issuer empty", `{"auth": {"type": "token", "options": {"token": "t", "issuer": "", "audience": 1}}}`, nil,
			[]string{`auth.options.audience: must be a string, not a number`, `auth.options.issuer: must not be empty`}},

		// maxSessions.
		{"maxSessions without session isolation", `{"mcpServers": {"a": {"command": "x", "maxSessions": 3}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.maxSessions: applies only with "isolation": "session"`}},
		{"maxSessions zero", `{"mcpServers": {"a": {"command": "x", "isolation": "session", "maxSessions": 0}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.maxSessions: must be a whole number from 1 to 10000`}},

		// http.
		{"http unknown key", `{"http": {"allowedHost": []}, ` + none + `}`, nil,
			[]string{`http.allowedHost: unknown key`}},
		{"http maxBodyBytes zero", `{"http": {"maxBodyBytes": 0}, ` + none + `}`, nil,
			[]string{`http.maxBodyBytes: must be a whole number from 1 to 1073741824`}},
		{"http pageSize string", `{"http": {"pageSize": "10"}, ` + none + `}`, nil,
			[]string{`http.pageSize: must be a whole number from 1 to 100000`}},
		{"http idle timeout bad", `{"http": {"sessionIdleTimeout": "soon"}, ` + none + `}`, nil,
			[]string{`http.sessionIdleTimeout: must be a positive duration such as "90s", "5m" or "1h"`}},
		{"http empty origin", `{"http": {"allowedOrigins": [""]}, ` + none + `}`, nil,
			[]string{`http.allowedOrigins[0]: must not be empty`}},
		{"http metrics unknown", `{"http": {"metrics": "admin"}, ` + none + `}`, nil,
			[]string{`http.metrics: unknown value "admin" (want token, public or off)`}},
		{"metrics address bad", `{"controlPlane": {"metricsAddress": "9464"}, ` + none + `}`, nil,
			[]string{`controlPlane.metricsAddress: must be host:port, such as "127.0.0.1:4001"`}},
		{"metrics address while off", `{"http": {"metrics": "off"}, "controlPlane": {"metricsAddress": "127.0.0.1:9464"}, ` + none + `}`, nil,
			[]string{`controlPlane.metricsAddress: must be empty while http.metrics is "off"`}},
		{"metrics address off loopback without auth", `{"controlPlane": {"metricsAddress": "0.0.0.0:9464"}, ` + none + `}`, nil,
			[]string{`auth.type: "none" is only allowed on a loopback address (127.0.0.1, ::1 or localhost), and controlPlane.metricsAddress is not: use "token" or "jwt"`}},
		{"audit unknown key", `{"audit": {"arguments": true}, ` + none + `}`, nil,
			[]string{`audit.arguments: unknown key`}},
		{"audit toolArguments not a boolean", `{"audit": {"toolArguments": "yes"}, ` + none + `}`, nil,
			[]string{`audit.toolArguments: must be a boolean, not a string`}},
		{"ui not an object", `{"ui": true, ` + none + `}`, nil,
			[]string{`ui: must be an object, not a boolean`}},
		{"ui unknown key", `{"ui": {"enable": true}, ` + none + `}`, nil,
			[]string{`ui.enable: unknown key`}},
		{"ui enabled not a boolean", `{"ui": {"enabled": "yes"}, ` + none + `}`, nil,
			[]string{`ui.enabled: must be a boolean, not a string`}},
		{"ui enabled from a variable", `{"ui": {"enabled": "${UI}"}, ` + none + `}`, nil,
			[]string{`ui.enabled: must be a boolean, not a string`}},

		// limits, http timeouts and tls.
		{"limits negative", `{"limits": {"maxInFlightPerToken": -1}, ` + none + `}`, nil,
			[]string{`limits.maxInFlightPerToken: must be a whole number from 0 to 1048576 (0 means no limit)`}},
		{"limits fraction", `{"limits": {"maxSessions": 1.5}, ` + none + `}`, nil,
			[]string{`limits.maxSessions: must be a whole number from 0 to 1048576 (0 means no limit)`}},
		{"limits rate a string", `{"limits": {"requestsPerSecond": "10"}, ` + none + `}`, nil,
			[]string{`limits.requestsPerSecond: must be a number from 0 to 1000000 (0 means no limit)`}},
		{"limits burst without rate", `{"limits": {"burst": 5}, ` + none + `}`, nil,
			[]string{`limits.burst: needs limits.requestsPerSecond: without a rate there is nothing to burst above`}},
		{"limits unknown key", `{"limits": {"rate": 5}, ` + none + `}`, nil,
			[]string{`limits.rate: unknown key`}},
		{"http readTimeout zero", `{"http": {"readTimeout": "0s"}, ` + none + `}`, nil,
			[]string{`http.readTimeout: must be a positive duration such as "90s", "5m" or "1h"`}},
		{"tls without key", `{"tls": {"cert": "c.pem"}, ` + none + `}`, nil,
			[]string{`tls.key: required: the private key (PEM file) of the certificate`}},
		{"tls empty cert", `{"tls": {"cert": "", "key": "k.pem"}, ` + none + `}`, nil,
			[]string{`tls.cert: must not be empty`}},
		{"tls clientCA on the edge", `{"tls": {"cert": "c.pem", "key": "k.pem", "clientCA": "ca.pem"}, ` + none + `}`, nil,
			[]string{`tls.clientCA: unknown key`}},
		{"controlPlane tls without cert", `{"controlPlane": {"tls": {"key": "k.pem", "clientCA": "ca.pem"}}, ` + none + `}`, nil,
			[]string{`controlPlane.tls.cert: required: the certificate (PEM file) to serve TLS with`}},
		{"controlPlane clientCert without key", `{"controlPlane": {"clientCert": "e.pem"}, ` + none + `}`, nil,
			[]string{`controlPlane.clientKey: required with controlPlane.clientCert: the private key of the certificate`}},
		{"controlPlane tls unset variable", `{"controlPlane": {"ca": "${CA_FILE}"}, ` + none + `}`, nil,
			[]string{`controlPlane.ca: variable CA_FILE is not set`}},

		// controlPlane.
		{"address without port", `{"controlPlane": {"address": "localhost"}, ` + none + `}`, nil,
			[]string{`controlPlane.address: must be host:port, such as "127.0.0.1:4001"`}},
		{"address port out of range", `{"controlPlane": {"address": "127.0.0.1:70000"}, ` + none + `}`, nil,
			[]string{`controlPlane.address: port must be a number between 0 and 65535`}},
		{"address bad host", `{"controlPlane": {"address": "a b:4001"}, ` + none + `}`, nil,
			[]string{`controlPlane.address: host must be an IP address or a host name, such as "127.0.0.1:4001"`}},
		{"allowCommands of the wrong type", `{"controlPlane": {"allowCommands": "npx"}, ` + none + `}`, nil,
			[]string{`controlPlane.allowCommands: must be true, false or an array of commands, not a string`}},
		{"allowCommands empty command", `{"controlPlane": {"allowCommands": ["npx", ""]}, ` + none + `}`, nil,
			[]string{`controlPlane.allowCommands[1]: must not be empty`}},
		{"controlPlane unknown key", `{"controlPlane": {"port": 4001}, ` + none + `}`, nil,
			[]string{`controlPlane.port: unknown key`}},

		// namespacing.
		{"namespacing mode", `{"namespacing": {"mode": "sometimes"}, ` + none + `}`, nil,
			[]string{`namespacing.mode: unknown value "sometimes" (want always, conditional or never)`}},
		{"namespacing separator", `{"namespacing": {"separator": "::"}, ` + none + `}`, nil,
			[]string{`namespacing.separator: must be 1 to 4 characters from A-Z, a-z, 0-9, "_", "." and "-"`}},
		{"namespacing separator too long", `{"namespacing": {"separator": "_____"}, ` + none + `}`, nil,
			[]string{`namespacing.separator: must be 1 to 4 characters from A-Z, a-z, 0-9, "_", "." and "-"`}},
		{"namespacing conflict", `{"namespacing": {"conflict": "merge"}, ` + none + `}`, nil,
			[]string{`namespacing.conflict: unknown value "merge" (want first-wins, last-wins, prefer-server, rename or reject)`}},
		{"prefer-server without prefer", `{"namespacing": {"conflict": "prefer-server"}, ` + none + `}`, nil,
			[]string{`namespacing.prefer: must name at least one server when conflict is "prefer-server"`}},
		{"prefer names no server", `{"namespacing": {"conflict": "prefer-server", "prefer": ["a", "b"]}, "mcpServers": {"a": {"command": "x"}}, ` + none + `}`, nil,
			[]string{`namespacing.prefer[1]: no mcpServers entry is named "b"`}},
		{"namespacing unknown key", `{"namespacing": {"prefix": "x"}, ` + none + `}`, nil,
			[]string{`namespacing.prefix: unknown key`}},

		// mcpServers.
		{"mcpServers not an object", `{"mcpServers": [], ` + none + `}`, nil,
			[]string{`mcpServers: must be an object, not an array`}},
		{"server not an object", `{"mcpServers": {"a": "npx"}, ` + none + `}`, nil,
			[]string{`mcpServers.a: must be an object, not a string`}},
		{"duplicate server", `{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}, ` + none + `}`, nil,
			[]string{`mcpServers.a: duplicate key`}},
		{"server name invalid", `{"mcpServers": {"-a": {"command": "x"}, "my server": {"command": "x"}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.-a: invalid server name: use 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit`,
				`mcpServers["my server"]: invalid server name: use 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit`,
			}},
		{"server name too long", `{"mcpServers": {"` + strings.Repeat("a", 49) + `": {"command": "x"}}, ` + none + `}`, nil,
			[]string{`mcpServers.` + strings.Repeat("a", 49) + `: invalid server name: use 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit`}},
		{"neither command nor url", `{"mcpServers": {"github": {"args": ["x"]}}, ` + none + `}`, nil,
			[]string{`mcpServers.github: needs "command" (stdio) or "url" (sse, http)`}},
		{"both command and url", `{"mcpServers": {"github": {"command": "x", "url": "http://x"}}, ` + none + `}`, nil,
			[]string{`mcpServers.github: has both "command" and "url": a server is either a command to run (stdio) or a remote URL (sse, http)`}},
		{"stdio without command", `{"mcpServers": {"github": {"transportType": "stdio", "url": "http://x"}}, ` + none + `}`, nil,
			[]string{`mcpServers.github.command: required`, `mcpServers.github.url: not allowed for a stdio server`}},
		{"stdio with headers", `{"mcpServers": {"a": {"command": "x", "headers": {"A": "b"}}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.headers: not allowed for a stdio server`}},
		{"sse without url", `{"mcpServers": {"a": {"type": "sse", "command": "x", "args": [], "env": {}, "cwd": "/"}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.a.args: not allowed for an sse server`,
				`mcpServers.a.command: not allowed for an sse server`,
				`mcpServers.a.cwd: not allowed for an sse server`,
				`mcpServers.a.env: not allowed for an sse server`,
				`mcpServers.a.url: required`,
			}},
		{"unknown transport", `{"mcpServers": {"x": {"transportType": "grpc", "url": "http://x"}}, ` + none + `}`, nil,
			[]string{`mcpServers.x.transportType: unknown value "grpc" (want stdio, sse or http)`}},
		{"unknown type", `{"mcpServers": {"x": {"type": "ws", "url": "http://x"}}, ` + none + `}`, nil,
			[]string{`mcpServers.x.type: unknown value "ws" (want stdio, sse or http)`}},
		{"type conflicts with transportType", `{"mcpServers": {"x": {"type": "sse", "transportType": "http", "url": "http://x"}}, ` + none + `}`, nil,
			[]string{`mcpServers.x.type: conflicts with "transportType": set one of them`}},
		{"command of the wrong type", `{"mcpServers": {"a": {"command": ["npx"]}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.command: must be a string, not an array`}},
		{"command empty", `{"mcpServers": {"a": {"command": ""}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.command: must not be empty`}},
		{"args of the wrong type", `{"mcpServers": {"a": {"command": "x", "args": ["-y", 1]}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.args[1]: must be a string, not a number`}},
		{"env", `{"mcpServers": {"a": {"command": "x", "env": {"1X": "y", "OK": 2, "A-B": "${NOPE}"}}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.a.env.1X: invalid variable name: use letters, digits and "_", not starting with a digit`,
				`mcpServers.a.env.A-B: invalid variable name: use letters, digits and "_", not starting with a digit`,
				`mcpServers.a.env.A-B: variable NOPE is not set`,
				`mcpServers.a.env.OK: must be a string, not a number`,
			}},
		{"url not http", `{"mcpServers": {"a": {"url": "ftp://example.com"}, "b": {"url": "/mcp"}, "c": {"url": "https://"}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.a.url: must be an absolute http or https URL`,
				`mcpServers.b.url: must be an absolute http or https URL`,
				`mcpServers.c.url: must be an absolute http or https URL`,
			}},
		{"url invalid once expanded", `{"mcpServers": {"a": {"url": "${BASE}/mcp"}}, ` + none + `}`, map[string]string{"BASE": "example.com"},
			[]string{`mcpServers.a.url: must be an absolute http or https URL`}},
		{"headers", `{"mcpServers": {"a": {"url": "http://x", "headers": {"Bad Name": "x", "X-Key": "a\r\nb"}}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.headers.X-Key: must not contain a line break or NUL`, `mcpServers.a.headers["Bad Name"]: invalid header name`}},
		{"labels", `{"mcpServers": {"a": {"command": "x", "tags": [""], "tools": {"allow": [""], "deny": [1], "only": []}, "prefix": "_x"}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.a.prefix: must be 1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit, or empty for the server's name`,
				`mcpServers.a.tags[0]: must not be empty`,
				`mcpServers.a.tools.allow[0]: must not be empty`,
				`mcpServers.a.tools.deny[0]: must be a string, not a number`,
				`mcpServers.a.tools.only: unknown key`,
			}},
		{"timeout and isolation", `{"mcpServers": {"a": {"command": "x", "timeout": "0s", "isolation": "solo"}, "b": {"command": "x", "timeout": "soon"}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.a.isolation: unknown value "solo" (want shared or session)`,
				`mcpServers.a.timeout: must be a positive duration such as "90s", "5m" or "1h"`,
				`mcpServers.b.timeout: must be a positive duration such as "90s", "5m" or "1h"`,
			}},
		{"booleans", `{"mcpServers": {"a": {"command": "x", "disabled": "yes", "pinTools": 1}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.disabled: must be a boolean, not a string`, `mcpServers.a.pinTools: must be a boolean, not a number`}},
		{"server unknown key", `{"mcpServers": {"a": {"command": "x", "comand": "y"}}, ` + none + `}`, nil,
			[]string{`mcpServers.a.comand: unknown key`}},
		{"malformed references", `{"mcpServers": {"a": {"command": "${", "args": ["${}", "${1X}"], "disabled": true}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.a.args[0]: malformed variable reference: empty name in "${}"`,
				`mcpServers.a.args[1]: malformed variable reference: a name is letters, digits and "_", not starting with a digit (write "$${" for a literal "${")`,
				`mcpServers.a.command: malformed variable reference: "${" without a closing "}" (write "$${" for a literal "${")`,
			}},
		{"unset variables in a server", `{"mcpServers": {"github": {"url": "https://${HOST}/mcp", "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}}, ` + none + `}`, nil,
			[]string{
				`mcpServers.github.headers.Authorization: variable GITHUB_TOKEN is not set`,
				`mcpServers.github.url: variable HOST is not set`,
			}},

		// Several problems at once, sorted by path.
		{"all at once", `{"zzz": 1, "port": 70000, "auth": {"type": "token"}, "mcpServers": {"a": {}}}`, nil,
			[]string{
				`auth.options.token: required when auth.type is "token" (or set auth.options.tokens)`,
				`mcpServers.a: needs "command" (stdio) or "url" (sse, http)`,
				`port: must be a number between 0 and 65535`,
				`zzz: unknown key`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.in), config.Options{LookupEnv: env(tt.env)})
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			if diff := cmp.Diff(tt.want, messages(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseKeepsSecretsOutOfErrors(t *testing.T) {
	// Every value below is wrong, and each either is the secret or expands
	// to it. No error may print it.
	const secret = "s3cr3t value/with!chars"
	vars := map[string]string{"SECRET": secret}
	inputs := []string{
		`{"auth": {"type": "${SECRET}"}}`,
		`{"port": "${SECRET}", "auth": {"type": "none"}}`,
		`{"host": "${SECRET}", "auth": {"type": "none"}}`,
		`{"controlPlane": {"address": "${SECRET}"}, "auth": {"type": "none"}}`,
		`{"namespacing": {"separator": "${SECRET}", "mode": "${SECRET}"}, "auth": {"type": "none"}}`,
		`{"auth": {"type": "token", "options": {"token": "${SECRET}", "tokens": ["${SECRET}", {"token": "${SECRET}", "scopes": ["${SECRET}"]}], "ttl": "${SECRET}"}}}`,
		`{"auth": {"type": "token", "options": {"token": "` + secret + `", "tokens": ["` + secret + `"]}}}`,
		"{\"auth\": {\"type\": \"token\", \"options\": {\"token\": \"" + secret + "\x01\"}}}",
		"{\"auth\": {\"type\": \"token\", \"options\": {\"token\": \"" + secret + "\\q\"}}}",
		`{"auth": {"type": "none"}, "mcpServers": {"a": {"url": "${SECRET}", "timeout": "${SECRET}", "headers": {"X": "${SECRET}\n"}}}}`,
		`{"auth": {"type": "none"}, "mcpServers": {"a": {"url": "` + secret + `", "timeout": "` + secret + `"}}}`,
		`{"auth": {"type": "none"}, "mcpServers": {"a": {"command": "` + secret + `${"}}}`,
	}
	for _, in := range inputs {
		_, err := config.Parse([]byte(in), config.Options{LookupEnv: env(vars)})
		if err == nil {
			t.Errorf("Parse(%s) succeeded, want an error", in)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Parse(%s) error holds the secret:\n%v", in, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "atrax.json")
	if err := os.WriteFile(path, []byte(`{"auth": {"type": "none"}, "dataDir": "data"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, config.Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Path != path {
		t.Errorf("Path = %q, want %q", c.Path, path)
	}
	if got, want := c.DataDirPath(), filepath.Join(dir, "data"); got != want {
		t.Errorf("DataDirPath() = %q, want %q", got, want)
	}

	_, err = config.Load(filepath.Join(dir, "missing.json"), config.Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: got %v, want fs.ErrNotExist", err)
	}

	if err := os.WriteFile(path, []byte(`{"auth": {"type": "none"}, "port": 70000}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(path, config.Options{LookupEnv: env(nil)})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Path != "port" {
		t.Errorf("Load of a bad file: got %v, want a FieldError at port", err)
	}
}

func TestDataDirPath(t *testing.T) {
	abs := filepath.Join(string(filepath.Separator), "var", "lib", "atrax")
	cfg := filepath.Join(string(filepath.Separator), "etc", "atrax", "config.json")
	tests := []struct {
		path, dataDir, want string
	}{
		{"", "", "atrax-data"},
		{"", "data", "data"},
		{cfg, "", filepath.Join(filepath.Dir(cfg), "atrax-data")},
		{cfg, "data", filepath.Join(filepath.Dir(cfg), "data")},
		{cfg, abs, abs},
		{"config.json", "", "atrax-data"},
	}
	for _, tt := range tests {
		c := &config.Config{Path: tt.path, DataDir: tt.dataDir}
		if got := c.DataDirPath(); got != tt.want {
			t.Errorf("Config{Path: %q, DataDir: %q}.DataDirPath() = %q, want %q", tt.path, tt.dataDir, got, tt.want)
		}
	}
}

// TestKeyRotationOff: "off" turns scheduled rotation off, as 0.
func TestKeyRotationOff(t *testing.T) {
	c, err := config.Parse([]byte(`{"auth": {"type": "token", "options": {"token": "t", "keyRotation": "off"}}}`), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.KeyRotation != 0 {
		t.Errorf("KeyRotation = %v, want 0", c.Auth.KeyRotation)
	}
}
