package httpauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// MetadataPrefix is where an OAuth protected resource publishes its
// metadata (RFC 9728 section 3).
const MetadataPrefix = "/.well-known/oauth-protected-resource"

// ResourceMetadata is the metadata document of an OAuth protected resource
// (RFC 9728 section 2): what the MCP authorization specification has a
// client read to find the authorization server and the resource indicator
// (RFC 8707) to ask for.
type ResourceMetadata struct {
	// Resource is the resource's identifier, its canonical URL: the
	// audience its tokens must name.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer URLs of the servers whose tokens
	// the resource accepts.
	AuthorizationServers []string `json:"authorization_servers"`
	// ScopesSupported are the scopes a client may ask for.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported says how a token is sent: "header".
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceName is a name for people.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a URL of documentation for people.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
}

// MetadataPath returns the path of the metadata document of resource: the
// well-known prefix, then the resource's own path when it has one
// ("/.well-known/oauth-protected-resource/mcp" for https://host/mcp).
func MetadataPath(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return MetadataPrefix
	}
	return MetadataPrefix + strings.TrimSuffix(u.EscapedPath(), "/")
}

// MetadataURL returns the URL of the metadata document of resource, the
// resource_metadata of its challenges.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + MetadataPath(resource)
}

// Handler serves the document m: GET and HEAD, with CORS open to every
// origin (it is public, and browser-based clients read it first), and
// OPTIONS for their preflight.
func (m *ResourceMetadata) Handler() http.Handler {
	body, _ := json.Marshal(m) // strings and lists of strings always marshal
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Mcp-Protocol-Version, Content-Type, Accept")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
