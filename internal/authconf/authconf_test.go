package authconf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/atrax-mcp/atrax/internal/authconf"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/syncbuf"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

const audience = "https://mcp.example.com/mcp"

// privateIdP is an authorization server on https://127.0.0.1 whose
// certificate a private CA issued: OpenID Connect discovery and a JWKS of
// one ES256 key.
type privateIdP struct {
	Issuer string
	CA     *tlstest.CA
	key    *ecdsa.PrivateKey
}

func startPrivateIdP(t *testing.T) *privateIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &privateIdP{CA: tlstest.NewCA(t, "Example Corp Internal CA"), key: key}
	pair := p.CA.Server(t, "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]any{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:])}

	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc any
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			doc = map[string]any{"issuer": p.Issuer, "jwks_uri": p.Issuer + "/keys"}
		case "/keys":
			doc = map[string]any{"keys": []any{jwk}}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	// Not a line per refused handshake.
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.Issuer = srv.URL
	return p
}

// token signs a good access token for audience.
func (p *privateIdP) token(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": p.Issuer, "sub": "alice", "aud": audience, "scope": "mcp:tools",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "ec-1"
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPrivateCA checks auth.options.ca from the config file to the
// verifier: an authorization server whose certificate a private CA issued
// is refused on the system's roots, with the certificate problem in the
// log, and trusted with ca naming that CA's PEM file (relative to the
// config file).
func TestPrivateCA(t *testing.T) {
	idp := startPrivateIdP(t)
	dir := t.TempDir()
	tlstest.WriteFile(t, filepath.Join(dir, "idp-ca.pem"), idp.CA.PEM)
	load := func(t *testing.T, ca string) *config.Config {
		t.Helper()
		opt := ""
		if ca != "" {
			opt = fmt.Sprintf(`, "ca": %q`, ca)
		}
		path := filepath.Join(dir, "atrax.json")
		body := fmt.Sprintf(`{"auth": {"type": "oauth", "options": {"issuer": %q, "audience": %q, "claims": {"scopes": {"mcp:tools": ["server:*"]}}%s}}}`, idp.Issuer, audience, opt)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	verify := func(t *testing.T, cfg *config.Config) (*authn.Principal, string, error) {
		t.Helper()
		idpTLS, err := tlsconf.OAuth(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var logs syncbuf.Buffer
		v := authconf.NewVerifier(cfg.Auth, idpTLS, slog.New(slog.NewTextHandler(&logs, nil)))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := v.Verify(ctx, idp.token(t))
		return p, logs.String(), err
	}

	t.Run("system roots", func(t *testing.T) {
		_, logs, err := verify(t, load(t, ""))
		if !errors.Is(err, authn.ErrInvalidToken) {
			t.Fatalf("Verify = %v, want an invalid token: the keys cannot be fetched", err)
		}
		if !strings.Contains(logs, "certificate signed by unknown authority") {
			t.Errorf("the log does not name the certificate problem:\n%s", logs)
		}
	})
	t.Run("ca", func(t *testing.T) {
		p, logs, err := verify(t, load(t, "idp-ca.pem"))
		if err != nil {
			t.Fatalf("Verify = %v; log:\n%s", err, logs)
		}
		if p.Subject != "oauth:alice" || !p.AllowsServer("memory") {
			t.Errorf("principal %+v, want oauth:alice with every server", p)
		}
	})
	t.Run("another CA", func(t *testing.T) {
		tlstest.WriteFile(t, filepath.Join(dir, "other-ca.pem"), tlstest.NewCA(t, "Other CA").PEM)
		_, logs, err := verify(t, load(t, "other-ca.pem"))
		if !errors.Is(err, authn.ErrInvalidToken) || !strings.Contains(logs, "certificate signed by unknown authority") {
			t.Errorf("Verify = %v, want refused for the certificate; log:\n%s", err, logs)
		}
	})
	t.Run("errors", func(t *testing.T) {
		tlstest.WriteFile(t, filepath.Join(dir, "empty.pem"), []byte("no certificate here\n"))
		for ca, want := range map[string]string{
			"missing.pem": "auth.options.ca: cannot read the certificates: open " + filepath.Join(dir, "missing.pem"),
			"empty.pem":   "auth.options.ca: " + filepath.Join(dir, "empty.pem") + ": no PEM certificate found",
		} {
			if _, err := tlsconf.OAuth(load(t, ca)); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("ca %s: %v, want %s…", ca, err, want)
			}
		}
	})
}
