// Package httpauth is the edge's HTTP face of the token verifier: it finds
// the token in a request (the Authorization header, or the seed's legacy
// ?token= query parameter), asks authn who it belongs to, and answers 401
// with an RFC 6750 WWW-Authenticate header when nobody.
package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
			Unauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(authn.NewContext(r.Context(), p)))
	})
}

// Unauthorized answers 401 with a challenge that says what was wrong (RFC
// 6750 section 3): no error code when no token was sent, invalid_token
// otherwise. The description never repeats the token.
func Unauthorized(w http.ResponseWriter, err error) {
	challenge := fmt.Sprintf("Bearer realm=%q", Realm)
	body := map[string]string{"error": "invalid_token"}
	if errors.Is(err, authn.ErrNoToken) {
		body = map[string]string{"error": "unauthorized", "error_description": "no token: send Authorization: Bearer TOKEN"}
	} else {
		desc := describe(err)
		challenge += fmt.Sprintf(", error=\"invalid_token\", error_description=%q", desc)
		body["error_description"] = desc
	}
	w.Header().Set("WWW-Authenticate", challenge)
	WriteJSON(w, http.StatusUnauthorized, body)
}

// Forbidden answers 403 with an insufficient_scope challenge.
func Forbidden(w http.ResponseWriter, scope, desc string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"insufficient_scope\", scope=%q, error_description=%q", Realm, scope, desc))
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
