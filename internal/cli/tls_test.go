package cli_test

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/cli"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

// pki is the certificates of the TLS tests, as files in dir: ca.pem (the
// CA of the control plane's certificate, cp.pem for 127.0.0.1), other.pem
// (another CA), client.pem and client-key.pem (a client certificate of
// ca), intruder.pem and intruder-key.pem (one of the other CA), and
// notpem.txt.
type pki struct {
	dir string
	ca  *tlstest.CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "control plane CA")
	other := tlstest.NewCA(t, "another CA")
	tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	tlstest.WriteFile(t, filepath.Join(dir, "other.pem"), other.PEM)
	tlstest.WriteFile(t, filepath.Join(dir, "notpem.txt"), []byte("not a certificate\n"))
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	ca.Server(t, "cp.example.com").Write(t, dir, "named")
	ca.Client(t, "operator").Write(t, dir, "client")
	other.Client(t, "intruder").Write(t, dir, "intruder")
	return &pki{dir: dir, ca: ca}
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// startTLSFake starts the fake with the certificate cert (cp or named),
// its TLS config made by tlsconf as the control plane's is; clientCA, when
// set, requires client certificates of that CA file. maxVersion, when
// set, caps the TLS version.
func (p *pki) startTLSFake(t *testing.T, cert, clientCA string, maxVersion uint16) *fake {
	t.Helper()
	cfg := &config.Config{Path: p.path("atrax.json"), ControlPlane: config.ControlPlane{
		TLS: &config.TLS{Cert: cert + ".pem", Key: cert + "-key.pem", ClientCA: clientCA},
	}}
	tc, err := tlsconf.ControlPlane(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc.MaxVersion = maxVersion
	return startFakeWith(t, grpc.Creds(credentials.NewTLS(tc)))
}

func TestCLITLS(t *testing.T) {
	p := newPKI(t)
	f := p.startTLSFake(t, "cp", "", 0)
	plain := startFake(t)
	named := p.startTLSFake(t, "named", "", 0)
	env := func(addr string, kv ...string) map[string]string {
		m := map[string]string{"ATRAX_ADDR": addr, "ATRAX_TOKEN": adminToken}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	f.servers.put(&atraxv1.Server{Name: "memory", Command: "npx", Source: "config", State: "running"})

	// Reached with --ca, or ATRAX_CA.
	run(t, env(f.addr), false, "servers", "list", "--ca", p.path("ca.pem")).want(t, 0, "memory")
	run(t, env(f.addr, "ATRAX_CA", p.path("ca.pem")), false, "servers", "get", "memory").want(t, 0, "command")
	run(t, env(f.addr, "ATRAX_CA", p.path("ca.pem")), false, "status").want(t, 0, "Atrax test")

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{"plain to TLS", env(f.addr), nil, cli.ExitError,
			[]string{"the control plane at " + f.addr + " speaks TLS: pass --ca FILE, the CA that signed its certificate (controlPlane.tls.cert), or set ATRAX_CA; or --tls"}},
		{"system roots", env(f.addr), []string{"--tls"}, cli.ExitError,
			[]string{"the control plane at " + f.addr + " presented a certificate that the system's CA certificates do not trust (tls: failed to verify certificate: x509: certificate signed by unknown authority): pass --ca FILE (or set ATRAX_CA)"}},
		{"another CA", env(f.addr), []string{"--ca", p.path("other.pem")}, cli.ExitError,
			[]string{"presented a certificate that --ca (" + p.path("other.pem") + ") does not trust", "pass --ca the CA that signed its certificate"}},
		{"another CA from the environment", env(f.addr, "ATRAX_CA", p.path("other.pem")), nil, cli.ExitError,
			[]string{"presented a certificate that ATRAX_CA (" + p.path("other.pem") + ") does not trust"}},
		{"a name the certificate lacks", env(named.addr), []string{"--ca", p.path("ca.pem")}, cli.ExitError,
			[]string{"the certificate of the control plane at " + named.addr + " does not name the host of --addr", "give --addr (or ATRAX_ADDR) a host name or IP address that its certificate names"}},
		{"TLS to plain", env(plain.addr), []string{"--ca", p.path("ca.pem")}, cli.ExitError,
			[]string{plain.addr + " does not speak TLS: either it is a control plane without controlPlane.tls (then drop --ca), or it is not the control plane's gRPC address"}},
		{"--tls to plain", env(plain.addr, "ATRAX_CA", p.path("ca.pem")), []string{"--tls"}, cli.ExitError,
			[]string{"does not speak TLS", "(then drop --tls and unset ATRAX_CA)"}},
		{"unreadable CA", env(f.addr), []string{"--ca", p.path("missing.pem")}, cli.ExitError,
			[]string{"--ca: cannot read the certificates: open " + p.path("missing.pem") + ": no such file or directory"}},
		{"unreadable CA from the environment", env(f.addr, "ATRAX_CA", p.path("missing.pem")), nil, cli.ExitError,
			[]string{"ATRAX_CA: cannot read the certificates"}},
		{"CA not PEM", env(f.addr), []string{"--ca", p.path("notpem.txt")}, cli.ExitError,
			[]string{"--ca: " + p.path("notpem.txt") + ": no PEM certificate found"}},
		{"unreadable key", env(f.addr), []string{"--ca", p.path("ca.pem"), "--cert", p.path("client.pem"), "--key", p.path("nokey.pem")}, cli.ExitError,
			[]string{"--key: cannot read the private key"}},
		{"key of another certificate", env(f.addr), []string{"--ca", p.path("ca.pem"), "--cert", p.path("client.pem"), "--key", p.path("intruder-key.pem")}, cli.ExitError,
			[]string{"--key: " + p.path("intruder-key.pem") + " is not the private key of --cert (" + p.path("client.pem") + ")"}},
		{"cert without key", env(f.addr), []string{"--cert", p.path("client.pem")}, cli.ExitUsage,
			[]string{"--cert needs --key (or ATRAX_KEY)"}},
		{"key without cert", env(f.addr, "ATRAX_KEY", p.path("client-key.pem")), nil, cli.ExitUsage,
			[]string{"ATRAX_KEY needs --cert (or ATRAX_CERT)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, false, append([]string{"servers", "list"}, tc.args...)...)
			r.want(t, tc.code, tc.want...)
			if r.stdout != "" {
				t.Errorf("stdout on error: %q", r.stdout)
			}
			if strings.Contains(r.stderr, adminToken) || strings.Contains(r.stderr, "PRIVATE KEY") {
				t.Errorf("the error shows a secret: %s", r.stderr)
			}
		})
	}

	// status --wait does not wait for TLS that does not fit.
	start := time.Now()
	run(t, env(f.addr), false, "status", "--wait", "--wait-timeout", "20s").want(t, cli.ExitError, "speaks TLS: pass --ca")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("status --wait took %v to give up on TLS", d)
	}
}

func TestCLIMutualTLS(t *testing.T) {
	p := newPKI(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			f := p.startTLSFake(t, "cp", "ca.pem", v)
			env := func(kv ...string) map[string]string {
				m := map[string]string{"ATRAX_ADDR": f.addr, "ATRAX_TOKEN": adminToken}
				for i := 0; i+1 < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}
			ca, cert, key := p.path("ca.pem"), p.path("client.pem"), p.path("client-key.pem")
			run(t, env(), false, "servers", "list", "--ca", ca, "--cert", cert, "--key", key).want(t, 0, "No servers.")
			run(t, env("ATRAX_CA", ca, "ATRAX_CERT", cert, "ATRAX_KEY", key), false, "servers", "list").want(t, 0, "No servers.")
			run(t, env(), false, "servers", "list", "--ca", ca).
				want(t, cli.ExitError, "the control plane at "+f.addr+" requires a client certificate: pass --cert and --key (or set ATRAX_CERT and ATRAX_KEY)")
			run(t, env(), false, "servers", "list", "--ca", ca, "--cert", p.path("intruder.pem"), "--key", p.path("intruder-key.pem")).
				want(t, cli.ExitError, fmt.Sprintf("requires a client certificate that a CA of its controlPlane.tls.clientCA signed, and --cert (%s) is not one", p.path("intruder.pem")))
			// A certificate of the CA, but for a server.
			run(t, env(), false, "servers", "list", "--ca", ca, "--cert", p.path("cp.pem"), "--key", p.path("cp-key.pem")).
				want(t, cli.ExitError, fmt.Sprintf("the control plane at %s refused the client certificate of --cert, %s (", f.addr, p.path("cp.pem")), "meant for clients, and signed by a CA of its controlPlane.tls.clientCA?")
			run(t, env(), false, "servers", "list").
				want(t, cli.ExitError, "the control plane at "+f.addr+" speaks TLS and requires a client certificate: pass --ca FILE", "--cert and --key")
		})
	}
}

func TestCLIConfigValidateTLS(t *testing.T) {
	p := newPKI(t)
	write := func(body string) string {
		path := filepath.Join(p.dir, "atrax.json")
		if err := os.WriteFile(path, []byte(`{"auth": {"type": "token", "options": {"token": "t"}}, `+body+`}`), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	path := write(`"tls": {"cert": "cp.pem", "key": "cp-key.pem"},
		"controlPlane": {"tls": {"cert": "cp.pem", "key": "cp-key.pem"}, "ca": "ca.pem", "clientCert": "client.pem", "clientKey": "client-key.pem"}`)
	r := run(t, nil, false, "config", "validate", "-f", path)
	r.want(t, 0, path+": ok (0 servers, auth token)", "TLS files read and checked: tls, controlPlane.tls, controlPlane.ca, controlPlane.clientCert")
	if strings.Contains(r.stdout, "note:") {
		t.Errorf("a note on a config atrax serve accepts: %s", r.stdout)
	}

	for _, tc := range []struct{ body, want string }{
		{`"tls": {"cert": "missing.pem", "key": "cp-key.pem"}`, "tls.cert: cannot read the certificate"},
		{`"tls": {"cert": "cp.pem", "key": "client-key.pem"}`, "tls.key: " + p.path("client-key.pem") + " is not the private key of tls.cert"},
		{`"controlPlane": {"tls": {"cert": "cp.pem", "key": "cp-key.pem", "clientCA": "nope.pem"}}`, "controlPlane.tls.clientCA: cannot read the certificates"},
		{`"controlPlane": {"ca": "notpem.txt"}`, "controlPlane.ca: " + p.path("notpem.txt") + ": no PEM certificate found"},
		{`"controlPlane": {"clientCert": "client.pem", "clientKey": "intruder-key.pem"}`, "controlPlane.clientKey: "},
	} {
		path := write(tc.body)
		r := run(t, nil, false, "config", "validate", "-f", path)
		r.want(t, cli.ExitError, path+":\n", tc.want)
		if strings.Contains(r.stderr, "PRIVATE KEY") {
			t.Errorf("%s: the error shows a key", tc.body)
		}
	}
	// Every problem at once.
	path = write(`"tls": {"cert": "missing.pem", "key": "cp-key.pem"}, "controlPlane": {"ca": "missing.pem"}`)
	run(t, nil, false, "config", "validate", "-f", path).want(t, cli.ExitError, "tls.cert: cannot read", "controlPlane.ca: cannot read")

	// Client certificates required and none for the edge of atrax serve:
	// valid for atrax controlplane, with a note.
	path = write(`"controlPlane": {"tls": {"cert": "cp.pem", "key": "cp-key.pem", "clientCA": "ca.pem"}}`)
	run(t, nil, false, "config", "validate", "-f", path).
		want(t, 0, "TLS files read and checked: controlPlane.tls", "note: atrax serve would refuse this config (atrax controlplane would not): controlPlane.clientCert: required")

	// The CAs trusted for the OAuth authorization server.
	oauth := func(ca string) string {
		path := filepath.Join(p.dir, "atrax.json")
		body := `{"auth": {"type": "oauth", "options": {"issuer": "https://idp.example.com", "audience": "https://mcp.example.com/mcp",
			"claims": {"scopePrefix": "atrax:"}, "token": "t", "ca": "` + ca + `"}}}`
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run(t, nil, false, "config", "validate", "-f", oauth("ca.pem")).want(t, 0, "auth oauth", "TLS files read and checked: auth.options.ca")
	path = oauth("notpem.txt")
	run(t, nil, false, "config", "validate", "-f", path).want(t, cli.ExitError, path+":\n", "auth.options.ca: "+p.path("notpem.txt")+": no PEM certificate found")
	path = oauth("missing.pem")
	run(t, nil, false, "config", "validate", "-f", path).want(t, cli.ExitError, "auth.options.ca: cannot read the certificates: ", "no such file")
}
