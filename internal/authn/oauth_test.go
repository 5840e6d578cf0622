package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/authn/authntest"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

const (
	idpIssuer   = "https://idp.example.com/realms/main"
	idpAudience = "https://atrax.example.com/mcp"
)

// oauthNow is the time of the OAuth tests' clock: whole seconds.
var oauthNow = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// rsaKey is made once: RSA key generation is slow under -race.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// fakeSource is an authorization server in memory: keys by id and
// introspection answers by token; it counts Key calls.
type fakeSource struct {
	mu    sync.Mutex
	keys  map[string]authn.OAuthKey
	intro map[string]map[string]any
	calls int
}

func (s *fakeSource) Key(_ context.Context, kid string) (authn.OAuthKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	k, ok := s.keys[kid]
	if !ok {
		return k, authn.ErrUnknownKey
	}
	return k, nil
}

func (s *fakeSource) Introspect(_ context.Context, token string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.intro == nil {
		return nil, authn.ErrNoIntrospection
	}
	c, ok := s.intro[token]
	if !ok {
		return nil, fmt.Errorf("%w: not active", authn.ErrInvalidToken)
	}
	return c, nil
}

func (s *fakeSource) keyCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// oauthFixture is a verifier in ModeOAuth over a fakeSource with an RS256,
// an ES256 and an EdDSA key, on a clock the test moves.
type oauthFixture struct {
	v   *authn.Verifier
	src *fakeSource
	clk *fakeclock.Clock
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newOAuthFixture(t *testing.T, mutate ...func(*authn.Options)) *oauthFixture {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &oauthFixture{clk: fakeclock.New(oauthNow), ec: ec, ed: ed}
	f.src = &fakeSource{keys: map[string]authn.OAuthKey{
		"rsa-1": {ID: "rsa-1", Algorithm: "RS256", Public: &rsaKey().PublicKey},
		"ec-1":  {ID: "ec-1", Algorithm: "ES256", Public: &ec.PublicKey},
		"ed-1":  {ID: "ed-1", Algorithm: "EdDSA", Public: ed.Public()},
	}}
	opts := authn.Options{
		Mode:     authn.ModeOAuth,
		Issuer:   authntest.Issuer,
		Audience: authntest.Audience,
		Static:   []authn.StaticToken{{Name: "ci", Token: "ci-static-token", Scopes: []string{authn.ScopeAdmin}}},
		Now:      f.clk.Now,
		OAuth: &authn.OAuthOptions{
			Issuer:   idpIssuer,
			Audience: idpAudience,
			Source:   f.src,
			Scopes: []authn.ScopeGrant{
				{Scope: "mcp:admin", Grants: []string{authn.ScopeAdmin}},
				{Scope: "mcp:tools", Grants: []string{"server:*", "tool:*"}},
				{Scope: "mcp:memory", Grants: []string{"server:memory"}},
				{Scope: "mcp:echo", Grants: []string{"tool:everything__echo"}},
			},
			ScopePrefix:  "atrax:",
			ServersClaim: "atrax_servers",
			ToolsClaim:   "atrax_tools",
		},
	}
	for _, m := range mutate {
		m(&opts)
	}
	f.v = authn.NewVerifier(opts)
	return f
}

// claims returns the claims of a good access token at the fixture's time,
// with extra claims set (nil deletes one).
func (f *oauthFixture) claims(extra map[string]any) jwt.MapClaims {
	now := f.clk.Now()
	c := jwt.MapClaims{
		"iss":   idpIssuer,
		"sub":   "alice",
		"aud":   []string{idpAudience},
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"jti":   "jti-" + fmt.Sprint(now.UnixNano()),
		"scope": "mcp:tools",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign signs c with the fixture's key of method, under kid.
func (f *oauthFixture) sign(t *testing.T, method jwt.SigningMethod, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	var key any
	switch method.Alg() {
	case "RS256", "RS384", "PS256":
		key = rsaKey()
	case "ES256":
		key = f.ec
	case "EdDSA":
		key = f.ed
	case "HS256":
		// The HMAC key an attacker would try: the RSA key's public bytes.
		key = rsaKey().PublicKey.N.Bytes()
	case "none":
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func TestOAuthVerify(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		method jwt.SigningMethod
		kid    string
		extra  map[string]any
		want   error // nil: accepted
	}{
		{"RS256", jwt.SigningMethodRS256, "rsa-1", nil, nil},
		{"ES256", jwt.SigningMethodES256, "ec-1", nil, nil},
		{"EdDSA", jwt.SigningMethodEdDSA, "ed-1", nil, nil},
		{"audience among others", jwt.SigningMethodRS256, "rsa-1", map[string]any{"aud": []string{"https://other.example.com", idpAudience}}, nil},
		{"audience as a string", jwt.SigningMethodRS256, "rsa-1", map[string]any{"aud": idpAudience}, nil},
		{"alg none", jwt.SigningMethodNone, "rsa-1", nil, authn.ErrInvalidToken},
		{"HS256 keyed with the public key", jwt.SigningMethodHS256, "rsa-1", nil, authn.ErrInvalidToken},
		{"RS384 with an RS256 key", jwt.SigningMethodRS384, "rsa-1", nil, authn.ErrInvalidToken},
		{"PS256 with an RS256 key", jwt.SigningMethodPS256, "rsa-1", nil, authn.ErrInvalidToken},
		{"ES256 under the RSA kid", jwt.SigningMethodES256, "rsa-1", nil, authn.ErrInvalidToken},
		{"unknown kid", jwt.SigningMethodRS256, "rsa-9", nil, authn.ErrInvalidToken},
		{"no kid", jwt.SigningMethodRS256, "", nil, authn.ErrInvalidToken},
		{"wrong issuer", jwt.SigningMethodRS256, "rsa-1", map[string]any{"iss": "https://evil.example.com"}, authn.ErrWrongIssuer},
		{"no issuer", jwt.SigningMethodRS256, "rsa-1", map[string]any{"iss": nil}, authn.ErrInvalidToken},
		{"wrong audience", jwt.SigningMethodRS256, "rsa-1", map[string]any{"aud": []string{"https://other.example.com/mcp"}}, authn.ErrWrongAudience},
		{"no audience", jwt.SigningMethodRS256, "rsa-1", map[string]any{"aud": nil}, authn.ErrInvalidToken},
		{"expired", jwt.SigningMethodRS256, "rsa-1", map[string]any{"exp": oauthNow.Add(-time.Hour).Unix()}, authn.ErrExpired},
		{"no exp", jwt.SigningMethodRS256, "rsa-1", map[string]any{"exp": nil}, authn.ErrInvalidToken},
		{"not valid yet", jwt.SigningMethodRS256, "rsa-1", map[string]any{"nbf": oauthNow.Add(time.Hour).Unix()}, authn.ErrNotYetValid},
		{"no subject", jwt.SigningMethodRS256, "rsa-1", map[string]any{"sub": nil}, authn.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.sign(t, tt.method, tt.kid, f.claims(tt.extra))
			p, err := f.v.Verify(ctx, tok)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Kind != authn.KindOAuth || p.Subject != "oauth:alice" {
					t.Errorf("principal %s %q, want oauth oauth:alice", p.Kind, p.Subject)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want %v", p, err, tt.want)
			}
		})
	}
	// The HS256 attack fails also with the key's alg read off the token.
	t.Run("alg pinned to the key", func(t *testing.T) {
		tok := f.sign(t, jwt.SigningMethodHS256, "ec-1", f.claims(nil))
		if _, err := f.v.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) {
			t.Errorf("HS256 under an EC kid: %v", err)
		}
	})
}

func TestOAuthGrants(t *testing.T) {
	f := newOAuthFixture(t)
	type grant struct {
		Scopes, Servers, Tools []string
	}
	tests := []struct {
		name  string
		extra map[string]any
		want  grant
	}{
		{"server and tool scope", map[string]any{"scope": "mcp:tools"}, grant{[]string{}, []string{"*"}, []string{"*"}}},
		{"admin alone uses no server", map[string]any{"scope": "mcp:admin"}, grant{[]string{"admin"}, []string{}, []string{}}},
		{"no scope", map[string]any{"scope": nil}, grant{[]string{}, []string{}, []string{}}},
		{"unknown scopes", map[string]any{"scope": "openid profile email"}, grant{[]string{}, []string{}, []string{}}},
		{"servers alone allow their tools", map[string]any{"scope": "mcp:memory"}, grant{[]string{}, []string{"memory"}, []string{"*"}}},
		{"tools alone allow their servers", map[string]any{"scope": "mcp:echo"}, grant{[]string{}, []string{"*"}, []string{"everything__echo"}}},
		{"scp array", map[string]any{"scope": nil, "scp": []any{"mcp:admin", "mcp:memory"}}, grant{[]string{"admin"}, []string{"memory"}, []string{"*"}}},
		{"prefixed scopes", map[string]any{"scope": "atrax:admin atrax:edge atrax:server:github atrax:tool:github__get_* atrax:bogus"},
			grant{[]string{"admin", "edge"}, []string{"github"}, []string{"github__get_*"}}},
		{"claims", map[string]any{"scope": nil, "atrax_servers": []any{"memory", "fetch"}, "atrax_tools": "memory__read_graph fetch__*"},
			grant{[]string{}, []string{"memory", "fetch"}, []string{"memory__read_graph", "fetch__*"}}},
		{"duplicates once", map[string]any{"scope": "mcp:memory atrax:server:memory mcp:admin atrax:admin"}, grant{[]string{"admin"}, []string{"memory"}, []string{"*"}}},
		{"a claim of the wrong type grants nothing", map[string]any{"scope": 42.0, "atrax_servers": map[string]any{"a": 1}}, grant{[]string{}, []string{}, []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.sign(t, jwt.SigningMethodES256, "ec-1", f.claims(tt.extra))
			p, err := f.v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, grant{p.Scopes, p.Servers, p.Tools}); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("custom claims", func(t *testing.T) {
		g := newOAuthFixture(t, func(o *authn.Options) {
			o.OAuth.ScopeClaim = "roles"
			o.OAuth.SubjectClaim = "oid"
		})
		tok := g.sign(t, jwt.SigningMethodES256, "ec-1", g.claims(map[string]any{"roles": []any{"mcp:admin"}, "oid": "0000-1111"}))
		p, err := g.v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != "oauth:0000-1111" || !p.HasScope(authn.ScopeAdmin) || len(p.Servers) != 0 {
			t.Errorf("principal %+v, want oauth:0000-1111 with admin from roles (scope ignored)", p)
		}
		if !p.ExpiresAt.Equal(oauthNow.Add(time.Hour)) || p.TokenID == "" {
			t.Errorf("ExpiresAt %v, TokenID %q", p.ExpiresAt, p.TokenID)
		}
	})
}

func TestOAuthBesideOtherTokens(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	// Static tokens are bearer tokens in oauth mode, as in token mode.
	if p, err := f.v.Verify(ctx, "ci-static-token"); err != nil || p.Subject != "static:ci" {
		t.Errorf("static token: %v, %v", p, err)
	}
	// So are JWTs the control plane issues, by its own keys.
	kid, priv := authntest.NewKey(t)
	f.v.SetKeys(map[string]ed25519.PublicKey{kid: priv.Public().(ed25519.PublicKey)})
	issued := authntest.Sign(t, priv, kid, authntest.Claims("client:agent", oauthNow, time.Hour))
	if p, err := f.v.Verify(ctx, issued); err != nil || p.Kind != authn.KindJWT {
		t.Errorf("issued JWT: %v, %v", p, err)
	}
	// An IdP token is not checked against the control plane's keys, nor an
	// issued one against the IdP's.
	calls := f.src.keyCalls()
	forged := authntest.Sign(t, f.ed, kid, authntest.Claims("client:agent", oauthNow, time.Hour))
	if _, err := f.v.Verify(ctx, forged); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("a token naming an issued kid, signed with another key: %v", err)
	}
	if f.src.keyCalls() != calls {
		t.Errorf("a token naming an issued kid asked the authorization server for keys")
	}
	// Garbage that is not a JWT is refused without introspection.
	if _, err := f.v.Verify(ctx, "opaque-token"); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("opaque token without introspection: %v", err)
	}

	// Without ModeOAuth, an IdP's token means nothing.
	jwtMode := newOAuthFixture(t, func(o *authn.Options) { o.Mode = authn.ModeJWT })
	tok := jwtMode.sign(t, jwt.SigningMethodRS256, "rsa-1", jwtMode.claims(nil))
	if _, err := jwtMode.v.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("OAuth token in jwt mode: %v", err)
	}
}

func TestOAuthCacheAndRevocation(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	c := f.claims(map[string]any{"jti": "idp-jti-1"})
	tok := f.sign(t, jwt.SigningMethodRS256, "rsa-1", c)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	calls := f.src.keyCalls()
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if f.src.keyCalls() != calls {
		t.Errorf("a verified token was checked again (%d key lookups, want %d)", f.src.keyCalls(), calls)
	}

	// Never past exp (and the leeway for clock skew), cache or not.
	f.clk.Advance(time.Hour + time.Minute)
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, authn.ErrExpired) {
		t.Errorf("past exp: %v, want expired", err)
	}

	// RevokeToken's jti applies to OAuth tokens, cached ones included.
	tok = f.sign(t, jwt.SigningMethodRS256, "rsa-1", f.claims(map[string]any{"jti": "idp-jti-2"}))
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.v.Revoke("idp-jti-2", f.clk.Now().Add(time.Hour))
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, authn.ErrRevoked) {
		t.Errorf("revoked: %v", err)
	}

	// A key the server no longer publishes takes its cached tokens along.
	tok = f.sign(t, jwt.SigningMethodES256, "ec-1", f.claims(nil))
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.src.mu.Lock()
	delete(f.src.keys, "ec-1")
	f.src.mu.Unlock()
	f.v.ForgetOAuthKeys([]string{"ec-1"})
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("token of a removed key: %v", err)
	}
}

func TestOAuthIntrospection(t *testing.T) {
	f := newOAuthFixture(t, func(o *authn.Options) { o.OAuth.Introspect = true })
	exp := float64(oauthNow.Add(time.Hour).Unix())
	f.src.intro = map[string]map[string]any{
		"good":         {"active": true, "iss": idpIssuer, "sub": "svc", "aud": idpAudience, "exp": exp, "scope": "mcp:memory", "jti": "opaque-1"},
		"no-iss":       {"active": true, "sub": "svc", "aud": []any{idpAudience}, "scope": "mcp:tools"},
		"other-aud":    {"active": true, "iss": idpIssuer, "sub": "svc", "aud": "https://other.example.com", "exp": exp},
		"no-aud":       {"active": true, "iss": idpIssuer, "sub": "svc", "exp": exp},
		"other-iss":    {"active": true, "iss": "https://evil.example.com", "sub": "svc", "aud": idpAudience, "exp": exp},
		"expired":      {"active": true, "iss": idpIssuer, "sub": "svc", "aud": idpAudience, "exp": float64(oauthNow.Add(-time.Hour).Unix())},
		"future":       {"active": true, "iss": idpIssuer, "sub": "svc", "aud": idpAudience, "nbf": float64(oauthNow.Add(time.Hour).Unix())},
		"no-sub":       {"active": true, "iss": idpIssuer, "aud": idpAudience},
		"client-only":  {"active": true, "aud": idpAudience, "client_id": "daemon", "scope": "mcp:tools"},
		"bad-exp-type": {"active": true, "iss": idpIssuer, "sub": "svc", "aud": idpAudience, "exp": "tomorrow"},
	}
	ctx := context.Background()
	p, err := f.v.Verify(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	want := &authn.Principal{Subject: "oauth:svc", Kind: authn.KindOAuth, TokenID: "opaque-1", Scopes: []string{},
		Servers: []string{"memory"}, Tools: []string{"*"}, ExpiresAt: oauthNow.Add(time.Hour)}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	if _, err := f.v.Verify(ctx, "no-iss"); err != nil {
		t.Errorf("no iss (optional in RFC 7662): %v", err)
	}
	if p, err := f.v.Verify(ctx, "client-only"); err != nil || p.Subject != "oauth:daemon" {
		t.Errorf("an answer naming only the client: %v, %v", p, err)
	}
	for tok, want := range map[string]error{
		"inactive":     authn.ErrInvalidToken,
		"other-aud":    authn.ErrWrongAudience,
		"no-aud":       authn.ErrWrongAudience,
		"other-iss":    authn.ErrWrongIssuer,
		"expired":      authn.ErrExpired,
		"future":       authn.ErrNotYetValid,
		"no-sub":       authn.ErrInvalidToken,
		"bad-exp-type": authn.ErrInvalidToken,
	} {
		if _, err := f.v.Verify(ctx, tok); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", tok, err, want)
		}
	}
	f.v.Revoke("opaque-1", oauthNow.Add(time.Hour))
	if _, err := f.v.Verify(ctx, "good"); !errors.Is(err, authn.ErrRevoked) {
		t.Errorf("revoked opaque token: %v", err)
	}
}

func TestOAuthScopes(t *testing.T) {
	f := newOAuthFixture(t)
	for grant, want := range map[string]string{
		authn.ScopeAdmin: "mcp:admin",
		"server:*":       "mcp:tools",
		authn.ScopeEdge:  "atrax:edge", // no mapped scope: the prefixed form
	} {
		if got := f.v.OAuthScopes(grant); got != want {
			t.Errorf("OAuthScopes(%q) = %q, want %q", grant, got, want)
		}
	}
	onlyMemory := newOAuthFixture(t, func(o *authn.Options) {
		o.OAuth.Scopes = []authn.ScopeGrant{{Scope: "mcp:memory", Grants: []string{"server:memory"}}}
		o.OAuth.ScopePrefix = ""
	})
	if got := onlyMemory.v.OAuthScopes("server:*"); got != "mcp:memory" {
		t.Errorf("the use of servers, only one granted: %q", got)
	}
	if got := onlyMemory.v.OAuthScopes(authn.ScopeAdmin); got != "" {
		t.Errorf("admin, never granted: %q", got)
	}
	plain := authn.NewVerifier(authn.Options{Mode: authn.ModeToken})
	if got := plain.OAuthScopes(authn.ScopeAdmin); got != "" {
		t.Errorf("token mode: %q", got)
	}
}
