package console

import (
	"net/http"
	"time"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// authed lets a request through only with a valid token, as every API
// path does.
func (c *Console) authed(h http.HandlerFunc) http.Handler {
	return httpauth.Require(c.opts.Verifier, h)
}

// sessionInfo is what /ui/api/session says of the caller: enough for the
// pages to show who is signed in and to disable what the token may not do.
type sessionInfo struct {
	Subject string   `json:"subject"`
	Kind    string   `json:"kind"`
	Scopes  []string `json:"scopes"`
	Servers []string `json:"servers"`
	Tools   []string `json:"tools"`
	// Admin is whether the token has the admin scope, which managing
	// servers, revoking tokens and reading the audit log need.
	Admin bool `json:"admin"`
	// TokenID is the jti of an issued token (to revoke it at sign-out).
	TokenID   string `json:"tokenId,omitempty"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// session answers who the request's token stands for.
func (c *Console) session(w http.ResponseWriter, r *http.Request) {
	p := authn.FromContext(r.Context())
	info := sessionInfo{
		Subject: p.Subject, Kind: string(p.Kind), TokenID: p.TokenID,
		Scopes: nonNil(p.Scopes), Servers: nonNil(p.Servers), Tools: nonNil(p.Tools),
		Admin: p.HasScope(authn.ScopeAdmin),
	}
	if !p.ExpiresAt.IsZero() {
		info.ExpiresAt = p.ExpiresAt.UTC().Format(time.RFC3339)
	}
	httpauth.WriteJSON(w, http.StatusOK, info)
}

// owners answers which server serves each item the token may see.
func (c *Console) owners(w http.ResponseWriter, r *http.Request) {
	out := map[string]map[string]string{}
	if c.opts.Catalog != nil {
		out = c.opts.Catalog.Owners(authn.FromContext(r.Context()))
	}
	for _, k := range []string{"tools", "prompts", "resources", "resourceTemplates"} {
		if out[k] == nil {
			out[k] = map[string]string{}
		}
	}
	httpauth.WriteJSON(w, http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
