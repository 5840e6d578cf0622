package config_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/config"
)

func TestParseOAuth(t *testing.T) {
	in := `{
  "auth": {
    "type": "oauth",
    "options": {
      "issuer": "https://idp.example.com/realms/main",
      "audience": "https://atrax.example.com/mcp",
      "jwksRefresh": "5m",
      "claims": {
        "scope": "scp",
        "subject": "oid",
        "scopes": {
          "mcp:admin": ["admin"],
          "mcp:tools": ["server:*", "tool:*"],
          "mcp:memory": ["server:memory"],
        },
        "scopePrefix": "atrax:",
        "servers": "atrax_servers",
        "tools": "atrax_tools",
      },
      "introspection": {"clientId": "atrax", "clientSecret": "${SECRET}", "cacheTtl": "30s"},
      "scopesSupported": ["mcp:tools", "mcp:admin"],
      "ca": "${PKI}/idp-ca.pem",
      "tokens": [{"name": "ci", "token": "${CI_TOKEN}", "servers": ["github"]}],
    },
  },
}`
	c, err := config.Parse([]byte(in), config.Options{LookupEnv: env(map[string]string{"SECRET": "s", "CI_TOKEN": "ci-token", "PKI": "/etc/pki"})})
	if err != nil {
		t.Fatal(err)
	}
	want := &config.OAuth{
		Issuer:      "https://idp.example.com/realms/main",
		Audience:    "https://atrax.example.com/mcp",
		JWKSRefresh: 5 * time.Minute,
		Claims: config.OAuthClaims{
			Subject: "oid",
			Scope:   "scp",
			Scopes: []config.ScopeGrant{
				{Scope: "mcp:admin", Grants: []string{"admin"}},
				{Scope: "mcp:tools", Grants: []string{"server:*", "tool:*"}},
				{Scope: "mcp:memory", Grants: []string{"server:memory"}},
			},
			ScopePrefix: "atrax:",
			Servers:     "atrax_servers",
			Tools:       "atrax_tools",
		},
		Introspection:   &config.Introspection{ClientID: "atrax", ClientSecret: "s", CacheTTL: 30 * time.Second},
		ScopesSupported: []string{"mcp:tools", "mcp:admin"},
		CA:              "/etc/pki/idp-ca.pem",
	}
	if diff := cmp.Diff(want, c.Auth.OAuth); diff != "" {
		t.Errorf("OAuth mismatch (-want +got):\n%s", diff)
	}
	// Issued tokens keep Atrax's own iss and aud; static tokens stay.
	if c.Auth.Issuer != config.DefaultIssuer || c.Auth.Audience != config.DefaultAudience {
		t.Errorf("issued tokens' iss/aud = %q/%q, want the defaults", c.Auth.Issuer, c.Auth.Audience)
	}
	if len(c.Auth.Tokens) != 1 || c.Auth.Tokens[0].Name != "ci" {
		t.Errorf("static tokens = %+v, want ci", c.Auth.Tokens)
	}
	// An edge presents the first static token to the control plane, as in
	// token mode.
	if c.ControlPlane.Token != "ci-token" {
		t.Errorf("controlPlane.token defaults to %q, want the first static token", c.ControlPlane.Token)
	}
}

func TestParseOAuthDefaults(t *testing.T) {
	in := `{"auth": {"type": "oauth", "options": {
		"issuer": "http://127.0.0.1:9000", "audience": "http://localhost:4000",
		"claims": {"scopePrefix": "atrax:"}}}}`
	c, err := config.Parse([]byte(in), config.Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := &config.OAuth{
		Issuer:      "http://127.0.0.1:9000",
		Audience:    "http://localhost:4000",
		JWKSRefresh: config.DefaultJWKSRefresh,
		Claims:      config.OAuthClaims{Subject: "sub", ScopePrefix: "atrax:"},
	}
	if diff := cmp.Diff(want, c.Auth.OAuth); diff != "" {
		t.Errorf("OAuth mismatch (-want +got):\n%s", diff)
	}
	if c.ControlPlane.Token != "" {
		t.Errorf("controlPlane.token = %q without static tokens, want none", c.ControlPlane.Token)
	}

	// Other modes have no OAuth.
	c, err = config.Parse([]byte(`{"auth": {"type": "token", "options": {"token": "t"}}}`), config.Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.OAuth != nil {
		t.Errorf("token mode has OAuth %+v", c.Auth.OAuth)
	}
}

func TestParseOAuthErrors(t *testing.T) {
	oauth := func(options string) string {
		return `{"auth": {"type": "oauth", "options": {` + options + `}}}`
	}
	const base = `"issuer": "https://idp.example.com", "audience": "https://atrax.example.com", `
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"nothing", `{"auth": {"type": "oauth"}}`, []string{
			`auth.options.audience: required when auth.type is "oauth": this gateway's canonical URL, which tokens must name in aud`,
			`auth.options.claims: required when auth.type is "oauth": say which scopes or claims grant what ("scopes", "scopePrefix", "servers" or "tools")`,
			`auth.options.issuer: required when auth.type is "oauth": the authorization server's issuer URL`,
		}},
		{"claims grant nothing", oauth(base + `"claims": {"subject": "sub"}`), []string{
			`auth.options.claims: needs "scopes", "scopePrefix", "servers" or "tools": otherwise no token grants anything`,
		}},
		{"http issuer off loopback", oauth(`"issuer": "http://idp.example.com", "audience": "https://a.example.com", "claims": {"scopePrefix": "a:"}`), []string{
			`auth.options.issuer: must use https (http only on a loopback host such as 127.0.0.1)`,
		}},
		{"relative audience", oauth(`"issuer": "https://idp.example.com", "audience": "/mcp", "claims": {"scopePrefix": "a:"}`), []string{
			`auth.options.audience: must be an absolute URL such as "https://idp.example.com/realms/main"`,
		}},
		{"audience with a fragment", oauth(`"issuer": "https://idp.example.com", "audience": "https://a.example.com/#x", "claims": {"scopePrefix": "a:"}`), []string{
			`auth.options.audience: must not have a query or a fragment`,
		}},
		{"issuer with a query", oauth(`"issuer": "https://idp.example.com/?tenant=1", "audience": "https://a.example.com", "claims": {"scopePrefix": "a:"}`), []string{
			`auth.options.issuer: must not have a query or a fragment`,
		}},
		{"ftp issuer", oauth(`"issuer": "ftp://idp.example.com", "audience": "https://a.example.com", "claims": {"scopePrefix": "a:"}`), []string{
			`auth.options.issuer: must be an https URL`,
		}},
		{"bad grants", oauth(base + `"claims": {"scopes": {"mcp:x": ["root", "server:", 3], "two words": ["admin"]}}`), []string{
			`auth.options.claims.scopes["mcp:x"][0]: must be "admin", "edge", "server:PATTERN" or "tool:PATTERN"`,
			`auth.options.claims.scopes["mcp:x"][1]: must be "admin", "edge", "server:PATTERN" or "tool:PATTERN"`,
			`auth.options.claims.scopes["mcp:x"][2]: must be a string, not a number`,
			`auth.options.claims.scopes["two words"]: must be a scope: not empty, without spaces, quotes or backslashes`,
		}},
		{"unknown claims key", oauth(base + `"claims": {"scopePrefix": "a:", "role": "x"}`), []string{
			`auth.options.claims.role: unknown key`,
		}},
		{"empty claim name", oauth(base + `"claims": {"scope": ""}`), []string{
			`auth.options.claims.scope: must not be empty`,
		}},
		{"bad jwksRefresh", oauth(base + `"claims": {"scopePrefix": "a:"}, "jwksRefresh": "soon"`), []string{
			`auth.options.jwksRefresh: must be a positive duration such as "90s", "5m" or "1h"`,
		}},
		{"introspection without credentials", oauth(base + `"claims": {"scopePrefix": "a:"}, "introspection": {"endpoint": "http://idp.example.com/introspect"}`), []string{
			`auth.options.introspection.clientId: required: the gateway's client id at the introspection endpoint`,
			`auth.options.introspection.clientSecret: required: the gateway's client secret at the introspection endpoint`,
			`auth.options.introspection.endpoint: must use https (http only on a loopback host such as 127.0.0.1)`,
		}},
		{"bad scopesSupported", oauth(base + `"claims": {"scopePrefix": "a:"}, "scopesSupported": ["a b", ""]`), []string{
			`auth.options.scopesSupported[0]: must be a scope: not empty, without spaces, quotes or backslashes`,
			`auth.options.scopesSupported[1]: must be a scope: not empty, without spaces, quotes or backslashes`,
		}},
		{"empty ca", oauth(base + `"claims": {"scopePrefix": "a:"}, "ca": ""`), []string{
			`auth.options.ca: must not be empty`,
		}},
		{"ca not a string", oauth(base + `"claims": {"scopePrefix": "a:"}, "ca": ["a.pem", "b.pem"]`), []string{
			`auth.options.ca: must be a string, not an array`,
		}},
		{"ca unset variable", oauth(base + `"claims": {"scopePrefix": "a:"}, "ca": "${IDP_CA}"`), []string{
			`auth.options.ca: variable IDP_CA is not set`,
		}},
		{"oauth keys in token mode", `{"auth": {"type": "token", "options": {"token": "t", "claims": {}, "jwksRefresh": "1m", "introspection": {}, "scopesSupported": [], "ca": "ca.pem"}}}`, []string{
			`auth.options.ca: only with auth.type "oauth"`,
			`auth.options.claims: only with auth.type "oauth"`,
			`auth.options.introspection: only with auth.type "oauth"`,
			`auth.options.jwksRefresh: only with auth.type "oauth"`,
			`auth.options.scopesSupported: only with auth.type "oauth"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.in), config.Options{LookupEnv: env(nil)})
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tt.want)
			}
			if diff := cmp.Diff(tt.want, messages(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
