// Package authconf turns the config file's auth section into the verifier's
// options. The control plane and the edge build their verifiers from the
// same file, so they must read it the same way; config and authn stay
// unaware of each other.
package authconf

import (
	"crypto/tls"
	"log/slog"
	"slices"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/oauth"
)

// VerifierOptions returns the verifier options for a config's auth section.
// service are tokens accepted in every mode, such as the one `atrax serve`
// creates for its own edge. With auth.type "oauth" the options have no
// OAuth source yet: NewVerifier adds one.
func VerifierOptions(a config.Auth, service ...authn.StaticToken) authn.Options {
	opts := authn.Options{Mode: a.Type, Issuer: a.Issuer, Audience: a.Audience, Service: service}
	for _, t := range a.Tokens {
		opts.Static = append(opts.Static, authn.StaticToken{
			Name:    t.Name,
			Token:   t.Token,
			Scopes:  slices.Clone(t.Scopes),
			Servers: slices.Clone(t.Servers),
			Tools:   slices.Clone(t.Tools),
		})
	}
	if o := a.OAuth; o != nil {
		opts.OAuth = &authn.OAuthOptions{
			Issuer:       o.Issuer,
			Audience:     o.Audience,
			Introspect:   o.Introspection != nil,
			SubjectClaim: o.Claims.Subject,
			ScopeClaim:   o.Claims.Scope,
			ScopePrefix:  o.Claims.ScopePrefix,
			ServersClaim: o.Claims.Servers,
			ToolsClaim:   o.Claims.Tools,
		}
		for _, g := range o.Claims.Scopes {
			opts.OAuth.Scopes = append(opts.OAuth.Scopes, authn.ScopeGrant{Scope: g.Scope, Grants: slices.Clone(g.Grants)})
		}
	}
	return opts
}

// NewVerifier returns the verifier for a config's auth section (see
// VerifierOptions). With auth.type "oauth" it also makes the source that
// fetches the authorization server's metadata and keys and introspects its
// tokens, over HTTPS with idpTLS (tlsconf.OAuth: auth.options.ca; nil
// means the system's roots); log gets what goes wrong there.
func NewVerifier(a config.Auth, idpTLS *tls.Config, log *slog.Logger, service ...authn.StaticToken) *authn.Verifier {
	opts := VerifierOptions(a, service...)
	o := a.OAuth
	if o == nil || opts.OAuth == nil {
		return authn.NewVerifier(opts)
	}
	var v *authn.Verifier
	so := oauth.Options{
		Issuer:      o.Issuer,
		JWKSRefresh: o.JWKSRefresh,
		TLS:         idpTLS,
		// v is set before any token is verified, so before any key is
		// fetched.
		OnKeysRemoved: func(kids []string) { v.ForgetOAuthKeys(kids) },
		Logger:        log,
	}
	if in := o.Introspection; in != nil {
		so.Introspection = &oauth.Introspection{
			Endpoint:     in.Endpoint,
			ClientID:     in.ClientID,
			ClientSecret: in.ClientSecret,
			CacheTTL:     in.CacheTTL,
		}
	}
	src := oauth.New(so)
	opts.OAuth.Source = src
	v = authn.NewVerifier(opts)
	return v
}
