package authn

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of a token issued by the control plane. Servers and
// Tools are always written out: an absent list grants nothing, so a token
// can never widen by losing a claim.
type Claims struct {
	jwt.RegisteredClaims
	// Scope is the space-separated ScopeAdmin / ScopeEdge grant.
	Scope   string   `json:"scope,omitempty"`
	Servers []string `json:"servers"`
	Tools   []string `json:"tools"`
}

// Principal returns the principal the claims describe.
func (c *Claims) Principal() *Principal {
	p := &Principal{
		Subject: c.Subject,
		Kind:    KindJWT,
		TokenID: c.ID,
		Scopes:  strings.Fields(c.Scope),
		Servers: slices.Clone(c.Servers),
		Tools:   slices.Clone(c.Tools),
	}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	return p
}

// Sign returns the compact JWT for c signed with key, whose id is kid.
func Sign(key ed25519.PrivateKey, kid string, c *Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// NewClaims returns claims for p valid from now for ttl.
func NewClaims(p *Principal, issuer, audience, jti string, now time.Time, ttl time.Duration) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   p.Subject,
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		Scope:   strings.Join(p.Scopes, " "),
		Servers: nonNil(p.Servers),
		Tools:   nonNil(p.Tools),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// BearerToken returns the token in an Authorization header value of the
// form "Bearer TOKEN" (the scheme is case-insensitive), or "" when the
// header holds no bearer token.
func BearerToken(authorization string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
