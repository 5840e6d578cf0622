package edge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/cptest"
)

// fakeIdP is an authorization server's metadata and one EC key, on
// 127.0.0.1.
type fakeIdP struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeIdP{key: key}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL, "jwks_uri": p.URL + "/jwks"})
		case "/jwks":
			b, _ := key.PublicKey.Bytes()
			enc := base64.RawURLEncoding.EncodeToString
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]string{
				"kty": "EC", "crv": "P-256", "kid": "k1", "x": enc(b[1:33]), "y": enc(b[33:]),
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *fakeIdP) token(t *testing.T, aud, scope string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": p.URL, "aud": aud, "sub": "alice", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text(),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOAuthResource runs an edge with auth.type "oauth": its metadata
// document, and its challenges on MCP and other paths.
func TestOAuthResource(t *testing.T) {
	idp := newFakeIdP(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", lis.Addr().(*net.TCPAddr).Port)
	audience := base + "/mcp"
	cp := cptest.New(t)
	c, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "oauth", "options": {
			"issuer": %q, "audience": %q,
			"claims": {"scopes": {"mcp:tools": ["server:*", "tool:*"], "mcp:admin": ["admin"]}},
		}},
		"controlPlane": {"address": %q, "token": "edge-token"},
	}`, idp.URL, audience, cp.Addr)), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cp.SetSnapshot(&atraxv1.Snapshot{Version: 1, Namespacing: &atraxv1.Namespacing{Mode: "always", Separator: "__", Conflict: "first-wins"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- edge.Run(ctx, edge.Options{Config: c, Listener: lis, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge.Run: %v", err)
		}
	})

	do := func(method, path, tok, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	metadata := base + "/.well-known/oauth-protected-resource/mcp"
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		code, body := get(t, base+path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var got map[string]any
		_ = json.Unmarshal([]byte(body), &got)
		want := map[string]any{
			"resource": audience, "authorization_servers": []any{idp.URL},
			"scopes_supported": []any{"mcp:tools", "mcp:admin"}, "bearer_methods_supported": []any{"header"},
			"resource_name": "Atrax MCP gateway",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}

	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	tests := []struct {
		name, method, path, token string
		code                      int
		challenge                 string
	}{
		{"no token", "POST", "/mcp", "", 401,
			`Bearer realm="atrax", resource_metadata="` + metadata + `", scope="mcp:tools"`},
		{"another resource's token", "POST", "/mcp", idp.token(t, base+"/other", "mcp:tools"), 401,
			`Bearer realm="atrax", resource_metadata="` + metadata + `", scope="mcp:tools", error="invalid_token", error_description="the token is for another resource (aud)"`},
		{"no MCP scope", "POST", "/mcp", idp.token(t, audience, "mcp:admin"), 403,
			`Bearer realm="atrax", resource_metadata="` + metadata + `", error="insufficient_scope", scope="mcp:tools", error_description="the token grants no MCP server"`},
		{"no MCP scope on SSE", "GET", "/sse", idp.token(t, audience, "openid"), 403,
			`Bearer realm="atrax", resource_metadata="` + metadata + `", error="insufficient_scope", scope="mcp:tools", error_description="the token grants no MCP server"`},
		{"the right token", "POST", "/mcp", idp.token(t, audience, "mcp:tools"), 200, ""},
		{"unknown path, no token", "GET", "/nowhere", "", 401,
			`Bearer realm="atrax", resource_metadata="` + metadata + `"`},
		{"unknown path, admin token", "GET", "/nowhere", idp.token(t, audience, "mcp:admin"), 404, ""},
		{"metrics, no token", "GET", "/metrics", "", 401,
			`Bearer realm="atrax", resource_metadata="` + metadata + `"`},
		{"metrics, another resource's token", "GET", "/metrics", idp.token(t, base+"/other", "mcp:admin"), 401,
			`Bearer realm="atrax", resource_metadata="` + metadata + `", error="invalid_token", error_description="the token is for another resource (aud)"`},
		{"metrics, a token", "GET", "/metrics", idp.token(t, audience, "mcp:tools"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = initialize
			}
			resp := do(tt.method, tt.path, tt.token, body)
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tt.challenge)
			}
		})
	}
}
