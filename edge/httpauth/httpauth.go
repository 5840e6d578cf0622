// Package httpauth is the edge's HTTP face of the token verifier: it finds
// the token in a request (the Authorization header, or the seed's legacy
// ?token= query parameter), asks authn who it belongs to, and answers 401
// with an RFC 6750 WWW-Authenticate header when nobody, 403 with
// insufficient_scope when the token lacks a grant. As an OAuth protected
// resource the edge also serves its RFC 9728 metadata document
// (resource.go), and its challenges name it (challenge.go), so that MCP
// clients find the authorization server by themselves.
package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// Realm is the realm named in WWW-Authenticate challenges.
const Realm = "atrax"

// Verifier is what the middleware needs of authn.
type Verifier interface {
	Verify(ctx context.Context, token string) (*authn.Principal, error)
}

// Token returns the bearer token of r: from the Authorization header when it
// has one (preferred), else from the token query parameter, which the seed
// documents for clients that cannot set headers.
func Token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return authn.BearerToken(h)
	}
	return r.URL.Query().Get("token")
}

// MoveQueryToken moves a ?token= value into an Authorization header (unless
// the request has one) and removes it from the URL, so that the token goes
// no further as part of a URL: not into logs, not upstream.
func MoveQueryToken(r *http.Request) {
	q := r.URL.Query()
	if !q.Has("token") {
		return
	}
	tok := q.Get("token")
	q.Del("token")
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
	if r.Header.Get("Authorization") == "" && tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
}

// Require returns middleware that lets a request through only with a valid
// token, and puts its principal in the request's context.
func Require(v Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.Verify(r.Context(), Token(r))
		if err != nil {
			Deny(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(authn.NewContext(r.Context(), p)))
	})
}

// Unauthorized is Deny for a caller without the request at hand: its
// challenge carries no request's Challenge.
func Unauthorized(w http.ResponseWriter, err error) {
	deny(w, nil, err)
}

// Forbidden is DenyScope for a caller without the request at hand.
func Forbidden(w http.ResponseWriter, scope, desc string) {
	denyScope(w, nil, scope, desc)
}

// Deny answers a request refused for err. A *ScopeError (a valid token
// without a grant) gets 403 and an insufficient_scope challenge naming the
// scope that would do (RFC 6750 section 3.1); anything else 401, with no
// error code when no token was sent and invalid_token otherwise. The
// challenges carry the request's Challenge (WithChallenge): the resource
// metadata URL and the scope an OAuth client should ask for. The
// description never repeats the token.
func Deny(w http.ResponseWriter, r *http.Request, err error) {
	deny(w, challengeOf(r), err)
}

// DenyScope answers 403 with an insufficient_scope challenge: the
// request's token is valid but lacks grant (authn.ScopeAdmin,
// authn.ScopeEdge), which the request's Challenge may name as an OAuth
// scope.
func DenyScope(w http.ResponseWriter, r *http.Request, grant, desc string) {
	denyScope(w, challengeOf(r), grant, desc)
}

func deny(w http.ResponseWriter, c *Challenge, err error) {
	if se := (*ScopeError)(nil); errors.As(err, &se) {
		denyScope(w, c, se.Grant, se.Desc)
		return
	}
	if errors.Is(err, authn.ErrNoToken) {
		w.Header().Set("WWW-Authenticate", unauthorizedChallenge(c, ""))
		WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "no token: send Authorization: Bearer TOKEN"})
		return
	}
	desc := describe(err)
	w.Header().Set("WWW-Authenticate", unauthorizedChallenge(c, desc))
	WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
}

func denyScope(w http.ResponseWriter, c *Challenge, grant, desc string) {
	w.Header().Set("WWW-Authenticate", scopeChallenge(c, grant, desc))
	WriteJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": desc})
}

// describe returns a short, token-free reason for a refusal.
func describe(err error) string {
	switch {
	case errors.Is(err, authn.ErrExpired):
		return "the token has expired"
	case errors.Is(err, authn.ErrNotYetValid):
		return "the token is not valid yet"
	case errors.Is(err, authn.ErrRevoked):
		return "the token has been revoked"
	case errors.Is(err, authn.ErrWrongAudience):
		return "the token is for another resource (aud)"
	case errors.Is(err, authn.ErrWrongIssuer):
		return "the token is from another issuer (iss)"
	default:
		return "the token is not valid"
	}
}

// WriteJSON writes v as a JSON response with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
