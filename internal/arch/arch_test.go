package arch_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/atrax-mcp/atrax"

// packages returns, for every package of the module, its imports: direct,
// and with transitive set, all of them.
func packages(t *testing.T, transitive bool) map[string][]string {
	t.Helper()
	field := "Imports"
	if transitive {
		field = "Deps"
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .`+field+` " "}}`, module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkgs[f[0]] = f[1:]
	}
	return pkgs
}

func inside(pkg, prefix string) bool {
	prefix = module + "/" + prefix
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

func isStd(pkg string) bool {
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

// TestWalls checks which packages may import which.
func TestWalls(t *testing.T) {
	direct := packages(t, false)
	deps := packages(t, true)

	type rule struct {
		pkg       string   // package prefix the rule is about
		forbidden []string // import prefixes (module-relative or full) it must not reach
		all       bool     // check transitive imports
		why       string
	}
	rules := []rule{
		{"controlplane", []string{"edge"}, true, "the control plane never depends on the edge"},
		{"edge", []string{"controlplane"}, true, "the edge reaches the control plane only through gen/ and authn"},
		{"internal/config", []string{"edge", "controlplane", "gen", "internal/authn", "net/http", "google.golang.org/grpc"}, true, "config turns a file into values, nothing more"},
		{"internal/authn", []string{"edge", "controlplane", "gen", "internal/config", "internal/oauth", "net/http", "google.golang.org/grpc"}, true, "one verifier for every transport; it reaches an OAuth authorization server only through the OAuthSource it declares"},
		{"internal/oauth", []string{"edge", "controlplane", "gen", "internal/config", "google.golang.org/grpc"}, true, "the authorization server's client fetches metadata, keys and introspection for authn: it knows neither side nor the config file"},
		{"edge/jsonrpc", []string{"edge/session", "edge/router", "edge/upstream", "edge/downstream", "internal", "gen"}, false, "the JSON-RPC core knows nothing above it"},
		{"edge/session", []string{"edge/router", "edge/upstream", "edge/downstream", "net/http"}, false, "a session knows no routing and no transport"},
		{"edge/router", []string{"net/http", "os/exec", "edge/upstream", "edge/downstream", "gen"}, true, "the router knows no HTTP and no process"},
		{"edge/upstream", []string{"edge/router", "edge/session", "edge/downstream", "internal/authn"}, true, "the pool knows no names, sessions or tokens"},
		{"edge/downstream", []string{"edge/router", "edge/upstream"}, true, "transports know no routing"},
		{"edge/limits", []string{"edge/jsonrpc", "edge/session", "edge/router", "edge/upstream", "edge/downstream", "internal/authn", "internal/config", "gen", "net/http"}, true, "limits count subjects; they know no transport, routing or token"},
		{"internal/tlsconf", []string{"edge", "controlplane", "gen", "google.golang.org/grpc"}, true, "TLS configs come from the config file alone"},
		{"internal/cli", []string{"edge", "controlplane"}, true, "the CLI speaks to the control plane through the API only"},
		{"controlplane/registry", []string{"controlplane/store/boltstore", "controlplane/store/etcdstore"}, true, "the registry sees the store through its interfaces only"},
		{"controlplane/issuer", []string{"controlplane/store/boltstore", "controlplane/store/etcdstore"}, true, "the issuer sees the store through its interfaces only"},
		{"controlplane/service", []string{"controlplane/store/boltstore", "controlplane/store/etcdstore"}, true, "the services see the store through its interfaces only"},
		{"controlplane/store", []string{"controlplane/registry", "controlplane/issuer", "controlplane/service", "controlplane/snapshot", "controlplane/fleet", "controlplane/grpcauth", "internal/config", "internal/authn", "internal/authconf", "internal/tlsconf", "internal/serverdef"}, true, "a store keeps state; it knows neither who uses it nor the config file"},
		{"edge", []string{"go.etcd.io/etcd"}, true, "edges never talk to etcd: the control plane is their one source"},
		{"internal/connect", []string{"edge", "controlplane", "gen", "internal/authn", "internal/config"}, true, "the stdio bridge is a plain MCP client"},
		{"edge/console", []string{"controlplane", "gen", "google.golang.org/grpc", "internal/config", "edge/router", "edge/upstream", "edge/downstream", "edge/session", "edge/restgw", "edge/watch"}, true, "the console is pages and a script over the gateway's public API: it knows no control plane, routing or transport"},
	}
	for _, r := range rules {
		src := direct
		if r.all {
			src = deps
		}
		for pkg, imports := range src {
			if !inside(pkg, r.pkg) || strings.HasSuffix(pkg, "_test") {
				continue
			}
			for _, imp := range imports {
				for _, f := range r.forbidden {
					bad := imp == f || strings.HasPrefix(imp, f+"/") || inside(imp, f)
					if bad && !(inside(imp, r.pkg) && inside(f, r.pkg)) {
						t.Errorf("%s imports %s: %s", pkg, imp, r.why)
					}
				}
			}
		}
	}

	// etcd's client is etcdstore's alone (its etcdtest runs etcd for
	// tests): everything else reaches etcd through the store interfaces.
	for pkg, imports := range direct {
		if inside(pkg, "controlplane/store/etcdstore") {
			continue
		}
		for _, imp := range imports {
			if strings.HasPrefix(imp, "go.etcd.io/etcd/") {
				t.Errorf("%s imports %s: only controlplane/store/etcdstore talks to etcd", pkg, imp)
			}
		}
	}

	// internal/config may use only the standard library and hujson.
	for _, imp := range direct[module+"/internal/config"] {
		if !isStd(imp) && imp != "github.com/tailscale/hujson" {
			t.Errorf("internal/config imports %s: only the standard library and hujson are allowed", imp)
		}
	}
	if !slices.Contains(deps[module+"/edge/router"], module+"/edge/jsonrpc") {
		t.Errorf("edge/router no longer imports edge/jsonrpc: is the dependency list read right?")
	}
}
