package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAudit makes a sequence of changes and reads them back from GET
// /audit: newest first, with the actor and the outcome, filtered and paged.
func TestAudit(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", `{
  "auth": {"type": "token", "options": {"tokens": [
    {"name": "ops", "token": "${ADMIN_TOKEN}", "scopes": ["admin", "edge"]},
  ]}},
  "mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp"}},
}`, adminEnv())

	type ev struct{ Action, Server, Outcome string }
	var done []ev
	for _, s := range []struct {
		method, path, body string
		status             int
		ev                 ev
	}{
		{"POST", "/servers", `{"name": "a1", "url": "http://127.0.0.1:9/mcp"}`, 200, ev{"server.create", "a1", "ok"}},
		{"POST", "/servers", `{"name": "a2", "url": "http://127.0.0.1:9/mcp"}`, 200, ev{"server.create", "a2", "ok"}},
		{"PATCH", "/servers/a1", `{"description": "x"}`, 200, ev{"server.update", "a1", "ok"}},
		{"POST", "/servers/a1/stop", "", 200, ev{"server.stop", "a1", "ok"}},
		{"POST", "/servers/a1/start", "", 200, ev{"server.start", "a1", "ok"}},
		{"POST", "/servers/a1/restart", "", 200, ev{"server.restart", "a1", "ok"}},
		{"DELETE", "/servers/a2", "", 200, ev{"server.delete", "a2", "ok"}},
		{"POST", "/servers", `{"name": "a1", "url": "http://127.0.0.1:9/mcp"}`, 409, ev{"server.create", "a1", "error"}},
		{"DELETE", "/servers/cfg", "", 409, ev{"server.delete", "cfg", "error"}},
		{"POST", "/auth/keys/rotate", `{}`, 200, ev{"key.rotate", "", "ok"}},
	} {
		mustStatus(t, s.status, s.method, p.HTTP+s.path, adminToken, s.body)
		done = append(done, s.ev)
	}

	list := func(query string) []map[string]any {
		t.Helper()
		body := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/audit"+query, adminToken, "").JSON(t)
		var out []map[string]any
		for _, e := range body["events"].([]any) {
			out = append(out, e.(map[string]any))
		}
		return out
	}
	summary := func(events []map[string]any) []ev {
		var out []ev
		for _, e := range events {
			out = append(out, ev{str(e["action"]), str(e["server"]), str(e["outcome"])})
		}
		return out
	}
	reversed := func(in []ev) []ev {
		out := make([]ev, 0, len(in))
		for i := len(in) - 1; i >= 0; i-- {
			out = append(out, in[i])
		}
		return out
	}

	events := list("")
	if diff := cmp.Diff(reversed(done), summary(events)); diff != "" {
		t.Errorf("GET /audit, newest first (-want +got):\n%s", diff)
	}
	var prev time.Time
	for i, e := range events {
		if e["actor"] != "static:ops" {
			t.Errorf("event %d: actor %v, want static:ops", i, e["actor"])
		}
		if e["id"] == nil {
			t.Errorf("event %d has no id: %v", i, e)
		}
		ts := timeField(t, e, "time")
		if i > 0 && ts.After(prev) {
			t.Errorf("event %d at %v is newer than event %d at %v: want newest first", i, ts, i-1, prev)
		}
		prev = ts
		if e["outcome"] == "error" && e["error"] == nil {
			t.Errorf("event %d failed but records no error: %v", i, e)
		}
	}

	filter := func(keep func(ev) bool) []ev {
		var out []ev
		for _, e := range reversed(done) {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []ev
	}{
		{"?action=server.create", filter(func(e ev) bool { return e.Action == "server.create" })},
		{"?outcome=error", filter(func(e ev) bool { return e.Outcome == "error" })},
		{"?server=a1&action=server.restart", filter(func(e ev) bool { return e.Server == "a1" && e.Action == "server.restart" })},
		{"?actor=" + url.QueryEscape("static:nobody"), nil},
	} {
		if diff := cmp.Diff(c.want, summary(list(c.query))); diff != "" {
			t.Errorf("GET /audit%s (-want +got):\n%s", c.query, diff)
		}
	}

	// Pages of three walk the whole log in order.
	var paged []map[string]any
	token := ""
	for range len(done) {
		body := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/audit?pageSize=3&pageToken="+url.QueryEscape(token), adminToken, "").JSON(t)
		for _, e := range body["events"].([]any) {
			paged = append(paged, e.(map[string]any))
		}
		token = str(body["nextPageToken"])
		if token == "" {
			break
		}
	}
	if diff := cmp.Diff(events, paged); diff != "" {
		t.Errorf("paged GET /audit?pageSize=3 (-one page +pages):\n%s", diff)
	}
}
