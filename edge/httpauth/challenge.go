package httpauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Challenge is what an OAuth protected resource adds to its Bearer
// challenges (the MCP authorization specification; RFC 9728 section 5.1),
// so that a client that was refused finds the authorization server and
// knows which scope to ask for.
type Challenge struct {
	// ResourceMetadata is the URL of the resource's metadata document,
	// named as resource_metadata in every challenge.
	ResourceMetadata string
	// Scope, when set, is named in 401 challenges: the scope a client
	// should ask for to use what it asked for.
	Scope string
	// ScopeFor, when set, turns a grant Atrax checks (authn.ScopeAdmin,
	// authn.ScopeEdge, "server:*") into the OAuth scope that carries it,
	// for 403 challenges; "" keeps the grant's own name.
	ScopeFor func(grant string) string
}

// ScopeError refuses a valid token that lacks a grant: Deny answers it
// with 403 and insufficient_scope.
type ScopeError struct {
	// Grant is what the token lacks, as Challenge.ScopeFor takes it.
	Grant string
	// Desc says why, for the error_description; it never holds a token.
	Desc string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("insufficient scope: %s (needs %s)", e.Desc, e.Grant)
}

type challengeKey struct{}

// WithChallenge returns next with c in the context of every request, where
// Deny, DenyScope and Require find it.
func WithChallenge(c *Challenge, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(NewChallengeContext(r.Context(), c)))
	})
}

// NewChallengeContext returns ctx carrying c.
func NewChallengeContext(ctx context.Context, c *Challenge) context.Context {
	return context.WithValue(ctx, challengeKey{}, c)
}

// ChallengeFromContext returns the Challenge in ctx, or nil.
func ChallengeFromContext(ctx context.Context) *Challenge {
	c, _ := ctx.Value(challengeKey{}).(*Challenge)
	return c
}

func challengeOf(r *http.Request) *Challenge {
	if r == nil {
		return nil
	}
	return ChallengeFromContext(r.Context())
}

// params returns the auth-params every challenge starts with: the realm,
// and with c the resource metadata and, for a 401 (unauthorized), the
// scope to ask for.
func (c *Challenge) params(unauthorized bool) []string {
	params := []string{fmt.Sprintf("realm=%q", Realm)}
	if c == nil {
		return params
	}
	if c.ResourceMetadata != "" {
		params = append(params, fmt.Sprintf("resource_metadata=%q", c.ResourceMetadata))
	}
	if unauthorized && c.Scope != "" {
		params = append(params, fmt.Sprintf("scope=%q", c.Scope))
	}
	return params
}

// scopeFor names grant as an OAuth scope when c knows how.
func (c *Challenge) scopeFor(grant string) string {
	if c != nil && c.ScopeFor != nil {
		if s := c.ScopeFor(grant); s != "" {
			return s
		}
	}
	return grant
}

// InsufficientScope returns the WWW-Authenticate value of a 403 for want
// of grant, as DenyScope writes it: for gateways that write their own
// error bodies (the REST gateway).
func InsufficientScope(r *http.Request, grant, desc string) string {
	return scopeChallenge(challengeOf(r), grant, desc)
}

// InvalidToken returns the WWW-Authenticate value of a 401, as Deny writes
// it: with error="invalid_token" and desc, or with no error code when desc
// is empty (no token was sent). For gateways that write their own error
// bodies.
func InvalidToken(r *http.Request, desc string) string {
	return unauthorizedChallenge(challengeOf(r), desc)
}

func unauthorizedChallenge(c *Challenge, desc string) string {
	params := c.params(true)
	if desc != "" {
		params = append(params, `error="invalid_token"`, fmt.Sprintf("error_description=%q", desc))
	}
	return "Bearer " + strings.Join(params, ", ")
}

func scopeChallenge(c *Challenge, grant, desc string) string {
	params := append(c.params(false), `error="insufficient_scope"`, fmt.Sprintf("scope=%q", c.scopeFor(grant)), fmt.Sprintf("error_description=%q", desc))
	return "Bearer " + strings.Join(params, ", ")
}
