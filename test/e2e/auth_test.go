package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// noScopeToken is a static token with no scopes (a token object without
// "scopes"): valid, but neither admin nor edge.
const noScopeToken = "e2e-noscope-token-77d0"

// authConfig is the token-mode config of the auth tests: the admin token,
// a token without scopes, and one server.
const authConfig = `{
  "auth": {
    "type": "token",
    "options": {
      "token": "${ADMIN_TOKEN}",
      "tokens": [{"name": "noscope", "token": "${NOSCOPE_TOKEN}"}],
    },
  },
  "mcpServers": {"memory": {"url": "http://127.0.0.1:9/mcp"}},
}`

func authEnv() map[string]string {
	env := adminEnv()
	env["NOSCOPE_TOKEN"] = noScopeToken
	return env
}

// issued is a POST /auth answer.
type issued struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Jti         string `json:"jti"`
}

// issueToken posts body to /auth and returns the token, failing the test
// unless the answer is 200.
func issueToken(t testing.TB, base, body string, headers ...string) issued {
	t.Helper()
	r := mustStatus(t, http.StatusOK, "POST", base+"/auth", "", body, headers...)
	var out issued
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("POST /auth: %v\n%s", err, r.Body)
	}
	if out.AccessToken == "" || out.TokenType != "Bearer" {
		t.Fatalf(`POST /auth: got %s, want an access_token and "token_type": "Bearer"`, r.Body)
	}
	return out
}

// verifyWithJWKS checks tok against the keys the edge publishes at
// /.well-known/jwks.json and returns its claims and key id.
func verifyWithJWKS(t testing.TB, base, tok string) (*authn.Claims, string) {
	t.Helper()
	var set struct {
		Keys []struct {
			Kty, Crv, X, Kid, Use, Alg string
		} `json:"keys"`
	}
	r := mustStatus(t, http.StatusOK, "GET", base+"/.well-known/jwks.json", "", "")
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatal(err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" {
			t.Errorf("JWK %+v: want kty OKP, crv Ed25519, alg EdDSA, use sig", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("JWK %s: x is not a base64url Ed25519 key: %v", k.Kid, err)
		}
		keys[k.Kid] = x
	}
	var c authn.Claims
	var kid string
	_, err := jwt.ParseWithClaims(tok, &c, func(tk *jwt.Token) (any, error) {
		kid, _ = tk.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer("atrax"), jwt.WithAudience("atrax"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("issued token does not verify with the JWKS: %v", err)
	}
	return &c, kid
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// minter signs claims with a key the test seeded into the store.
type minter struct {
	t   testing.TB
	key signingKey
}

func (m minter) claims(iss, aud string, now time.Time, ttl time.Duration) *authn.Claims {
	p := &authn.Principal{Subject: "static:minted", Scopes: []string{authn.ScopeAdmin, authn.ScopeEdge}, Servers: authn.AllowAll(), Tools: authn.AllowAll()}
	return authn.NewClaims(p, iss, aud, newJTI(), now, ttl)
}

func (m minter) sign(priv ed25519.PrivateKey, kid string, c *authn.Claims) string {
	s, err := authn.Sign(priv, kid, c)
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

func (m minter) signWith(method jwt.SigningMethod, key any, c *authn.Claims) string {
	tk := jwt.NewWithClaims(method, c)
	tk.Header["kid"] = m.key.ID
	s, err := tk.SignedString(key)
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

// cred is one way of presenting (or not) a token.
type cred struct {
	name   string
	header string // the Authorization header's value; "" for none
	query  string // the ?token= value; "" for none
	valid  bool
}

func (c cred) token() string { return strings.TrimPrefix(c.header, "Bearer ") }
func (c cred) sent() bool    { return c.header != "" || c.query != "" }

// route is one path of the public port.
type route struct {
	method, path string
	body         func() string
	public       bool
	okStatus     int // with a valid token (or any, when public)
}

// TestAuthMatrix sends every kind of credential to every public and
// protected path of the edge, and to the control plane's gRPC API.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := seedSigningKey(t, filepath.Join(dir, "data"))
	env := authEnv()
	env["ATRAX_LOG_LEVEL"] = "debug"
	p := startAtraxIn(t, dir, "serve", authConfig, env)
	servers := atraxv1.NewServerServiceClient(dialGRPC(t, p.GRPC))
	var secrets []string // every token sent; none may be logged
	defer func() { p.checkLogsFree(t, secrets...) }()

	tok := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
	claims, kid := verifyWithJWKS(t, p.HTTP, tok.AccessToken)
	if kid != key.ID {
		t.Fatalf("issued token has kid %q, want the seeded key %q (the only key in the store)", kid, key.ID)
	}
	if got, want := claims.Subject, "static:default"; got != want {
		t.Errorf("issued token sub: got %q, want %q", got, want)
	}

	m := minter{t: t, key: key}
	now := time.Now()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	notYet := m.claims("atrax", "atrax", now, 2*time.Hour)
	notYet.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
	noExp := m.claims("atrax", "atrax", now, time.Hour)
	noExp.ExpiresAt = nil
	bearer := func(s string) string { return "Bearer " + s }

	creds := []cred{
		{name: "no token"},
		{name: "wrong static token", header: bearer("not-the-token")},
		{name: "wrong static token in query", query: "not-the-token"},
		{name: "static token", header: bearer(adminToken), valid: true},
		{name: "static token in query", query: adminToken, valid: true},
		{name: "issued JWT", header: bearer(tok.AccessToken), valid: true},
		{name: "issued JWT in query", query: tok.AccessToken, valid: true},
		{name: "minted JWT (control)", header: bearer(m.sign(key.Private, key.ID, m.claims("atrax", "atrax", now, time.Hour))), valid: true},
		{name: "expired JWT", header: bearer(m.sign(key.Private, key.ID, m.claims("atrax", "atrax", now.Add(-3*time.Hour), time.Hour)))},
		{name: "not yet valid JWT", header: bearer(m.sign(key.Private, key.ID, notYet))},
		{name: "JWT without exp", header: bearer(m.sign(key.Private, key.ID, noExp))},
		{name: "JWT signed with another key", header: bearer(m.sign(otherKey, key.ID, m.claims("atrax", "atrax", now, time.Hour)))},
		{name: "alg none", header: bearer(m.signWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, m.claims("atrax", "atrax", now, time.Hour)))},
		{name: "HS256 keyed with the public key", header: bearer(m.signWith(jwt.SigningMethodHS256, []byte(key.Private.Public().(ed25519.PublicKey)), m.claims("atrax", "atrax", now, time.Hour)))},
		{name: "unknown kid", header: bearer(m.sign(key.Private, "no-such-kid", m.claims("atrax", "atrax", now, time.Hour)))},
		{name: "wrong iss", header: bearer(m.sign(key.Private, key.ID, m.claims("someone-else", "atrax", now, time.Hour)))},
		{name: "wrong aud", header: bearer(m.sign(key.Private, key.ID, m.claims("atrax", "another-service", now, time.Hour)))},
	}

	for _, c := range creds {
		secrets = append(secrets, c.token(), c.query)
	}
	secrets = append(secrets, adminToken, noScopeToken, tok.AccessToken)

	var n atomic.Int64
	routes := []route{
		{method: "GET", path: "/health", public: true, okStatus: 200},
		{method: "GET", path: "/status", public: true, okStatus: 200},
		{method: "POST", path: "/auth", body: func() string { return `{"token": "` + adminToken + `"}` }, public: true, okStatus: 200},
		{method: "GET", path: "/.well-known/jwks.json", public: true, okStatus: 200},
		{method: "GET", path: "/servers", okStatus: 200},
		{method: "POST", path: "/servers", body: func() string {
			return fmt.Sprintf(`{"name": "m%d", "url": "http://127.0.0.1:9/mcp"}`, n.Add(1))
		}, okStatus: 200},
		{method: "GET", path: "/servers/memory", okStatus: 200},
		{method: "GET", path: "/audit", okStatus: 200},
		{method: "GET", path: "/nope", okStatus: 404},
	}

	for _, c := range creds {
		t.Run(c.name, func(t *testing.T) {
			for _, rt := range routes {
				u := p.HTTP + rt.path
				if c.query != "" {
					u += "?token=" + url.QueryEscape(c.query)
				}
				body := ""
				if rt.body != nil {
					body = rt.body()
				}
				var hdr []string
				if c.header != "" {
					hdr = []string{"Authorization", c.header}
				}
				r := httpDo(t, rt.method, u, "", body, hdr...)
				if rt.public || c.valid {
					if r.Status != rt.okStatus {
						t.Errorf("%s %s: got %d, want %d; body: %s", rt.method, rt.path, r.Status, rt.okStatus, r.Body)
					}
					continue
				}
				checkUnauthorized(t, rt.method+" "+rt.path, r, c.sent())
				if tk := c.token() + c.query; tk != "" && strings.Contains(string(r.Body)+fmt.Sprint(r.Header), tk) {
					t.Errorf("%s %s: the answer repeats the token", rt.method, rt.path)
				}
			}
			if c.query != "" {
				return // gRPC has no query string
			}
			_, err := servers.ListServers(withToken(t, c.token()), &atraxv1.ListServersRequest{})
			switch {
			case c.valid && err != nil:
				t.Errorf("gRPC ListServers: %v, want OK", err)
			case !c.valid && status.Code(err) != codes.Unauthenticated:
				t.Errorf("gRPC ListServers: got %v, want code Unauthenticated", err)
			}
		})
	}

	t.Run("default lifetime is one hour", func(t *testing.T) {
		r := mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth", "", `{"token": "`+adminToken+`"}`)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &raw); err != nil {
			t.Fatal(err)
		}
		if got := string(raw["expires_in"]); got != "3600" {
			t.Errorf(`expires_in: got %s, want the JSON number 3600`, got)
		}
		if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != time.Hour {
			t.Errorf("issued token: exp - iat = %v, want 1h", got)
		}
	})

	t.Run("server scope alone is not admin", func(t *testing.T) {
		narrow := issueToken(t, p.HTTP, `{"token": "`+adminToken+`", "scope": "server:memory"}`)
		c, _ := verifyWithJWKS(t, p.HTTP, narrow.AccessToken)
		if diff := cmp.Diff([]string{"memory"}, c.Servers); diff != "" {
			t.Errorf("servers claim (-want +got):\n%s", diff)
		}
		if c.Scope != "" {
			t.Errorf("scope claim: got %q, want none", c.Scope)
		}
		for _, tk := range []struct{ name, token string }{{"narrowed JWT", narrow.AccessToken}, {"static token without scopes", noScopeToken}} {
			for _, rt := range []struct{ method, path, body string }{
				{"GET", "/servers", ""},
				{"POST", "/servers", `{"name": "nope", "url": "http://127.0.0.1:9/mcp"}`},
				{"GET", "/audit", ""},
				{"POST", "/auth/revoke", `{"jti": "` + tok.Jti + `"}`},
			} {
				r := httpDo(t, rt.method, p.HTTP+rt.path, tk.token, rt.body)
				if r.Status != http.StatusForbidden {
					t.Errorf("%s: %s %s: got %d, want 403; body: %s", tk.name, rt.method, rt.path, r.Status, r.Body)
					continue
				}
				if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, `Bearer realm="atrax"`) || !strings.Contains(h, `error="insufficient_scope"`) {
					t.Errorf("%s: %s %s: WWW-Authenticate %q, want Bearer realm=\"atrax\" with error=\"insufficient_scope\"", tk.name, rt.method, rt.path, h)
				}
			}
			_, err := servers.ListServers(withToken(t, tk.token), &atraxv1.ListServersRequest{})
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s: gRPC ListServers: got %v, want PermissionDenied", tk.name, err)
			}
			// A valid token without admin still passes the edge's own check.
			mustStatus(t, http.StatusNotFound, "GET", p.HTTP+"/nope", tk.token, "")
		}
		// The revocation above was refused, so the token still works.
		mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", tok.AccessToken, "")
	})

	t.Run("revoked token", func(t *testing.T) {
		victim := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
		bystander := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
		for _, tk := range []string{victim.AccessToken, bystander.AccessToken} {
			mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", tk, "")
			mustStatus(t, http.StatusNotFound, "GET", p.HTTP+"/nope", tk, "")
			if _, err := servers.ListServers(withToken(t, tk), &atraxv1.ListServersRequest{}); err != nil {
				t.Fatalf("gRPC ListServers before revocation: %v", err)
			}
		}
		// A JWT may be exchanged for another while valid.
		issueToken(t, p.HTTP, `{}`, "Authorization", "Bearer "+victim.AccessToken)

		r := mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth/revoke", adminToken, `{"jti": "`+victim.Jti+`"}`)
		if got := r.JSON(t)["jti"]; got != victim.Jti {
			t.Errorf("revoke answer jti: got %v, want %q", got, victim.Jti)
		}

		r = httpDo(t, "GET", p.HTTP+"/servers", victim.AccessToken, "")
		checkUnauthorized(t, "GET /servers with the revoked token", r, true)
		if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, "revoked") {
			t.Errorf("WWW-Authenticate %q does not say the token was revoked", h)
		}
		if _, err := servers.ListServers(withToken(t, victim.AccessToken), &atraxv1.ListServersRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC ListServers with the revoked token: got %v, want Unauthenticated", err)
		}
		// The edge learns the revocation through its Sync stream.
		var last *response
		if !poll(pollTimeout, func() bool {
			last = httpDo(t, "GET", p.HTTP+"/nope", victim.AccessToken, "")
			return last.Status == http.StatusUnauthorized
		}) {
			t.Errorf("GET /nope on the edge with the revoked token: still %d after %v, want 401", last.Status, pollTimeout)
		}
		checkUnauthorized(t, "GET /nope with the revoked token", last, true)
		mustStatus(t, http.StatusUnauthorized, "POST", p.HTTP+"/auth", "", `{}`, "Authorization", "Bearer "+victim.AccessToken)

		// Revocation is by jti: another token of the same subject works.
		mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", bystander.AccessToken, "")
		mustStatus(t, http.StatusNotFound, "GET", p.HTTP+"/nope", bystander.AccessToken, "")
		if _, err := servers.ListServers(withToken(t, bystander.AccessToken), &atraxv1.ListServersRequest{}); err != nil {
			t.Errorf("gRPC ListServers with another, unrevoked token: %v", err)
		}
	})
}

// checkUnauthorized checks a 401 answer and its RFC 6750 challenge: the
// realm always, error="invalid_token" only when a token was sent.
func checkUnauthorized(t testing.TB, what string, r *response, tokenSent bool) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Errorf("%s: got %d, want 401; body: %s", what, r.Status, r.Body)
		return
	}
	h := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, `Bearer realm="atrax"`) {
		t.Errorf(`%s: WWW-Authenticate %q, want it to start with Bearer realm="atrax"`, what, h)
	}
	if got := strings.Contains(h, `error="invalid_token"`); got != tokenSent {
		t.Errorf(`%s: WWW-Authenticate %q: has error="invalid_token" = %v, want %v`, what, h, got, tokenSent)
	}
}

// TestUnknownRESTPathsNeedToken: the seed protects /servers/* and "all
// other endpoints", so a caller without a token must not learn which paths
// and methods exist under the REST prefixes.
func TestUnknownRESTPathsNeedToken(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", authConfig, authEnv())
	for _, c := range []struct {
		method, path string
		withToken    int // the answer to an admin
	}{
		{"GET", "/servers/memory/tools/x", http.StatusNotFound},
		{"DELETE", "/servers", http.StatusMethodNotAllowed},
		{"GET", "/servers/memory/start", http.StatusMethodNotAllowed},
		{"GET", "/auth/anything", http.StatusNotFound},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			checkUnauthorized(t, c.method+" "+c.path+" without a token", httpDo(t, c.method, p.HTTP+c.path, "", ""), false)
			checkUnauthorized(t, c.method+" "+c.path+" with a wrong token", httpDo(t, c.method, p.HTTP+c.path, "wrong", ""), true)
			if r := httpDo(t, c.method, p.HTTP+c.path, adminToken, ""); r.Status != c.withToken {
				t.Errorf("%s %s with the admin token: got %d, want %d", c.method, c.path, r.Status, c.withToken)
			}
		})
	}
}

// TestAuthEndpoint exchanges every kind of credential at POST /auth, in jwt
// mode with clients and a configured lifetime.
func TestAuthEndpoint(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", `{
  "auth": {
    "type": "jwt",
    "options": {
      "token": "${ADMIN_TOKEN}",
      "clients": [
        {"id": "agent", "secret": "${AGENT_SECRET}", "servers": ["memory", "fetch"]},
        {"id": "ops", "secret": "${OPS_SECRET}", "scopes": ["admin"]},
      ],
      "ttl": "15m",
      "maxTtl": "2h",
    },
  },
  "mcpServers": {"memory": {"url": "http://127.0.0.1:9/mcp"}},
}`, map[string]string{"ADMIN_TOKEN": adminToken, "AGENT_SECRET": "agent-s3cret", "OPS_SECRET": "ops-s3cret"})
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	form := "application/x-www-form-urlencoded"

	for _, c := range []struct {
		name      string
		body      string
		headers   []string
		sub       string
		scope     string
		servers   []string
		expiresIn int
	}{
		{name: "static token", body: `{"token": "` + adminToken + `"}`, sub: "static:default", scope: "admin edge", servers: []string{"*"}, expiresIn: 900},
		{name: "client JSON", body: `{"client_id": "agent", "client_secret": "agent-s3cret"}`, sub: "client:agent", servers: []string{"memory", "fetch"}, expiresIn: 900},
		{name: "client form", body: "grant_type=client_credentials&client_id=agent&client_secret=agent-s3cret", headers: []string{"Content-Type", form}, sub: "client:agent", servers: []string{"memory", "fetch"}, expiresIn: 900},
		{name: "client HTTP Basic", body: "grant_type=client_credentials", headers: []string{"Content-Type", form, "Authorization", basic("agent", "agent-s3cret")}, sub: "client:agent", servers: []string{"memory", "fetch"}, expiresIn: 900},
		{name: "admin client", body: `{"client_id": "ops", "client_secret": "ops-s3cret"}`, sub: "client:ops", scope: "admin", servers: []string{"*"}, expiresIn: 900},
		{name: "scope narrows servers", body: `{"client_id": "agent", "client_secret": "agent-s3cret", "scope": "server:memory"}`, sub: "client:agent", servers: []string{"memory"}, expiresIn: 900},
		{name: "requested ttl", body: `{"token": "` + adminToken + `", "ttl": "5m"}`, sub: "static:default", scope: "admin edge", servers: []string{"*"}, expiresIn: 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth", "", c.body, c.headers...)
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(r.Body, &raw); err != nil {
				t.Fatal(err)
			}
			if got, err := strconv.Atoi(string(raw["expires_in"])); err != nil || got != c.expiresIn {
				t.Errorf("expires_in: got %s, want the JSON number %d", raw["expires_in"], c.expiresIn)
			}
			if got := string(raw["token_type"]); got != `"Bearer"` {
				t.Errorf("token_type: got %s, want \"Bearer\"", got)
			}
			var tok issued
			json.Unmarshal(r.Body, &tok)
			claims, _ := verifyWithJWKS(t, p.HTTP, tok.AccessToken)
			if claims.Subject != c.sub {
				t.Errorf("sub: got %q, want %q", claims.Subject, c.sub)
			}
			if claims.Scope != c.scope {
				t.Errorf("scope: got %q, want %q", claims.Scope, c.scope)
			}
			if diff := cmp.Diff(c.servers, claims.Servers); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
			if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != time.Duration(c.expiresIn)*time.Second {
				t.Errorf("exp - iat: got %v, want %ds", got, c.expiresIn)
			}
			if claims.ID != tok.Jti || claims.ID == "" {
				t.Errorf("jti claim %q, answer's jti %q: want the same, non-empty", claims.ID, tok.Jti)
			}
			// What the token may do: admin scope manages servers.
			want := http.StatusForbidden
			if strings.Contains(c.scope, "admin") {
				want = http.StatusOK
			}
			if r := httpDo(t, "GET", p.HTTP+"/servers", tok.AccessToken, ""); r.Status != want {
				t.Errorf("GET /servers with the token: got %d, want %d", r.Status, want)
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name    string
			body    string
			headers []string
			status  int
			errCode string
		}{
			{"admin not granted to client", `{"client_id": "agent", "client_secret": "agent-s3cret", "scope": "admin"}`, nil, 400, "invalid_scope"},
			{"server not granted to client", `{"client_id": "agent", "client_secret": "agent-s3cret", "scope": "server:github"}`, nil, 400, "invalid_scope"},
			{"ttl over maxTtl", `{"token": "` + adminToken + `", "ttl": "3h"}`, nil, 400, "invalid_request"},
			{"unsupported grant", "grant_type=password&client_id=agent&client_secret=agent-s3cret", []string{"Content-Type", form}, 400, "unsupported_grant_type"},
			{"no credential", `{}`, nil, 401, "invalid_client"},
			{"wrong static token", `{"token": "not-the-token"}`, nil, 401, "invalid_client"},
		} {
			r := httpDo(t, "POST", p.HTTP+"/auth", "", c.body, c.headers...)
			if r.Status != c.status {
				t.Errorf("%s: got %d, want %d; body: %s", c.name, r.Status, c.status, r.Body)
				continue
			}
			if got := r.JSON(t)["error"]; got != c.errCode {
				t.Errorf("%s: error %v, want %q; body: %s", c.name, got, c.errCode, r.Body)
			}
		}
	})

	t.Run("unknown JSON field", func(t *testing.T) {
		r := httpDo(t, "POST", p.HTTP+"/auth", "", `{"token": "`+adminToken+`", "audience": "x"}`)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("got %d, want 400; body: %s", r.Status, r.Body)
		}
		if !strings.Contains(string(r.Body), "audience") {
			t.Errorf("400 body does not name the unknown field: %s", r.Body)
		}
	})

	t.Run("wrong secret and unknown client look the same", func(t *testing.T) {
		for _, c := range []struct {
			name          string
			wrong, absent func() *response
		}{
			{"JSON",
				func() *response {
					return httpDo(t, "POST", p.HTTP+"/auth", "", `{"client_id": "agent", "client_secret": "wrong"}`)
				},
				func() *response {
					return httpDo(t, "POST", p.HTTP+"/auth", "", `{"client_id": "nobody", "client_secret": "wrong"}`)
				}},
			{"form",
				func() *response {
					return httpDo(t, "POST", p.HTTP+"/auth", "", "grant_type=client_credentials&client_id=agent&client_secret=wrong", "Content-Type", form)
				},
				func() *response {
					return httpDo(t, "POST", p.HTTP+"/auth", "", "grant_type=client_credentials&client_id=nobody&client_secret=wrong", "Content-Type", form)
				}},
			{"Basic",
				func() *response {
					return httpDo(t, "POST", p.HTTP+"/auth", "", "grant_type=client_credentials", "Content-Type", form, "Authorization", basic("agent", "wrong"))
				},
				func() *response {
					return httpDo(t, "POST", p.HTTP+"/auth", "", "grant_type=client_credentials", "Content-Type", form, "Authorization", basic("nobody", "wrong"))
				}},
		} {
			w, a := c.wrong(), c.absent()
			if w.Status != http.StatusUnauthorized || a.Status != http.StatusUnauthorized {
				t.Errorf("%s: got %d (wrong secret) and %d (unknown client), want 401 for both", c.name, w.Status, a.Status)
				continue
			}
			if string(w.Body) != string(a.Body) {
				t.Errorf("%s: bodies differ, so they tell whether the client exists:\nwrong secret:   %s\nunknown client: %s", c.name, w.Body, a.Body)
			}
			if got := w.JSON(t)["error"]; got != "invalid_client" {
				t.Errorf("%s: error %v, want invalid_client", c.name, got)
			}
			if c.name == "Basic" && !strings.HasPrefix(w.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("Basic: WWW-Authenticate %q, want a Basic challenge", w.Header.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("jwt mode takes only issued tokens as bearer", func(t *testing.T) {
		r := httpDo(t, "GET", p.HTTP+"/servers", adminToken, "")
		checkUnauthorized(t, "GET /servers with the static token in jwt mode", r, true)
		checkUnauthorized(t, "GET /nope with the static token in jwt mode", httpDo(t, "GET", p.HTTP+"/nope", adminToken, ""), true)
		tok := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
		mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", tok.AccessToken, "")
	})
}
