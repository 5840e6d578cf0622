package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/cli"
	"github.com/atrax-mcp/atrax/internal/config"
)

// result is one run of the CLI.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the CLI with env as its whole environment.
func run(t *testing.T, env map[string]string, interactive bool, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := cli.Run(ctx, args, cli.Options{
		Stdin:       strings.NewReader(""),
		Stdout:      &out,
		Stderr:      &errb,
		LookupEnv:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Interactive: interactive,
		Version:     "test",
	})
	return result{out.String(), errb.String(), code}
}

// admin runs the CLI against f with the admin token in the environment.
func (f *fake) admin(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, map[string]string{"ATRAX_ADDR": f.addr, "ATRAX_TOKEN": adminToken}, false, args...)
}

func (r result) want(t *testing.T, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	all := r.stdout + r.stderr
	for _, c := range contains {
		if !strings.Contains(all, c) {
			t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", c, r.stdout, r.stderr)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	r := run(t, nil, false, "help")
	r.want(t, 0, "serve -f CONFIG", "servers add NAME", "token issue", "status", "audit", "init", "config validate", "connect URL")
	for _, name := range []string{"servers list", "servers get", "servers add", "servers remove", "servers start", "servers stop", "servers restart", "servers approve", "token issue", "token revoke", "status", "audit", "init", "config validate", "store migrate", "connect", "version"} {
		args := append(strings.Fields(name), "-h")
		r := run(t, nil, false, args...)
		r.want(t, 0, "Usage: atrax "+name)
		if r.stderr != "" {
			t.Errorf("atrax %s -h wrote to stderr: %s", name, r.stderr)
		}
		if h := run(t, nil, false, append([]string{"help"}, strings.Fields(name)...)...); h.stdout != r.stdout {
			t.Errorf("atrax help %s differs from atrax %s -h", name, name)
		}
	}
	run(t, nil, false, "servers", "add", "-h").want(t, 0, "--command PROGRAM", "--args A,B", "--env KEY=VALUE", "--cwd DIR", "--url URL", "--header NAME=VALUE", "--disabled", "--pin-tools", "--addr HOST:PORT", "--token TOKEN", "-o FORMAT")
	run(t, nil, false, "servers", "-h").want(t, 0, "atrax servers list", "atrax servers restart NAME")
	run(t, nil, false, "version").want(t, 0, "atrax test")
}

func TestCLIUsageErrors(t *testing.T) {
	f := startFake(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"Usage: atrax COMMAND"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`, "atrax help"}},
		{[]string{"servers"}, []string{`"servers" needs a subcommand: list, get, add`}},
		{[]string{"servers", "launch"}, []string{`unknown command "servers launch"`}},
		{[]string{"servers", "get"}, []string{"missing NAME", "Usage: atrax servers get NAME"}},
		{[]string{"servers", "get", "a", "b"}, []string{`unexpected argument "b"`}},
		{[]string{"servers", "list", "--bogus"}, []string{"flag provided but not defined: -bogus", `"atrax servers list -h"`}},
		{[]string{"servers", "list", "-o", "yaml"}, []string{`"yaml": want table or json`}},
		{[]string{"servers", "add", "x"}, []string{`needs --command (stdio) or --url (remote)`}},
		{[]string{"servers", "add", "x", "--env", "NOEQUALS", "--url", "http://h"}, []string{`"NOEQUALS": want KEY=VALUE`}},
		{[]string{"servers", "add", "x", "--command", "a", "--", "b"}, []string{"either after -- or with --command"}},
		{[]string{"servers", "list", "--addr", "http://127.0.0.1:4001"}, []string{"want HOST:PORT", "not a URL"}},
		{[]string{"token", "issue", "--ttl", "soon"}, []string{`--ttl "soon"`}},
		{[]string{"token", "issue", "--client", "agent"}, []string{"needs --secret (or ATRAX_CLIENT_SECRET)"}},
		{[]string{"audit", "--since", "yesterday"}, []string{`--since "yesterday"`, "want a duration"}},
		{[]string{"config", "validate"}, []string{"-f CONFIG is required"}},
		{[]string{"store", "migrate", "-f", "fleet.json"}, []string{"--from-data-dir DIR is required", "dataDir"}},
		{[]string{"store", "migrate", "--from-data-dir", "/var/lib/atrax"}, []string{"-f CONFIG is required", "store.etcd"}},
		{[]string{"store"}, []string{`"store" needs a subcommand: migrate`}},
		{[]string{"connect"}, []string{"missing URL"}},
		{[]string{"connect", "localhost:4000/mcp"}, []string{"want an absolute http:// or https:// URL"}},
		{[]string{"connect", "http://127.0.0.1:1/mcp", "--transport", "grpc"}, []string{`--transport "grpc"`}},
	} {
		r := run(t, map[string]string{"ATRAX_ADDR": f.addr, "ATRAX_TOKEN": adminToken}, false, tc.args...)
		if r.code != cli.ExitUsage {
			t.Errorf("atrax %s: exit %d, want %d\nstderr: %s", strings.Join(tc.args, " "), r.code, cli.ExitUsage, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("atrax %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), w, r.stderr)
			}
		}
		if r.stdout != "" {
			t.Errorf("atrax %s: wrote to stdout on a usage error: %s", strings.Join(tc.args, " "), r.stdout)
		}
	}
}

func TestCLIServers(t *testing.T) {
	f := startFake(t)
	f.admin(t, "servers", "list").want(t, 0, "No servers")

	// Flags before and after the name; repeated and comma-separated values.
	f.admin(t, "servers", "add", "--description", "Knowledge graph", "memory", "--command", "npx",
		"--args", "-y,@modelcontextprotocol/server-memory", "--args", "--verbose",
		"--env", "MEMORY_FILE_PATH=${HOME}/m.json", "--env", "DEBUG=1", "--cwd", "/tmp",
		"--timeout", "90s", "--tags", "local,graph").want(t, 0, "Added server memory (stdio: npx -y @modelcontextprotocol/server-memory --verbose), desired state running")
	// The command after --.
	f.admin(t, "servers", "add", "everything", "--disabled", "--", "npx", "-y", "@modelcontextprotocol/server-everything").
		want(t, 0, "Added server everything", "desired state stopped")
	f.admin(t, "servers", "add", "docs", "--url", "https://example.com/mcp", "--header", "Authorization=Bearer ${DOCS_TOKEN}", "--type", "http", "--pin-tools").
		want(t, 0, "Added server docs (http: https://example.com/mcp)")

	want := []*atraxv1.Server{
		{Name: "memory", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-memory", "--verbose"},
			Env: map[string]string{"MEMORY_FILE_PATH": "${HOME}/m.json", "DEBUG": "1"}, Cwd: "/tmp",
			Description: "Knowledge graph", Timeout: "90s", Tags: []string{"local", "graph"}},
		{Name: "everything", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-everything"}, Disabled: true},
		{Name: "docs", Url: "https://example.com/mcp", Headers: map[string]string{"Authorization": "Bearer ${DOCS_TOKEN}"}, Type: "http", PinTools: true},
	}
	if diff := cmp.Diff(want, f.servers.created, protocmp.Transform()); diff != "" {
		t.Errorf("CreateServer requests (-want +got):\n%s", diff)
	}

	// The table: a header and aligned columns, one row per server.
	r := f.admin(t, "servers", "list")
	r.want(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("servers list: %d lines, want a header and 3 rows:\n%s", len(lines), r.stdout)
	}
	if !regexp.MustCompile(`^NAME\s+STATE\s+TRANSPORT\s+SOURCE\s+TARGET\s+DESCRIPTION$`).MatchString(lines[0]) {
		t.Errorf("header: %q", lines[0])
	}
	col := strings.Index(lines[0], "STATE")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("column STATE not aligned in %q", l)
		}
	}
	if !regexp.MustCompile(`^memory\s+running\s+stdio\s+api\s+npx -y @modelcontextprotocol/server-memory --verbose\s+Knowledge graph$`).MatchString(lines[3]) {
		t.Errorf("memory row: %q", lines[3])
	}

	// JSON: the API's message with its JSON names.
	r = f.admin(t, "servers", "list", "-o", "json")
	var list struct {
		Servers []map[string]any `json:"servers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("servers list -o json: %v\n%s", err, r.stdout)
	}
	if len(list.Servers) != 3 || list.Servers[0]["name"] != "docs" || list.Servers[0]["type"] != "http" || list.Servers[2]["createTime"] == nil {
		t.Errorf("servers list -o json: %s", r.stdout)
	}

	r = f.admin(t, "servers", "get", "memory")
	r.want(t, 0, "command", "npx", "env", "DEBUG=1 MEMORY_FILE_PATH=${HOME}/m.json", "tags", "local, graph")
	r = f.admin(t, "servers", "get", "docs", "-o", "json")
	var one map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one["url"] != "https://example.com/mcp" || one["headers"].(map[string]any)["Authorization"] != "Bearer ${DOCS_TOKEN}" {
		t.Errorf("servers get -o json: %v\n%s", err, r.stdout)
	}

	f.admin(t, "servers", "stop", "memory").want(t, 0, "Server memory: desired state stopped")
	f.admin(t, "servers", "start", "memory").want(t, 0, "Server memory: desired state running")
	f.admin(t, "servers", "restart", "memory").want(t, 0, "Asked every edge to restart memory")
	r = f.admin(t, "servers", "restart", "memory", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one["restartTime"] == nil {
		t.Errorf("servers restart -o json: %v\n%s", err, r.stdout)
	}
	f.admin(t, "servers", "remove", "docs").want(t, 0, "Removed server docs.")
	if r := f.admin(t, "servers", "remove", "memory", "-o", "json"); strings.TrimSpace(r.stdout) != "{}" {
		t.Errorf("servers remove -o json: %q, want {}", r.stdout)
	}
}

func TestCLIErrors(t *testing.T) {
	f := startFake(t)
	f.servers.put(&atraxv1.Server{Name: "cfg", Url: "http://127.0.0.1:9/mcp", Source: "config", State: "running"})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()

	env := func(addr, token string) map[string]string {
		return map[string]string{"ATRAX_ADDR": addr, "ATRAX_TOKEN": token}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"unreachable", env(closed, adminToken), []string{"servers", "list"},
			[]string{"cannot reach the control plane at " + closed + " (connection refused): is `atrax serve`", "set --addr or ATRAX_ADDR"}},
		{"no token", env(f.addr, ""), []string{"servers", "list"},
			[]string{"no token: set --token or ATRAX_TOKEN to an admin token"}},
		{"wrong token", env(f.addr, "nope"), []string{"servers", "list"},
			[]string{"the control plane refused the token (token is not valid): set --token or ATRAX_TOKEN to an admin token"}},
		{"flag beats env", env(f.addr, "nope"), []string{"servers", "list", "--token", userToken},
			[]string{"lacks the admin scope", "set --token or ATRAX_TOKEN to an admin token"}},
		{"unknown server", env(f.addr, adminToken), []string{"servers", "get", "ghost"},
			[]string{`no server named "ghost" (see ` + "`atrax servers list`)"}},
		{"unknown server to restart", env(f.addr, adminToken), []string{"servers", "restart", "ghost"},
			[]string{`no server named "ghost"`}},
		{"exists", env(f.addr, adminToken), []string{"servers", "add", "cfg", "--url", "http://x/mcp"},
			[]string{`a server named "cfg" already exists`}},
		{"invalid fields", env(f.addr, adminToken), []string{"servers", "add", "x", "--url", "ftp://x", "--timeout", "soon"},
			[]string{"the control plane refused the request:\n  url: must be an absolute http:// or https:// URL\n  timeout: not a duration"}},
		{"command not allowed", env(f.addr, adminToken), []string{"servers", "add", "x", "--command", "forbidden"},
			[]string{"controlPlane.allowCommands"}},
		{"read-only", env(f.addr, adminToken), []string{"servers", "remove", "cfg"},
			[]string{"defined by the config file", "change it in the config file"}},
		{"token refused", env(f.addr, "nope"), []string{"token", "issue"},
			[]string{"the control plane refused the token: set --token or ATRAX_TOKEN"}},
		{"client refused", env(f.addr, ""), []string{"token", "issue", "--client", "agent", "--secret", "wrong"},
			[]string{`the control plane refused client "agent": check --client and --secret`}},
		{"bad scope", env(f.addr, adminToken), []string{"token", "issue", "--scope", "bogus"},
			[]string{`invalid_scope: unknown scope "bogus"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, false, tc.args...)
			r.want(t, cli.ExitError, tc.want...)
			if r.stdout != "" {
				t.Errorf("stdout on error: %q", r.stdout)
			}
			if strings.Contains(r.stderr, adminToken) || strings.Contains(r.stderr, "nope") && tc.env["ATRAX_TOKEN"] == "nope" {
				t.Errorf("the error shows the token: %s", r.stderr)
			}
		})
	}
}

func TestCLIToken(t *testing.T) {
	f := startFake(t)
	r := f.admin(t, "token", "issue", "--scope", "server:memory", "--scope", "tool:memory__read_*", "--ttl", "15m")
	r.want(t, 0, "token", "eyJ.fake.jwt", "jti", "jti-1", "expires in", "15m0s")
	if got := f.auth.issued[0]; got.GetScope() != "server:memory tool:memory__read_*" || got.GetTtl() != "15m" || got.GetClientId() != "" || got.GetToken() != adminToken {
		t.Errorf("IssueToken request: %v", got)
	}
	// A JWT goes as the caller's bearer token, not as a static token.
	run(t, map[string]string{"ATRAX_ADDR": f.addr, "ATRAX_TOKEN": "eyJhbGciOiJFZERTQSJ9.e30.c2ln"}, false, "token", "issue").
		want(t, cli.ExitError, "the control plane refused the token")
	if got := f.auth.issued[1]; got.GetToken() != "" {
		t.Errorf("a JWT was sent as a static token: %v", got)
	}
	if r := f.admin(t, "token", "issue", "-q"); r.stdout != "eyJ.fake.jwt\n" {
		t.Errorf("token issue -q: %q, want the token alone", r.stdout)
	}
	r = f.admin(t, "token", "issue", "-o", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["access_token"] != "eyJ.fake.jwt" || m["expires_in"] != 900.0 || m["jti"] != "jti-1" {
		t.Errorf("token issue -o json: %v\n%s", err, r.stdout)
	}
	// Client credentials: the secret from the environment, the caller's
	// token not sent.
	r = run(t, map[string]string{"ATRAX_ADDR": f.addr, "ATRAX_TOKEN": "nope", "ATRAX_CLIENT_SECRET": "s3cret"}, false, "token", "issue", "--client", "agent", "-q")
	r.want(t, 0, "eyJ.fake.jwt")
	f.admin(t, "token", "revoke", "jti-1").want(t, 0, "Revoked token jti-1")
	if diff := cmp.Diff([]string{"jti-1"}, f.auth.revoked); diff != "" {
		t.Errorf("revoked (-want +got):\n%s", diff)
	}
}

// statusOf builds a status with one edge whose upstreams have the given
// states, in server order.
func statusOf(states ...string) *atraxv1.GetStatusResponse {
	st := &atraxv1.GetStatusResponse{Status: "ok", Version: "1.2.3", RegistryVersion: 7}
	ed := &atraxv1.EdgeStatus{EdgeId: "e-1", Address: "127.0.0.1:4000", Connected: true, SnapshotVersion: 7,
		Sessions: []*atraxv1.SessionCount{{Transport: "streamable", Count: 2}}}
	for i, s := range states {
		name := []string{"everything", "memory", "docs"}[i]
		st.Servers = append(st.Servers, &atraxv1.ServerStatus{Name: name, TransportType: "stdio", Source: "config", State: "running"})
		u := &atraxv1.UpstreamStatus{Name: name, State: s, TransportType: "stdio", ToolCount: int32(10 + i), Restarts: int32(i)}
		if s == "failed" || s == "restarting" {
			u.LastError = "exit status 1:\nnpm ERR! 404"
		}
		ed.Upstreams = append(ed.Upstreams, u)
	}
	st.Edges = []*atraxv1.EdgeStatus{ed}
	return st
}

func TestCLIStatus(t *testing.T) {
	f := startFake(t)
	noToken := map[string]string{"ATRAX_ADDR": f.addr}

	f.status.set(statusOf("running", "restarting"))
	r := run(t, noToken, false, "status")
	r.want(t, 0, "Atrax 1.2.3, registry version 7: 2 servers, 1 edge connected", "Edge e-1 at 127.0.0.1:4000 (connected, snapshot 7, sessions: streamable 2)")
	if !regexp.MustCompile(`(?m)^SERVER\s+STATE\s+TRANSPORT\s+TOOLS\s+RESTARTS\s+LAST ERROR$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^everything\s+running\s+stdio\s+10\s+0\s+-$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^memory\s+restarting\s+stdio\s+11\s+1\s+exit status 1: npm ERR! 404$`).MatchString(r.stdout) {
		t.Errorf("status table:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "Held back") {
		t.Errorf("status without held tools mentions them:\n%s", r.stdout)
	}
	r = run(t, noToken, false, "status", "-o", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["registryVersion"] != "7" || len(m["edges"].([]any)) != 1 {
		t.Errorf("status -o json: %v\n%s", err, r.stdout)
	}

	// --wait until every server runs: quiet when stderr is not a terminal.
	f.status.set(statusOf("starting", "starting"), statusOf("running", "starting"), statusOf("running", "running"))
	r = run(t, noToken, false, "status", "--wait", "--wait-timeout", "20s")
	r.want(t, 0, "everything", "memory")
	if r.stderr != "" {
		t.Errorf("status --wait, piped: stderr %q, want nothing", r.stderr)
	}
	// On a terminal it shows progress, and clears it.
	f.status.set(statusOf("starting", "starting"), statusOf("running", "starting"), statusOf("running", "running"))
	r = run(t, noToken, true, "status", "--wait")
	r.want(t, 0)
	if !strings.Contains(r.stderr, "waiting for servers: 0/2 running") || !strings.Contains(r.stderr, "1/2 running (memory (starting) on edge e-1)") || !strings.HasSuffix(r.stderr, "\r\x1b[K") {
		t.Errorf("status --wait on a terminal: stderr %q", r.stderr)
	}
	// A failed server ends the wait at once.
	f.status.set(statusOf("running", "failed"))
	r = run(t, noToken, false, "status", "--wait")
	r.want(t, cli.ExitError, "server memory failed on edge e-1: exit status 1: npm ERR! 404")
	if !regexp.MustCompile(`(?m)^memory\s+failed\s+`).MatchString(r.stdout) {
		t.Errorf("status --wait prints the table when it stops waiting; got:\n%s", r.stdout)
	}
	// And time runs out.
	f.status.set(statusOf("running", "starting"))
	r = run(t, noToken, false, "status", "--wait", "--wait-timeout", "1200ms")
	r.want(t, cli.ExitError, "not every server runs after 1.2s: memory (starting) on edge e-1")
	// A fleet: each edge with the control plane that holds its stream; a
	// degraded answer says why.
	fleet := statusOf("running")
	fleet.Status, fleet.Reason = "degraded", "cannot reach etcd: it did not answer within 1s"
	fleet.Edges[0].Replica = "cp-1:4001"
	f.status.set(fleet)
	run(t, noToken, false, "status").want(t, 0, "Degraded: cannot reach etcd", "Edge e-1 at 127.0.0.1:4000 (connected to cp-1:4001, snapshot 7")
	// Tools held back by pinTools: counted beside the tools served, and
	// listed with what to do.
	held := statusOf("running", "running")
	held.Edges[0].Upstreams[1].PendingTools = []string{"write", "delete"}
	f.status.set(held)
	r = run(t, noToken, false, "status")
	r.want(t, 0, "Held back until an admin approves them (pinTools):", "  memory: delete, write (approve with `atrax servers approve memory`)")
	if !regexp.MustCompile(`(?m)^memory\s+running\s+stdio\s+11 \(\+2 held\)\s+`).MatchString(r.stdout) {
		t.Errorf("status with held tools:\n%s", r.stdout)
	}
	// No edge.
	f.status.set(&atraxv1.GetStatusResponse{Version: "1.2.3", Servers: []*atraxv1.ServerStatus{{Name: "memory", State: "running", TransportType: "stdio", Source: "api"}}})
	run(t, noToken, false, "status").want(t, 0, "No edge has reported", "memory")
}

func TestCLIStatusWaitsForTheControlPlane(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	r := run(t, map[string]string{"ATRAX_ADDR": addr}, false, "status", "--wait", "--wait-timeout", "1s")
	r.want(t, cli.ExitError, "gave up after 1s", "cannot reach the control plane at "+addr)
}

func TestCLIAudit(t *testing.T) {
	f := startFake(t)
	now := time.Now()
	for i := range 5 {
		f.audit.events = append(f.audit.events, &atraxv1.AuditEvent{
			Id: "e", Time: timestamppb.New(now.Add(-time.Duration(i) * time.Hour)), Actor: "static:ops",
			Action: "server.create", Server: "s" + string(rune('a'+i)), Outcome: "ok", Duration: durationpb.New(1500 * time.Microsecond),
		})
	}
	f.audit.events = append(f.audit.events, &atraxv1.AuditEvent{Time: timestamppb.New(now.Add(-10 * time.Hour)), Actor: "client:ci", Action: "tool.call", Server: "memory", Tool: "read_graph", Outcome: "error", Error: "upstream\ncrashed"})

	r := f.admin(t, "audit")
	r.want(t, 0, "TIME", "ACTOR", "ACTION", "OUTCOME", "static:ops", "server.create", "sa", "client:ci", "upstream crashed", "1.5ms")
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 6 {
		t.Errorf("audit: %d rows, want 6:\n%s", n, r.stdout)
	}

	r = f.admin(t, "audit", "--actor", "static:ops", "--action", "server.create", "--since", "150m", "--limit", "2", "-o", "json")
	var got struct {
		Events        []map[string]any `json:"events"`
		NextPageToken string           `json:"nextPageToken"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("audit -o json: %v\n%s", err, r.stdout)
	}
	if len(got.Events) != 2 || got.Events[0]["server"] != "sa" || got.NextPageToken == "" {
		t.Errorf("audit --limit 2: %s", r.stdout)
	}
	req := f.audit.requests[len(f.audit.requests)-1]
	if req.GetActor() != "static:ops" || req.GetAction() != "server.create" || req.GetPageSize() != 2 || req.GetStartTime() == nil ||
		req.GetStartTime().AsTime().Sub(now.Add(-150*time.Minute)).Abs() > time.Minute {
		t.Errorf("ListAuditEvents request: %v", req)
	}
	// --limit 0 pages through everything.
	r = f.admin(t, "audit", "--limit", "0", "--since", "3h", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Events) != 3 {
		t.Errorf("audit --since 3h --limit 0: %v %s", err, r.stdout)
	}
	f.admin(t, "audit", "--server", "nothing").want(t, 0, "No audit events match.")
}

func TestCLIInit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "atrax.json")
	r := run(t, nil, false, "init", "-o", path)
	r.want(t, 0, "Wrote "+path, "2 servers", "http://127.0.0.1:4000/mcp", "atrax serve -f "+path, "export ATRAX_TOKEN=atrax_")

	// The file validates with nothing in the environment, and is private.
	cfg, err := config.Load(path, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("the written config does not validate:\n%v", err)
	}
	if len(cfg.Servers) != 2 || cfg.Auth.Type != "token" || cfg.Port != 4000 || cfg.ControlPlane.Address != "127.0.0.1:4001" {
		t.Errorf("config: %d servers, auth %s, port %d, control plane %s", len(cfg.Servers), cfg.Auth.Type, cfg.Port, cfg.ControlPlane.Address)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "//") {
		t.Error("the config has no comments")
	}
	token := regexp.MustCompile(`export ATRAX_TOKEN=(\S+)`).FindStringSubmatch(r.stdout)[1]
	if !strings.Contains(string(data), `"${MCP_TOKEN:-`+token+`}"`) {
		t.Errorf("the token printed is not the file's")
	}

	run(t, nil, false, "init", "-o", path).want(t, cli.ExitError, path+" already exists", "--force")
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Error("init without --force changed the file")
	}
	run(t, nil, false, "init", "-o", path, "--force").want(t, 0, "Wrote")
	if again, _ := os.ReadFile(path); bytes.Equal(again, data) {
		t.Error("init --force kept the old token")
	}
	run(t, nil, false, "config", "validate", "-f", path).want(t, 0, path+": ok (2 servers, auth token)")

	r = run(t, nil, false, "init", "-o", "-")
	if _, err := config.Parse([]byte(r.stdout), config.Options{LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
		t.Errorf("init -o - does not validate: %v", err)
	}
}

func TestCLIConfigValidate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte(`{"auth": {"type": "token", "options": {"token": "${T}"}}, "comand": 1}`), 0o600)
	r := run(t, nil, false, "config", "validate", "-f", path)
	r.want(t, cli.ExitError, "auth.options.token: variable T is not set", "comand: unknown key")
	r = run(t, map[string]string{"T": "x"}, false, "config", "validate", "-f", path)
	r.want(t, cli.ExitError, "comand: unknown key")
	if strings.Contains(r.stderr, "variable T") {
		t.Errorf("T is set, yet: %s", r.stderr)
	}
}

func TestCLIServersApprove(t *testing.T) {
	f := startFake(t)
	f.servers.put(&atraxv1.Server{Name: "pinned", Command: "changing", Source: "config", State: "running", PinTools: true})
	f.servers.put(&atraxv1.Server{Name: "loose", Command: "changing", Source: "config", State: "running"})
	f.servers.pending["pinned"] = map[string]string{"fetch": "d1", "search": "d2", "split": "split"}

	f.admin(t, "servers", "approve", "pinned", "--tool", "fetch").
		want(t, 0, "Approved 1 tool definition of pinned: fetch. Every edge serves them as approved.")
	if got := f.servers.approves[0]; got.GetName() != "pinned" || !slices.Equal(got.GetTools(), []string{"fetch"}) {
		t.Errorf("ApproveServerTools request: %v", got)
	}
	r := f.admin(t, "servers", "approve", "pinned", "--tool", "search,fetch", "-o", "json")
	var got struct {
		Server struct {
			ApprovedTools map[string]string `json:"approvedTools"`
		} `json:"server"`
		Approved []string `json:"approved"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("servers approve -o json: %v\n%s", err, r.stdout)
	}
	if !slices.Equal(got.Approved, []string{"search"}) || got.Server.ApprovedTools["search"] != "d2" || got.Server.ApprovedTools["fetch"] != "d1" {
		t.Errorf("servers approve -o json: %s", r.stdout)
	}
	if got := f.servers.approves[1].GetTools(); !slices.Equal(got, []string{"search", "fetch"}) {
		t.Errorf("--tool search,fetch sent %v", got)
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"not pinned", []string{"loose"}, []string{`server "loose" does not pin its tools (pinTools is false)`, `set "pinTools": true in its definition`}},
		{"edges disagree", []string{"pinned"}, []string{`the edges report 2 different definitions of tool "split"`, "run `atrax servers restart pinned`, wait for `atrax status --wait`, then approve again"}},
		{"prefixed name", []string{"pinned", "--tool", "pinned__fetch"}, []string{`no connected edge reports a tool "pinned__fetch"`, "without its prefix"}},
		{"unknown server", []string{"ghost"}, []string{`no server named "ghost"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.admin(t, append([]string{"servers", "approve"}, tc.args...)...)
			r.want(t, cli.ExitError, tc.want...)
			if r.stdout != "" {
				t.Errorf("stdout on error: %q", r.stdout)
			}
		})
	}
	delete(f.servers.pending["pinned"], "split")
	f.admin(t, "servers", "approve", "pinned").want(t, 0, "Nothing to approve: every edge serves the approved definitions of pinned's tools.")
	run(t, map[string]string{"ATRAX_ADDR": f.addr, "ATRAX_TOKEN": userToken}, false, "servers", "approve", "pinned").want(t, cli.ExitError, "lacks the admin scope")
	f.admin(t, "servers", "approve").want(t, cli.ExitUsage, "missing NAME", "Usage: atrax servers approve NAME")
}
