package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// The pages. Each is layout.html with the page's own template, which
// defines "content". A page is a shell: headings, forms, labels and empty
// tables that console.js fills through the API with the signed-in token.
var pageNames = []string{"overview", "login", "server", "serverform", "tokens", "audit", "try", "notfound"}

// view is what a page template is given. Nothing in it is secret or comes
// from the control plane: the data arrive in the browser, by token.
type view struct {
	// Page names the page (body data-page, which console.js dispatches on).
	Page string
	// Title is the document title, before " · Atrax".
	Title string
	// Nav is the navigation entry that is current ("" for none).
	Nav     string
	Version string
	// Server is the server a page is about (server, edit).
	Server string
	// Edit is set on the form that changes an existing server.
	Edit bool
	// Query holds the filters (audit) and what to try (try: kind, tool,
	// prompt, resource, template) of the URL, so that the forms show them
	// before any script runs.
	Query map[string]string
	// Message is a notice for the page (the sign-in page without script).
	Message string
}

// validName reports whether name follows the config file's rule for a
// server's name: 1 to 48 of A-Z a-z 0-9 _ . -, starting with a letter or
// a digit.
func validName(name string) bool {
	if name == "" || len(name) > 48 {
		return false
	}
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '_' && r != '.' && r != '-') {
			return false
		}
	}
	return true
}

func (c *Console) parsePages() error {
	c.pages = map[string]*template.Template{}
	funcs := template.FuncMap{
		// asset is the versioned URL of a static file.
		"asset": func(name string) (string, error) {
			a, ok := c.assets[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return Prefix + "static/" + name + "?v=" + a.digest, nil
		},
	}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("console: page %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /ui/{$}", c.page("overview", "Overview", "overview"))
	m.HandleFunc("GET /ui/login", c.page("login", "Sign in", ""))
	m.HandleFunc("POST /ui/login", c.noScript)
	m.HandleFunc("POST /ui/", c.noScript)
	m.HandleFunc("GET /ui/servers/{name}", c.serverPage)
	m.HandleFunc("GET /ui/servers/{name}/edit", c.serverPage)
	m.HandleFunc("GET /ui/add-server", c.page("serverform", "Add a server", "add"))
	m.HandleFunc("GET /ui/tokens", c.page("tokens", "Tokens", "tokens"))
	m.HandleFunc("GET /ui/audit", c.withQuery("audit", "Audit log", "audit", "actor", "action", "server", "tool", "outcome"))
	m.HandleFunc("GET /ui/try", c.tryPage)
	m.HandleFunc("GET /ui/static/{file}", c.static)
	m.Handle("GET /ui/api/session", c.authed(c.session))
	m.Handle("GET /ui/api/owners", c.authed(c.owners))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, http.StatusNotFound, view{Page: "notfound", Title: "Not found"})
	})
}

// page serves a page that needs nothing of the request.
func (c *Console) page(name, title, nav string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.render(w, http.StatusOK, view{Page: name, Title: title, Nav: nav})
	}
}

// withQuery serves a page whose forms show the named query parameters.
func (c *Console) withQuery(name, title, nav string, keys ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := map[string]string{}
		for _, k := range keys {
			q[k] = r.URL.Query().Get(k)
		}
		c.render(w, http.StatusOK, view{Page: name, Title: title, Nav: nav, Query: q})
	}
}

// tryKinds are what the try page tries, each with its title: a tool
// (?tool=NAME), a prompt (?prompt=NAME) or a resource (?resource=URI, or
// ?template=URI-TEMPLATE to start from a resource template). ?kind= asks
// for a kind's empty form.
var tryKinds = map[string]string{"tool": "Try a tool", "prompt": "Get a prompt", "resource": "Read a resource"}

// tryPage serves the try page in the kind its query asks for; a kind it
// does not know is a tool.
func (c *Console) tryPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	switch {
	case q.Has("tool"):
		kind = "tool"
	case q.Has("prompt"):
		kind = "prompt"
	case q.Has("resource"), q.Has("template"):
		kind = "resource"
	}
	if _, ok := tryKinds[kind]; !ok {
		kind = "tool"
	}
	v := view{Page: "try", Title: tryKinds[kind], Nav: "try", Query: map[string]string{"kind": kind}}
	for _, k := range []string{"tool", "prompt", "resource", "template"} {
		v.Query[k] = q.Get(k)
	}
	c.render(w, http.StatusOK, v)
}

// serverPage serves a server's page and the form that edits it.
func (c *Console) serverPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !validName(name) {
		c.render(w, http.StatusNotFound, view{Page: "notfound", Title: "Not found"})
		return
	}
	if strings.HasSuffix(r.URL.Path, "/edit") {
		c.render(w, http.StatusOK, view{Page: "serverform", Title: "Edit " + name, Server: name, Edit: true})
		return
	}
	c.render(w, http.StatusOK, view{Page: "server", Title: name, Nav: "overview", Server: name})
}

// noScript answers a form posted without the script, which would have
// sent it to the API itself: the body is dropped unread (a sign-in form
// carries a credential), and the page says why nothing happened.
func (c *Console) noScript(w http.ResponseWriter, r *http.Request) {
	const why = "The console needs JavaScript: its forms are sent to the gateway's API from the page. Nothing was sent anywhere."
	if r.URL.Path == "/ui/login" {
		c.render(w, http.StatusBadRequest, view{Page: "login", Title: "Sign in", Message: why})
		return
	}
	c.render(w, http.StatusBadRequest, view{Page: "notfound", Title: "JavaScript needed", Message: why})
}

func (c *Console) render(w http.ResponseWriter, status int, v view) {
	v.Version = c.opts.Version
	var buf bytes.Buffer
	if err := c.pages[v.Page].Execute(&buf, v); err != nil {
		c.log.Error("console page not rendered", "page", v.Page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// static serves an embedded file. A URL that names the file's current
// digest (as the pages' URLs do) may be cached for good.
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	a, ok := c.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", `"`+a.digest+`"`)
	if r.URL.Query().Get("v") == a.digest {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
