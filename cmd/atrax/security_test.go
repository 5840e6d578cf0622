package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/edge"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

func TestDevelopmentMode(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"ATRAX_ENV": "development"}, true},
		{map[string]string{"NODE_ENV": "development"}, true},
		{map[string]string{"NODE_ENV": "production"}, false},
		{map[string]string{"ATRAX_ENV": "production", "NODE_ENV": "development"}, false},
		{map[string]string{"ATRAX_ENV": "Development"}, false},
	}
	for _, tt := range tests {
		if got := developmentMode(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("developmentMode(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// TestWithTLSOAuthCA checks that the parts that verify OAuth tokens get
// auth.options.ca, and that a bad file stops the start.
func TestWithTLSOAuthCA(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "IdP CA")
	tlstest.WriteFile(t, filepath.Join(dir, "idp-ca.pem"), ca.PEM)
	load := func(t *testing.T, caFile string) *config.Config {
		t.Helper()
		path := filepath.Join(dir, "atrax.json")
		body := `{"auth": {"type": "oauth", "options": {"issuer": "https://idp.example.com", "audience": "https://mcp.example.com/mcp",
			"claims": {"scopePrefix": "atrax:"}, "token": "t", "ca": "` + caFile + `"}}}`
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := load(t, "idp-ca.pem")
	for _, cmd := range []string{"serve", "controlplane", "edge"} {
		cp, e := controlplane.Options{Config: cfg}, edge.Options{Config: cfg}
		if err := withTLS(cmd, &cp, &e); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if got, want := cp.OAuthTLS != nil, cmd != "edge"; got != want {
			t.Errorf("%s: control plane has auth.options.ca: %v, want %v", cmd, got, want)
		}
		if got, want := e.OAuthTLS != nil, cmd != "controlplane"; got != want {
			t.Errorf("%s: edge has auth.options.ca: %v, want %v", cmd, got, want)
		}
		for _, c := range []*tls.Config{cp.OAuthTLS, e.OAuthTLS} {
			if c != nil && !c.RootCAs.Equal(ca.Pool()) {
				t.Errorf("%s: trusts other roots than auth.options.ca", cmd)
			}
		}
	}
	cfg = load(t, "missing.pem")
	for _, cmd := range []string{"serve", "controlplane", "edge"} {
		cp, e := controlplane.Options{Config: cfg}, edge.Options{Config: cfg}
		if err := withTLS(cmd, &cp, &e); err == nil || !strings.HasPrefix(err.Error(), "auth.options.ca: cannot read the certificates") {
			t.Errorf("%s with a missing ca: %v", cmd, err)
		}
	}
}
