package authn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/atrax-mcp/atrax/internal/authn"
)

func ExampleVerifier() {
	v := authn.NewVerifier(authn.Options{
		Mode: authn.ModeToken,
		Static: []authn.StaticToken{
			{Name: "ops", Token: "s3cret", Scopes: []string{authn.ScopeAdmin}},
			{Name: "ci", Token: "ci-token", Servers: []string{"memory"}, Tools: []string{"memory__*"}},
		},
	})
	ctx := context.Background()

	p, _ := v.Verify(ctx, authn.BearerToken("Bearer ci-token"))
	fmt.Println(p.Subject, p.AllowsServer("memory"), p.AllowsServer("github"), p.HasScope(authn.ScopeAdmin))

	_, err := v.Verify(ctx, "")
	fmt.Println(err, errors.Is(err, authn.ErrInvalidToken))
	_, err = v.Verify(ctx, "guess")
	fmt.Println(errors.Is(err, authn.ErrInvalidToken))

	// Output:
	// static:ci true false false
	// no token false
	// true
}

func ExampleVerifier_jwt() {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeJWT, Issuer: "atrax", Audience: "atrax", Now: func() time.Time { return now }})
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	kid := "key-1"
	v.SetKeys(map[string]ed25519.PublicKey{kid: pub})

	p := &authn.Principal{Subject: "client:ci", Scopes: []string{authn.ScopeEdge}, Servers: authn.AllowAll()}
	token, _ := authn.Sign(priv, kid, authn.NewClaims(p, "atrax", "atrax", "jti-1", now, time.Hour))

	got, err := v.Verify(context.Background(), token)
	fmt.Println(got.Subject, got.Kind, got.TokenID, got.HasScope(authn.ScopeEdge), err)

	v.Revoke("jti-1", now.Add(time.Hour))
	_, err = v.Verify(context.Background(), token)
	fmt.Println(err)

	// Output:
	// client:ci jwt jti-1 true <nil>
	// invalid token: revoked
}

func ExampleMatch() {
	fmt.Println(authn.Match("memory__*", "memory__read_graph"))
	fmt.Println(authn.Match("*__read*", "fs__read_file"))
	fmt.Println(authn.Match("memory", "memory2"))
	// Output:
	// true
	// true
	// false
}
