package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
	"github.com/atrax-mcp/atrax/test/e2e/idp"
)

// Clients of the test provider.
const (
	oauthPublicClient = "mcp-cli" // the SDK client's: public, PKCE
	oauthRedirectURI  = "http://127.0.0.1:9/callback"
	oauthService      = "svc" // client credentials, JWT access tokens
	oauthServiceKey   = "svc-secret-0c41"
	oauthOpaque       = "svc-opaque" // client credentials, opaque access tokens
	oauthOpaqueKey    = "svc-opaque-secret-77d2"
	oauthIntrospector = "atrax-introspect" // the gateway's own, at the introspection endpoint
	oauthIntroKey     = "atrax-introspect-secret-5a90"
	oauthStaticAdmin  = "e2e-oauth-static-admin-3f8c"
)

// oauthGateway is atrax serve with auth.type "oauth" in front of a real
// OpenID provider, with the everything server behind it.
type oauthGateway struct {
	*proc
	idp      *idp.Provider
	audience string
	metadata string // the resource metadata URL its challenges name
}

func startOAuthGateway(t *testing.T) *oauthGateway {
	t.Helper()
	pe := installPeers(t)
	provider := idp.Start(t, idp.Options{Clients: []idp.Client{
		{ID: oauthPublicClient, RedirectURIs: []string{oauthRedirectURI}},
		{ID: oauthService, Secret: oauthServiceKey},
		{ID: oauthOpaque, Secret: oauthOpaqueKey, Opaque: true},
		{ID: oauthIntrospector, Secret: oauthIntroKey},
	}})
	// The audience is the gateway's own URL, so its port is chosen first.
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	g := &oauthGateway{idp: provider, audience: base + "/mcp", metadata: base + "/.well-known/oauth-protected-resource/mcp"}
	def, err := json.Marshal(mcpStdioDef(pe.EverythingStdio(), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{
  "port": %d,
  "auth": {"type": "oauth", "options": {
    "issuer": %q,
    "audience": %q,
    "jwksRefresh": "10m",
    "claims": {"scopes": {
      "mcp:tools": ["server:*", "tool:*"],
      "mcp:admin": ["admin"],
    }},
    "introspection": {"clientId": %q, "clientSecret": "${INTROSPECT_SECRET}"},
    // For the CLI and scripts, beside OAuth.
    "token": "${STATIC_ADMIN}",
  }},
  "mcpServers": {"everything": %s},
}`, port, provider.Issuer, g.audience, oauthIntrospector, def)
	g.proc = startAtrax(t, "serve", cfg, map[string]string{"INTROSPECT_SECRET": oauthIntroKey, "STATIC_ADMIN": oauthStaticAdmin})
	t.Cleanup(g.Stop)
	waitUpstreams(t, g.proc, "everything")
	return g
}

// clientCredentials gets an access token from the provider, failing the
// test if it cannot.
func (g *oauthGateway) clientCredentials(t *testing.T, id, secret, scope, resource string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	tok, err := g.idp.ClientCredentials(ctx, id, secret, scope, resource)
	if err != nil {
		t.Fatalf("client credentials (%s, %q, %q): %v", id, scope, resource, err)
	}
	return tok
}

// mint signs claims with the provider's key: a good token's claims, changed
// by extra.
func (g *oauthGateway) mint(t *testing.T, extra map[string]any) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{
		"iss": g.idp.Issuer, "sub": "mallory", "aud": []string{g.audience}, "scope": "mcp:tools",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": fmt.Sprint("minted-", now.UnixNano()),
	}
	for k, v := range extra {
		c[k] = v
	}
	tok, err := g.idp.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// oauthEvent is one line of clients/oauth_client.mjs.
type oauthEvent struct {
	Event               string          `json:"event"`
	Status              int             `json:"status"`
	ResourceMetadata    string          `json:"resourceMetadata"`
	Scope               string          `json:"scope"`
	Error               string          `json:"error"`
	AuthorizationServer string          `json:"authorizationServer"`
	Resource            string          `json:"resource"`
	ScopesSupported     []string        `json:"scopesSupported"`
	CodeChallengeMethod string          `json:"codeChallengeMethod"`
	TokenType           string          `json:"tokenType"`
	Tools               []string        `json:"tools"`
	Result              json.RawMessage `json:"result"`
	Message             string          `json:"message"`
}

// TestOAuth runs Atrax as an OAuth 2.1 protected resource in front of a
// real OpenID provider (zitadel/oidc's op, test/e2e/idp): an MCP client of
// the TypeScript SDK authorizes itself and calls a tool; tokens for another
// resource, expired, from another issuer and without the scope are
// refused with the right status and challenge; opaque tokens are
// introspected; the control plane's API takes the admin claim; revocation
// by jti reaches OAuth tokens; static tokens work beside.
func TestOAuth(t *testing.T) {
	t.Parallel()
	g := startOAuthGateway(t)

	t.Run("metadata", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
			m := mustStatus(t, http.StatusOK, "GET", g.HTTP+path, "", "").JSON(t)
			if m["resource"] != g.audience || !slices.Equal(strSlice(m["authorization_servers"]), []string{g.idp.Issuer}) ||
				!slices.Equal(strSlice(m["scopes_supported"]), []string{"mcp:tools", "mcp:admin"}) ||
				!slices.Equal(strSlice(m["bearer_methods_supported"]), []string{"header"}) {
				t.Errorf("GET %s: %v", path, m)
			}
		}
	})

	t.Run("sdk-client-authorizes-itself", func(t *testing.T) {
		byName := runOAuthClient(t, map[string]any{
			"url": g.audience, "clientId": oauthPublicClient, "redirectUri": oauthRedirectURI,
			"tool": map[string]any{"name": "everything__echo", "arguments": map[string]any{"message": "hello over oauth"}},
		})
		// 1. Refused without a token, told where to look and what to ask.
		ch := byName["challenge"]
		if ch.Status != 401 || ch.ResourceMetadata != g.metadata || ch.Scope != "mcp:tools" {
			t.Errorf("first challenge %+v, want 401 naming %s and mcp:tools", ch, g.metadata)
		}
		// 2. Found the authorization server and the resource (RFC 9728).
		if d := byName["discovered"]; d.AuthorizationServer != g.idp.Issuer || d.Resource != g.audience {
			t.Errorf("discovered %+v", d)
		}
		// 3. Authorization code with PKCE, for this resource, with the scope.
		if a := byName["authorize"]; a.Resource != g.audience || a.Scope != "mcp:tools" || a.CodeChallengeMethod != "S256" {
			t.Errorf("authorization request %+v", a)
		}
		if tk := byName["tokens"]; !strings.EqualFold(tk.TokenType, "bearer") {
			t.Errorf("tokens %+v", tk)
		}
		// 4. Connected and called a tool through the gateway.
		if c := byName["connected"]; !slices.Contains(c.Tools, "everything__echo") {
			t.Errorf("tools %v, want everything__echo among them", c.Tools)
		}
		if r := byName["result"]; !strings.Contains(string(r.Result), "hello over oauth") {
			t.Errorf("tool result %s", r.Result)
		}
		// The provider issued that token for the gateway, to the test user.
		var found bool
		for _, is := range g.idp.Issued() {
			if is.ClientID == oauthPublicClient && is.Subject == "alice" && slices.Equal(is.Audience, []string{g.audience}) && slices.Equal(is.Scopes, []string{"mcp:tools"}) {
				found = true
			}
		}
		if !found {
			t.Errorf("no token issued to %s for alice, aud %s, scope mcp:tools: %+v", oauthPublicClient, g.audience, g.idp.Issued())
		}
	})

	t.Run("sdk-client-steps-up", func(t *testing.T) {
		// The client holds a token for the gateway without an MCP scope:
		// refused with insufficient_scope, it asks for the scope named and
		// comes back.
		narrow := g.clientCredentials(t, oauthService, oauthServiceKey, "openid", g.audience)
		events := runOAuthClient(t, map[string]any{
			"url": g.audience, "clientId": oauthPublicClient, "redirectUri": oauthRedirectURI, "initialToken": narrow,
			"tool": map[string]any{"name": "everything__echo", "arguments": map[string]any{"message": "stepped up"}},
		})
		ch := events["challenge"]
		if ch.Status != 403 || ch.Error != "insufficient_scope" || ch.Scope != "mcp:tools" || ch.ResourceMetadata != g.metadata {
			t.Errorf("first challenge %+v, want 403 insufficient_scope naming mcp:tools", ch)
		}
		if a := events["authorize"]; a.Scope != "mcp:tools" || a.Resource != g.audience {
			t.Errorf("authorization request %+v", a)
		}
		if r := events["result"]; !strings.Contains(string(r.Result), "stepped up") {
			t.Errorf("tool result %s", r.Result)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		good := g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:tools", g.audience)
		tests := []struct {
			name   string
			token  string
			status int
			want   []string // in WWW-Authenticate
		}{
			{"right audience and scope", good, http.StatusOK, nil},
			{"no token", "", http.StatusUnauthorized,
				[]string{`resource_metadata="` + g.metadata + `"`, `scope="mcp:tools"`}},
			{"another resource", g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:tools", g.HTTP+"/other"), http.StatusUnauthorized,
				[]string{`resource_metadata="` + g.metadata + `"`, `error="invalid_token"`, `error_description="the token is for another resource (aud)"`}},
			{"no resource indicator", g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:tools", ""), http.StatusUnauthorized,
				[]string{`error="invalid_token"`, `(aud)`}},
			{"missing scope", g.clientCredentials(t, oauthService, oauthServiceKey, "openid", g.audience), http.StatusForbidden,
				[]string{`resource_metadata="` + g.metadata + `"`, `error="insufficient_scope"`, `scope="mcp:tools"`}},
			{"expired", g.mint(t, map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(), "nbf": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}), http.StatusUnauthorized,
				[]string{`error="invalid_token"`, `error_description="the token has expired"`}},
			{"another issuer", g.mint(t, map[string]any{"iss": "http://127.0.0.1:1/realms/other"}), http.StatusUnauthorized,
				[]string{`error="invalid_token"`, `error_description="the token is from another issuer (iss)"`}},
			{"not valid yet", g.mint(t, map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), http.StatusUnauthorized,
				[]string{`error="invalid_token"`, `error_description="the token is not valid yet"`}},
			{"opaque, introspected", g.clientCredentials(t, oauthOpaque, oauthOpaqueKey, "mcp:tools", g.audience), http.StatusOK, nil},
			{"opaque for another resource", g.clientCredentials(t, oauthOpaque, oauthOpaqueKey, "mcp:tools", g.HTTP+"/other"), http.StatusUnauthorized,
				[]string{`error="invalid_token"`, `(aud)`}},
			{"static token beside", oauthStaticAdmin, http.StatusOK, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var auth []string
				if tt.token != "" {
					auth = []string{"Authorization", "Bearer " + tt.token}
				}
				r := mcpPost(t, g.HTTP+"/mcp", mcpInitialize, auth...)
				if r.Status != tt.status {
					t.Fatalf("POST /mcp: %d, want %d; body %s; challenge %s", r.Status, tt.status, r.Body, r.Header.Get("WWW-Authenticate"))
				}
				ch := r.Header.Get("WWW-Authenticate")
				for _, w := range tt.want {
					if !strings.Contains(ch, w) {
						t.Errorf("WWW-Authenticate %s lacks %s", ch, w)
					}
				}
				if tt.token != "" && strings.Contains(string(r.Body), tt.token) {
					t.Error("the answer repeats the token")
				}
			})
		}
		// The legacy transport answers the same.
		r := mcpRaw(t, "GET", g.HTTP+"/sse", "", "Accept", "text/event-stream", "Authorization", "Bearer "+g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:tools", g.HTTP+"/other"))
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `resource_metadata="`+g.metadata+`"`) {
			t.Errorf("GET /sse with another resource's token: %d %s", r.Status, r.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("control-plane-admin", func(t *testing.T) {
		admin := g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:admin", g.audience)
		tools := g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:tools", g.audience)
		// REST, through the control plane's interceptors.
		servers := mustStatus(t, http.StatusOK, "GET", g.HTTP+"/servers", admin, "").JSON(t)
		if len(servers["servers"].([]any)) != 1 {
			t.Errorf("GET /servers: %v", servers)
		}
		r := mustStatus(t, http.StatusForbidden, "GET", g.HTTP+"/servers", tools, "")
		if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="mcp:admin"`) || !strings.Contains(ch, `resource_metadata="`+g.metadata+`"`) {
			t.Errorf("GET /servers without the admin scope: WWW-Authenticate %s", ch)
		}
		r = mustStatus(t, http.StatusUnauthorized, "GET", g.HTTP+"/servers", g.mint(t, map[string]any{"aud": []string{"http://127.0.0.1:1/mcp"}, "scope": "mcp:admin"}), "")
		if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, `resource_metadata="`+g.metadata+`"`) {
			t.Errorf("GET /servers with another resource's token: WWW-Authenticate %s", ch)
		}
		// gRPC, as grpcurl and the CLI use it.
		out, errOut, err := grpcurl(t, "-plaintext", "-H", "authorization: Bearer "+admin, g.GRPC, "atrax.v1.ServerService/ListServers")
		if err != nil || !strings.Contains(out, `"everything"`) {
			t.Errorf("grpcurl ListServers with the admin claim: %v\n%s%s", err, out, errOut)
		}
		_, errOut, err = grpcurl(t, "-plaintext", "-H", "authorization: Bearer "+tools, g.GRPC, "atrax.v1.ServerService/ListServers")
		if err == nil || !strings.Contains(errOut, "PermissionDenied") {
			t.Errorf("grpcurl ListServers without the admin claim: %v\n%s", err, errOut)
		}
	})

	t.Run("revocation", func(t *testing.T) {
		tok := g.clientCredentials(t, oauthService, oauthServiceKey, "mcp:tools", g.audience)
		mustStatus(t, http.StatusOK, "POST", g.HTTP+"/mcp", tok, mcpInitialize, "Accept", "application/json, text/event-stream")
		jti := jwtClaim(t, tok, "jti")
		mustStatus(t, http.StatusOK, "POST", g.HTTP+"/auth/revoke", oauthStaticAdmin, `{"jti": "`+jti+`"}`)
		if !poll(pollTimeout, func() bool {
			r := mcpPost(t, g.HTTP+"/mcp", mcpInitialize, "Authorization", "Bearer "+tok)
			return r.Status == http.StatusUnauthorized && strings.Contains(r.Header.Get("WWW-Authenticate"), "revoked")
		}) {
			t.Error("a revoked OAuth token is still accepted")
		}
	})

	g.checkLogsFree(t, oauthIntroKey, oauthStaticAdmin)
}

// runOAuthClient runs clients/oauth_client.mjs with plan and returns the
// first event of each kind; the test fails if the client does.
func runOAuthClient(t *testing.T, plan map[string]any) map[string]oauthEvent {
	t.Helper()
	pe := installPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, _ := json.Marshal(plan)
	cmd := pe.Command(ctx, "clients/oauth_client.mjs", string(b))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	byName := map[string]oauthEvent{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var ev oauthEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			if _, seen := byName[ev.Event]; !seen {
				byName[ev.Event] = ev
			}
		}
	}
	t.Logf("client:\n%s", out)
	if err != nil || byName["fatal"].Event != "" {
		t.Fatalf("client: %v %s\nstderr:\n%s", err, byName["fatal"].Message, stderr.String())
	}
	return byName
}

// jwtClaim reads one claim of a JWT, unverified.
func jwtClaim(t *testing.T, token, name string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	s, _ := c[name].(string)
	if s == "" {
		t.Fatalf("the JWT has no %s", name)
	}
	return s
}

func strSlice(v any) []string {
	var out []string
	vs, _ := v.([]any)
	for _, e := range vs {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// TestOAuthPrivateCA runs atrax serve in front of a provider whose HTTPS
// certificate a private CA issued, trusted through auth.options.ca (a path
// beside the config file): the edge and the control plane both discover
// the provider and fetch its keys over that HTTPS, and accept its tokens.
func TestOAuthPrivateCA(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "Example Corp Internal CA")
	pair := ca.Server(t, "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		t.Fatal(err)
	}
	provider := idp.Start(t, idp.Options{Cert: &cert})
	if !strings.HasPrefix(provider.Issuer, "https://") {
		t.Fatalf("the provider serves %s, want https", provider.Issuer)
	}
	dir := t.TempDir()
	tlstest.WriteFile(t, filepath.Join(dir, "idp-ca.pem"), ca.PEM)
	const audience = "https://mcp.example.com/mcp"
	g := startAtraxIn(t, dir, "serve", fmt.Sprintf(`{
  "auth": {"type": "oauth", "options": {
    "issuer": %q,
    "audience": %q,
    "ca": "idp-ca.pem",
    "claims": {"scopes": {"mcp:tools": ["server:*", "tool:*"], "mcp:admin": ["admin"]}},
  }},
}`, provider.Issuer, audience), nil)
	mint := func(scope string) string {
		now := time.Now()
		tok, err := provider.Mint(map[string]any{
			"iss": provider.Issuer, "sub": "alice", "aud": []string{audience}, "scope": scope,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The edge's verifier.
	if r := mcpPost(t, g.HTTP+"/mcp", mcpInitialize, "Authorization", "Bearer "+mint("mcp:tools")); r.Status != http.StatusOK {
		t.Errorf("POST /mcp: %d, want 200; challenge %s", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// The control plane's, through REST.
	mustStatus(t, http.StatusOK, "GET", g.HTTP+"/servers", mint("mcp:admin"), "")
}
