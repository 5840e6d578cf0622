package authn

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ModeOAuth accepts the access tokens of an OAuth 2.1 authorization server
// (auth.type "oauth"), beside static tokens and issued JWTs.
const ModeOAuth = "oauth"

// oauthAlgorithms are the signing algorithms an OAuth access token may
// use, and each only with a key of the authorization server that declares
// it: never "none", never HS*.
var oauthAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Refusals particular to OAuth access tokens, worth telling a client
// apart: a token for another resource (RFC 8707: no token passthrough) and
// a token from another authorization server.
var (
	ErrWrongAudience = fmt.Errorf("%w: not for this resource (aud)", ErrInvalidToken)
	ErrWrongIssuer   = fmt.Errorf("%w: from another issuer (iss)", ErrInvalidToken)
)

// Errors of an OAuthSource.
var (
	// ErrUnknownKey: the authorization server has no key with that id,
	// even after its keys were fetched again.
	ErrUnknownKey = errors.New("unknown key id")
	// ErrNoIntrospection: the source cannot introspect tokens.
	ErrNoIntrospection = errors.New("no introspection endpoint")
)

// OAuthKey is a public signing key of the authorization server.
type OAuthKey struct {
	ID string
	// Algorithm is the one algorithm the key verifies: RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA.
	Algorithm string
	// Public is an *rsa.PublicKey, an *ecdsa.PublicKey or an
	// ed25519.PublicKey, as Algorithm needs.
	Public crypto.PublicKey
}

// OAuthSource is what the verifier needs of an authorization server. It is
// declared here and implemented over HTTP by internal/oauth, so that this
// package knows no network.
type OAuthSource interface {
	// Key returns the server's key with id kid. A kid the source does not
	// know may make it fetch the server's keys again, as often as it
	// allows; it returns an error wrapping ErrUnknownKey when the kid is
	// still unknown, and another error when it has no keys at all.
	Key(ctx context.Context, kid string) (OAuthKey, error)
	// Introspect returns the answer of the server's introspection endpoint
	// (RFC 7662) for an active token. An inactive token is an error
	// wrapping ErrInvalidToken; a source without an endpoint returns
	// ErrNoIntrospection.
	Introspect(ctx context.Context, token string) (map[string]any, error)
}

// ScopeGrant says what one OAuth scope grants.
type ScopeGrant struct {
	Scope string
	// Grants are in /auth's vocabulary: ScopeAdmin, ScopeEdge,
	// "server:PATTERN" and "tool:PATTERN".
	Grants []string
}

// OAuthOptions configure the verification of OAuth access tokens.
type OAuthOptions struct {
	// Issuer is the authorization server's issuer; tokens carry it as iss.
	Issuer string
	// Audience is this gateway's canonical URL; tokens must name it in aud
	// (a token for another resource is refused: no token passthrough).
	Audience string
	// Source supplies the server's keys and its introspection. Required.
	Source OAuthSource
	// Introspect checks tokens that are not JWTs with Source.Introspect;
	// without it they are refused unread.
	Introspect bool

	// SubjectClaim names the caller ("sub" when empty, then "client_id");
	// the principal's subject is "oauth:" and its value.
	SubjectClaim string
	// ScopeClaim holds the granted scopes, a space-separated string or an
	// array of strings; empty means "scope", else "scp".
	ScopeClaim string
	// Scopes map OAuth scopes to grants.
	Scopes []ScopeGrant
	// ScopePrefix, when set, makes a scope PREFIX+GRANT carry GRANT.
	ScopePrefix string
	// ServersClaim and ToolsClaim, when set, name claims whose patterns are
	// granted as servers and tools.
	ServersClaim string
	ToolsClaim   string
}

// oauthVerifier is the OAuth part of a Verifier.
type oauthVerifier struct {
	opts   OAuthOptions
	parser *jwt.Parser
	now    func() time.Time
}

func newOAuthVerifier(o OAuthOptions, now func() time.Time) *oauthVerifier {
	if o.SubjectClaim == "" {
		o.SubjectClaim = "sub"
	}
	audiences := []string{o.Audience}
	// A resource without a path is written both ways by clients:
	// "https://host" and "https://host/" (RFC 8707 leaves it open).
	if alt, ok := strings.CutSuffix(o.Audience, "/"); ok && strings.Count(alt, "/") == 2 {
		audiences = append(audiences, alt)
	} else if strings.Count(o.Audience, "/") == 2 {
		audiences = append(audiences, o.Audience+"/")
	}
	return &oauthVerifier{
		opts: o,
		now:  now,
		parser: jwt.NewParser(
			jwt.WithValidMethods(oauthAlgorithms),
			jwt.WithIssuer(o.Issuer),
			jwt.WithAudience(audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(now),
		),
	}
}

// jwtHeader is what the verifier reads of a JWT before choosing its keys.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// peekHeader decodes the header of a compact JWT, unverified.
func peekHeader(token string) (jwtHeader, bool) {
	var h jwtHeader
	head, _, _ := strings.Cut(token, ".")
	if len(head) > 1024 {
		return h, false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil || json.Unmarshal(b, &h) != nil {
		return h, false
	}
	return h, true
}

// isIssued reports whether token claims to be a JWT the control plane
// issued: an EdDSA header naming one of its keys. Such a token is checked
// against those keys alone.
func (v *Verifier) isIssued(token string) bool {
	h, ok := peekHeader(token)
	if !ok || h.Alg != Algorithm {
		return false
	}
	_, known := (*v.keys.Load())[h.Kid]
	return known
}

// oauthKid is how the cache tells the authorization server's keys from the
// control plane's.
func oauthKid(kid string) string { return "oauth:" + kid }

// verifyOAuthJWT checks an access token of the authorization server.
func (v *Verifier) verifyOAuthJWT(ctx context.Context, token string, d *[sha256.Size]byte) (*Principal, error) {
	o := v.oauth
	var gen uint64
	if v.cache != nil {
		gen = v.cache.gen.Load()
	}
	claims := jwt.MapClaims{}
	var kid string
	_, err := o.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid in header")
		}
		k, err := o.opts.Source.Key(ctx, kid)
		switch {
		case errors.Is(err, ErrUnknownKey):
			return nil, fmt.Errorf("unknown kid %q", kid)
		case err != nil:
			return nil, errors.New("the authorization server's keys are unavailable")
		}
		// The key's own algorithm, never the token's choice.
		if alg := t.Method.Alg(); alg != k.Algorithm {
			return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.Algorithm, alg)
		}
		return k.Public, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, ErrWrongAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, ErrWrongIssuer
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	p, err := o.principal(claims)
	if err != nil {
		return nil, err
	}
	if p.TokenID != "" && v.IsRevoked(p.TokenID) {
		return nil, ErrRevoked
	}
	if v.cache != nil && v.now().Before(p.ExpiresAt) {
		// As for issued JWTs: from nbf or iat, less the leeway, never
		// past exp.
		var from time.Time
		if t, err := claims.GetNotBefore(); err == nil && t != nil {
			from = t.Time
		}
		if t, err := claims.GetIssuedAt(); err == nil && t != nil && t.After(from) {
			from = t.Time
		}
		v.cache.put(d, p.clone(), oauthKid(kid), from.Add(-leeway), p.ExpiresAt, gen)
	}
	return p, nil
}

// introspect checks an opaque token with the authorization server.
func (v *Verifier) introspect(ctx context.Context, token string) (*Principal, error) {
	o := v.oauth
	claims, err := o.opts.Source.Introspect(ctx, token)
	switch {
	case errors.Is(err, ErrInvalidToken):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: the authorization server could not check the token", ErrInvalidToken)
	}
	c := jwt.MapClaims(claims)
	// RFC 7662 makes every claim but active optional; the ones that are
	// there are held to what a JWT is held to, and aud is required: a
	// token for another resource is refused here too.
	if iss, err := c.GetIssuer(); err != nil || iss != "" && iss != o.opts.Issuer {
		return nil, ErrWrongIssuer
	}
	aud, err := c.GetAudience()
	if err != nil || !slices.ContainsFunc(aud, func(a string) bool {
		return a == o.opts.Audience || strings.TrimSuffix(a, "/") == strings.TrimSuffix(o.opts.Audience, "/")
	}) {
		return nil, ErrWrongAudience
	}
	now := v.now()
	if exp, err := c.GetExpirationTime(); err != nil {
		return nil, fmt.Errorf("%w: bad exp", ErrInvalidToken)
	} else if exp != nil && !now.Before(exp.Add(leeway)) {
		return nil, ErrExpired
	}
	if nbf, err := c.GetNotBefore(); err != nil {
		return nil, fmt.Errorf("%w: bad nbf", ErrInvalidToken)
	} else if nbf != nil && now.Add(leeway).Before(nbf.Time) {
		return nil, ErrNotYetValid
	}
	p, err := o.principal(c)
	if err != nil {
		return nil, err
	}
	if p.TokenID != "" && v.IsRevoked(p.TokenID) {
		return nil, ErrRevoked
	}
	return p, nil
}

// principal returns the principal that verified claims describe.
func (o *oauthVerifier) principal(c jwt.MapClaims) (*Principal, error) {
	sub, _ := c[o.opts.SubjectClaim].(string)
	if sub == "" && o.opts.SubjectClaim == "sub" {
		// Introspection answers may name only the client (RFC 7662).
		sub, _ = c["client_id"].(string)
	}
	if sub == "" {
		return nil, fmt.Errorf("%w: no %s claim", ErrInvalidToken, o.opts.SubjectClaim)
	}
	jti, _ := c["jti"].(string)
	p := &Principal{Subject: "oauth:" + sub, Kind: KindOAuth, TokenID: jti, Scopes: []string{}}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil {
		p.ExpiresAt = exp.Time
	}
	var servers, tools []string
	grant := func(item string) {
		switch {
		case item == ScopeAdmin || item == ScopeEdge:
			if !slices.Contains(p.Scopes, item) {
				p.Scopes = append(p.Scopes, item)
			}
		case strings.HasPrefix(item, "server:") && len(item) > len("server:"):
			servers = append(servers, item[len("server:"):])
		case strings.HasPrefix(item, "tool:") && len(item) > len("tool:"):
			tools = append(tools, item[len("tool:"):])
		}
	}
	for _, s := range o.scopes(c) {
		for _, g := range o.opts.Scopes {
			if g.Scope == s {
				for _, item := range g.Grants {
					grant(item)
				}
			}
		}
		if pre := o.opts.ScopePrefix; pre != "" {
			if item, ok := strings.CutPrefix(s, pre); ok {
				grant(item)
			}
		}
	}
	if o.opts.ServersClaim != "" {
		servers = append(servers, words(c[o.opts.ServersClaim])...)
	}
	if o.opts.ToolsClaim != "" {
		tools = append(tools, words(c[o.opts.ToolsClaim])...)
	}
	// A grant of servers alone allows their tools, and a grant of tools
	// alone allows the servers they belong to (tools are named as clients
	// see them, prefixed); a token that grants neither may use nothing.
	switch {
	case len(servers) > 0 && len(tools) == 0:
		tools = AllowAll()
	case len(tools) > 0 && len(servers) == 0:
		servers = AllowAll()
	}
	p.Servers, p.Tools = nonNil(compact(servers)), nonNil(compact(tools))
	return p, nil
}

// scopes returns the scopes a token was granted.
func (o *oauthVerifier) scopes(c jwt.MapClaims) []string {
	if o.opts.ScopeClaim != "" {
		return words(c[o.opts.ScopeClaim])
	}
	if s := words(c["scope"]); len(s) > 0 {
		return s
	}
	return words(c["scp"])
}

// words reads a claim that is a space-separated string or an array of
// strings; anything else is nothing.
func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" && !strings.ContainsAny(s, " \t") {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func compact(s []string) []string {
	var out []string
	for _, e := range s {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// OAuthScopes returns the OAuth scope a client should ask for to be
// granted grant (ScopeAdmin, ScopeEdge, or "server:*" for the use of the
// MCP servers), as challenges name it: the first scope of the mapping that
// carries it, else the prefixed form, else "" (also without OAuth).
func (v *Verifier) OAuthScopes(grant string) string {
	if v.oauth == nil {
		return ""
	}
	o := v.oauth.opts
	for _, g := range o.Scopes {
		if slices.Contains(g.Grants, grant) {
			return g.Scope
		}
	}
	if strings.HasPrefix(grant, "server:") {
		// Any scope that grants some server or tool lets a client in.
		for _, g := range o.Scopes {
			if slices.ContainsFunc(g.Grants, func(item string) bool {
				return strings.HasPrefix(item, "server:") || strings.HasPrefix(item, "tool:")
			}) {
				return g.Scope
			}
		}
	}
	if o.ScopePrefix != "" {
		return o.ScopePrefix + grant
	}
	return ""
}

// ForgetOAuthKeys forgets the cached tokens signed with the authorization
// server's keys kids: the server no longer publishes them.
func (v *Verifier) ForgetOAuthKeys(kids []string) {
	if v.cache == nil || len(kids) == 0 {
		return
	}
	gone := make(map[string]bool, len(kids))
	for _, k := range kids {
		gone[oauthKid(k)] = true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cache.evict(func(e *cacheEntry) bool { return gone[e.kid] })
}
