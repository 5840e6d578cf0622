package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secret values the config error tests put in files and the environment;
// no message may show them.
const (
	fileSecret = "tok-SECRET-in-file-5e1"
	envSecret  = "tok-SECRET-in-env-9a4"
)

// TestConfigErrors checks that `atrax config validate` and `atrax serve`
// refuse a bad file with a non-zero exit and errors naming each key path,
// and never print a secret.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	auth := `"auth": {"type": "token", "options": {"token": "` + fileSecret + `"}},`
	env := map[string]string{"ENV_SECRET": envSecret}
	for _, c := range []struct {
		name string
		cfg  string
		want []string // each must appear in stderr
	}{
		{"server without command or url", `{` + auth + `
			"mcpServers": {"github": {"args": ["-y", "@modelcontextprotocol/server-github"], "env": {"T": "${ENV_SECRET}"}}}}`,
			[]string{`mcpServers.github: needs "command" (stdio) or "url" (sse, http)`}},
		{"unknown top-level key", `{` + auth + ` "comand": "npx"}`,
			[]string{"comand: unknown key"}},
		{"unknown server key", `{` + auth + ` "mcpServers": {"github": {"comand": "npx", "url": "http://127.0.0.1:9/mcp"}}}`,
			[]string{"mcpServers.github.comand: unknown key"}},
		{"unset variable in a server", `{` + auth + `
			"mcpServers": {"github": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${E2E_UNSET_VAR}"}}}}`,
			[]string{"mcpServers.github.headers", "E2E_UNSET_VAR", "not set"}},
		{"unset variable for the token", `{"auth": {"type": "token", "options": {"token": "${E2E_UNSET_TOKEN}"}}}`,
			[]string{"auth.options.token: variable E2E_UNSET_TOKEN is not set"}},
		{"wrong type", `{` + auth + ` "port": "` + fileSecret + `"}`,
			[]string{"port:"}},
		{"invalid transportType", `{` + auth + ` "mcpServers": {"x": {"url": "http://127.0.0.1:9/mcp", "transportType": "grpc"}}}`,
			[]string{`mcpServers.x.transportType: unknown value "grpc"`}},
		{"bad server name", `{` + auth + ` "mcpServers": {"my server": {"url": "http://127.0.0.1:9/mcp"}}}`,
			[]string{`mcpServers["my server"]`}},
		{"no auth", `{"mcpServers": {}}`,
			[]string{"auth: required"}},
		{"duplicate token", `{"auth": {"type": "token", "options": {"token": "${ENV_SECRET}", "tokens": ["${ENV_SECRET}"]}}}`,
			[]string{"auth.options.tokens[0]"}},
		{"syntax error", "{\n" + auth + "\n  \"port\" 4000\n}",
			[]string{"line 3"}},
		{"every error at once", `{` + auth + ` "comand": 1, "mcpServers": {"a": {}, "b": {"url": "${E2E_UNSET_B}"}}}`,
			[]string{"comand: unknown key", "mcpServers.a: needs", "mcpServers.b.url: variable E2E_UNSET_B is not set"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "bad.json")
			// Written as is: the harness's defaults would hide some mistakes.
			if err := os.WriteFile(path, []byte(c.cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"config", "validate", "-f", path}, {"serve", "-f", path}} {
				stdout, stderr, code := runAtrax(t, env, args...)
				cmd := "atrax " + strings.Join(args[:len(args)-2], " ")
				if code == 0 {
					t.Errorf("%s: exit 0, want non-zero\nstdout: %s\nstderr: %s", cmd, stdout, stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, stderr)
					}
				}
				for _, secret := range []string{fileSecret, envSecret} {
					if strings.Contains(stdout+stderr, secret) {
						t.Errorf("%s: output shows the secret %q:\n%s%s", cmd, secret, stdout, stderr)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "atrax-data")); err == nil {
				t.Errorf("serve created its data directory despite the bad config")
			}
		})
	}

	t.Run("a good file validates", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "good.json")
		cfg := `{
  // comments and trailing commas are JWCC
  ` + auth + `
  "mcpServers": {
    "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"],},
    "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"K": "${ENV_SECRET}"}},
  },
}`
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runAtrax(t, env, "config", "validate", "-f", path)
		if code != 0 || !strings.Contains(stdout, "ok (2 servers, auth token)") {
			t.Errorf("config validate of a good file: exit %d, stdout %q, stderr %q; want exit 0 and \"ok (2 servers, auth token)\"", code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, fileSecret) || strings.Contains(stdout+stderr, envSecret) {
			t.Errorf("config validate shows a secret: %s%s", stdout, stderr)
		}
	})
}

// TestAuthNoneNeedsLoopback: auth.type none is refused at startup unless
// both listeners are on loopback, and on loopback serves everyone.
func TestAuthNoneNeedsLoopback(t *testing.T) {
	t.Parallel()
	// 192.0.2.1 (TEST-NET-1) is not loopback and not on this machine: a
	// gateway that failed to refuse it would still not listen anywhere.
	for _, c := range []struct {
		name, cfg, names string
	}{
		{"public host", `{"host": "192.0.2.1", "auth": {"type": "none"}}`, "host"},
		{"public control plane", `{"auth": {"type": "none"}, "controlPlane": {"address": "192.0.2.1:0"}}`, "controlPlane.address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, t.TempDir(), c.cfg)
			for _, args := range [][]string{{"serve", "-f", path}, {"config", "validate", "-f", path}} {
				_, stderr, code := runAtrax(t, nil, args...)
				if code == 0 {
					t.Errorf("atrax %s: exit 0, want non-zero", args[0])
				}
				for _, w := range []string{"auth.type", "loopback", c.names} {
					if !strings.Contains(stderr, w) {
						t.Errorf("atrax %s: stderr lacks %q:\n%s", args[0], w, stderr)
					}
				}
			}
		})
	}

	t.Run("loopback", func(t *testing.T) {
		t.Parallel()
		p := startAtrax(t, "serve", `{"host": "127.0.0.1", "auth": {"type": "none"}}`, nil)
		mustStatus(t, http.StatusOK, "POST", p.HTTP+"/servers", "", `{"name": "open", "url": "http://127.0.0.1:9/mcp"}`)
		mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers/open", "", "")
		mustStatus(t, http.StatusNotFound, "GET", p.HTTP+"/nope", "", "")
		ev := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/audit", "", "").JSON(t)["events"].([]any)
		if len(ev) == 0 || ev[0].(map[string]any)["actor"] != "anonymous" {
			t.Errorf("audit without auth: got %v, want the create by actor anonymous", ev)
		}
	})
}
