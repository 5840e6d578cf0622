package edge

import (
	"context"
	"net/http"
	"slices"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
)

// This file makes the edge an OAuth 2.1 protected resource (auth.type
// "oauth"), as the MCP authorization specification has clients expect: it
// publishes its RFC 9728 metadata, names it in every Bearer challenge, and
// answers a token that grants no MCP server with insufficient_scope, so
// that a client finds the authorization server and asks for the right
// scope by itself.

// useServers is the grant a client lacks when its token allows no server.
const useServers = "server:*"

// resourceMetadata is the edge's RFC 9728 document, nil unless OAuth.
func resourceMetadata(a config.Auth) *httpauth.ResourceMetadata {
	o := a.OAuth
	if o == nil {
		return nil
	}
	m := &httpauth.ResourceMetadata{
		Resource:               o.Audience,
		AuthorizationServers:   []string{o.Issuer},
		ScopesSupported:        o.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Atrax MCP gateway",
	}
	if m.ScopesSupported == nil {
		for _, g := range o.Claims.Scopes {
			m.ScopesSupported = append(m.ScopesSupported, g.Scope)
		}
	}
	return m
}

// registerOAuth serves the metadata document at its well-known paths: the
// plain one, the one for /mcp, and the one for the audience's own path
// (RFC 9728 section 3.1), so that a client finds it from whichever URL it
// was given.
func (e *edgeServer) registerOAuth(mux *http.ServeMux) {
	m := resourceMetadata(e.cfg.Auth)
	if m == nil {
		return
	}
	h := m.Handler()
	var paths []string
	for _, p := range []string{httpauth.MetadataPrefix, httpauth.MetadataPrefix + "/mcp", httpauth.MetadataPath(m.Resource)} {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
			mux.Handle(p, h)
		}
	}
}

// withChallenges puts the edge's OAuth challenge in every request's
// context, so that every 401 and 403 names the metadata document: the MCP
// endpoints' 401s also name the scope that lets a client use them.
func (e *edgeServer) withChallenges(next http.Handler) http.Handler {
	o := e.cfg.Auth.OAuth
	if o == nil {
		return next
	}
	rest := &httpauth.Challenge{
		ResourceMetadata: httpauth.MetadataURL(o.Audience),
		ScopeFor:         e.verifier.OAuthScopes,
	}
	mcp := *rest
	mcp.Scope = e.verifier.OAuthScopes(useServers)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := rest
		switch r.URL.Path {
		case "/mcp", "/sse", "/message":
			c = &mcp
		}
		next.ServeHTTP(w, r.WithContext(httpauth.NewChallengeContext(r.Context(), c)))
	})
}

// mcpAccess is the verifier of the MCP endpoints. An OAuth token that
// grants neither a server nor a tool is refused there with 403
// insufficient_scope, naming the scope that would grant them: a client
// then asks for it (step-up authorization), where a static token or an
// issued JWT with empty grants keeps the old answer (it sees nothing).
type mcpAccess struct {
	downstream.Verifier
}

func (m mcpAccess) Verify(ctx context.Context, token string) (*authn.Principal, error) {
	p, err := m.Verifier.Verify(ctx, token)
	if err == nil && p.Kind == authn.KindOAuth && (len(p.Servers) == 0 || len(p.Tools) == 0) {
		return nil, &httpauth.ScopeError{Grant: useServers, Desc: "the token grants no MCP server"}
	}
	return p, err
}
