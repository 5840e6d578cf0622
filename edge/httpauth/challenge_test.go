package httpauth_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

const metadataURL = "https://atrax.example.com/.well-known/oauth-protected-resource/mcp"

// challenge is the edge's OAuth challenge for its MCP endpoints.
var challenge = &httpauth.Challenge{
	ResourceMetadata: metadataURL,
	Scope:            "mcp:tools",
	ScopeFor: func(grant string) string {
		return map[string]string{authn.ScopeAdmin: "mcp:admin", "server:*": "mcp:tools"}[grant]
	},
}

// sdkParam reads an auth-param the way the MCP TypeScript SDK does
// (extractFieldFromWwwAuth), so that what it finds is checked too.
func sdkParam(header, name string) string {
	m := regexp.MustCompile(name + `=(?:"([^"]+)"|([^\s,]+))`).FindStringSubmatch(header)
	if m == nil {
		return ""
	}
	return m[1] + m[2]
}

func TestChallenges(t *testing.T) {
	tests := []struct {
		name   string
		c      *httpauth.Challenge
		deny   func(w http.ResponseWriter, r *http.Request)
		code   int
		header string
	}{{
		name: "no token, no OAuth", deny: func(w http.ResponseWriter, r *http.Request) { httpauth.Deny(w, r, authn.ErrNoToken) },
		code: 401, header: `Bearer realm="atrax"`,
	}, {
		name: "no token", c: challenge,
		deny:   func(w http.ResponseWriter, r *http.Request) { httpauth.Deny(w, r, authn.ErrNoToken) },
		code:   401,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", scope="mcp:tools"`,
	}, {
		name: "wrong audience", c: challenge,
		deny:   func(w http.ResponseWriter, r *http.Request) { httpauth.Deny(w, r, authn.ErrWrongAudience) },
		code:   401,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", scope="mcp:tools", error="invalid_token", error_description="the token is for another resource (aud)"`,
	}, {
		name: "wrong issuer", c: challenge,
		deny:   func(w http.ResponseWriter, r *http.Request) { httpauth.Deny(w, r, authn.ErrWrongIssuer) },
		code:   401,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", scope="mcp:tools", error="invalid_token", error_description="the token is from another issuer (iss)"`,
	}, {
		name: "expired", c: challenge,
		deny:   func(w http.ResponseWriter, r *http.Request) { httpauth.Deny(w, r, authn.ErrExpired) },
		code:   401,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", scope="mcp:tools", error="invalid_token", error_description="the token has expired"`,
	}, {
		name: "no server granted", c: challenge,
		deny: func(w http.ResponseWriter, r *http.Request) {
			httpauth.Deny(w, r, fmt.Errorf("mcp: %w", &httpauth.ScopeError{Grant: "server:*", Desc: "the token grants no MCP server"}))
		},
		code:   403,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", error="insufficient_scope", scope="mcp:tools", error_description="the token grants no MCP server"`,
	}, {
		name: "admin", c: challenge,
		deny: func(w http.ResponseWriter, r *http.Request) {
			httpauth.DenyScope(w, r, authn.ScopeAdmin, "this call needs the admin scope")
		},
		code:   403,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", error="insufficient_scope", scope="mcp:admin", error_description="this call needs the admin scope"`,
	}, {
		name: "admin, no OAuth",
		deny: func(w http.ResponseWriter, r *http.Request) {
			httpauth.DenyScope(w, r, authn.ScopeAdmin, "this call needs the admin scope")
		},
		code: 403, header: `Bearer realm="atrax", error="insufficient_scope", scope="admin", error_description="this call needs the admin scope"`,
	}, {
		name: "a grant OAuth does not map keeps its name", c: challenge,
		deny:   func(w http.ResponseWriter, r *http.Request) { httpauth.DenyScope(w, r, authn.ScopeEdge, "edges only") },
		code:   403,
		header: `Bearer realm="atrax", resource_metadata="` + metadataURL + `", error="insufficient_scope", scope="edge", error_description="edges only"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Handler(http.HandlerFunc(tt.deny))
			if tt.c != nil {
				h = httpauth.WithChallenge(tt.c, h)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", "/mcp", nil))
			if w.Code != tt.code {
				t.Errorf("status %d, want %d", w.Code, tt.code)
			}
			got := w.Header().Get("WWW-Authenticate")
			if got != tt.header {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tt.header)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] == "" {
				t.Errorf("body %q is not an OAuth error", w.Body)
			}
			if tt.c == nil {
				return
			}
			// What an MCP client reads of it.
			if got := sdkParam(got, "resource_metadata"); got != metadataURL {
				t.Errorf("the SDK reads resource_metadata %q", got)
			}
			if tt.code == 403 && sdkParam(got, "error") != "insufficient_scope" {
				t.Errorf("the SDK reads error %q", sdkParam(got, "error"))
			}
		})
	}
}

func TestChallengeHelpers(t *testing.T) {
	r := httptest.NewRequest("GET", "/servers", nil)
	r = r.WithContext(httpauth.NewChallengeContext(r.Context(), &httpauth.Challenge{ResourceMetadata: metadataURL, ScopeFor: challenge.ScopeFor}))
	if got, want := httpauth.InvalidToken(r, ""), `Bearer realm="atrax", resource_metadata="`+metadataURL+`"`; got != want {
		t.Errorf("InvalidToken without a token\n got %s\nwant %s", got, want)
	}
	if got, want := httpauth.InvalidToken(r, "bad"), `Bearer realm="atrax", resource_metadata="`+metadataURL+`", error="invalid_token", error_description="bad"`; got != want {
		t.Errorf("InvalidToken\n got %s\nwant %s", got, want)
	}
	if got, want := httpauth.InsufficientScope(r, authn.ScopeAdmin, "admins only"), `Bearer realm="atrax", resource_metadata="`+metadataURL+`", error="insufficient_scope", scope="mcp:admin", error_description="admins only"`; got != want {
		t.Errorf("InsufficientScope\n got %s\nwant %s", got, want)
	}
	plain := httptest.NewRequest("GET", "/servers", nil)
	if got, want := httpauth.InvalidToken(plain, ""), `Bearer realm="atrax"`; got != want {
		t.Errorf("InvalidToken without OAuth: %s", got)
	}
}

func TestMetadataPaths(t *testing.T) {
	for resource, want := range map[string][2]string{
		"https://atrax.example.com/mcp":       {"/.well-known/oauth-protected-resource/mcp", "https://atrax.example.com/.well-known/oauth-protected-resource/mcp"},
		"https://atrax.example.com":           {"/.well-known/oauth-protected-resource", "https://atrax.example.com/.well-known/oauth-protected-resource"},
		"https://atrax.example.com/":          {"/.well-known/oauth-protected-resource", "https://atrax.example.com/.well-known/oauth-protected-resource"},
		"http://127.0.0.1:4000/tenant/a/mcp/": {"/.well-known/oauth-protected-resource/tenant/a/mcp", "http://127.0.0.1:4000/.well-known/oauth-protected-resource/tenant/a/mcp"},
	} {
		got := [2]string{httpauth.MetadataPath(resource), httpauth.MetadataURL(resource)}
		if got != want {
			t.Errorf("%s: got %q, want %q", resource, got, want)
		}
	}
}

func TestResourceMetadata(t *testing.T) {
	m := &httpauth.ResourceMetadata{
		Resource:               "https://atrax.example.com/mcp",
		AuthorizationServers:   []string{"https://idp.example.com/realms/main"},
		ScopesSupported:        []string{"mcp:tools", "mcp:admin"},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Atrax",
	}
	h := m.Handler()

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/oauth-protected-resource/mcp", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %v", w.Code, w.Header())
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                 "https://atrax.example.com/mcp",
		"authorization_servers":    []any{"https://idp.example.com/realms/main"},
		"scopes_supported":         []any{"mcp:tools", "mcp:admin"},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            "Atrax",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}

	for method, code := range map[string]int{"HEAD": 200, "OPTIONS": 204, "POST": 405} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, "/.well-known/oauth-protected-resource", nil))
		if w.Code != code {
			t.Errorf("%s: %d, want %d", method, w.Code, code)
		}
		if method == "HEAD" && w.Body.Len() != 0 {
			t.Errorf("HEAD has a body")
		}
	}
}
