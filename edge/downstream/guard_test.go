package downstream_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/edge/downstream"
)

func TestGuard(t *testing.T) {
	custom := &downstream.Guard{AllowedHosts: []string{"mcp.example.com", "*.corp.example"}, AllowedOrigins: []string{"https://app.example.com"}}
	same := &downstream.Guard{AllowedHosts: custom.AllowedHosts, AllowedOrigins: custom.AllowedOrigins, SameOrigin: true}
	tests := []struct {
		name       string
		guard      *downstream.Guard
		method     string
		host       string
		origin     string
		wantStatus int  // 200: passed to the handler
		wantCORS   bool // Access-Control-Allow-Origin set to origin
	}{
		{"loopback IPv4", &downstream.Guard{}, "POST", "127.0.0.1:8080", "", 200, false},
		{"loopback name", &downstream.Guard{}, "POST", "localhost", "", 200, false},
		{"loopback IPv6", &downstream.Guard{}, "POST", "[::1]:8080", "", 200, false},
		{"loopback range", &downstream.Guard{}, "POST", "127.0.0.2:1", "", 200, false},
		{"rebinding host", &downstream.Guard{}, "POST", "evil.example:8080", "", 403, false},
		{"listed host", custom, "POST", "MCP.example.com:443", "", 200, false},
		{"listed subdomain", custom, "POST", "a.corp.example", "", 200, false},
		{"bare domain of a wildcard", custom, "POST", "corp.example", "", 403, false},
		{"loopback not listed", custom, "POST", "127.0.0.1", "", 403, false},
		{"loopback origin", &downstream.Guard{}, "POST", "127.0.0.1", "http://localhost:6274", 200, true},
		{"foreign origin", &downstream.Guard{}, "POST", "127.0.0.1", "https://evil.example", 403, false},
		{"listed origin", custom, "POST", "mcp.example.com", "https://app.example.com", 200, true},
		{"unlisted origin", custom, "POST", "mcp.example.com", "https://other.example.com", 403, false},
		{"any origin", &downstream.Guard{AllowedOrigins: []string{"*"}}, "GET", "localhost", "https://x.example", 200, true},
		{"preflight", custom, "OPTIONS", "mcp.example.com", "https://app.example.com", 204, true},
		{"preflight of a foreign origin", custom, "OPTIONS", "mcp.example.com", "https://evil.example", 403, false},
		{"own origin refused by default", custom, "POST", "mcp.example.com", "https://mcp.example.com", 403, false},
		{"own origin", same, "POST", "mcp.example.com", "https://mcp.example.com", 200, true},
		{"own origin with a port", same, "POST", "a.corp.example:8443", "https://a.corp.example:8443", 200, true},
		{"own origin, other port", same, "POST", "mcp.example.com:8443", "https://mcp.example.com", 403, false},
		{"own origin, listed origin still", same, "POST", "mcp.example.com", "https://app.example.com", 200, true},
		{"own origin of a wildcard host", &downstream.Guard{AllowedHosts: []string{"*"}, SameOrigin: true}, "POST", "rebound.example", "http://rebound.example", 403, false},
		{"own loopback origin, custom origins", &downstream.Guard{AllowedOrigins: []string{"https://app.example.com"}, SameOrigin: true}, "POST", "127.0.0.1:4000", "http://127.0.0.1:4000", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := tt.guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
			r := httptest.NewRequest(tt.method, "http://"+tt.host+"/mcp", nil)
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if reached != (tt.wantStatus == 200) {
				t.Errorf("handler reached = %v, want %v", reached, tt.wantStatus == 200)
			}
			hdr := w.Header()
			if got := hdr.Get("Access-Control-Allow-Origin"); (got == tt.origin && got != "") != tt.wantCORS {
				t.Errorf("Access-Control-Allow-Origin = %q, want CORS %v", got, tt.wantCORS)
			}
			if tt.wantCORS {
				if exp := hdr.Get("Access-Control-Expose-Headers"); !strings.Contains(exp, "Mcp-Session-Id") {
					t.Errorf("Access-Control-Expose-Headers = %q, want Mcp-Session-Id exposed", exp)
				}
				if !strings.Contains(strings.Join(hdr.Values("Vary"), ","), "Origin") {
					t.Error("CORS answer without Vary: Origin")
				}
			}
			if tt.wantStatus == 204 {
				for _, want := range []string{"POST", "DELETE"} {
					if m := hdr.Get("Access-Control-Allow-Methods"); !strings.Contains(m, want) {
						t.Errorf("Access-Control-Allow-Methods = %q, want %s", m, want)
					}
				}
				for _, want := range []string{"Authorization", "Mcp-Session-Id", "Last-Event-ID", "MCP-Protocol-Version"} {
					if h := hdr.Get("Access-Control-Allow-Headers"); !strings.Contains(h, want) {
						t.Errorf("Access-Control-Allow-Headers = %q, want %s", h, want)
					}
				}
			}
		})
	}
}

// The guard stands in front of every MCP endpoint.
func TestGuardOnEndpoints(t *testing.T) {
	hs := newHarness(t, nil)
	for _, path := range []string{"/sse", "/message?sessionId=x", "/mcp"} {
		req := hs.request(t, http.MethodGet, path, "")
		req.Host = "attacker.example"
		status(t, hs.do(t, req), http.StatusForbidden)
		req = hs.request(t, http.MethodGet, path, "")
		req.Header.Set("Origin", "https://attacker.example")
		status(t, hs.do(t, req), http.StatusForbidden)
	}
}
