package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/console"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// fakeVerifier knows an admin token, a viewer token and an issued one.
type fakeVerifier struct{}

var (
	admin  = &authn.Principal{Subject: "static:ops", Kind: authn.KindStatic, Scopes: []string{authn.ScopeAdmin}, Servers: authn.AllowAll(), Tools: authn.AllowAll()}
	viewer = &authn.Principal{Subject: "static:viewer", Kind: authn.KindStatic, Scopes: []string{}, Servers: []string{"memory"}, Tools: authn.AllowAll()}
	issued = &authn.Principal{Subject: "client:agent", Kind: authn.KindJWT, TokenID: "jti-1", Scopes: []string{}, Servers: authn.AllowAll(), Tools: []string{"memory__*"},
		ExpiresAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
)

func (fakeVerifier) Verify(_ context.Context, token string) (*authn.Principal, error) {
	switch token {
	case "":
		return nil, authn.ErrNoToken
	case "admin":
		return admin, nil
	case "viewer":
		return viewer, nil
	case "jwt":
		return issued, nil
	case "revoked":
		return nil, authn.ErrRevoked
	}
	return nil, authn.ErrInvalidToken
}

// fakeCatalog owns two servers' items; it filters by server as the
// router does.
type fakeCatalog struct{}

func (fakeCatalog) Owners(p *authn.Principal) map[string]map[string]string {
	out := map[string]map[string]string{"tools": {}, "resources": {}}
	for name, server := range map[string]string{"memory__read_graph": "memory", "github__search": "github"} {
		if p.AllowsServer(server) && p.AllowsTool(name) {
			out["tools"][name] = server
		}
	}
	if p.AllowsServer("memory") {
		out["resources"]["memory://graph"] = "memory"
	}
	return out
}

func newConsole(t *testing.T, catalog console.Catalog) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	c, err := console.New(console.Options{Verifier: fakeVerifier{}, Catalog: catalog, Version: "v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	c.Register(mux)
	return mux
}

func do(t *testing.T, h http.Handler, method, target, token string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// checkSecure fails unless w carries the headers of every console answer.
func checkSecure(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	h := w.Header()
	want := map[string]string{
		"Content-Security-Policy": console.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	// The policy allows nothing but the edge itself, nothing inline, no
	// framing, and forms only to the edge.
	directives := map[string]string{}
	for _, d := range strings.Split(console.ContentSecurityPolicy, ";") {
		f := strings.Fields(d)
		directives[f[0]] = strings.Join(f[1:], " ")
	}
	want := map[string]string{
		"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self'",
		"connect-src": "'self'", "font-src": "'self'", "object-src": "'none'", "base-uri": "'none'",
		"frame-ancestors": "'none'", "form-action": "'self'",
	}
	if diff := cmp.Diff(want, directives); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

// Every page renders, with the security headers, no inline script or
// style, the versioned assets, and a label for every control.
func TestPagesRender(t *testing.T) {
	h := newConsole(t, nil)
	pages := []struct {
		target string
		page   string
		has    []string
	}{
		{"/ui/", "overview", []string{`<h1>Overview</h1>`, `id="servers-body"`, `aria-current="page">Overview`}},
		{"/ui/login", "login", []string{`id="login-token"`, `type="password"`, `id="login-client"`}},
		{"/ui/servers/memory", "server", []string{`data-server="memory"`, `<h1 id="server-title">memory</h1>`, `data-action="restart"`, `href="/ui/servers/memory/edit"`}},
		{"/ui/servers/memory/edit", "serverform", []string{`data-edit="memory"`, `value="memory" readonly`, `Save changes`}},
		{"/ui/add-server", "serverform", []string{`<h1>Add a server</h1>`, `id="f-url"`, `Add server`}},
		{"/ui/tokens", "tokens", []string{`id="issue-form"`, `id="revoke-form"`}},
		{"/ui/audit?actor=client%3Aagent&outcome=error", "audit", []string{`value="client:agent"`, `value="error" selected`}},
		{"/ui/try?tool=memory__read_graph", "try", []string{`<title>Try a tool · Atrax</title>`, `data-initial="memory__read_graph"`, `id="try-call"`, `id="try-audit"`, `id="result-h"`, `aria-current="page">Call a tool`}},
		{"/ui/try?kind=nonsense", "try", []string{`<h1>Try a tool</h1>`, `id="try-form"`, `data-initial=""`}},
		{"/ui/try?prompt=memory__hello", "try", []string{`<title>Get a prompt · Atrax</title>`, `id="prompt-form"`, `id="prompt-pick" name="prompt" data-initial="memory__hello"`, `id="prompt-args"`, `id="prompt-get"`, `role="status"`, `<h2 id="result-h" tabindex="-1">Messages</h2>`, `aria-current="page">Get a prompt`}},
		{"/ui/try?kind=prompt", "try", []string{`<h1>Get a prompt</h1>`, `data-initial=""`}},
		{"/ui/try?resource=memory%3A%2F%2Fgraph", "try", []string{`<title>Read a resource · Atrax</title>`, `id="resource-form"`, `data-initial="memory://graph"`, `id="resource-uri" name="resource" value="memory://graph"`, `id="resource-template"`, `id="resource-read"`, `<h2 id="result-h" tabindex="-1">Contents</h2>`, `aria-current="page">Read a resource`}},
		{"/ui/try?template=memory%3A%2F%2Fentity%2F%7Bname%7D", "try", []string{`<h1>Read a resource</h1>`, `id="resource-template" name="template" data-initial="memory://entity/{name}"`, `value=""`}},
	}
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	for _, p := range pages {
		t.Run(p.target, func(t *testing.T) {
			w := do(t, h, "GET", p.target, "")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			checkSecure(t, w)
			if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			body := w.Body.String()
			for _, s := range append(p.has, `data-page="`+p.page+`"`, `data-version="v9.9.9"`, `<html lang="en">`, `href="#main"`) {
				if !strings.Contains(body, s) {
					t.Errorf("the page lacks %s", s)
				}
			}
			if ids := regexp.MustCompile(`\bid="([^"]+)"`).FindAllStringSubmatch(body, -1); len(ids) > 0 {
				seen := map[string]bool{}
				for _, m := range ids {
					if seen[m[1]] {
						t.Errorf("id %q is used twice", m[1])
					}
					seen[m[1]] = true
				}
			}
			tags := scriptTag.FindAllString(body, -1)
			if len(tags) != 1 || !regexp.MustCompile(`^<script src="/ui/static/console\.js\?v=[0-9a-f]{16}" defer>$`).MatchString(tags[0]) {
				t.Errorf("script tags %q, want the one versioned console.js", tags)
			}
			if regexp.MustCompile(`\sstyle=|<style|\son[a-z]+=|javascript:`).MatchString(body) {
				t.Error("the page has inline style or script, which the policy refuses")
			}
			checkLabels(t, body)
		})
	}
}

// checkLabels fails unless every input, select and textarea of the page
// has a <label for> (or is hidden).
func checkLabels(t *testing.T, body string) {
	t.Helper()
	controls := regexp.MustCompile(`<(input|select|textarea)\b([^>]*)>`).FindAllStringSubmatch(body, -1)
	labels := map[string]bool{}
	for _, m := range regexp.MustCompile(`<label for="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		labels[m[1]] = true
	}
	for _, c := range controls {
		if strings.Contains(c[2], `type="hidden"`) {
			continue
		}
		id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(c[2])
		if id == nil || !labels[id[1]] {
			t.Errorf("<%s%s> has no label", c[1], c[2])
		}
	}
}

// What a URL carries reaches the page escaped.
func TestPagesEscape(t *testing.T) {
	h := newConsole(t, nil)
	w := do(t, h, "GET", `/ui/audit?actor=%22%3E%3Cscript%3Ealert(1)%3C/script%3E`, "")
	if strings.Contains(w.Body.String(), "<script>alert") {
		t.Fatal("a query parameter reached the page as markup")
	}
	if !strings.Contains(w.Body.String(), `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("the actor filter is not shown escaped:\n%s", w.Body)
	}
	w = do(t, h, "GET", `/ui/try?resource=%22%3E%3Cscript%3Ealert(1)%3C/script%3E`, "")
	if strings.Contains(w.Body.String(), "<script>alert") {
		t.Fatal("a resource URI reached the page as markup")
	}
	if !strings.Contains(w.Body.String(), `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("the resource URI is not shown escaped:\n%s", w.Body)
	}
}

// The try page shows one form: the kind the URL asks for.
func TestTryKinds(t *testing.T) {
	h := newConsole(t, nil)
	forms := []string{`id="try-form"`, `id="prompt-form"`, `id="resource-form"`}
	for target, want := range map[string]string{
		"/ui/try":                        forms[0],
		"/ui/try?tool=":                  forms[0],
		"/ui/try?kind=tool":              forms[0],
		"/ui/try?kind=PROMPT":            forms[0],
		"/ui/try?kind=prompt":            forms[1],
		"/ui/try?prompt=":                forms[1],
		"/ui/try?prompt=x&kind=resource": forms[1],
		"/ui/try?kind=resource":          forms[2],
		"/ui/try?resource=x":             forms[2],
		"/ui/try?template=x":             forms[2],
	} {
		body := do(t, h, "GET", target, "").Body.String()
		for _, f := range forms {
			if got := strings.Contains(body, f); got != (f == want) {
				t.Errorf("GET %s: has %s: %v, want %v", target, f, got, f == want)
			}
		}
		if !strings.Contains(body, `<a href="/ui/try" aria-current="page">Try</a>`) {
			t.Errorf("GET %s: the main navigation does not mark Try current", target)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := newConsole(t, nil)
	for _, target := range []string{"/ui/nope", "/ui/servers/bad%20name", "/ui/servers/-x", "/ui/servers/%C3%A9", "/ui/servers/" + strings.Repeat("a", 49), "/ui/static/nope.js"} {
		w := do(t, h, "GET", target, "")
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, w.Code)
		}
		checkSecure(t, w)
	}
}

func TestServerNames(t *testing.T) {
	h := newConsole(t, nil)
	for _, name := range []string{"a", "memory", "v1.2", "my_server-2", "9lives", strings.Repeat("a", 48)} {
		if w := do(t, h, "GET", "/ui/servers/"+name, ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `data-server="`+name+`"`) {
			t.Errorf("GET /ui/servers/%s: %d", name, w.Code)
		}
	}
}

// A form posted without the script is dropped, and the page says why.
func TestNoScript(t *testing.T) {
	h := newConsole(t, nil)
	for _, target := range []string{"/ui/login", "/ui/add-server", "/ui/tokens"} {
		r := httptest.NewRequest("POST", target, strings.NewReader("token=s3cret-value"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("POST %s: status %d, want 400", target, w.Code)
		}
		checkSecure(t, w)
		if b := w.Body.String(); !strings.Contains(b, "needs JavaScript") || strings.Contains(b, "s3cret") {
			t.Errorf("POST %s: the page does not explain, or repeats the body:\n%s", target, b)
		}
	}
}

func TestStatic(t *testing.T) {
	h := newConsole(t, nil)
	page := do(t, h, "GET", "/ui/", "").Body.String()
	urls := regexp.MustCompile(`/ui/static/([a-z.]+)\?v=([0-9a-f]+)`).FindAllStringSubmatch(page, -1)
	types := map[string]string{"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
	var seen []string
	for _, u := range urls {
		file, digest := u[1], u[2]
		seen = append(seen, file)
		w := do(t, h, "GET", u[0], "")
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", u[0], w.Code)
		}
		checkSecure(t, w)
		want, err := os.ReadFile("static/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if w.Body.String() != string(want) {
			t.Errorf("%s: the body is not the embedded file", file)
		}
		if got := w.Header().Get("Content-Type"); got != types[file] {
			t.Errorf("%s: Content-Type %q, want %q", file, got, types[file])
		}
		if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s at its digest: Cache-Control %q", file, got)
		}
		// Another version, or none, is checked again each time.
		if got := do(t, h, "GET", "/ui/static/"+file, "").Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s without its digest: Cache-Control %q", file, got)
		}
		if w := do(t, h, "GET", "/ui/static/"+file, "", "If-None-Match", `"`+digest+`"`); w.Code != http.StatusNotModified {
			t.Errorf("%s: If-None-Match of its digest: %d, want 304", file, w.Code)
		}
	}
	slices.Sort(seen)
	if diff := cmp.Diff([]string{"console.css", "console.js", "favicon.svg"}, seen); diff != "" {
		t.Errorf("assets of a page (-want +got):\n%s", diff)
	}
}

// The script builds the page from data with textContent and attributes
// only: no HTML parsing of what servers and callers send, no eval.
func TestScriptBuildsNoMarkup(t *testing.T) {
	js, err := os.ReadFile("static/console.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "document.cookie", "setAttribute('style'", "http://", "https://"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("console.js uses %s", bad)
		}
	}
	if !strings.Contains(string(js), "sessionStorage") {
		t.Error("console.js keeps no session in sessionStorage")
	}
}

// The JSON endpoints are behind the same tokens as the API.
func TestAPIAuth(t *testing.T) {
	h := newConsole(t, fakeCatalog{})
	for _, path := range []string{"/ui/api/session", "/ui/api/owners"} {
		for _, tc := range []struct {
			token, challenge string
		}{
			{"", `Bearer realm="atrax"`},
			{"guess", `Bearer realm="atrax", error="invalid_token", error_description="the token is not valid"`},
			{"revoked", `Bearer realm="atrax", error="invalid_token", error_description="the token has been revoked"`},
		} {
			w := do(t, h, "GET", path, tc.token)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("GET %s with %q: status %d, want 401", path, tc.token, w.Code)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("GET %s with %q: WWW-Authenticate %q, want %q", path, tc.token, got, tc.challenge)
			}
			checkSecure(t, w)
		}
	}
}

func TestSession(t *testing.T) {
	h := newConsole(t, nil)
	tests := []struct {
		token string
		want  map[string]any
	}{
		{"admin", map[string]any{"subject": "static:ops", "kind": "static", "admin": true,
			"scopes": []any{"admin"}, "servers": []any{"*"}, "tools": []any{"*"}}},
		{"viewer", map[string]any{"subject": "static:viewer", "kind": "static", "admin": false,
			"scopes": []any{}, "servers": []any{"memory"}, "tools": []any{"*"}}},
		{"jwt", map[string]any{"subject": "client:agent", "kind": "jwt", "admin": false, "tokenId": "jti-1",
			"expiresAt": "2026-11-27T10:00:00Z", "scopes": []any{}, "servers": []any{"*"}, "tools": []any{"memory__*"}}},
	}
	for _, tt := range tests {
		w := do(t, h, "GET", "/ui/api/session", tt.token)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", tt.token, w.Code)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", tt.token, cc)
		}
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.token, diff)
		}
	}
}

func TestOwners(t *testing.T) {
	read := func(h http.Handler, token string) map[string]map[string]string {
		t.Helper()
		w := do(t, h, "GET", "/ui/api/owners", token)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		var got map[string]map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	h := newConsole(t, fakeCatalog{})
	want := map[string]map[string]string{
		"tools":             {"memory__read_graph": "memory", "github__search": "github"},
		"prompts":           {},
		"resources":         {"memory://graph": "memory"},
		"resourceTemplates": {},
	}
	if diff := cmp.Diff(want, read(h, "admin")); diff != "" {
		t.Errorf("admin (-want +got):\n%s", diff)
	}
	// The catalogue is asked for the caller's principal.
	want["tools"] = map[string]string{"memory__read_graph": "memory"}
	if diff := cmp.Diff(want, read(h, "viewer")); diff != "" {
		t.Errorf("viewer (-want +got):\n%s", diff)
	}
	// Without a catalogue, nothing is grouped.
	empty := map[string]map[string]string{"tools": {}, "prompts": {}, "resources": {}, "resourceTemplates": {}}
	if diff := cmp.Diff(empty, read(newConsole(t, nil), "admin")); diff != "" {
		t.Errorf("no catalogue (-want +got):\n%s", diff)
	}
}

func TestNewNeedsVerifier(t *testing.T) {
	if _, err := console.New(console.Options{}); err == nil {
		t.Error("New without a verifier: no error")
	}
}

// The console serves only its own paths.
func TestRegisterOnlyUI(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") })
	c, err := console.New(console.Options{Verifier: fakeVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	c.Register(mux)
	for target, want := range map[string]string{"/": "other", "/mcp": "other", "/uix": "other", "/ui/login": "Sign in"} {
		w := do(t, mux, "GET", target, "")
		b, _ := io.ReadAll(w.Body)
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %q, want %q in it", target, b, want)
		}
	}
	if w := do(t, mux, "GET", "/ui", ""); w.Code/100 != 3 || w.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", w.Code, w.Header().Get("Location"))
	}
}
