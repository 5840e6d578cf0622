// Package authntest mints keys, tokens and verifiers for tests of the
// packages that sit on internal/authn. It holds no logic of its own: tokens
// are signed with authn.Sign, so a token it makes is exactly one the control
// plane could have issued.
package authntest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// Issuer and Audience are what Verifier requires and Claims writes.
const (
	Issuer   = "atrax-test"
	Audience = "atrax-test"
)

// NewKey returns a new Ed25519 signing key and a random key id for it.
func NewKey(t testing.TB) (kid string, priv ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b), priv
}

// Sign returns claims signed with priv under the key id kid, as the issuer
// signs them. It fails the test on error.
func Sign(t testing.TB, priv ed25519.PrivateKey, kid string, claims *authn.Claims) string {
	t.Helper()
	s, err := authn.Sign(priv, kid, claims)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// Claims returns claims that a Verifier accepts at now: subject sub, a fresh
// jti, Issuer and Audience, valid from now for ttl, and no scopes, servers or
// tools. Tests set the grants they need.
func Claims(sub string, now time.Time, ttl time.Duration) *authn.Claims {
	jti := make([]byte, 8)
	rand.Read(jti)
	return &authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti),
		},
		Servers: []string{},
		Tools:   []string{},
	}
}

// Verifier returns a verifier in authn.ModeJWT that requires Issuer and
// Audience and trusts no key yet (see authn.Verifier.SetKeys). Each opt may
// change the options first, for instance to set Mode, Static or Now.
func Verifier(t testing.TB, opts ...func(*authn.Options)) *authn.Verifier {
	t.Helper()
	o := authn.Options{Mode: authn.ModeJWT, Issuer: Issuer, Audience: Audience}
	for _, f := range opts {
		f(&o)
	}
	return authn.NewVerifier(o)
}

// Trust replaces v's keys with the one key kid, whose private half is priv.
func Trust(v *authn.Verifier, kid string, priv ed25519.PrivateKey) {
	v.SetKeys(map[string]ed25519.PublicKey{kid: priv.Public().(ed25519.PublicKey)})
}
