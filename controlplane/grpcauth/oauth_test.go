package grpcauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/grpcauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// idpKeys is an authorization server's key set in memory.
type idpKeys map[string]authn.OAuthKey

func (k idpKeys) Key(_ context.Context, kid string) (authn.OAuthKey, error) {
	if key, ok := k[kid]; ok {
		return key, nil
	}
	return authn.OAuthKey{}, authn.ErrUnknownKey
}

func (idpKeys) Introspect(context.Context, string) (map[string]any, error) {
	return nil, authn.ErrNoIntrospection
}

// TestOAuthAdmin checks that the control plane's API takes the access
// tokens of the authorization server the edge takes, and their admin
// claim, through the one verifier.
func TestOAuthAdmin(t *testing.T) {
	const (
		issuer   = "https://idp.example.com"
		audience = "https://atrax.example.com"
	)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(authn.Options{
		Mode: authn.ModeOAuth,
		OAuth: &authn.OAuthOptions{
			Issuer: issuer, Audience: audience,
			Source: idpKeys{"k1": {ID: "k1", Algorithm: "EdDSA", Public: pub}},
			Scopes: []authn.ScopeGrant{
				{Scope: "mcp:admin", Grants: []string{authn.ScopeAdmin}},
				{Scope: "mcp:tools", Grants: []string{"server:*", "tool:*"}},
			},
		},
	})
	token := func(scope, aud string) string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"iss": issuer, "aud": aud, "sub": "alice", "scope": scope,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	in := &grpcauth.Interceptors{Verifier: v, Policy: policy}
	tests := []struct {
		name, token, method string
		want                codes.Code
	}{
		{"admin claim, admin method", token("mcp:admin", audience), "/atrax.v1.Test/Admin", codes.OK},
		{"tools claim, admin method", token("mcp:tools", audience), "/atrax.v1.Test/Admin", codes.PermissionDenied},
		{"tools claim, any token will do", token("mcp:tools", audience), "/atrax.v1.Test/Authenticated", codes.OK},
		{"admin claim for another resource", token("mcp:admin", "https://other.example.com"), "/atrax.v1.Test/Admin", codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran, p, err := call(in, false, tt.method, incoming("Bearer "+tt.token))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v (%v), want %v", got, err, tt.want)
			}
			if tt.want == codes.OK && (!ran || p.Kind != authn.KindOAuth || p.Subject != "oauth:alice") {
				t.Errorf("handler ran %v with %+v", ran, p)
			}
		})
	}
}
