package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// adminToken is the static token of most test configs; it grants
// everything (it is written as a plain string).
const adminToken = "e2e-admin-token-3f9c1a7d"

// secretValue is put in the environment of atrax processes to check that
// ${VAR} references are stored as written and the value never shows.
const secretValue = "e2e-leak-canary-81b2"

// tokenConfig is a config in token mode with adminToken (from the
// environment, as the seed recommends) and the given extra top-level JWCC
// members, which must end with a comma when not empty.
func tokenConfig(extra string) string {
	return `{
  // The seed's format: a static token from the environment.
  "auth": {"type": "token", "options": {"token": "${ADMIN_TOKEN}"}},
  ` + extra + `
}`
}

// adminEnv is the environment the token configs need.
func adminEnv() map[string]string {
	return map[string]string{"ADMIN_TOKEN": adminToken, "E2E_SECRET": secretValue}
}

// readOnlyFields are the server fields the API sets and callers cannot.
var readOnlyFields = []string{"source", "state", "createTime", "updateTime", "restartTime"}

// definition returns a copy of a server's JSON without its read-only
// fields: what the caller wrote.
func definition(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	for _, k := range readOnlyFields {
		delete(out, k)
	}
	return out
}

// jsonObject decodes a JSON object literal written in a test.
func jsonObject(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, s)
	}
	return m
}

// timeField parses an RFC 3339 timestamp field of a server.
func timeField(t testing.TB, s map[string]any, key string) time.Time {
	t.Helper()
	v, ok := s[key].(string)
	if !ok {
		t.Fatalf("%s: got %v, want an RFC 3339 timestamp; server: %v", key, s[key], s)
	}
	ts, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return ts
}

// serverNames returns the names in a {"servers": [...]} body, in order.
func serverNames(t testing.TB, body map[string]any) []string {
	t.Helper()
	list, ok := body["servers"].([]any)
	if !ok {
		t.Fatalf(`got %v, want {"servers": [...]}`, body)
	}
	names := []string{}
	for _, s := range list {
		names = append(names, str(s.(map[string]any)["name"]))
	}
	return names
}

// findServer returns the server named name in a {"servers": [...]} body.
func findServer(body map[string]any, name string) map[string]any {
	list, _ := body["servers"].([]any)
	for _, s := range list {
		if m, ok := s.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}

// errorMessage returns the "message" of a google.rpc.Status error body.
func errorMessage(t testing.TB, r *response) string {
	t.Helper()
	var body struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("error body is not JSON: %v\n%s", err, r.Body)
	}
	return body.Message
}

// TestRESTServers drives the server registry through the REST API on the
// edge's public port: every route, every status the issue promises.
func TestRESTServers(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", tokenConfig(`
  "mcpServers": {
    "cfg": {"url": "http://127.0.0.1:9/mcp", "description": "from the file",}, // trailing comma: JWCC
  },`), adminEnv())
	base := p.HTTP + "/servers"
	defer func() { p.checkLogsFree(t, adminToken, secretValue) }()

	createBody := `{
		"name": "remote",
		"url": "http://127.0.0.1:9/mcp",
		"headers": {"Authorization": "Bearer ${E2E_SECRET}", "X-Plain": "plain"},
		"description": "a remote server",
		"tags": ["a", "b"],
		"tools": {"allow": ["read_*", "list_*"], "deny": ["read_secret"]},
		"timeout": "30s",
		"prefix": "rem"
	}`
	var created map[string]any
	t.Run("create", func(t *testing.T) {
		r := mustStatus(t, http.StatusOK, "POST", base, adminToken, createBody)
		created = r.JSON(t)
		if diff := cmp.Diff(jsonObject(t, createBody), definition(created)); diff != "" {
			t.Errorf("POST /servers returned a different definition than was sent (-sent +got):\n%s", diff)
		}
		if got, want := created["source"], "api"; got != want {
			t.Errorf("source: got %v, want %q", got, want)
		}
		if got, want := created["state"], "running"; got != want {
			t.Errorf("state: got %v, want %q", got, want)
		}
		if c, u := timeField(t, created, "createTime"), timeField(t, created, "updateTime"); !c.Equal(u) {
			t.Errorf("a new server: createTime %v != updateTime %v", c, u)
		}
		if strings.Contains(string(r.Body), secretValue) {
			t.Errorf("response holds the value of E2E_SECRET; want ${E2E_SECRET} as written: %s", r.Body)
		}
	})
	if created == nil {
		t.FailNow()
	}

	t.Run("get returns what create returned", func(t *testing.T) {
		got := mustStatus(t, http.StatusOK, "GET", base+"/remote", adminToken, "").JSON(t)
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("GET /servers/remote (-created +got):\n%s", diff)
		}
	})

	t.Run("list", func(t *testing.T) {
		r := mustStatus(t, http.StatusOK, "GET", base, adminToken, "")
		body := r.JSON(t)
		if diff := cmp.Diff([]string{"cfg", "remote"}, serverNames(t, body)); diff != "" {
			t.Errorf("GET /servers names (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(created, findServer(body, "remote")); diff != "" {
			t.Errorf("GET /servers entry for remote (-created +got):\n%s", diff)
		}
		cfg := findServer(body, "cfg")
		if got, want := cfg["source"], "config"; got != want {
			t.Errorf("cfg source: got %v, want %q", got, want)
		}
		if strings.Contains(string(r.Body), secretValue) {
			t.Errorf("GET /servers holds the value of E2E_SECRET: %s", r.Body)
		}
	})

	t.Run("status shows no secrets", func(t *testing.T) {
		r := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/status", "", "")
		for _, s := range []string{secretValue, "E2E_SECRET", adminToken, "Bearer"} {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("GET /status contains %q: %s", s, r.Body)
			}
		}
		if got := serverNamesOfStatus(t, r.JSON(t)); !cmp.Equal(got, []string{"cfg", "remote"}) {
			t.Errorf("GET /status servers: got %v, want [cfg remote]", got)
		}
	})

	var patched map[string]any
	t.Run("patch merges only the fields sent", func(t *testing.T) {
		r := mustStatus(t, http.StatusOK, "PATCH", base+"/remote", adminToken,
			`{"description": "patched", "tools": {"allow": ["write_*"]}}`)
		patched = r.JSON(t)
		want := definition(created)
		want["description"] = "patched"
		want["tools"] = map[string]any{"allow": []any{"write_*"}, "deny": []any{"read_secret"}}
		if diff := cmp.Diff(want, definition(patched)); diff != "" {
			t.Errorf("PATCH result (-want +got):\n%s", diff)
		}
		if got, want := patched["createTime"], created["createTime"]; got != want {
			t.Errorf("createTime changed by PATCH: got %v, want %v", got, want)
		}
		if !timeField(t, patched, "updateTime").After(timeField(t, created, "updateTime")) {
			t.Errorf("updateTime did not advance: %v, then %v", created["updateTime"], patched["updateTime"])
		}
		got := mustStatus(t, http.StatusOK, "GET", base+"/remote", adminToken, "").JSON(t)
		if diff := cmp.Diff(patched, got); diff != "" {
			t.Errorf("GET after PATCH (-patch response +get):\n%s", diff)
		}
	})

	t.Run("put replaces the definition", func(t *testing.T) {
		r := mustStatus(t, http.StatusOK, "PUT", base+"/remote", adminToken, `{"url": "http://127.0.0.1:9/v2", "transportType": "http"}`)
		put := r.JSON(t)
		want := map[string]any{"name": "remote", "url": "http://127.0.0.1:9/v2", "transportType": "http"}
		if diff := cmp.Diff(want, definition(put)); diff != "" {
			t.Errorf("PUT result: fields not sent must disappear (-want +got):\n%s", diff)
		}
		if got, want := put["createTime"], created["createTime"]; got != want {
			t.Errorf("createTime changed by PUT: got %v, want %v", got, want)
		}
		got := mustStatus(t, http.StatusOK, "GET", base+"/remote", adminToken, "").JSON(t)
		if diff := cmp.Diff(put, got); diff != "" {
			t.Errorf("GET after PUT (-put response +get):\n%s", diff)
		}
	})

	t.Run("stop start restart", func(t *testing.T) {
		before := mustStatus(t, http.StatusOK, "GET", base+"/remote", adminToken, "").JSON(t)
		stopped := mustStatus(t, http.StatusOK, "POST", base+"/remote/stop", adminToken, "").JSON(t)
		if got := stopped["state"]; got != "stopped" {
			t.Errorf("after stop: state %v, want stopped", got)
		}
		if !timeField(t, stopped, "updateTime").After(timeField(t, before, "updateTime")) {
			t.Errorf("stop did not advance updateTime")
		}
		if got := mustStatus(t, http.StatusOK, "GET", base+"/remote", adminToken, "").JSON(t)["state"]; got != "stopped" {
			t.Errorf("GET after stop: state %v, want stopped", got)
		}
		started := mustStatus(t, http.StatusOK, "POST", base+"/remote/start", adminToken, "").JSON(t)
		if got := started["state"]; got != "running" {
			t.Errorf("after start: state %v, want running", got)
		}
		if _, ok := started["restartTime"]; ok {
			t.Errorf("restartTime set before any restart: %v", started["restartTime"])
		}
		mustStatus(t, http.StatusOK, "POST", base+"/remote/stop", adminToken, "")
		r1 := mustStatus(t, http.StatusOK, "POST", base+"/remote/restart", adminToken, "").JSON(t)
		if got := r1["state"]; got != "running" {
			t.Errorf("restart of a stopped server: state %v, want running", got)
		}
		t1 := timeField(t, r1, "restartTime")
		r2 := mustStatus(t, http.StatusOK, "POST", base+"/remote/restart", adminToken, "").JSON(t)
		if t2 := timeField(t, r2, "restartTime"); !t2.After(t1) {
			t.Errorf("second restart: restartTime %v, want after %v", t2, t1)
		}
		if diff := cmp.Diff(definition(before), definition(r2)); diff != "" {
			t.Errorf("start/stop/restart changed the definition (-before +after):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		mustStatus(t, http.StatusOK, "DELETE", base+"/remote", adminToken, "")
		mustStatus(t, http.StatusNotFound, "GET", base+"/remote", adminToken, "")
		body := mustStatus(t, http.StatusOK, "GET", base, adminToken, "").JSON(t)
		if diff := cmp.Diff([]string{"cfg"}, serverNames(t, body)); diff != "" {
			t.Errorf("GET /servers after delete (-want +got):\n%s", diff)
		}
		mustStatus(t, http.StatusNotFound, "DELETE", base+"/remote", adminToken, "")
	})

	t.Run("unknown server is 404", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/servers/nope", ""},
			{"PUT", "/servers/nope", `{"url": "http://127.0.0.1:9/mcp"}`},
			{"PATCH", "/servers/nope", `{"description": "x"}`},
			{"DELETE", "/servers/nope", ""},
			{"POST", "/servers/nope/start", ""},
			{"POST", "/servers/nope/stop", ""},
			{"POST", "/servers/nope/restart", ""},
		} {
			r := httpDo(t, c.method, p.HTTP+c.path, adminToken, c.body)
			if r.Status != http.StatusNotFound {
				t.Errorf("%s %s: got %d, want 404; body: %s", c.method, c.path, r.Status, r.Body)
			}
		}
	})

	t.Run("bad input is 400 naming the field", func(t *testing.T) {
		mustStatus(t, http.StatusOK, "POST", base, adminToken, `{"name": "victim", "url": "http://127.0.0.1:9/mcp"}`)
		for _, c := range []struct {
			name, method, path, body string
			field                    string // must appear in the message
		}{
			{"unknown field", "POST", "/servers", `{"name": "u1", "url": "http://127.0.0.1:9/mcp", "bogusField": 1}`, "bogusField"},
			{"misspelt key", "POST", "/servers", `{"name": "u1", "comand": "npx"}`, "comand"},
			{"invalid transportType", "POST", "/servers", `{"name": "u1", "url": "http://127.0.0.1:9/mcp", "transportType": "grpc"}`, "transportType"},
			{"bad name", "POST", "/servers", `{"name": "bad name!", "url": "http://127.0.0.1:9/mcp"}`, "name"},
			{"relative url", "POST", "/servers", `{"name": "u1", "url": "/mcp"}`, "url"},
			{"wrong type", "POST", "/servers", `{"name": "u1", "url": "http://127.0.0.1:9/mcp", "args": "-y"}`, "args"},
			{"bad timeout in PATCH", "PATCH", "/servers/victim", `{"timeout": "soon"}`, "timeout"},
			{"unknown field in PUT", "PUT", "/servers/victim", `{"url": "http://127.0.0.1:9/mcp", "extraThing": true}`, "extraThing"},
			{"url on stdio", "PUT", "/servers/victim", `{"url": "http://127.0.0.1:9/mcp", "transportType": "stdio"}`, "url"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := httpDo(t, c.method, p.HTTP+c.path, adminToken, c.body)
				if r.Status != http.StatusBadRequest {
					t.Fatalf("%s %s %s: got %d, want 400; body: %s", c.method, c.path, c.body, r.Status, r.Body)
				}
				if msg := errorMessage(t, r); !strings.Contains(msg, c.field) {
					t.Errorf("message %q does not name the field %q", msg, c.field)
				}
			})
		}
		got := mustStatus(t, http.StatusOK, "GET", base+"/victim", adminToken, "").JSON(t)
		if want := map[string]any{"name": "victim", "url": "http://127.0.0.1:9/mcp"}; !cmp.Equal(want, definition(got)) {
			t.Errorf("a refused change altered the server: got %v, want %v", definition(got), want)
		}
		mustStatus(t, http.StatusNotFound, "GET", base+"/u1", adminToken, "")
	})

	t.Run("transportType names the field in the details", func(t *testing.T) {
		r := mustStatus(t, http.StatusBadRequest, "POST", base, adminToken, `{"name": "u2", "url": "http://127.0.0.1:9/mcp", "transportType": "grpc"}`)
		var body struct {
			Details []struct {
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		var fields []string
		for _, d := range body.Details {
			for _, v := range d.FieldViolations {
				fields = append(fields, v.Field)
			}
		}
		if diff := cmp.Diff([]string{"transportType"}, fields); diff != "" {
			t.Errorf("BadRequest field violations (-want +got):\n%s\nbody: %s", diff, r.Body)
		}
	})

	t.Run("VS Code type alias", func(t *testing.T) {
		// docs/configuration.md: "The REST API takes the same shape (plus
		// "name") and checks it by the same rules" as mcpServers, where
		// "type" is the VS Code spelling of "transportType".
		r := httpDo(t, "POST", base, adminToken, `{"name": "vscode", "type": "http", "url": "http://127.0.0.1:9/mcp"}`)
		if r.Status != http.StatusOK {
			t.Fatalf(`POST /servers with "type" (a config key): got %d, want 200; body: %s`, r.Status, r.Body)
		}
		got := definition(r.JSON(t))
		if got["type"] != "http" && got["transportType"] != "http" {
			t.Errorf(`created server %v: want type or transportType "http"`, got)
		}
	})

	t.Run("conflicts are 409", func(t *testing.T) {
		mustStatus(t, http.StatusOK, "POST", base, adminToken, `{"name": "dup", "url": "http://127.0.0.1:9/mcp"}`)
		cfgBefore := mustStatus(t, http.StatusOK, "GET", base+"/cfg", adminToken, "").JSON(t)
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/servers", `{"name": "dup", "url": "http://127.0.0.1:9/other"}`},
			{"POST", "/servers", `{"name": "cfg", "url": "http://127.0.0.1:9/other"}`},
			{"PUT", "/servers/cfg", `{"url": "http://127.0.0.1:9/other"}`},
			{"PATCH", "/servers/cfg", `{"description": "changed"}`},
			{"DELETE", "/servers/cfg", ""},
		} {
			r := httpDo(t, c.method, p.HTTP+c.path, adminToken, c.body)
			if r.Status != http.StatusConflict {
				t.Errorf("%s %s %s: got %d, want 409; body: %s", c.method, c.path, c.body, r.Status, r.Body)
			}
		}
		got := mustStatus(t, http.StatusOK, "GET", base+"/cfg", adminToken, "").JSON(t)
		if diff := cmp.Diff(cfgBefore, got); diff != "" {
			t.Errorf("refused changes altered the config server (-before +after):\n%s", diff)
		}
		if got := mustStatus(t, http.StatusOK, "GET", base+"/dup", adminToken, "").JSON(t)["url"]; got != "http://127.0.0.1:9/mcp" {
			t.Errorf("duplicate create replaced the server: url %v", got)
		}
	})

	t.Run("config server can be stopped, started and restarted", func(t *testing.T) {
		for _, c := range []struct{ action, state string }{
			{"stop", "stopped"}, {"start", "running"}, {"stop", "stopped"}, {"restart", "running"},
		} {
			got := mustStatus(t, http.StatusOK, "POST", base+"/cfg/"+c.action, adminToken, "").JSON(t)
			if got["state"] != c.state {
				t.Errorf("%s cfg: state %v, want %s", c.action, got["state"], c.state)
			}
		}
	})

	t.Run("stdio refused without allowCommands", func(t *testing.T) {
		r := mustStatus(t, http.StatusForbidden, "POST", base, adminToken, `{"name": "tool", "command": "echo", "args": ["hi"]}`)
		if msg := errorMessage(t, r); !strings.Contains(msg, "allowCommands") {
			t.Errorf("403 message %q does not point at controlPlane.allowCommands", msg)
		}
		mustStatus(t, http.StatusNotFound, "GET", base+"/tool", adminToken, "")
		// Turning a remote API server into a stdio one is refused too.
		mustStatus(t, http.StatusForbidden, "PUT", base+"/dup", adminToken, `{"command": "echo"}`)
		if got := mustStatus(t, http.StatusOK, "GET", base+"/dup", adminToken, "").JSON(t); got["command"] != nil {
			t.Errorf("refused PUT changed the server: %v", got)
		}
	})
}

// serverNamesOfStatus returns the server names of a GET /status body.
func serverNamesOfStatus(t testing.TB, body map[string]any) []string {
	t.Helper()
	list, _ := body["servers"].([]any)
	var names []string
	for _, s := range list {
		names = append(names, str(s.(map[string]any)["name"]))
	}
	return names
}

// TestRESTAllowCommands checks that stdio servers go through the API only
// as far as controlPlane.allowCommands allows, and that an empty registry
// lists as {"servers": []}.
func TestRESTAllowCommands(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		allow   string
		allowed map[string]bool // command -> may be created
	}{
		{"absent", ``, map[string]bool{"echo": false, "cat": false}},
		{"false", `"allowCommands": false`, map[string]bool{"echo": false, "cat": false}},
		{"true", `"allowCommands": true`, map[string]bool{"echo": true, "cat": true}},
		{"list", `"allowCommands": ["echo"]`, map[string]bool{"echo": true, "cat": false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := startAtrax(t, "serve", tokenConfig(`"controlPlane": {`+c.allow+`},`), adminEnv())

			r := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", adminToken, "")
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(r.Body, &raw); err != nil {
				t.Fatal(err)
			}
			if got := string(raw["servers"]); got != "[]" || len(raw) != 1 {
				t.Errorf(`GET /servers with no servers: got %s, want {"servers": []}`, r.Body)
			}

			for _, cmd := range []string{"echo", "cat"} {
				name := "stdio-" + cmd
				body := fmt.Sprintf(`{"name": %q, "command": %q, "args": ["x"], "env": {"GREETING": "${E2E_SECRET}"}}`, name, cmd)
				r := httpDo(t, "POST", p.HTTP+"/servers", adminToken, body)
				want := http.StatusForbidden
				if c.allowed[cmd] {
					want = http.StatusOK
				}
				if r.Status != want {
					t.Errorf("create stdio %q with allowCommands %s: got %d, want %d; body: %s", cmd, c.allow, r.Status, want, r.Body)
					continue
				}
				if want == http.StatusOK {
					got := r.JSON(t)
					if diff := cmp.Diff(jsonObject(t, body), definition(got)); diff != "" {
						t.Errorf("created stdio server (-sent +got):\n%s", diff)
					}
				} else {
					mustStatus(t, http.StatusNotFound, "GET", p.HTTP+"/servers/"+name, adminToken, "")
				}
			}
			if c.name == "list" {
				// An allowed server may not be changed to run another command.
				r := httpDo(t, "PATCH", p.HTTP+"/servers/stdio-echo", adminToken, `{"command": "cat"}`)
				if r.Status != http.StatusForbidden {
					t.Errorf("PATCH command to one not in allowCommands: got %d, want 403; body: %s", r.Status, r.Body)
				}
			}
		})
	}
}
