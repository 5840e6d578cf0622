package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
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

	mu      sync.RWMutex
	revoked map[string]time.Time
}

type staticEntry struct {
	digest [sha256.Size]byte
	tok    StaticToken
}

// NewVerifier returns a verifier for opts.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		mode:     opts.Mode,
		issuer:   opts.Issuer,
		audience: opts.Audience,
		now:      opts.Now,
		revoked:  map[string]time.Time{},
	}
	if v.now == nil {
		v.now = time.Now
	}
	for _, t := range opts.Static {
		v.static = append(v.static, staticEntry{digest: sha256.Sum256([]byte(t.Token)), tok: t})
	}
	for _, t := range opts.Service {
		v.service = append(v.service, staticEntry{digest: sha256.Sum256([]byte(t.Token)), tok: t})
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
	return v
}

// Mode returns the verifier's mode.
func (v *Verifier) Mode() string { return v.mode }

// SetKeys replaces the public keys that verify issued tokens, by key id.
func (v *Verifier) SetKeys(keys map[string]ed25519.PublicKey) {
	m := make(map[string]ed25519.PublicKey, len(keys))
	for k, pub := range keys {
		m[k] = pub
	}
	v.keys.Store(&m)
}

// SetRevocations replaces the set of revoked token ids (jti to expiry).
func (v *Verifier) SetRevocations(revoked map[string]time.Time) {
	m := make(map[string]time.Time, len(revoked))
	for k, exp := range revoked {
		m[k] = exp
	}
	v.mu.Lock()
	v.revoked = m
	v.mu.Unlock()
}

// Revoke adds one revocation.
func (v *Verifier) Revoke(jti string, expires time.Time) {
	v.mu.Lock()
	v.revoked[jti] = expires
	v.mu.Unlock()
}

// IsRevoked reports whether the token id jti is revoked.
func (v *Verifier) IsRevoked(jti string) bool {
	v.mu.RLock()
	_, ok := v.revoked[jti]
	v.mu.RUnlock()
	return ok
}

// Verify returns the principal that token stands for. An empty token is
// ErrNoToken unless the verifier runs without auth.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if v.mode == ModeNone {
		return Anonymous(), nil
	}
	if token == "" {
		return nil, ErrNoToken
	}
	if p, ok := lookupStatic(v.service, token); ok {
		return p, nil
	}
	if v.mode == ModeToken {
		if p, ok := v.VerifyStatic(token); ok {
			return p, nil
		}
	}
	if strings.Count(token, ".") != 2 {
		// Not a JWT: a wrong static token, or garbage.
		return nil, fmt.Errorf("%w: unknown token", ErrInvalidToken)
	}
	return v.verifyJWT(token)
}

// VerifyStatic checks token against the static tokens alone, in constant
// time with respect to their contents: every entry is compared, and
// comparing digests hides the tokens' lengths.
func (v *Verifier) VerifyStatic(token string) (*Principal, bool) {
	return lookupStatic(v.static, token)
}

func lookupStatic(entries []staticEntry, token string) (*Principal, bool) {
	d := sha256.Sum256([]byte(token))
	var found *StaticToken
	for i := range entries {
		if subtle.ConstantTimeCompare(d[:], entries[i].digest[:]) == 1 && found == nil {
			found = &entries[i].tok
		}
	}
	if found == nil {
		return nil, false
	}
	return &Principal{
		Subject: "static:" + found.Name,
		Kind:    KindStatic,
		Scopes:  append([]string(nil), found.Scopes...),
		Servers: allowList(found.Servers),
		Tools:   allowList(found.Tools),
	}, true
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

func (v *Verifier) verifyJWT(token string) (*Principal, error) {
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFor)
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
	return c.Principal(), nil
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
