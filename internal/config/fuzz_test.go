package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/internal/config"
)

// fuzzEnv is the environment of the fuzz targets: a few variables set, one
// of them empty.
var fuzzEnv = env(map[string]string{"A": "a", "MCP_TOKEN": "fuzz-token", "EMPTY": "", "PORT": "4100"})

func FuzzParse(f *testing.F) {
	full, err := os.ReadFile(filepath.Join("testdata", "full.jsonc"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte(`{"auth": {"type": "none"}}`))
	f.Add([]byte(`{"port": "${PORT}", "auth": {"type": "token", "options": {"token": "${MCP_TOKEN}"}}, "mcpServers": {"a": {"command": "x", "env": {"K": "${A:-b}"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, config.Options{LookupEnv: fuzzEnv})
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with its error")
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not an errors.Join", err)
			}
			for _, e := range joined.Unwrap() {
				var fe *config.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %T is not a *FieldError: %v", e, e)
				}
			}
			return
		}
		if c.Port < 0 || c.Port > 65535 {
			t.Errorf("Port = %d", c.Port)
		}
		// A server the file accepts, the API accepts too: the config rules
		// are the stricter.
		for _, s := range c.Servers {
			if err := s.Validate("", nil); err != nil {
				t.Errorf("server %q loaded but does not validate: %v", s.Name, err)
			}
		}
	})
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "plain", "${A}", "${UNSET:-d}", "$${A}", "$$${A}", "${", "${}", "${1X}", "$A", "x${EMPTY:-y}z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := config.Expand(s, fuzzEnv)
		if !strings.Contains(s, "$") && (got != s || err != nil) {
			t.Fatalf("Expand(%q) = %q, %v; want it unchanged", s, got, err)
		}
		// Escaping every "${" gives a string that expands back to s.
		escaped := strings.ReplaceAll(s, "${", "$${")
		if got, err := config.Expand(escaped, fuzzEnv); got != s || err != nil {
			t.Fatalf("Expand(%q) = %q, %v; want %q", escaped, got, err, s)
		}
	})
}
