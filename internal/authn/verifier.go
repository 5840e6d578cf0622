package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by Verify. Every refusal wraps ErrInvalidToken except a
// missing credential, so callers can answer 401 for both and still tell
// them apart in logs and metrics.
var (
	ErrNoToken      = errors.New("no token")
	ErrInvalidToken = errors.New("invalid token")
	ErrExpired      = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrNotYetValid  = fmt.Errorf("%w: not valid yet", ErrInvalidToken)
	ErrRevoked      = fmt.Errorf("%w: revoked", ErrInvalidToken)
)

// Modes of a verifier, as the config's auth.type.
const (
	ModeNone  = "none"  // everyone is the anonymous principal
	ModeToken = "token" // static tokens and issued JWTs
	ModeJWT   = "jwt"   // issued JWTs only
	// ModeOAuth (oauth.go): static tokens, issued JWTs and the access
	// tokens of an OAuth authorization server.
)

// Algorithm is the only JWT signing algorithm Atrax issues and accepts.
const Algorithm = "EdDSA"

// leeway absorbs clock skew between the control plane and the edges.
const leeway = 30 * time.Second

// StaticToken is a fixed token and what it grants.
type StaticToken struct {
	Name    string
	Token   string
	Scopes  []string
	Servers []string // nil means all
	Tools   []string // nil means all
}

// Options configure a Verifier.
type Options struct {
	// Mode is ModeNone, ModeToken or ModeJWT.
	Mode string
	// Static are the config's static tokens. In ModeJWT they are not
	// accepted as bearer tokens, only exchanged for JWTs (VerifyStatic).
	Static []StaticToken
	// Service tokens are accepted as bearer tokens in every mode but none;
	// `atrax serve` gives one to the edge it runs beside the control plane.
	Service []StaticToken
	// Issuer and Audience are required in issued JWTs.
	Issuer   string
	Audience string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OAuth, in ModeOAuth, is the authorization server whose access
	// tokens are accepted beside static tokens and issued JWTs.
	OAuth *OAuthOptions
	// CacheSize bounds how many verified JWTs are remembered, so that a
	// client sending the same token on every request pays for its
	// signature once (DefaultCacheSize when 0; negative disables the
	// cache). A remembered token is never accepted past its exp, and
	// revocations and key changes forget what they concern.
	CacheSize int
}

// Verifier checks tokens. Keys and revocations change at run time (from the
// store on the control plane, from Sync snapshots on an edge); Verify never
// blocks on those updates.
type Verifier struct {
	mode     string
	static   []staticEntry
	service  []staticEntry
	issuer   string
	audience string
	now      func() time.Time
	parser   *jwt.Parser

	keys atomic.Pointer[map[string]ed25519.PublicKey]

	// revoked is replaced whole (copy on write), so that readers take no
	// lock; mu orders the writers.
	mu      sync.Mutex
	revoked atomic.Pointer[map[string]time.Time]

	cache *tokenCache // nil when disabled

	// oauth checks the access tokens of an authorization server; nil
	// unless ModeOAuth.
	oauth *oauthVerifier
}

type staticEntry struct {
	digest [sha256.Size]byte
	// p is the token's principal, made once; callers get copies.
	p *Principal
}

// NewVerifier returns a verifier for opts.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		mode:     opts.Mode,
		issuer:   opts.Issuer,
		audience: opts.Audience,
		now:      opts.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.revoked.Store(&map[string]time.Time{})
	switch {
	case opts.CacheSize == 0:
		v.cache = newTokenCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		v.cache = newTokenCache(opts.CacheSize)
	}
	for _, t := range opts.Static {
		v.static = append(v.static, newStaticEntry(t))
	}
	for _, t := range opts.Service {
		v.service = append(v.service, newStaticEntry(t))
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(v.now),
	)
	empty := map[string]ed25519.PublicKey{}
	v.keys.Store(&empty)
	if opts.Mode == ModeOAuth && opts.OAuth != nil && opts.OAuth.Source != nil {
		v.oauth = newOAuthVerifier(*opts.OAuth, v.now)
	}
	return v
}

// Mode returns the verifier's mode.
func (v *Verifier) Mode() string { return v.mode }

// SetKeys replaces the public keys that verify issued tokens, by key id.
// Cached tokens signed with a key that is gone or changed are forgotten.
func (v *Verifier) SetKeys(keys map[string]ed25519.PublicKey) {
	m := make(map[string]ed25519.PublicKey, len(keys))
	for k, pub := range keys {
		m[k] = pub
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.keys.Swap(&m)
	if v.cache == nil {
		return
	}
	gone := map[string]bool{}
	for kid, pub := range *old {
		if now, ok := m[kid]; !ok || !now.Equal(pub) {
			gone[kid] = true
		}
	}
	if len(gone) > 0 {
		v.cache.evict(func(e *cacheEntry) bool { return gone[e.kid] })
	}
}

// SetRevocations replaces the set of revoked token ids (jti to expiry).
// Cached tokens it revokes are forgotten.
func (v *Verifier) SetRevocations(revoked map[string]time.Time) {
	m := make(map[string]time.Time, len(revoked))
	for k, exp := range revoked {
		m[k] = exp
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.revoked.Store(&m)
	if v.cache != nil && len(m) > 0 {
		v.cache.evict(func(e *cacheEntry) bool {
			_, ok := m[e.p.TokenID]
			return ok
		})
	}
}

// Revoke adds one revocation, and forgets the token if it is cached.
func (v *Verifier) Revoke(jti string, expires time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := *v.revoked.Load()
	m := make(map[string]time.Time, len(old)+1)
	for k, exp := range old {
		m[k] = exp
	}
	m[jti] = expires
	v.revoked.Store(&m)
	if v.cache != nil {
		v.cache.evict(func(e *cacheEntry) bool { return e.p.TokenID == jti })
	}
}

// IsRevoked reports whether the token id jti is revoked.
func (v *Verifier) IsRevoked(jti string) bool {
	_, ok := (*v.revoked.Load())[jti]
	return ok
}

// CachedTokens returns how many verified tokens are remembered.
func (v *Verifier) CachedTokens() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// Verify returns the principal that token stands for. An empty token is
// ErrNoToken unless the verifier runs without auth. The principal is the
// caller's: a copy of what static tokens and the cache hold.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if v.mode == ModeNone {
		return Anonymous(), nil
	}
	if token == "" {
		return nil, ErrNoToken
	}
	d := digest(token)
	if p, ok := lookupStatic(v.service, &d); ok {
		return p.clone(), nil
	}
	if v.mode == ModeToken || v.mode == ModeOAuth {
		if p, ok := lookupStatic(v.static, &d); ok {
			return p.clone(), nil
		}
	}
	if strings.Count(token, ".") != 2 {
		// Not a JWT: an opaque access token of the authorization server,
		// a wrong static token, or garbage.
		if v.oauth != nil && v.oauth.opts.Introspect {
			return v.introspect(ctx, token)
		}
		return nil, fmt.Errorf("%w: unknown token", ErrInvalidToken)
	}
	if v.cache != nil {
		if p, ok := v.cache.get(&d, v.now()); ok {
			return p.clone(), nil
		}
	}
	if v.oauth != nil && !v.isIssued(token) {
		return v.verifyOAuthJWT(ctx, token, &d)
	}
	return v.verifyJWT(token, &d)
}

// digest is the SHA-256 of token, the key static tokens and the cache are
// compared by.
func digest(token string) [sha256.Size]byte {
	h := sha256.New()
	_, _ = io.WriteString(h, token)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// VerifyStatic checks token against the static tokens alone, in constant
// time with respect to their contents: every entry is compared, and
// comparing digests hides the tokens' lengths.
func (v *Verifier) VerifyStatic(token string) (*Principal, bool) {
	d := digest(token)
	p, ok := lookupStatic(v.static, &d)
	return p.clone(), ok
}

func newStaticEntry(t StaticToken) staticEntry {
	return staticEntry{digest: sha256.Sum256([]byte(t.Token)), p: &Principal{
		Subject: "static:" + t.Name,
		Kind:    KindStatic,
		Scopes:  append([]string(nil), t.Scopes...),
		Servers: allowList(t.Servers),
		Tools:   allowList(t.Tools),
	}}
}

func lookupStatic(entries []staticEntry, d *[sha256.Size]byte) (*Principal, bool) {
	var found *Principal
	for i := range entries {
		if subtle.ConstantTimeCompare(d[:], entries[i].digest[:]) == 1 && found == nil {
			found = entries[i].p
		}
	}
	return found, found != nil
}

func allowList(patterns []string) []string {
	if patterns == nil {
		return AllowAll()
	}
	return append([]string(nil), patterns...)
}

// Anonymous returns the principal of a gateway without auth: everything is
// allowed, which config validation permits only on loopback listeners.
func Anonymous() *Principal {
	return &Principal{
		Subject: "anonymous",
		Kind:    KindAnonymous,
		Scopes:  []string{ScopeAdmin, ScopeEdge},
		Servers: AllowAll(),
		Tools:   AllowAll(),
	}
}

func (v *Verifier) verifyJWT(token string, d *[sha256.Size]byte) (*Principal, error) {
	var gen uint64
	if v.cache != nil {
		// Read before the revocations and keys are: an entry verified
		// under an older generation is not kept.
		gen = v.cache.gen.Load()
	}
	var c Claims
	t, err := v.parser.ParseWithClaims(token, &c, v.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, ErrNotYetValid
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.ID == "" || c.Subject == "" {
		return nil, fmt.Errorf("%w: missing jti or sub", ErrInvalidToken)
	}
	if v.IsRevoked(c.ID) {
		return nil, ErrRevoked
	}
	p := c.Principal()
	if v.cache != nil && c.ExpiresAt != nil {
		// The parser accepts nbf and iat up to the leeway ahead of the
		// clock; so does the cache. It never accepts past exp.
		var from time.Time
		if c.NotBefore != nil {
			from = c.NotBefore.Time
		}
		if c.IssuedAt != nil && c.IssuedAt.After(from) {
			from = c.IssuedAt.Time
		}
		if exp := c.ExpiresAt.Time; v.now().Before(exp) {
			kid, _ := t.Header["kid"].(string)
			v.cache.put(d, p.clone(), kid, from.Add(-leeway), exp, gen)
		}
	}
	return p, nil
}

func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("no kid in header")
	}
	pub, ok := (*v.keys.Load())[kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return pub, nil
}
