package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

// Tokens of the CLI tests' gateway (token mode, from the environment).
const (
	cliAdminToken = "e2e-cli-admin-7c31d2"
	cliUserToken  = "e2e-cli-user-0b94e8" // valid, without the admin scope
	cliSecret     = "e2e-cli-agent-secret-5d1"
)

// cliGateway starts `atrax serve` with the CLI tests' tokens, a client
// "agent" and the given mcpServers (a JWCC object).
func cliGateway(t *testing.T, servers string) *proc {
	t.Helper()
	return startAtrax(t, "serve", `{
  "auth": {"type": "token", "options": {
    "token": "${CLI_ADMIN}",
    "tokens": [{"name": "user", "token": "${CLI_USER}"}],
    "clients": [{"id": "agent", "secret": "${CLI_SECRET}", "servers": ["cfg"]}],
  }},
  "mcpServers": `+servers+`,
}`, map[string]string{"CLI_ADMIN": cliAdminToken, "CLI_USER": cliUserToken, "CLI_SECRET": cliSecret})
}

// cliRun is one run of the atrax CLI.
type cliRun struct {
	args           []string
	stdout, stderr string
	code           int
}

// atraxCLI runs `atrax ARGS` against the control plane of p, with token as
// ATRAX_TOKEN (none when empty).
func atraxCLI(t *testing.T, p *proc, token string, args ...string) cliRun {
	t.Helper()
	env := map[string]string{"ATRAX_ADDR": p.GRPC}
	if token != "" {
		env["ATRAX_TOKEN"] = token
	}
	out, errOut, code := runAtrax(t, env, args...)
	return cliRun{args, out, errOut, code}
}

// ok fails the test unless the run exited 0 and printed each of want.
func (r cliRun) ok(t *testing.T, want ...string) cliRun {
	t.Helper()
	return r.expect(t, 0, want...)
}

// expect fails the test unless the run exited with code and printed (on
// stdout or stderr) each of want.
func (r cliRun) expect(t *testing.T, code int, want ...string) cliRun {
	t.Helper()
	if r.code != code {
		t.Errorf("atrax %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("atrax %s: output lacks %q\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), w, r.stdout, r.stderr)
		}
	}
	return r
}

// json decodes stdout as a JSON object.
func (r cliRun) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("atrax %s: stdout is not a JSON object: %v\n%s", strings.Join(r.args, " "), err, r.stdout)
	}
	return m
}

// TestCLIServers drives `atrax servers` against a real control plane:
// tables, JSON and the errors that say what to do.
func TestCLIServers(t *testing.T) {
	t.Parallel()
	p := cliGateway(t, `{"cfg": {"url": "http://127.0.0.1:9/mcp", "description": "from the file"}}`)

	r := atraxCLI(t, p, cliAdminToken, "servers", "list").ok(t)
	if !regexp.MustCompile(`(?m)^NAME\s+STATE\s+TRANSPORT\s+SOURCE\s+TARGET\s+DESCRIPTION\ncfg\s+running\s+http\s+config\s+http://127\.0\.0\.1:9/mcp\s+from the file$`).MatchString(r.stdout) {
		t.Errorf("servers list table:\n%s", r.stdout)
	}

	atraxCLI(t, p, cliAdminToken, "servers", "add", "docs", "--url", "http://127.0.0.1:9/mcp",
		"--header", "Authorization=Bearer ${DOCS_TOKEN}", "--description", "Product docs", "--timeout", "90s", "--disabled").
		ok(t, "Added server docs (http: http://127.0.0.1:9/mcp), desired state stopped.")

	list := atraxCLI(t, p, cliAdminToken, "servers", "list", "-o", "json").ok(t).json(t)
	servers, _ := list["servers"].([]any)
	if len(servers) != 2 {
		t.Fatalf("servers list -o json: %v", list)
	}
	docs := servers[1].(map[string]any)
	if docs["name"] != "docs" || docs["state"] != "stopped" || docs["source"] != "api" || docs["timeout"] != "90s" ||
		docs["headers"].(map[string]any)["Authorization"] != "Bearer ${DOCS_TOKEN}" || docs["createTime"] == nil {
		t.Errorf("docs in servers list -o json: %v", docs)
	}

	atraxCLI(t, p, cliAdminToken, "servers", "get", "docs").ok(t, "url", "http://127.0.0.1:9/mcp", "headers", "Authorization=Bearer ${DOCS_TOKEN}", "description", "Product docs", "disabled")
	if got := atraxCLI(t, p, cliAdminToken, "servers", "get", "cfg", "-o", "json").ok(t).json(t); got["source"] != "config" || got["url"] != "http://127.0.0.1:9/mcp" {
		t.Errorf("servers get cfg -o json: %v", got)
	}

	atraxCLI(t, p, cliAdminToken, "servers", "start", "docs").ok(t, "Server docs: desired state running")
	atraxCLI(t, p, cliAdminToken, "servers", "stop", "docs").ok(t, "Server docs: desired state stopped")
	if got := atraxCLI(t, p, cliAdminToken, "servers", "restart", "cfg", "-o", "json").ok(t).json(t); got["restartTime"] == nil {
		t.Errorf("servers restart -o json: no restartTime: %v", got)
	}
	// Config servers can be restarted, not removed.
	atraxCLI(t, p, cliAdminToken, "servers", "remove", "cfg").expect(t, 1, "defined by the config file", "change it in the config file")

	// Errors, each saying what to do next.
	atraxCLI(t, p, cliAdminToken, "servers", "get", "ghost").expect(t, 1, `no server named "ghost" (see `+"`atrax servers list`)")
	atraxCLI(t, p, cliAdminToken, "servers", "stop", "ghost").expect(t, 1, `no server named "ghost"`)
	atraxCLI(t, p, cliAdminToken, "servers", "add", "docs", "--url", "http://127.0.0.1:9/mcp").expect(t, 1, `a server named "docs" already exists`)
	atraxCLI(t, p, cliAdminToken, "servers", "add", "bad", "--url", "ftp://example.com/mcp").expect(t, 1, "the control plane refused the request:\n  ")
	atraxCLI(t, p, cliAdminToken, "servers", "add", "local", "--", "npx", "-y", "some-server").expect(t, 1, "controlPlane.allowCommands")
	atraxCLI(t, p, "", "servers", "list").expect(t, 1, "no token: set --token or ATRAX_TOKEN to an admin token")
	r = atraxCLI(t, p, "not-a-token", "servers", "list").expect(t, 1, "the control plane refused the token", "set --token or ATRAX_TOKEN to an admin token")
	if strings.Contains(r.stderr, "not-a-token") {
		t.Errorf("the error shows the token: %s", r.stderr)
	}
	atraxCLI(t, p, cliUserToken, "servers", "list").expect(t, 1, "lacks the admin scope")
	// --token beats ATRAX_TOKEN, --addr beats ATRAX_ADDR.
	atraxCLI(t, p, "not-a-token", "servers", "list", "--token", cliAdminToken).ok(t, "docs")
	atraxCLI(t, p, cliAdminToken, "servers", "list", "--addr", closedAddr(t)).expect(t, 1, "cannot reach the control plane at", "(connection refused): is `atrax serve`", "set --addr or ATRAX_ADDR")
	// The edge's HTTP port is no gRPC address.
	atraxCLI(t, p, cliAdminToken, "servers", "list", "--addr", strings.TrimPrefix(p.HTTP, "http://")).expect(t, 1, "does not answer gRPC", "controlPlane.address")
	atraxCLI(t, p, cliAdminToken, "servers", "get").expect(t, 2, "missing NAME")

	atraxCLI(t, p, cliAdminToken, "servers", "remove", "docs").ok(t, "Removed server docs.")
	atraxCLI(t, p, cliAdminToken, "servers", "get", "docs").expect(t, 1, `no server named "docs"`)
	p.checkLogsFree(t, cliAdminToken, cliUserToken)
}

// closedAddr is a 127.0.0.1 address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestCLIToken issues tokens from the caller's token and from a client's
// credentials, uses and revokes one.
func TestCLIToken(t *testing.T) {
	t.Parallel()
	p := cliGateway(t, `{"cfg": {"url": "http://127.0.0.1:9/mcp"}}`)

	atraxCLI(t, p, cliAdminToken, "token", "issue", "--ttl", "10m").ok(t, "token", "eyJ", "jti", "expires in", "10m0s")
	issued := atraxCLI(t, p, cliAdminToken, "token", "issue", "--scope", "server:cfg", "-o", "json").ok(t).json(t)
	narrow, _ := issued["access_token"].(string)
	jti, _ := issued["jti"].(string)
	if !strings.HasPrefix(narrow, "eyJ") || jti == "" || issued["token_type"] != "Bearer" || issued["expires_in"] == nil {
		t.Fatalf("token issue -o json: %v", issued)
	}
	// The narrowed token is no admin token.
	atraxCLI(t, p, narrow, "servers", "list").expect(t, 1, "lacks the admin scope")
	// A JWT derives another.
	if r := atraxCLI(t, p, narrow, "token", "issue", "-q").ok(t); !strings.HasPrefix(r.stdout, "eyJ") || strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Errorf("token issue -q: %q, want one JWT", r.stdout)
	}
	// Client credentials, the secret from the environment.
	out, errOut, code := runAtrax(t, map[string]string{"ATRAX_ADDR": p.GRPC, "ATRAX_CLIENT_SECRET": cliSecret}, "token", "issue", "--client", "agent", "-q")
	if code != 0 || !strings.HasPrefix(out, "eyJ") {
		t.Errorf("token issue --client agent: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	atraxCLI(t, p, "", "token", "issue", "--client", "agent", "--secret", "wrong").expect(t, 1, `the control plane refused client "agent"`)
	atraxCLI(t, p, "not-a-token", "token", "issue").expect(t, 1, "the control plane refused the token")
	atraxCLI(t, p, cliAdminToken, "token", "issue", "--scope", "nonsense").expect(t, 1, "the control plane refused the request")

	atraxCLI(t, p, cliAdminToken, "token", "revoke", jti).ok(t, "Revoked token "+jti)
	r := atraxCLI(t, p, cliAdminToken, "token", "revoke", jti, "-o", "json").ok(t).json(t)
	if r["jti"] != jti || r["revokeTime"] == nil {
		t.Errorf("token revoke -o json: %v", r)
	}
	ok := poll(pollTimeout, func() bool {
		return atraxCLI(t, p, narrow, "token", "issue").code == 1
	})
	if !ok {
		t.Error("a revoked token still derives new ones")
	}
	atraxCLI(t, p, narrow, "servers", "list").expect(t, 1, "the control plane refused the token")
}

// TestCLIStatus waits for a real upstream to run, and shows it.
func TestCLIStatus(t *testing.T) {
	t.Parallel()
	bin := everythingServer(t)
	p := cliGateway(t, fmt.Sprintf(`{"everything": {"command": %q}, "off": {"url": "http://127.0.0.1:9/mcp", "disabled": true}}`, bin))

	r := atraxCLI(t, p, "", "status", "--wait", "--wait-timeout", "60s").ok(t, "registry version", "Edge "+p.EdgeID)
	if !regexp.MustCompile(`(?m)^SERVER\s+STATE\s+TRANSPORT\s+TOOLS\s+RESTARTS\s+LAST ERROR$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^everything\s+running\s+stdio\s+[1-9][0-9]*\s+0\s+-$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^off\s+stopped\s`).MatchString(r.stdout) {
		t.Errorf("status table:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("status --wait, piped: stderr %q, want nothing", r.stderr)
	}
	st := atraxCLI(t, p, "", "status", "-o", "json").ok(t).json(t)
	edges, _ := st["edges"].([]any)
	if len(edges) != 1 || edges[0].(map[string]any)["edgeId"] != p.EdgeID {
		t.Fatalf("status -o json: %v", st)
	}
	var found bool
	for _, u := range edges[0].(map[string]any)["upstreams"].([]any) {
		um := u.(map[string]any)
		if um["name"] == "everything" {
			found = um["state"] == "running" && um["toolCount"] != nil
		}
	}
	if !found {
		t.Errorf("status -o json: everything is not running with tools: %v", edges[0])
	}
	// A server that cannot start ends the wait.
	atraxCLI(t, p, cliAdminToken, "servers", "start", "off").ok(t)
	atraxCLI(t, p, "", "status", "--wait", "--wait-timeout", "3s").expect(t, 1, "off")
	atraxCLI(t, p, "", "status", "--addr", closedAddr(t)).expect(t, 1, "cannot reach the control plane")
}

// TestCLIAudit reads back a known sequence of changes.
func TestCLIAudit(t *testing.T) {
	t.Parallel()
	p := cliGateway(t, `{"cfg": {"url": "http://127.0.0.1:9/mcp"}}`)
	atraxCLI(t, p, cliAdminToken, "servers", "add", "a1", "--url", "http://127.0.0.1:9/mcp").ok(t)
	atraxCLI(t, p, cliAdminToken, "servers", "stop", "a1").ok(t)
	atraxCLI(t, p, cliAdminToken, "servers", "remove", "a1").ok(t)
	atraxCLI(t, p, cliAdminToken, "servers", "remove", "cfg").expect(t, 1)

	r := atraxCLI(t, p, cliAdminToken, "audit").ok(t)
	if !regexp.MustCompile(`(?m)^TIME\s+ACTOR\s+ACTION\s+SERVER\s+TOOL\s+OUTCOME\s+DURATION\s+ERROR$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)\s+static:default\s+server\.delete\s+cfg\s+-\s+error\s`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)\s+static:default\s+server\.create\s+a1\s+-\s+ok\s`).MatchString(r.stdout) {
		t.Errorf("audit table:\n%s", r.stdout)
	}
	got := atraxCLI(t, p, cliAdminToken, "audit", "--server", "a1", "--since", "1h", "-o", "json").ok(t).json(t)
	var actions []string
	for _, e := range got["events"].([]any) {
		actions = append(actions, str(e.(map[string]any)["action"]))
	}
	if strings.Join(actions, " ") != "server.delete server.stop server.create" {
		t.Errorf("audit --server a1: actions %v, want server.delete server.stop server.create", actions)
	}
	got = atraxCLI(t, p, cliAdminToken, "audit", "--action", "server.create", "--limit", "1", "-o", "json").ok(t).json(t)
	if ev := got["events"].([]any); len(ev) != 1 || ev[0].(map[string]any)["server"] != "a1" {
		t.Errorf("audit --action server.create --limit 1: %v", got)
	}
	atraxCLI(t, p, cliAdminToken, "audit", "--actor", "nobody").ok(t, "No audit events match.")
	atraxCLI(t, p, cliUserToken, "audit").expect(t, 1, "lacks the admin scope")
}

// TestCLIInit writes a config, validates it, and refuses to overwrite it.
func TestCLIInit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "atrax.json")
	out, errOut, code := runAtrax(t, nil, "init", "-o", path)
	if code != 0 || !strings.Contains(out, "Wrote "+path) {
		t.Fatalf("init: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runAtrax(t, nil, "config", "validate", "-f", path)
	if code != 0 || !strings.Contains(out, "ok (2 servers, auth token)") {
		t.Errorf("config validate of the init config: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	_, errOut, code = runAtrax(t, nil, "init", "-o", path)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("init over an existing file: exit %d, stderr %q; want 1 and \"already exists\"", code, errOut)
	}
	if again, _ := os.ReadFile(path); string(again) != string(data) {
		t.Error("init without --force changed the file")
	}
	if _, _, code = runAtrax(t, nil, "init", "-o", path, "--force"); code != 0 {
		t.Errorf("init --force: exit %d", code)
	}
	if _, errOut, code = runAtrax(t, nil, "config", "validate"); code != 2 || !strings.Contains(errOut, "-f CONFIG is required") {
		t.Errorf("config validate without -f: exit %d, stderr %q; want 2", code, errOut)
	}
}

// TestCLIServersApprove approves a changed tool of a server with pinTools
// (test/fixtures/changing, as in TestPinTools) with `atrax servers
// approve`.
func TestCLIServersApprove(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "changes")
	p := cliGateway(t, fmt.Sprintf(`{
		"pinned": {"command": %q, "args": ["-marker", %q], "pinTools": true},
		"loose": {"url": "http://127.0.0.1:9/mcp", "disabled": true},
	}`, fixture(t, "changing"), marker))
	waitUpstreams(t, p, "pinned")

	atraxCLI(t, p, cliAdminToken, "servers", "approve", "loose").expect(t, 1, `server "loose" does not pin its tools (pinTools is false)`, `set "pinTools": true`)
	atraxCLI(t, p, cliAdminToken, "servers", "approve", "ghost").expect(t, 1, `no server named "ghost"`)
	atraxCLI(t, p, cliUserToken, "servers", "approve", "pinned").expect(t, 1, "lacks the admin scope")

	// The tool changes under the running server: every edge holds it back.
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !poll(pollTimeout, func() bool { return slices.Equal(pendingOf(t, p, "pinned"), []string{"fetch"}) }) {
		t.Fatalf("pendingTools of pinned = %v, want [fetch]", pendingOf(t, p, "pinned"))
	}
	atraxCLI(t, p, cliAdminToken, "servers", "approve", "pinned", "--tool", "pinned__fetch").
		expect(t, 1, `no connected edge reports a tool "pinned__fetch"`, "without its prefix")

	// The first approval records the trusted "stable" too.
	atraxCLI(t, p, cliAdminToken, "servers", "approve", "pinned", "--tool", "fetch").
		ok(t, "Approved 2 tool definitions of pinned: fetch, stable. Every edge serves them as approved.")
	if !poll(pollTimeout, func() bool { return len(pendingOf(t, p, "pinned")) == 0 }) {
		t.Errorf("pendingTools of pinned after approval = %v", pendingOf(t, p, "pinned"))
	}
	got := atraxCLI(t, p, cliAdminToken, "servers", "approve", "pinned", "-o", "json").ok(t).json(t)
	srv, _ := got["server"].(map[string]any)
	if at, _ := srv["approvedTools"].(map[string]any); len(at) != 2 || at["fetch"] == nil || got["approved"] != nil {
		t.Errorf("servers approve -o json, nothing left to approve: %v", got)
	}
	atraxCLI(t, p, cliAdminToken, "servers", "approve", "pinned").ok(t, "Nothing to approve: every edge serves the approved definitions of pinned's tools.")
	atraxCLI(t, p, cliAdminToken, "servers", "get", "pinned").ok(t, "pinTools", "true")
	audit := atraxCLI(t, p, cliAdminToken, "audit", "--action", "tool.approve", "-o", "json").ok(t).json(t)
	if evs, _ := audit["events"].([]any); len(evs) < 3 {
		t.Errorf("tool.approve events: %v", audit)
	}
}

// tlsCLI runs `atrax ARGS` against the control plane at addr, with the
// admin token and env.
func tlsCLI(t *testing.T, addr string, env map[string]string, args ...string) cliRun {
	t.Helper()
	all := map[string]string{"ATRAX_ADDR": addr, "ATRAX_TOKEN": cliAdminToken}
	for k, v := range env {
		all[k] = v
	}
	out, errOut, code := runAtrax(t, all, args...)
	return cliRun{args, out, errOut, code}
}

// TestCLITLS reaches a control plane with controlPlane.tls: with --ca (or
// ATRAX_CA), and with an error that says what to do without it.
func TestCLITLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "atrax e2e CLI CA")
	other := tlstest.NewCA(t, "another CA")
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	caFile, otherFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	tlstest.WriteFile(t, otherFile, other.PEM)
	cfg := fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"controlPlane": {"tls": {"cert": "cp.pem", "key": "cp-key.pem"}},
		"mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp", "disabled": true}},
	}`, cliAdminToken)
	tlsCLI(t, "", nil, "config", "validate", "-f", writeConfig(t, dir, cfg)).ok(t, "ok (1 servers, auth token)", "TLS files read and checked: controlPlane.tls")
	p := startAtraxIn(t, dir, "serve", cfg, nil)

	tlsCLI(t, p.GRPC, nil, "servers", "list", "--ca", caFile).ok(t, "cfg")
	tlsCLI(t, p.GRPC, map[string]string{"ATRAX_CA": caFile}, "status", "--wait", "--wait-timeout", "30s").ok(t, "Edge "+p.EdgeID)
	tlsCLI(t, p.GRPC, map[string]string{"ATRAX_CA": caFile}, "servers", "start", "cfg").ok(t, "Server cfg: desired state running")

	tlsCLI(t, p.GRPC, nil, "servers", "list").expect(t, 1, "the control plane at "+p.GRPC+" speaks TLS: pass --ca FILE")
	tlsCLI(t, p.GRPC, nil, "status", "--wait", "--wait-timeout", "30s").expect(t, 1, "speaks TLS: pass --ca FILE")
	tlsCLI(t, p.GRPC, nil, "servers", "list", "--tls").expect(t, 1, "presented a certificate that the system's CA certificates do not trust", "pass --ca FILE (or set ATRAX_CA)")
	tlsCLI(t, p.GRPC, map[string]string{"ATRAX_CA": otherFile}, "servers", "list").expect(t, 1, "presented a certificate that ATRAX_CA ("+otherFile+") does not trust")
	tlsCLI(t, p.GRPC, nil, "servers", "list", "--ca", filepath.Join(dir, "missing.pem")).expect(t, 1, "--ca: cannot read the certificates")
	// The edge's plain HTTP port speaks no TLS.
	tlsCLI(t, strings.TrimPrefix(p.HTTP, "http://"), nil, "servers", "list", "--ca", caFile).expect(t, 1, "does not speak TLS", "(then drop --ca)")
	p.checkLogsFree(t, cliAdminToken)
}

// TestCLIMutualTLS reaches a control plane that requires client
// certificates (controlPlane.tls.clientCA), with --cert and --key.
func TestCLIMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "atrax e2e CLI CA")
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	ca.Client(t, "edge").Write(t, dir, "edge")
	cert, key := ca.Client(t, "operator").Write(t, dir, "operator")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	cfg := fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"controlPlane": {
			"tls": {"cert": "cp.pem", "key": "cp-key.pem", "clientCA": "ca.pem"},
			"clientCert": "edge.pem", "clientKey": "edge-key.pem",
		},
	}`, cliAdminToken)
	p := startAtraxIn(t, dir, "serve", cfg, nil)

	tlsCLI(t, p.GRPC, nil, "servers", "list", "--ca", caFile, "--cert", cert, "--key", key).ok(t, "No servers.")
	tlsCLI(t, p.GRPC, map[string]string{"ATRAX_CA": caFile, "ATRAX_CERT": cert, "ATRAX_KEY": key}, "status").ok(t, "Edge "+p.EdgeID)
	tlsCLI(t, p.GRPC, nil, "servers", "list", "--ca", caFile).
		expect(t, 1, "the control plane at "+p.GRPC+" requires a client certificate: pass --cert and --key (or set ATRAX_CERT and ATRAX_KEY)")
	tlsCLI(t, p.GRPC, nil, "servers", "list").expect(t, 1, "speaks TLS and requires a client certificate")
	tlsCLI(t, p.GRPC, nil, "servers", "list", "--ca", caFile, "--cert", cert).expect(t, 2, "--cert needs --key")
	r := tlsCLI(t, p.GRPC, nil, "servers", "list", "--ca", caFile, "--cert", cert, "--key", filepath.Join(dir, "edge-key.pem")).
		expect(t, 1, "--key: "+filepath.Join(dir, "edge-key.pem")+" is not the private key of --cert")
	if strings.Contains(r.stderr, "PRIVATE KEY") {
		t.Errorf("the error shows a key: %s", r.stderr)
	}
}
