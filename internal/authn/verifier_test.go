package authn_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/authn/authntest"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

// t0 is the time of every test clock: whole seconds, as JWT times are.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newClock() *fakeclock.Clock { return fakeclock.New(t0) }

var (
	opsToken = authn.StaticToken{
		Name: "ops", Token: "ops-secret-token",
		Scopes: []string{authn.ScopeAdmin},
	}
	ciToken = authn.StaticToken{
		Name: "ci", Token: "ci-secret-token",
		Servers: []string{"memory"}, Tools: []string{"memory__*"},
	}
	edgeToken = authn.StaticToken{
		Name: "edge", Token: "edge-service-token",
		Scopes: []string{authn.ScopeEdge},
	}
)

// setup returns a verifier in mode on a fake clock, with the static tokens
// ops and ci, the service token edge, and one trusted signing key.
func setup(t *testing.T, mode string) (*authn.Verifier, *fakeclock.Clock, string, ed25519.PrivateKey) {
	t.Helper()
	c := newClock()
	v := authntest.Verifier(t, func(o *authn.Options) {
		o.Mode = mode
		o.Static = []authn.StaticToken{opsToken, ciToken}
		o.Service = []authn.StaticToken{edgeToken}
		o.Now = c.Now
	})
	kid, priv := authntest.NewKey(t)
	authntest.Trust(v, kid, priv)
	return v, c, kid, priv
}

// signed returns a valid token for client:ci at t0 with the admin scope.
func signed(t *testing.T, kid string, priv ed25519.PrivateKey) (string, *authn.Claims) {
	t.Helper()
	c := authntest.Claims("client:ci", t0, time.Hour)
	c.Scope = "admin edge"
	c.Servers = []string{"memory", "git*"}
	c.Tools = []string{"*"}
	return authntest.Sign(t, priv, kid, c), c
}

func TestVerifyModes(t *testing.T) {
	anonymous := "anonymous"
	tests := []struct {
		mode    string
		token   string
		subject string // "" when refused
		wantErr error
	}{
		{authn.ModeNone, "", anonymous, nil},
		{authn.ModeNone, "garbage", anonymous, nil},
		{authn.ModeNone, opsToken.Token, anonymous, nil},
		{authn.ModeNone, edgeToken.Token, anonymous, nil},
		{authn.ModeNone, "JWT", anonymous, nil},

		{authn.ModeToken, "", "", authn.ErrNoToken},
		{authn.ModeToken, opsToken.Token, "static:ops", nil},
		{authn.ModeToken, ciToken.Token, "static:ci", nil},
		{authn.ModeToken, edgeToken.Token, "static:edge", nil},
		{authn.ModeToken, "JWT", "client:ci", nil},
		{authn.ModeToken, "wrong", "", authn.ErrInvalidToken},
		{authn.ModeToken, opsToken.Token[:len(opsToken.Token)-1], "", authn.ErrInvalidToken},
		{authn.ModeToken, opsToken.Token + "x", "", authn.ErrInvalidToken},
		{authn.ModeToken, " " + opsToken.Token, "", authn.ErrInvalidToken},

		{authn.ModeJWT, "", "", authn.ErrNoToken},
		{authn.ModeJWT, opsToken.Token, "", authn.ErrInvalidToken},
		{authn.ModeJWT, ciToken.Token, "", authn.ErrInvalidToken},
		{authn.ModeJWT, edgeToken.Token, "static:edge", nil},
		{authn.ModeJWT, "JWT", "client:ci", nil},
		{authn.ModeJWT, "wrong", "", authn.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.token, func(t *testing.T) {
			v, _, kid, priv := setup(t, tt.mode)
			if got := v.Mode(); got != tt.mode {
				t.Errorf("Mode() = %q, want %q", got, tt.mode)
			}
			token := tt.token
			if token == "JWT" && tt.mode != authn.ModeNone {
				token, _ = signed(t, kid, priv)
			}
			p, err := v.Verify(context.Background(), token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || p != nil {
					t.Fatalf("Verify = %+v, %v; want nil, %v", p, err, tt.wantErr)
				}
				// A missing token is told apart from a wrong one.
				if isNo, isInvalid := errors.Is(err, authn.ErrNoToken), errors.Is(err, authn.ErrInvalidToken); isNo == isInvalid {
					t.Errorf("Verify error %v: ErrNoToken %v, ErrInvalidToken %v; want exactly one", err, isNo, isInvalid)
				}
				if strings.Contains(err.Error(), tt.token) && tt.token != "" {
					t.Errorf("Verify error %q repeats the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != tt.subject {
				t.Errorf("Verify subject = %q, want %q", p.Subject, tt.subject)
			}
		})
	}
}

func TestVerifyPrincipals(t *testing.T) {
	v, _, kid, priv := setup(t, authn.ModeToken)
	jwtToken, claims := signed(t, kid, priv)
	tests := []struct {
		token string
		want  *authn.Principal
	}{{
		token: opsToken.Token,
		// nil Servers and Tools in the config mean everything.
		want: &authn.Principal{Subject: "static:ops", Kind: authn.KindStatic, Scopes: []string{"admin"}, Servers: []string{"*"}, Tools: []string{"*"}},
	}, {
		token: ciToken.Token,
		want:  &authn.Principal{Subject: "static:ci", Kind: authn.KindStatic, Servers: []string{"memory"}, Tools: []string{"memory__*"}},
	}, {
		token: edgeToken.Token,
		want:  &authn.Principal{Subject: "static:edge", Kind: authn.KindStatic, Scopes: []string{"edge"}, Servers: []string{"*"}, Tools: []string{"*"}},
	}, {
		token: jwtToken,
		want: &authn.Principal{
			Subject: "client:ci", Kind: authn.KindJWT, TokenID: claims.ID,
			Scopes: []string{"admin", "edge"}, Servers: []string{"memory", "git*"}, Tools: []string{"*"},
			ExpiresAt: t0.Add(time.Hour),
		},
	}}
	for _, tt := range tests {
		got, err := v.Verify(context.Background(), tt.token)
		if err != nil {
			t.Fatalf("Verify(%s): %v", tt.want.Subject, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Verify(%s) principal mismatch (-want +got):\n%s", tt.want.Subject, diff)
		}
		// The principal is the caller's to change.
		got.Scopes = append(got.Scopes[:0], "changed")
		if len(got.Servers) > 0 {
			got.Servers[0] = "changed"
		}
		again, _ := v.Verify(context.Background(), tt.token)
		if diff := cmp.Diff(tt.want, again); diff != "" {
			t.Errorf("Verify(%s) after the caller changed an earlier principal (-want +got):\n%s", tt.want.Subject, diff)
		}
	}
}

func TestVerifyStatic(t *testing.T) {
	for _, mode := range []string{authn.ModeToken, authn.ModeJWT} {
		v, _, kid, priv := setup(t, mode)
		jwtToken, _ := signed(t, kid, priv)
		tests := []struct {
			token   string
			subject string
		}{
			{opsToken.Token, "static:ops"},
			{ciToken.Token, "static:ci"},
			// Service tokens and JWTs cannot be exchanged as static tokens.
			{edgeToken.Token, ""},
			{jwtToken, ""},
			{"", ""},
			{"wrong", ""},
		}
		for _, tt := range tests {
			p, ok := v.VerifyStatic(tt.token)
			if got := subject(p); ok != (tt.subject != "") || got != tt.subject {
				t.Errorf("%s: VerifyStatic(%.10q) = %q, %v; want %q", mode, tt.token, got, ok, tt.subject)
			}
		}
	}
}

func TestVerifyStaticFirstEntryWins(t *testing.T) {
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{
		{Name: "first", Token: "same", Scopes: []string{authn.ScopeEdge}},
		{Name: "second", Token: "same", Scopes: []string{authn.ScopeAdmin}},
	}})
	p, err := v.Verify(context.Background(), "same")
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "static:first" || p.HasScope(authn.ScopeAdmin) {
		t.Errorf("Verify = %s with scopes %q, want static:first with [edge]", p.Subject, p.Scopes)
	}
}

func TestVerifyJWT(t *testing.T) {
	_, otherKey := authntest.NewKey(t)
	base := func() *authn.Claims {
		c := authntest.Claims("client:ci", t0, time.Hour)
		c.Servers, c.Tools = []string{"*"}, []string{"*"}
		return c
	}
	// with returns base claims changed by f.
	with := func(f func(c *authn.Claims)) *authn.Claims {
		c := base()
		f(c)
		return c
	}
	at := func(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }
	mustSign := func(t *testing.T, tok *jwt.Token, key any) string {
		t.Helper()
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name  string
		token func(t *testing.T, kid string, priv ed25519.PrivateKey) string
		want  error // nil: accepted
	}{{
		name: "valid",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, base())
		},
	}, {
		name: "expired within the leeway",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.ExpiresAt = at(t0.Add(-20 * time.Second)) }))
		},
	}, {
		name: "expired",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.ExpiresAt = at(t0.Add(-time.Minute)) }))
		},
		want: authn.ErrExpired,
	}, {
		name: "not before in the future",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.NotBefore = at(t0.Add(time.Minute)) }))
		},
		want: authn.ErrNotYetValid,
	}, {
		name: "not before within the leeway",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.NotBefore = at(t0.Add(20 * time.Second)) }))
		},
	}, {
		name: "issued in the future",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.IssuedAt = at(t0.Add(time.Minute)) }))
		},
		want: authn.ErrNotYetValid,
	}, {
		name: "wrong issuer",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.Issuer = "someone-else" }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "no issuer",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.Issuer = "" }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "wrong audience",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.Audience = jwt.ClaimStrings{"other-gateway"} }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "no audience",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.Audience = nil }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "one of several audiences",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.Audience = jwt.ClaimStrings{"other", authntest.Audience} }))
		},
	}, {
		name: "missing exp",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.ExpiresAt = nil }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "missing jti",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.ID = "" }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "missing sub",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid, with(func(c *authn.Claims) { c.Subject = "" }))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "unknown kid",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, priv, kid+"-other", base())
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "missing kid",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return mustSign(t, jwt.NewWithClaims(jwt.SigningMethodEdDSA, base()), priv)
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "kid not a string",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, base())
			tok.Header["kid"] = 7
			return mustSign(t, tok, priv)
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "other key under the same kid",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			return authntest.Sign(t, otherKey, kid, base())
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "alg none",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, base())
			tok.Header["kid"] = kid
			return mustSign(t, tok, jwt.UnsafeAllowNoneSignatureType)
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "HS256 with the public key as secret",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, base())
			tok.Header["kid"] = kid
			return mustSign(t, tok, []byte(priv.Public().(ed25519.PublicKey)))
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "payload of another token",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			good := strings.Split(authntest.Sign(t, priv, kid, base()), ".")
			wider := strings.Split(authntest.Sign(t, otherKey, kid, with(func(c *authn.Claims) { c.Scope = "admin" })), ".")
			return good[0] + "." + wider[1] + "." + good[2]
		},
		want: authn.ErrInvalidToken,
	}, {
		name: "signature stripped",
		token: func(t *testing.T, kid string, priv ed25519.PrivateKey) string {
			s := authntest.Sign(t, priv, kid, base())
			return s[:strings.LastIndexByte(s, '.')+1]
		},
		want: authn.ErrInvalidToken,
	}, {
		name:  "three dots of garbage",
		token: func(*testing.T, string, ed25519.PrivateKey) string { return "a.b.c" },
		want:  authn.ErrInvalidToken,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, kid, priv := setup(t, authn.ModeJWT)
			p, err := v.Verify(context.Background(), tt.token(t, kid, priv))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want a principal", err)
				}
				if p.Subject != "client:ci" || p.Kind != authn.KindJWT {
					t.Errorf("Verify = %s (%s), want client:ci (jwt)", p.Subject, p.Kind)
				}
				return
			}
			if p != nil || !errors.Is(err, tt.want) || !errors.Is(err, authn.ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want nil, %v", p, err, tt.want)
			}
			for _, specific := range []error{authn.ErrExpired, authn.ErrNotYetValid, authn.ErrRevoked} {
				if specific != tt.want && errors.Is(err, specific) {
					t.Errorf("Verify error %v is also %v", err, specific)
				}
			}
		})
	}
}

func TestVerifyClock(t *testing.T) {
	v, clk, kid, priv := setup(t, authn.ModeJWT)
	tok, _ := signed(t, kid, priv)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify at issue: %v", err)
	}
	clk.Advance(time.Hour + 29*time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify just after expiry, within the leeway: %v", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, authn.ErrExpired) {
		t.Fatalf("Verify after expiry and leeway = %v, want ErrExpired", err)
	}
}

func TestVerifyGrantsNothingWithoutLists(t *testing.T) {
	v, _, kid, priv := setup(t, authn.ModeJWT)

	// Lists written as null.
	c := authntest.Claims("client:ci", t0, time.Hour)
	c.Servers, c.Tools = nil, nil
	null := authntest.Sign(t, priv, kid, c)

	// Lists left out altogether, as by a token minted elsewhere.
	m := jwt.MapClaims{
		"iss": authntest.Issuer, "aud": authntest.Audience, "sub": "client:ci", "jti": "j1",
		"exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, m)
	tok.Header["kid"] = kid
	absent, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}

	for name, s := range map[string]string{"null lists": null, "absent lists": absent} {
		p, err := v.Verify(context.Background(), s)
		if err != nil {
			t.Fatalf("%s: Verify: %v", name, err)
		}
		if p.AllowsServer("memory") || p.AllowsServer("") || p.AllowsTool("memory__read") || p.HasScope(authn.ScopeAdmin) || p.HasScope(authn.ScopeEdge) {
			t.Errorf("%s: principal %+v grants something", name, p)
		}
	}
}

func TestRevocation(t *testing.T) {
	v, _, kid, priv := setup(t, authn.ModeJWT)
	tok, claims := signed(t, kid, priv)
	other, _ := signed(t, kid, priv)
	verify := func(s string) error {
		_, err := v.Verify(context.Background(), s)
		return err
	}

	revoked := map[string]time.Time{claims.ID: t0.Add(time.Hour)}
	v.SetRevocations(revoked)
	if err := verify(tok); !errors.Is(err, authn.ErrRevoked) || !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("Verify after SetRevocations = %v, want ErrRevoked", err)
	}
	if err := verify(other); err != nil {
		t.Fatalf("Verify of another token after SetRevocations: %v", err)
	}
	if !v.IsRevoked(claims.ID) {
		t.Errorf("IsRevoked(%q) = false after SetRevocations", claims.ID)
	}
	// The verifier keeps its own copy.
	delete(revoked, claims.ID)
	if err := verify(tok); !errors.Is(err, authn.ErrRevoked) {
		t.Fatalf("Verify after the caller changed the map it passed = %v, want ErrRevoked", err)
	}

	// SetRevocations replaces the set.
	v.SetRevocations(nil)
	if err := verify(tok); err != nil {
		t.Fatalf("Verify after SetRevocations(nil): %v", err)
	}

	v.Revoke(claims.ID, t0.Add(time.Hour))
	if err := verify(tok); !errors.Is(err, authn.ErrRevoked) {
		t.Fatalf("Verify after Revoke = %v, want ErrRevoked", err)
	}
	if err := verify(other); err != nil {
		t.Fatalf("Verify of another token after Revoke: %v", err)
	}
}

func TestSetKeys(t *testing.T) {
	v, _, kid1, priv1 := setup(t, authn.ModeJWT)
	kid2, priv2 := authntest.NewKey(t)
	tok1, _ := signed(t, kid1, priv1)
	tok2, _ := signed(t, kid2, priv2)
	verify := func(s string) error {
		_, err := v.Verify(context.Background(), s)
		return err
	}
	if err := verify(tok2); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("Verify of a token under a key not yet set = %v, want ErrInvalidToken", err)
	}

	keys := map[string]ed25519.PublicKey{
		kid1: priv1.Public().(ed25519.PublicKey),
		kid2: priv2.Public().(ed25519.PublicKey),
	}
	v.SetKeys(keys)
	for i, tok := range []string{tok1, tok2} {
		if err := verify(tok); err != nil {
			t.Fatalf("Verify token %d with both keys set: %v", i+1, err)
		}
	}
	// The verifier keeps its own copy.
	delete(keys, kid1)
	if err := verify(tok1); err != nil {
		t.Fatalf("Verify after the caller changed the map it passed: %v", err)
	}

	// Removing a key refuses what it signed.
	v.SetKeys(map[string]ed25519.PublicKey{kid2: priv2.Public().(ed25519.PublicKey)})
	if err := verify(tok1); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("Verify under a removed key = %v, want ErrInvalidToken", err)
	}
	if err := verify(tok2); err != nil {
		t.Errorf("Verify under the kept key: %v", err)
	}
	v.SetKeys(nil)
	if err := verify(tok2); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("Verify with no keys = %v, want ErrInvalidToken", err)
	}
}

// TestConcurrentUpdates runs Verify beside key and revocation updates, for
// the race detector.
func TestConcurrentUpdates(t *testing.T) {
	v, _, kid, priv := setup(t, authn.ModeJWT)
	tok, claims := signed(t, kid, priv)
	pub := priv.Public().(ed25519.PublicKey)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				v.Verify(context.Background(), tok)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			v.SetKeys(map[string]ed25519.PublicKey{kid: pub})
			v.Revoke("other", t0)
			if i%2 == 0 {
				v.SetRevocations(map[string]time.Time{claims.ID: t0})
			} else {
				v.SetRevocations(nil)
			}
		}
	})
	wg.Wait()
}

// subject returns p's subject, or "" for nil.
func subject(p *authn.Principal) string {
	if p == nil {
		return ""
	}
	return p.Subject
}
