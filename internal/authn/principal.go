// Package authn is the one token verifier of Atrax. The control plane's gRPC
// interceptors and the edge's HTTP middleware both call it, so a token means
// the same thing on every path: static tokens from the config (compared in
// constant time), JWTs issued by the control plane (Ed25519 with a key id,
// the algorithm pinned, iss/aud/exp/nbf checked, revocable by jti), the
// access tokens of an OAuth 2.1 authorization server (oauth.go: keys from
// its JWKS, the algorithm each key declares, iss, aud naming this gateway,
// exp/nbf, scopes mapped to grants; opaque tokens by introspection, through
// an OAuthSource this package declares and internal/oauth implements), and
// the anonymous principal of a gateway running without auth on loopback.
//
// Scopes are checked where decisions are made; this package only says who a
// caller is and what it was granted.
package authn

import (
	"context"
	"slices"
	"time"
)

// Scopes a principal can hold besides its server and tool allow-lists.
const (
	// ScopeAdmin allows managing servers, tokens and keys, and reading the
	// audit log.
	ScopeAdmin = "admin"
	// ScopeEdge allows opening the Sync stream an edge runs on.
	ScopeEdge = "edge"
)

// Kind says how a principal authenticated.
type Kind string

// Kinds of principal.
const (
	KindAnonymous Kind = "anonymous" // auth.type none
	KindStatic    Kind = "static"    // a static token from the config
	KindJWT       Kind = "jwt"       // a token issued by the control plane
	KindOAuth     Kind = "oauth"     // an access token of an OAuth authorization server
)

// Principal is a verified caller.
type Principal struct {
	// Subject names the caller: "static:NAME", "client:ID", "oauth:SUB"
	// or "anonymous".
	// It is safe to log; it is never the token.
	Subject string
	Kind    Kind
	// TokenID is the jti of a JWT (an OAuth access token's too, when it
	// has one), empty otherwise.
	TokenID string
	// Scopes holds ScopeAdmin and ScopeEdge as granted.
	Scopes []string
	// Servers and Tools are allow-lists of patterns ("*" wildcards) matched
	// against the names clients see. Empty allows nothing.
	Servers []string
	Tools   []string
	// ExpiresAt is when the credential stops working; zero for static tokens.
	ExpiresAt time.Time
}

// clone returns a copy of p that shares nothing the caller may change.
func (p *Principal) clone() *Principal {
	if p == nil {
		return nil
	}
	q := *p
	q.Scopes = slices.Clone(p.Scopes)
	q.Servers = slices.Clone(p.Servers)
	q.Tools = slices.Clone(p.Tools)
	return &q
}

// HasScope reports whether p was granted scope.
func (p *Principal) HasScope(scope string) bool {
	if p == nil {
		return false
	}
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// AllowsServer reports whether p may use the server named name.
func (p *Principal) AllowsServer(name string) bool {
	return p != nil && MatchAny(p.Servers, name)
}

// AllowsTool reports whether p may see and call the tool, prompt or other
// named item whose client-visible name is name.
func (p *Principal) AllowsTool(name string) bool {
	return p != nil && MatchAny(p.Tools, name)
}

// SameAs reports whether q is the same caller as p: a session opened by p may
// be driven by q. A renewed JWT of the same client is the same caller; any
// other token is not.
func (p *Principal) SameAs(q *Principal) bool {
	return p != nil && q != nil && p.Kind == q.Kind && p.Subject == q.Subject
}

// All is the allow-list that matches every name.
var all = []string{"*"}

// AllowAll returns a fresh allow-list that matches every name.
func AllowAll() []string { return append([]string(nil), all...) }

// Match reports whether name matches pattern, in which "*" matches any run of
// characters (including none) and every other character matches itself.
func Match(pattern, name string) bool {
	// Greedy, going back only to the last star: with "*" the only wildcard,
	// a later star can take whatever an earlier one would have, so this is
	// exact, and it stays O(len(pattern)·len(name)) where trying every
	// split for every star was exponential in the number of stars. Patterns
	// can come from clients (a scope of tool:PATTERN at /auth).
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// MatchAny reports whether name matches any of patterns.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// Covers reports whether every name that requested matches is also matched
// by one of patterns, so that a token narrowed to requested grants no more
// than patterns did. With "*" the only wildcard this holds exactly when some
// pattern matches requested read as a literal string.
func Covers(patterns []string, requested string) bool {
	return MatchAny(patterns, requested)
}

type principalKey struct{}

// NewContext returns a context carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
