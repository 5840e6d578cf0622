// Package authconf turns the config file's auth section into the verifier's
// options. The control plane and the edge build their verifiers from the
// same file, so they must read it the same way; config and authn stay
// unaware of each other.
package authconf

import (
	"slices"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
)

// VerifierOptions returns the verifier options for a config's auth section.
// service are tokens accepted in every mode, such as the one `atrax serve`
// creates for its own edge.
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
	return opts
}
