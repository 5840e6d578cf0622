package authn_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/authn/authntest"
)

// FuzzVerify checks that no string, however malformed, panics the verifier
// or passes it. The verifiers trust a key, but no input can carry its
// signature; the token-mode verifier's one static token is skipped.
func FuzzVerify(f *testing.F) {
	kid, priv := authntest.NewKey(f)
	c := authntest.Claims("client:ci", t0, time.Hour)
	valid := authntest.Sign(f, priv, kid, c)
	// A signature from another key: right shape, wrong signer.
	_, other := authntest.NewKey(f)
	f.Add(authntest.Sign(f, other, kid, c))
	f.Add(valid[:len(valid)-2])
	f.Add("Bearer " + valid)
	f.Add("..")
	f.Add("a.b.c")
	f.Add("")

	const static = "fuzz-static-token"
	now := func() time.Time { return t0 }
	var verifiers []*authn.Verifier
	for _, mode := range []string{authn.ModeToken, authn.ModeJWT} {
		v := authntest.Verifier(f, func(o *authn.Options) {
			o.Mode = mode
			o.Static = []authn.StaticToken{{Name: "s", Token: static, Scopes: []string{authn.ScopeAdmin}}}
			o.Now = now
		})
		authntest.Trust(v, kid, priv)
		verifiers = append(verifiers, v)
	}

	f.Fuzz(func(t *testing.T, token string) {
		if token == static || token == valid {
			t.Skip()
		}
		for _, v := range verifiers {
			p, err := v.Verify(context.Background(), token)
			if err == nil || p != nil {
				t.Fatalf("%s: Verify(%q) = %+v, %v; want a refusal", v.Mode(), token, p, err)
			}
			if !errors.Is(err, authn.ErrInvalidToken) && !(token == "" && errors.Is(err, authn.ErrNoToken)) {
				t.Fatalf("%s: Verify(%q) error %v is neither ErrInvalidToken nor (for \"\") ErrNoToken", v.Mode(), token, err)
			}
		}
	})
}

// FuzzMatch checks Match against a regular expression built from the
// pattern, and that Covers(p, p) always holds.
func FuzzMatch(f *testing.F) {
	f.Add("a*b*c", "aXbYc")
	f.Add("*", "")
	f.Add("mem*", "memory")
	f.Add("*ab", "abab")
	f.Add("a**b", "ab")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) || len(pattern) > 64 || len(name) > 256 {
			t.Skip()
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if got, want := authn.Match(pattern, name), re.MatchString(name); got != want {
			t.Errorf("Match(%q, %q) = %v, want %v", pattern, name, got, want)
		}
		if !authn.Covers([]string{pattern}, pattern) {
			t.Errorf("Covers([%q], %q) = false, want true", pattern, pattern)
		}
	})
}
