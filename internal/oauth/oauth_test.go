package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
	"github.com/atrax-mcp/atrax/internal/oauth"
)

const audience = "https://atrax.example.com/mcp"

// Keys are made once: RSA key generation is slow under -race.
var (
	rsa1 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	rsa2 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	ec1  = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK and ecJWK are the public JWKs of keys.
func rsaJWK(kid, alg string, k *rsa.PublicKey) map[string]any {
	m := map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	n := (len(b) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(b[1 : 1+n]), "y": b64(b[1+n:])}
}

// authServer is an authorization server on 127.0.0.1: metadata at one of
// the well-known places, a JWKS the test changes, and an introspection
// endpoint. It counts what it serves.
type authServer struct {
	*httptest.Server
	Issuer string

	mu        sync.Mutex
	keys      []map[string]any
	metaPath  string // where the metadata answers
	metaIss   string // the issuer the metadata names ("" the real one)
	jwksFails bool
	jwksDelay time.Duration
	answers   map[string]map[string]any
	introFail bool

	metaHits, jwksHits, introHits atomic.Int32
}

const (
	introClient = "atrax gateway" // a space, to check the form encoding
	introSecret = "s3cret:with/chars"
)

func newAuthServer(t *testing.T, metaPath string) *authServer {
	t.Helper()
	a := &authServer{metaPath: metaPath, answers: map[string]map[string]any{}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	a.Issuer = a.URL + "/realms/main"
	a.keys = []map[string]any{rsaJWK("rsa-1", "RS256", &rsa1().PublicKey), ecJWK("ec-1", &ec1().PublicKey)}
	return a
}

func (a *authServer) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	write := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case a.metaPath:
		a.metaHits.Add(1)
		iss := a.metaIss
		if iss == "" {
			iss = a.Issuer
		}
		write(map[string]any{
			"issuer": iss, "jwks_uri": a.URL + "/keys", "introspection_endpoint": a.URL + "/introspect",
			"authorization_endpoint": a.URL + "/authorize", "token_endpoint": a.URL + "/token",
		})
	case "/keys":
		a.jwksHits.Add(1)
		if a.jwksDelay > 0 {
			time.Sleep(a.jwksDelay)
		}
		if a.jwksFails {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		write(map[string]any{"keys": a.keys})
	case "/introspect":
		a.introHits.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok || id != strings.ReplaceAll(introClient, " ", "+") || secret != strings.NewReplacer(":", "%3A", "/", "%2F").Replace(introSecret) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if a.introFail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		if r.FormValue("token_type_hint") != "access_token" {
			http.Error(w, "hint", http.StatusBadRequest)
			return
		}
		ans, ok := a.answers[r.FormValue("token")]
		if !ok {
			ans = map[string]any{"active": false}
		}
		write(ans)
	default:
		http.NotFound(w, r)
	}
}

func (a *authServer) setKeys(keys ...map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys = keys
}

// fixture is a Verifier in oauth mode over a Source of an authServer.
type fixture struct {
	a       *authServer
	clock   *fakeclock.Clock
	src     *oauth.Source
	v       *authn.Verifier
	removed chan []string
}

func newFixture(t *testing.T, a *authServer, intro *oauth.Introspection) *fixture {
	t.Helper()
	f := &fixture{a: a, clock: fakeclock.New(time.Now().Truncate(time.Second)), removed: make(chan []string, 8)}
	f.src = oauth.New(oauth.Options{
		Issuer:        a.Issuer,
		JWKSRefresh:   10 * time.Minute,
		MinRefresh:    30 * time.Second,
		Introspection: intro,
		OnKeysRemoved: func(kids []string) {
			f.v.ForgetOAuthKeys(kids)
			f.removed <- kids
		},
		Now: f.clock.Now,
	})
	f.v = authn.NewVerifier(authn.Options{
		Mode: authn.ModeOAuth,
		Now:  f.clock.Now,
		OAuth: &authn.OAuthOptions{
			Issuer: a.Issuer, Audience: audience, Source: f.src, Introspect: intro != nil,
			Scopes: []authn.ScopeGrant{
				{Scope: "mcp:tools", Grants: []string{"server:*", "tool:*"}},
				{Scope: "mcp:admin", Grants: []string{authn.ScopeAdmin}},
			},
		},
	})
	return f
}

// token signs claims (a good token's, changed by extra; nil deletes) with
// method and key under kid.
func (f *fixture) token(t *testing.T, method jwt.SigningMethod, key any, kid string, extra map[string]any) string {
	t.Helper()
	now := f.clock.Now()
	c := jwt.MapClaims{
		"iss": f.a.Issuer, "sub": "alice", "aud": audience, "scope": "mcp:tools",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMetadataURLs(t *testing.T) {
	for issuer, want := range map[string][]string{
		"https://idp.example.com": {
			"https://idp.example.com/.well-known/oauth-authorization-server",
			"https://idp.example.com/.well-known/openid-configuration",
		},
		"https://idp.example.com/realms/main/": {
			"https://idp.example.com/.well-known/oauth-authorization-server/realms/main",
			"https://idp.example.com/.well-known/openid-configuration/realms/main",
			"https://idp.example.com/realms/main/.well-known/openid-configuration",
		},
	} {
		got, err := oauth.MetadataURLs(issuer)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("MetadataURLs(%q) (-want +got):\n%s", issuer, diff)
		}
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{
		"/.well-known/oauth-authorization-server/realms/main", // RFC 8414
		"/.well-known/openid-configuration/realms/main",       // RFC 8414 style for OpenID
		"/realms/main/.well-known/openid-configuration",       // OpenID Connect Discovery
	} {
		a := newAuthServer(t, path)
		m, err := oauth.Discover(ctx, http.DefaultClient, a.Issuer)
		if err != nil {
			t.Fatalf("metadata at %s: %v", path, err)
		}
		if m.JWKSURI != a.URL+"/keys" || m.IntrospectionEndpoint != a.URL+"/introspect" {
			t.Errorf("metadata at %s: %+v", path, m)
		}
	}
	// A document for another issuer is not used (RFC 8414 section 3.3).
	a := newAuthServer(t, "/.well-known/oauth-authorization-server/realms/main")
	a.metaIss = a.URL + "/realms/other"
	if _, err := oauth.Discover(ctx, http.DefaultClient, a.Issuer); err == nil || !strings.Contains(err.Error(), "not \""+a.Issuer+"\"") {
		t.Errorf("metadata of another issuer: %v", err)
	}
	// Nothing there.
	a = newAuthServer(t, "/nowhere")
	if _, err := oauth.Discover(ctx, http.DefaultClient, a.Issuer); err == nil {
		t.Error("discovered metadata where there is none")
	}
}

func TestParseJWKS(t *testing.T) {
	small := mustRSA(1024)
	good := []any{
		rsaJWK("rsa-noalg", "", &rsa1().PublicKey),
		rsaJWK("rsa-ps", "PS256", &rsa1().PublicKey),
		ecJWK("ec", &ec1().PublicKey),
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(make([]byte, 32))},
	}
	offCurve := ecJWK("ec-off", &ec1().PublicKey)
	offCurve["y"] = b64(make([]byte, 32))
	withD := rsaJWK("rsa-private", "RS256", &rsa1().PublicKey)
	withD["d"] = "AQAB"
	bad := []any{
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(rsa1().N.Bytes()), "e": "AQAB"},
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		rsaJWK("rsa-hs", "HS256", &rsa1().PublicKey),
		rsaJWK("rsa-none", "none", &rsa1().PublicKey),
		rsaJWK("rsa-small", "RS256", &small.PublicKey),
		rsaJWK("", "RS256", &rsa1().PublicKey),
		offCurve,
		withD,
		map[string]any{"kty": "EC", "kid": "ec-alg", "alg": "ES384", "crv": "P-256", "x": ecJWK("", &ec1().PublicKey)["x"], "y": ecJWK("", &ec1().PublicKey)["y"]},
		map[string]any{"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(make([]byte, 32))},
		"not an object",
	}
	body, _ := json.Marshal(map[string]any{"keys": append(append([]any{}, good...), bad...)})
	keys, skipped, err := oauth.ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	algs := map[string]string{}
	for kid, k := range keys {
		algs[kid] = k.Algorithm
	}
	want := map[string]string{"rsa-noalg": "RS256", "rsa-ps": "PS256", "ec": "ES256", "ed": "EdDSA"}
	if diff := cmp.Diff(want, algs); diff != "" {
		t.Errorf("keys by kid and algorithm (-want +got):\n%s", diff)
	}
	if len(skipped) != len(bad) {
		t.Errorf("skipped %d keys, want %d: %q", len(skipped), len(bad), skipped)
	}

	dup, _ := json.Marshal(map[string]any{"keys": []any{ecJWK("same", &ec1().PublicKey), rsaJWK("same", "", &rsa1().PublicKey)}})
	if keys, _, _ := oauth.ParseJWKS(dup); len(keys) != 0 {
		t.Errorf("a kid used twice kept %d keys", len(keys))
	}
	for _, doc := range []string{`[]`, `{}`, `nope`} {
		if _, _, err := oauth.ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted it", doc)
		}
	}
}

// TestVerify runs the verifier over a JWKS served on 127.0.0.1: RSA and EC
// keys, and every refusal.
func TestVerify(t *testing.T) {
	a := newAuthServer(t, "/.well-known/openid-configuration/realms/main")
	f := newFixture(t, a, nil)
	ctx := context.Background()
	hour := f.clock.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
		extra  map[string]any
		want   error
	}{
		{"RS256", jwt.SigningMethodRS256, rsa1(), "rsa-1", nil, nil},
		{"ES256", jwt.SigningMethodES256, ec1(), "ec-1", nil, nil},
		{"alg none", jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", nil, authn.ErrInvalidToken},
		{"HS256 keyed with the RSA modulus", jwt.SigningMethodHS256, rsa1().N.Bytes(), "rsa-1", nil, authn.ErrInvalidToken},
		{"RS512 on an RS256 key", jwt.SigningMethodRS512, rsa1(), "rsa-1", nil, authn.ErrInvalidToken},
		{"signed by a key not in the JWKS", jwt.SigningMethodRS256, rsa2(), "rsa-1", nil, authn.ErrInvalidToken},
		{"wrong issuer", jwt.SigningMethodRS256, rsa1(), "rsa-1", map[string]any{"iss": a.URL + "/realms/other"}, authn.ErrWrongIssuer},
		{"wrong audience", jwt.SigningMethodRS256, rsa1(), "rsa-1", map[string]any{"aud": "https://elsewhere.example.com/mcp"}, authn.ErrWrongAudience},
		{"expired", jwt.SigningMethodES256, ec1(), "ec-1", map[string]any{"exp": f.clock.Now().Add(-time.Minute).Unix()}, authn.ErrExpired},
		{"not valid yet", jwt.SigningMethodES256, ec1(), "ec-1", map[string]any{"nbf": hour}, authn.ErrNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.v.Verify(ctx, f.token(t, tt.method, tt.key, tt.kid, tt.extra))
			if tt.want == nil {
				if err != nil || !p.AllowsServer("memory") || p.HasScope(authn.ScopeAdmin) {
					t.Fatalf("Verify = %+v, %v; want a principal with servers and no admin", p, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("missing scope", func(t *testing.T) {
		// Valid, but it grants nothing: the edge refuses it with
		// insufficient_scope, the control plane with PermissionDenied.
		p, err := f.v.Verify(ctx, f.token(t, jwt.SigningMethodRS256, rsa1(), "rsa-1", map[string]any{"scope": "openid profile"}))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Servers) != 0 || len(p.Tools) != 0 || len(p.Scopes) != 0 {
			t.Errorf("a token without a mapped scope grants %+v", p)
		}
	})
	if n := a.jwksHits.Load(); n != 1 {
		t.Errorf("the JWKS was fetched %d times, want once", n)
	}
	if n := a.metaHits.Load(); n != 1 {
		t.Errorf("the metadata was fetched %d times, want once", n)
	}
}

// TestKeyRotation checks the refresh on an unknown kid, its rate limit, the
// periodic refresh, and that removed keys take their cached tokens along.
func TestKeyRotation(t *testing.T) {
	a := newAuthServer(t, "/.well-known/oauth-authorization-server/realms/main")
	f := newFixture(t, a, nil)
	ctx := context.Background()
	old := f.token(t, jwt.SigningMethodRS256, rsa1(), "rsa-1", nil)
	if _, err := f.v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}

	// The server rotates: a token under a new kid makes the source fetch
	// the keys again at once, MinRefresh after the last fetch.
	a.setKeys(rsaJWK("rsa-1", "RS256", &rsa1().PublicKey), rsaJWK("rsa-2", "RS256", &rsa2().PublicKey))
	f.clock.Advance(31 * time.Second)
	if _, err := f.v.Verify(ctx, f.token(t, jwt.SigningMethodRS256, rsa2(), "rsa-2", nil)); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if n := a.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetches = %d, want 2 (once more for the new kid)", n)
	}

	// Unknown kids do not make it fetch again within MinRefresh, however
	// many come.
	for i := range 5 {
		_, err := f.v.Verify(ctx, f.token(t, jwt.SigningMethodRS256, rsa2(), fmt.Sprint("bogus-", i), nil))
		if !errors.Is(err, authn.ErrInvalidToken) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := a.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetches after 5 unknown kids = %d, want still 2", n)
	}
	f.clock.Advance(31 * time.Second)
	if _, err := f.src.Key(ctx, "bogus"); !errors.Is(err, authn.ErrUnknownKey) {
		t.Errorf("unknown kid after MinRefresh: %v", err)
	}
	if n := a.jwksHits.Load(); n != 3 {
		t.Errorf("JWKS fetches after MinRefresh = %d, want 3", n)
	}

	// The server drops rsa-1: at the next refresh its tokens, cached ones
	// included, stop working.
	a.setKeys(rsaJWK("rsa-2", "RS256", &rsa2().PublicKey))
	f.clock.Advance(10 * time.Minute)
	if _, err := f.src.Key(ctx, "rsa-2"); err != nil {
		t.Fatal(err)
	}
	// The first rotation dropped ec-1, this one rsa-1.
	var removed [][]string
	for len(f.removed) > 0 {
		removed = append(removed, <-f.removed)
	}
	if diff := cmp.Diff([][]string{{"ec-1"}, {"rsa-1"}}, removed); diff != "" {
		t.Errorf("OnKeysRemoved calls (-want +got):\n%s", diff)
	}
	if _, err := f.v.Verify(ctx, old); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("token of a removed key: %v", err)
	}
}

func TestKeysUnavailable(t *testing.T) {
	a := newAuthServer(t, "/.well-known/openid-configuration/realms/main")
	a.jwksFails = true
	f := newFixture(t, a, nil)
	ctx := context.Background()
	tok := f.token(t, jwt.SigningMethodRS256, rsa1(), "rsa-1", nil)
	for range 3 {
		if _, err := f.v.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) || strings.Contains(err.Error(), a.URL) {
			t.Fatalf("keys down: %v (want invalid, without the server's address)", err)
		}
	}
	if n := a.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetches while it is down = %d, want 1 (then wait MinRefresh)", n)
	}
	// Up again, after MinRefresh.
	a.mu.Lock()
	a.jwksFails = false
	a.mu.Unlock()
	f.clock.Advance(31 * time.Second)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatalf("keys back: %v", err)
	}
	// Down at a refresh: the keys already fetched stay in use.
	a.mu.Lock()
	a.jwksFails = true
	a.mu.Unlock()
	f.clock.Advance(11 * time.Minute)
	if _, err := f.v.Verify(ctx, f.token(t, jwt.SigningMethodES256, ec1(), "ec-1", nil)); err != nil {
		t.Errorf("refresh failed, old keys: %v", err)
	}
}

func TestKeysFetchedOnceForMany(t *testing.T) {
	a := newAuthServer(t, "/.well-known/openid-configuration/realms/main")
	a.jwksDelay = 50 * time.Millisecond
	f := newFixture(t, a, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := f.src.Key(context.Background(), "ec-1")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := a.jwksHits.Load(); n != 1 {
		t.Errorf("20 concurrent first uses fetched the JWKS %d times, want once", n)
	}
}

func TestIntrospection(t *testing.T) {
	a := newAuthServer(t, "/.well-known/oauth-authorization-server/realms/main")
	in := &oauth.Introspection{ClientID: introClient, ClientSecret: introSecret, CacheTTL: 5 * time.Minute, CacheSize: 2}
	f := newFixture(t, a, in)
	ctx := context.Background()
	now := f.clock.Now()
	answer := func(sub string, exp time.Time) map[string]any {
		return map[string]any{"active": true, "iss": a.Issuer, "sub": sub, "aud": []string{audience}, "scope": "mcp:tools", "exp": exp.Unix()}
	}
	a.mu.Lock()
	a.answers["opaque-a"] = answer("a", now.Add(time.Minute)) // exp sooner than the TTL
	a.answers["opaque-b"] = answer("b", now.Add(time.Hour))
	a.answers["opaque-c"] = answer("c", now.Add(time.Hour))
	a.mu.Unlock()

	// The endpoint comes from the metadata; answers are cached.
	for range 3 {
		p, err := f.v.Verify(ctx, "opaque-a")
		if err != nil || p.Subject != "oauth:a" {
			t.Fatalf("opaque-a: %v, %v", p, err)
		}
	}
	if n := a.introHits.Load(); n != 1 {
		t.Errorf("introspections = %d, want 1 (cached)", n)
	}
	// Inactive answers are cached too.
	for range 2 {
		if _, err := f.v.Verify(ctx, "unknown"); !errors.Is(err, authn.ErrInvalidToken) {
			t.Errorf("inactive token: %v", err)
		}
	}
	if n := a.introHits.Load(); n != 2 {
		t.Errorf("introspections = %d, want 2", n)
	}
	// The cache honours exp: opaque-a's answer is gone after a minute,
	// though the TTL is five.
	f.clock.Advance(61 * time.Second)
	if _, err := f.src.Introspect(ctx, "opaque-a"); err != nil {
		t.Fatal(err)
	}
	if n := a.introHits.Load(); n != 3 {
		t.Errorf("introspections after exp = %d, want 3", n)
	}
	// The cache is bounded: with two places, b and c push a out.
	for _, tok := range []string{"opaque-b", "opaque-c", "opaque-a"} {
		if _, err := f.src.Introspect(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.introHits.Load(); n != 6 {
		t.Errorf("introspections with a full cache = %d, want 6", n)
	}
	// A failure is not cached.
	a.mu.Lock()
	a.introFail = true
	a.mu.Unlock()
	if _, err := f.v.Verify(ctx, "opaque-x"); !errors.Is(err, authn.ErrInvalidToken) || strings.Contains(err.Error(), a.URL) {
		t.Errorf("endpoint down: %v", err)
	}
	a.mu.Lock()
	a.introFail = false
	a.answers["opaque-x"] = answer("x", now.Add(time.Hour))
	a.mu.Unlock()
	if _, err := f.v.Verify(ctx, "opaque-x"); err != nil {
		t.Errorf("endpoint back: %v", err)
	}

	// Wrong credentials at the endpoint: an error, not an inactive token.
	bad := oauth.New(oauth.Options{Issuer: a.Issuer, Introspection: &oauth.Introspection{Endpoint: a.URL + "/introspect", ClientID: "x", ClientSecret: "y"}})
	if _, err := bad.Introspect(ctx, "opaque-b"); err == nil || errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("wrong client credentials: %v", err)
	}
	// No introspection configured.
	none := oauth.New(oauth.Options{Issuer: a.Issuer})
	if _, err := none.Introspect(ctx, "opaque-b"); !errors.Is(err, authn.ErrNoIntrospection) {
		t.Errorf("without introspection: %v", err)
	}
}
