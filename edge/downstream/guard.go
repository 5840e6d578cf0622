package downstream

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// Guard protects the MCP endpoints from DNS rebinding (Host and Origin
// checked against allow-lists, loopback by default, as the MCP transport
// spec asks of local servers) and answers CORS for the origins allowed.
type Guard struct {
	// AllowedHosts are the Host header values accepted (without port); a
	// leading "*." matches subdomains. Empty means loopback names only.
	AllowedHosts []string
	// AllowedOrigins are the Origin values accepted, "*" for any. Empty
	// means loopback origins only. Requests without Origin (non-browser
	// clients) are always accepted.
	AllowedOrigins []string
	// SameOrigin also accepts an Origin naming the request's own host and
	// port (its Host header), when that host is allowed by name rather
	// than by "*": a page the edge served itself (the web console) calling
	// the MCP endpoints. Off, only AllowedOrigins count.
	SameOrigin bool
}

var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

func (g *Guard) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if len(g.AllowedHosts) == 0 {
		return slices.Contains(loopbackHosts, host) || strings.HasPrefix(host, "127.")
	}
	for _, a := range g.AllowedHosts {
		a = strings.ToLower(a)
		if a == "*" || a == host || strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:]) {
			return true
		}
	}
	return false
}

func (g *Guard) originAllowed(origin string) bool {
	if len(g.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && (slices.Contains(loopbackHosts, u.Hostname()) || strings.HasPrefix(u.Hostname(), "127."))
	}
	for _, a := range g.AllowedOrigins {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether origin is the origin of a request to host,
// and host is allowed by name: with "*" any host passes, and a page from
// a rebound name would be its own origin.
func (g *Guard) sameOrigin(origin, host string) bool {
	if !g.SameOrigin {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, host) {
		return false
	}
	byName := *g
	byName.AllowedHosts = slices.DeleteFunc(slices.Clone(g.AllowedHosts), func(a string) bool { return a == "*" })
	if len(g.AllowedHosts) > 0 && len(byName.AllowedHosts) == 0 {
		return false
	}
	return byName.hostAllowed(host)
}

// Wrap checks Host and Origin before next and answers CORS preflights.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			writeJSONRPCError(w, http.StatusForbidden, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "host %q is not allowed (see http.allowedHosts in the config)", r.Host))
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !g.originAllowed(origin) && !g.sameOrigin(origin, r.Host) {
				writeJSONRPCError(w, http.StatusForbidden, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "origin %q is not allowed (see http.allowedOrigins in the config)", origin))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
