package httpauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func TestToken(t *testing.T) {
	tests := []struct {
		name, target, authorization, want string
	}{
		{"header", "/mcp", "Bearer from-header", "from-header"},
		{"query", "/mcp?token=from-query", "", "from-query"},
		{"header over query", "/mcp?token=from-query", "Bearer from-header", "from-header"},
		// A header that is not a bearer token still wins: the query is a
		// fallback for clients that cannot set headers at all.
		{"basic header over query", "/mcp?token=from-query", "Basic dXNlcjpwYXNz", ""},
		{"escaped query", "/mcp?token=a%2Bb%3D", "", "a+b="},
		{"empty query", "/mcp?token=", "", ""},
		{"neither", "/mcp?x=1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			if got := httpauth.Token(r); got != tt.want {
				t.Errorf("Token = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMoveQueryToken(t *testing.T) {
	tests := []struct {
		name          string
		target        string
		authorization string
		wantQuery     string
		wantURI       string
		wantHeader    string
	}{{
		name: "token moved", target: "/mcp?token=secret",
		wantQuery: "", wantURI: "/mcp", wantHeader: "Bearer secret",
	}, {
		name: "other parameters kept", target: "/sse?sessionId=abc&token=secret",
		wantQuery: "sessionId=abc", wantURI: "/sse?sessionId=abc", wantHeader: "Bearer secret",
	}, {
		name: "existing header kept", target: "/mcp?token=secret", authorization: "Bearer other",
		wantQuery: "", wantURI: "/mcp", wantHeader: "Bearer other",
	}, {
		name: "empty token removed, no header", target: "/mcp?token=&x=1",
		wantQuery: "x=1", wantURI: "/mcp?x=1", wantHeader: "",
	}, {
		name: "repeated token all removed", target: "/mcp?token=a&token=b",
		wantQuery: "", wantURI: "/mcp", wantHeader: "Bearer a",
	}, {
		name: "no token, nothing touched", target: "/mcp?b=2&a=1",
		wantQuery: "b=2&a=1", wantURI: "/mcp?b=2&a=1", wantHeader: "",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			httpauth.MoveQueryToken(r)
			got := []string{r.URL.RawQuery, r.RequestURI, r.Header.Get("Authorization")}
			want := []string{tt.wantQuery, tt.wantURI, tt.wantHeader}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("query, RequestURI, Authorization (-want +got):\n%s", diff)
			}
			if strings.Contains(r.URL.String(), "secret") || strings.Contains(r.RequestURI, "secret") {
				t.Errorf("token left in the URL: %s / %s", r.URL, r.RequestURI)
			}
		})
	}
}

// fakeVerifier accepts "good" and refuses other tokens with the error
// named by the token.
type fakeVerifier struct{}

var good = &authn.Principal{Subject: "static:ops", Kind: authn.KindStatic}

func (fakeVerifier) Verify(_ context.Context, token string) (*authn.Principal, error) {
	switch token {
	case "":
		return nil, authn.ErrNoToken
	case "good":
		return good, nil
	case "expired":
		return nil, authn.ErrExpired
	case "early":
		return nil, authn.ErrNotYetValid
	case "revoked":
		return nil, authn.ErrRevoked
	}
	return nil, fmt.Errorf("%w: unknown token %s", authn.ErrInvalidToken, token)
}

func TestRequire(t *testing.T) {
	const realm = `Bearer realm="atrax"`
	tests := []struct {
		name      string
		target    string
		header    string
		code      int
		challenge string
		body      map[string]string
	}{{
		name: "no token", target: "/mcp",
		code: 401, challenge: realm,
		body: map[string]string{"error": "unauthorized", "error_description": "no token: send Authorization: Bearer TOKEN"},
	}, {
		name: "unknown token", target: "/mcp", header: "Bearer guess-123",
		code: 401, challenge: realm + `, error="invalid_token", error_description="the token is not valid"`,
		body: map[string]string{"error": "invalid_token", "error_description": "the token is not valid"},
	}, {
		name: "not a bearer header", target: "/mcp", header: "Basic dXNlcjpwYXNz",
		code: 401, challenge: realm,
		body: map[string]string{"error": "unauthorized", "error_description": "no token: send Authorization: Bearer TOKEN"},
	}, {
		name: "expired", target: "/mcp", header: "Bearer expired",
		code: 401, challenge: realm + `, error="invalid_token", error_description="the token has expired"`,
		body: map[string]string{"error": "invalid_token", "error_description": "the token has expired"},
	}, {
		name: "not yet valid", target: "/mcp", header: "Bearer early",
		code: 401, challenge: realm + `, error="invalid_token", error_description="the token is not valid yet"`,
		body: map[string]string{"error": "invalid_token", "error_description": "the token is not valid yet"},
	}, {
		name: "revoked", target: "/mcp?token=revoked",
		code: 401, challenge: realm + `, error="invalid_token", error_description="the token has been revoked"`,
		body: map[string]string{"error": "invalid_token", "error_description": "the token has been revoked"},
	}, {
		name: "header", target: "/mcp", header: "Bearer good", code: 200,
	}, {
		name: "query", target: "/mcp?token=good", code: 200,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen *authn.Principal
			h := httpauth.Require(fakeVerifier{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = authn.FromContext(r.Context())
				w.WriteHeader(http.StatusOK)
			}))
			r := httptest.NewRequest("POST", tt.target, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("status = %d, want %d", w.Code, tt.code)
			}
			if tt.code == 200 {
				if seen != good {
					t.Errorf("handler saw principal %+v, want %+v", seen, good)
				}
				return
			}
			if seen != nil {
				t.Error("handler ran for a refused request")
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %s, want %s", got, tt.challenge)
			}
			checkJSON(t, w, tt.body)
			if strings.Contains(w.Body.String(), "guess-123") || strings.Contains(w.Header().Get("WWW-Authenticate"), "guess-123") {
				t.Error("response repeats the token")
			}
		})
	}
}

func checkJSON(t *testing.T, w *httptest.ResponseRecorder, want map[string]string) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var got map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestRequireWithRealVerifier(t *testing.T) {
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{{Name: "ops", Token: "s3cret"}}})
	h := httpauth.Require(v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, authn.FromContext(r.Context()).Subject)
	}))
	for token, want := range map[string]int{"s3cret": 200, "s3cre": 401, "": 401} {
		r := httptest.NewRequest("GET", "/mcp", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("token %q: status %d, want %d", token, w.Code, want)
		}
		if want == 200 && w.Body.String() != "static:ops" {
			t.Errorf("token %q: body %q, want static:ops", token, w.Body)
		}
	}
}

func TestForbidden(t *testing.T) {
	w := httptest.NewRecorder()
	httpauth.Forbidden(w, "admin", `this call needs the "admin" scope`)
	if w.Code != http.StatusForbidden {
		t.Errorf("status = %d, want 403", w.Code)
	}
	want := `Bearer realm="atrax", error="insufficient_scope", scope="admin", error_description="this call needs the \"admin\" scope"`
	if got := w.Header().Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %s, want %s", got, want)
	}
	checkJSON(t, w, map[string]string{"error": "insufficient_scope", "error_description": `this call needs the "admin" scope`})
}
