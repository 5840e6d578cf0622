package authn_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/authn/authntest"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi"},
		{"bearer abc", "abc"},
		{"BEARER abc", "abc"},
		{"Bearer   abc  ", "abc"},
		{"  Bearer abc", "abc"},
		{"Bearer\tabc", ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"Bearerabc", ""},
		{"Basic dXNlcjpwYXNz", ""},
		{"Token abc", ""},
		{"abc", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := authn.BearerToken(tt.header); got != tt.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestNewClaims(t *testing.T) {
	p := &authn.Principal{Subject: "client:ci", Kind: authn.KindJWT, Scopes: []string{"admin", "edge"}}
	c := authn.NewClaims(p, "iss", "aud", "jti-1", t0, 15*time.Minute)
	want := &authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "iss", Subject: "client:ci", Audience: jwt.ClaimStrings{"aud"}, ID: "jti-1",
			ExpiresAt: jwt.NewNumericDate(t0.Add(15 * time.Minute)),
			NotBefore: jwt.NewNumericDate(t0), IssuedAt: jwt.NewNumericDate(t0),
		},
		Scope: "admin edge", Servers: []string{}, Tools: []string{},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("NewClaims mismatch (-want +got):\n%s", diff)
	}

	// Empty lists are written out, never left for a reader to default.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"servers", "tools"} {
		if l, ok := m[k].([]any); !ok || len(l) != 0 {
			t.Errorf("claims JSON %s = %v, want []", k, m[k])
		}
	}

	// The claims hold copies of the principal's lists.
	p = &authn.Principal{Subject: "s", Servers: []string{"a"}, Tools: []string{"b"}}
	c = authn.NewClaims(p, "iss", "aud", "j", t0, time.Minute)
	p.Servers[0], p.Tools[0] = "x", "y"
	if c.Servers[0] != "a" || c.Tools[0] != "b" {
		t.Errorf("NewClaims shares its lists with the principal: servers %q tools %q", c.Servers, c.Tools)
	}
}

func TestClaimsRoundTrip(t *testing.T) {
	// What the issuer writes is what the verifier reads back.
	v := authntest.Verifier(t, func(o *authn.Options) { o.Now = func() time.Time { return t0 } })
	kid, priv := authntest.NewKey(t)
	authntest.Trust(v, kid, priv)
	p := &authn.Principal{
		Subject: "client:ci", Kind: authn.KindJWT,
		Scopes: []string{"edge"}, Servers: []string{"memory"}, Tools: []string{"memory__*"},
	}
	tok, err := authn.Sign(priv, kid, authn.NewClaims(p, authntest.Issuer, authntest.Audience, "jti-7", t0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &authn.Principal{
		Subject: "client:ci", Kind: authn.KindJWT, TokenID: "jti-7",
		Scopes: []string{"edge"}, Servers: []string{"memory"}, Tools: []string{"memory__*"},
		ExpiresAt: t0.Add(time.Hour),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}
