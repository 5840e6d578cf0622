package e2e

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPersistence changes the registry through REST, ends the process
// right after the last 200 (kill -9, or SIGTERM), starts it again on the
// same data directory and expects exactly what the API last confirmed:
// servers, keys (old tokens verify) and revocations.
func TestPersistence(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		end  func(*proc)
	}{
		{"SIGKILL", (*proc).Kill},
		{"SIGTERM", (*proc).Stop},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := tokenConfig(`"mcpServers": {"cfg1": {"url": "http://127.0.0.1:9/mcp"}},`)
			p := startAtraxIn(t, dir, "serve", cfg, adminEnv())

			kept := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
			revoked := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
			mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth/revoke", adminToken, `{"jti": "`+revoked.Jti+`"}`)

			// confirmed holds, per server, the last object the API
			// answered with; a deleted server is removed.
			confirmed := map[string]map[string]any{}
			for _, s := range []struct{ method, path, body, name string }{
				{"POST", "/servers", `{"name": "a1", "url": "http://127.0.0.1:9/a1", "headers": {"Authorization": "Bearer ${E2E_SECRET}"}}`, "a1"},
				{"POST", "/servers", `{"name": "a2", "url": "http://127.0.0.1:9/a2", "tags": ["x"]}`, "a2"},
				{"POST", "/servers", `{"name": "a3", "url": "http://127.0.0.1:9/a3"}`, "a3"},
				{"PATCH", "/servers/a1", `{"description": "patched", "tools": {"deny": ["rm_*"]}}`, "a1"},
				{"POST", "/servers/a2/stop", "", "a2"},
				{"DELETE", "/servers/a3", "", ""},
				{"POST", "/servers/cfg1/restart", "", "cfg1"},
				{"POST", "/servers/cfg1/stop", "", "cfg1"},
				{"PUT", "/servers/a2", `{"url": "http://127.0.0.1:9/a2-v2", "disabled": true}`, "a2"},
				{"POST", "/servers", `{"name": "a4", "url": "http://127.0.0.1:9/a4"}`, "a4"},
			} {
				r := mustStatus(t, http.StatusOK, s.method, p.HTTP+s.path, adminToken, s.body)
				if s.name == "" {
					delete(confirmed, "a3")
					continue
				}
				confirmed[s.name] = r.JSON(t)
			}
			c.end(p)

			p2 := startAtraxIn(t, dir, "serve", cfg, adminEnv())
			got := mustStatus(t, http.StatusOK, "GET", p2.HTTP+"/servers", adminToken, "").JSON(t)
			want := map[string]any{"servers": []any{confirmed["cfg1"], confirmed["a1"], confirmed["a2"], confirmed["a4"]}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("registry after restart differs from what the API confirmed (-confirmed +after restart):\n%s", diff)
			}
			mustStatus(t, http.StatusNotFound, "GET", p2.HTTP+"/servers/a3", adminToken, "")

			// The signing key and the revocation survived too.
			mustStatus(t, http.StatusOK, "GET", p2.HTTP+"/servers", kept.AccessToken, "")
			mustStatus(t, http.StatusNotFound, "GET", p2.HTTP+"/nope", kept.AccessToken, "")
			checkUnauthorized(t, "revoked token after restart", httpDo(t, "GET", p2.HTTP+"/servers", revoked.AccessToken, ""), true)
			checkUnauthorized(t, "revoked token on the edge after restart", httpDo(t, "GET", p2.HTTP+"/nope", revoked.AccessToken, ""), true)
		})
	}
}

// TestConfigServersFollowTheFile restarts with a changed config file:
// servers removed from the file disappear, changed ones change, API servers
// and what the API did to config servers (stop) survive.
func TestConfigServersFollowTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAtraxIn(t, dir, "serve", tokenConfig(`"mcpServers": {
    "cfgA": {"url": "http://127.0.0.1:9/a"},
    "cfgB": {"url": "http://127.0.0.1:9/b"},
  },`), adminEnv())
	api := mustStatus(t, http.StatusOK, "POST", p.HTTP+"/servers", adminToken, `{"name": "api1", "url": "http://127.0.0.1:9/api"}`).JSON(t)
	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/servers/cfgA/stop", adminToken, "")
	p.Stop()

	p2 := startAtraxIn(t, dir, "serve", tokenConfig(`"mcpServers": {
    "cfgA": {"url": "http://127.0.0.1:9/a-v2", "description": "edited in the file"},
  },`), adminEnv())
	list := mustStatus(t, http.StatusOK, "GET", p2.HTTP+"/servers", adminToken, "").JSON(t)
	if diff := cmp.Diff([]string{"cfgA", "api1"}, serverNames(t, list)); diff != "" {
		t.Errorf("servers after removing cfgB from the file (-want +got):\n%s", diff)
	}
	mustStatus(t, http.StatusNotFound, "GET", p2.HTTP+"/servers/cfgB", adminToken, "")
	if diff := cmp.Diff(api, findServer(list, "api1")); diff != "" {
		t.Errorf("API server after restart (-before +after):\n%s", diff)
	}
	a := findServer(list, "cfgA")
	want := map[string]any{"name": "cfgA", "url": "http://127.0.0.1:9/a-v2", "description": "edited in the file"}
	if diff := cmp.Diff(want, definition(a)); diff != "" {
		t.Errorf("cfgA after editing the file (-want +got):\n%s", diff)
	}
	if a["source"] != "config" || a["state"] != "stopped" {
		t.Errorf("cfgA: source %v, state %v; want config, and stopped as the API left it", a["source"], a["state"])
	}
	// Still read-only through the API.
	mustStatus(t, http.StatusConflict, "DELETE", p2.HTTP+"/servers/cfgA", adminToken, "")
}
