// Package console is Atrax's web console: pages under /ui/ that show an
// edge's servers, their tools, prompts and resources, the audit log and
// tokens, and let an operator add, change, start, stop and restart servers,
// issue and revoke tokens, and call a tool.
//
// The pages are html/template shells with no data in them; one embedded
// script (static/console.js) fills them by calling the gateway's own public
// API from the browser with the signed-in token as a bearer token: the REST
// API (/servers, /status, /audit, /auth, /auth/revoke) and the MCP endpoint
// (/mcp, stateless 2026-07-28 requests). The console therefore holds no
// privilege of its own: what a token may do through curl is what it may do
// here, and the control plane's interceptors decide. Two small JSON
// endpoints of the console's own need a valid token too: /ui/api/session
// (who the token stands for) and /ui/api/owners (which server serves each
// tool, prompt and resource, since the merged lists do not say).
//
// Every answer carries a strict Content-Security-Policy (scripts, styles
// and requests from the edge itself only; no inline script or style; no
// framing), nosniff and no-referrer. The package knows no control plane,
// routing or transport (internal/arch).
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// Prefix is where the console is served.
const Prefix = "/ui/"

// ContentSecurityPolicy is the policy of every console answer: everything
// from the edge itself, nothing inline, nothing framed, forms posted only to
// the edge.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"frame-ancestors 'none'; form-action 'self'"

// Verifier checks a bearer token (authn.Verifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (*authn.Principal, error)
}

// Catalog says which server serves each item a principal may see, by list
// ("tools", "prompts", "resources", "resourceTemplates") and by the name
// (or URI, or URI template) clients see (router.Router.Owners).
type Catalog interface {
	Owners(p *authn.Principal) map[string]map[string]string
}

// Options configure a Console.
type Options struct {
	// Verifier checks the tokens of the console's JSON endpoints. Required.
	Verifier Verifier
	// Catalog groups the merged lists by server; nil groups nothing.
	Catalog Catalog
	// Version is shown in the pages' footer.
	Version string
	Logger  *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the web console.
type Console struct {
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	// assets are the static files by name, with a digest that versions
	// their URLs (so that they can be cached for good).
	assets map[string]asset
	mux    *http.ServeMux
}

type asset struct {
	body        []byte
	digest      string
	contentType string
}

// New returns a console. It fails without a Verifier, and if the embedded
// templates or assets cannot be read, which the package's tests rule out.
func New(opts Options) (*Console, error) {
	if opts.Verifier == nil {
		return nil, errors.New("console: no token verifier")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, log: opts.Logger, assets: map[string]asset{}}
	if err := c.loadAssets(); err != nil {
		return nil, err
	}
	if err := c.parsePages(); err != nil {
		return nil, err
	}
	c.mux = http.NewServeMux()
	c.routes()
	return c, nil
}

// Register adds the console to mux, under Prefix.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle(Prefix, c)
}

// ServeHTTP serves the console's paths (those under Prefix).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure(w.Header())
	c.mux.ServeHTTP(w, r)
}

// secure sets the headers every console answer carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), clipboard-read=()")
}

func (c *Console) loadAssets() error {
	types := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml",
	}
	err := fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(path, "static/")
		ct := "application/octet-stream"
		for ext, t := range types {
			if strings.HasSuffix(name, ext) {
				ct = t
			}
		}
		c.assets[name] = asset{body: body, digest: hex.EncodeToString(sum[:8]), contentType: ct}
		return nil
	})
	if err != nil {
		return fmt.Errorf("console: embedded assets: %w", err)
	}
	return nil
}
