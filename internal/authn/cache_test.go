package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

// These tests look inside the verifier: a cache hit is told from a miss by
// taking the verifier's keys away without telling the cache (keys.Store
// instead of SetKeys), so that only the cache can still accept a token.

var cacheT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

type cacheFixture struct {
	v     *Verifier
	clock *fakeclock.Clock
	kid   string
	priv  ed25519.PrivateKey
	n     int
}

func newCacheFixture(t testing.TB, size int) *cacheFixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(cacheT0)
	v := NewVerifier(Options{Mode: ModeJWT, Issuer: "iss", Audience: "aud", Now: clk.Now, CacheSize: size})
	v.SetKeys(map[string]ed25519.PublicKey{"k1": pub})
	return &cacheFixture{v: v, clock: clk, kid: "k1", priv: priv}
}

// token signs a token valid from cacheT0 for an hour, with a new jti.
func (f *cacheFixture) token(t testing.TB) (string, string) {
	t.Helper()
	f.n++
	jti := fmt.Sprintf("jti-%d", f.n)
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "iss", Subject: "client:c", Audience: jwt.ClaimStrings{"aud"}, ID: jti,
			IssuedAt: jwt.NewNumericDate(cacheT0), NotBefore: jwt.NewNumericDate(cacheT0),
			ExpiresAt: jwt.NewNumericDate(cacheT0.Add(time.Hour)),
		},
		Servers: []string{"*"}, Tools: []string{"*"},
	}
	s, err := Sign(f.priv, f.kid, c)
	if err != nil {
		t.Fatal(err)
	}
	return s, jti
}

// forgetKeys takes the keys away behind the cache's back.
func (f *cacheFixture) forgetKeys() {
	empty := map[string]ed25519.PublicKey{}
	f.v.keys.Store(&empty)
}

func (f *cacheFixture) verify(tok string) error {
	_, err := f.v.Verify(context.Background(), tok)
	return err
}

func TestCacheHit(t *testing.T) {
	f := newCacheFixture(t, 0)
	tok, jti := f.token(t)
	p1, err := f.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.v.CachedTokens(); got != 1 {
		t.Fatalf("CachedTokens after one verification = %d, want 1", got)
	}
	f.forgetKeys()
	p2, err := f.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify of a cached token after its key went (behind the cache's back) = %v, want a hit", err)
	}
	if p2.TokenID != jti || p2.Subject != "client:c" {
		t.Errorf("cached principal = %+v, want jti %s", p2, jti)
	}
	// Each caller gets its own copy.
	p2.Servers[0] = "changed"
	p3, _ := f.v.Verify(context.Background(), tok)
	if p3.Servers[0] != "*" || p1.Servers[0] != "*" {
		t.Errorf("a caller's change reached the cache: %q", p3.Servers)
	}
	// A token that was never verified is not accepted.
	other, _ := f.token(t)
	if err := f.verify(other); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify of an uncached token without keys = %v, want ErrInvalidToken", err)
	}
}

func TestCacheNeverPastExp(t *testing.T) {
	f := newCacheFixture(t, 0)
	tok, _ := f.token(t)
	if err := f.verify(tok); err != nil {
		t.Fatal(err)
	}
	f.forgetKeys()
	f.clock.Set(cacheT0.Add(time.Hour - time.Second))
	if err := f.verify(tok); err != nil {
		t.Fatalf("a second before exp: %v, want a cache hit", err)
	}
	// Past exp the parser's leeway would still accept the token, but only
	// with its key: the cache does not answer.
	f.clock.Set(cacheT0.Add(time.Hour + time.Second))
	if err := f.verify(tok); err == nil {
		t.Fatal("past exp: the cache answered")
	}
	// Before nbf (the clock went back beyond the leeway): no answer either.
	f.clock.Set(cacheT0.Add(-time.Hour))
	if err := f.verify(tok); err == nil {
		t.Fatal("before nbf: the cache answered")
	}
}

func TestCacheNotFilledWithinLeeway(t *testing.T) {
	f := newCacheFixture(t, 0)
	tok, _ := f.token(t)
	f.clock.Set(cacheT0.Add(time.Hour + 10*time.Second)) // past exp, within the leeway
	if err := f.verify(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	if got := f.v.CachedTokens(); got != 0 {
		t.Errorf("CachedTokens after verifying an expired token = %d, want 0", got)
	}
}

func TestCacheRevoke(t *testing.T) {
	f := newCacheFixture(t, 0)
	tok, jti := f.token(t)
	keep, _ := f.token(t)
	for _, s := range []string{tok, keep} {
		if err := f.verify(s); err != nil {
			t.Fatal(err)
		}
	}
	f.v.Revoke(jti, cacheT0.Add(time.Hour))
	if err := f.verify(tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify after Revoke = %v, want ErrRevoked", err)
	}
	if got := f.v.CachedTokens(); got != 1 {
		t.Errorf("CachedTokens after Revoke = %d, want 1 (the other token)", got)
	}
	f.forgetKeys()
	if err := f.verify(keep); err != nil {
		t.Errorf("the other token after Revoke: %v, want a cache hit", err)
	}
}

func TestCacheSetRevocations(t *testing.T) {
	f := newCacheFixture(t, 0)
	tok, jti := f.token(t)
	if err := f.verify(tok); err != nil {
		t.Fatal(err)
	}
	f.v.SetRevocations(map[string]time.Time{jti: cacheT0.Add(time.Hour)})
	if got := f.v.CachedTokens(); got != 0 {
		t.Errorf("CachedTokens after SetRevocations = %d, want 0", got)
	}
	f.forgetKeys()
	if err := f.verify(tok); err == nil {
		t.Fatal("a token revoked by SetRevocations was still accepted")
	}
}

func TestCacheSetKeys(t *testing.T) {
	f := newCacheFixture(t, 0)
	tok, _ := f.token(t)
	if err := f.verify(tok); err != nil {
		t.Fatal(err)
	}
	// The same keys again keep the entry.
	f.v.SetKeys(map[string]ed25519.PublicKey{"k1": f.priv.Public().(ed25519.PublicKey)})
	if got := f.v.CachedTokens(); got != 1 {
		t.Fatalf("CachedTokens after setting the same keys = %d, want 1", got)
	}
	// Another key under the same kid drops it.
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	f.v.SetKeys(map[string]ed25519.PublicKey{"k1": pub2})
	if got := f.v.CachedTokens(); got != 0 {
		t.Errorf("CachedTokens after the key changed = %d, want 0", got)
	}
	if err := f.verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify after its key changed = %v, want ErrInvalidToken", err)
	}
}

func TestCacheBound(t *testing.T) {
	const size = 32
	f := newCacheFixture(t, size)
	var toks []string
	for range 10 * size {
		tok, _ := f.token(t)
		toks = append(toks, tok)
		if err := f.verify(tok); err != nil {
			t.Fatal(err)
		}
		if got := f.v.CachedTokens(); got > size {
			t.Fatalf("CachedTokens = %d, over the bound %d", got, size)
		}
	}
	// Recently used tokens are kept rather than the others: use one token
	// all along and it stays.
	hot := toks[0]
	for i, tok := range toks[1:] {
		if i%4 == 0 {
			if err := f.verify(hot); err != nil {
				t.Fatal(err)
			}
		}
		_ = f.verify(tok)
	}
	f.forgetKeys()
	if err := f.verify(hot); err != nil {
		t.Errorf("a token used all along was evicted: %v", err)
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newCacheFixture(t, -1)
	tok, _ := f.token(t)
	if err := f.verify(tok); err != nil {
		t.Fatal(err)
	}
	if got := f.v.CachedTokens(); got != 0 {
		t.Errorf("CachedTokens with the cache disabled = %d, want 0", got)
	}
}

// TestCacheRevokeRace revokes while tokens are being verified: once Revoke
// has returned, the token is refused, whatever was in flight.
func TestCacheRevokeRace(t *testing.T) {
	for range 20 {
		f := newCacheFixture(t, 0)
		tok, jti := f.token(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20 {
					_ = f.verify(tok)
				}
			})
		}
		f.v.Revoke(jti, cacheT0.Add(time.Hour))
		if err := f.verify(tok); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Verify after Revoke returned = %v, want ErrRevoked", err)
		}
		wg.Wait()
		if err := f.verify(tok); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Verify after the racing verifications = %v, want ErrRevoked", err)
		}
	}
}

func BenchmarkVerifyJWT(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newCacheFixture(b, bc.size)
			tok, _ := f.token(b)
			b.ReportAllocs()
			for b.Loop() {
				if err := f.verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
