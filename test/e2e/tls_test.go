package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

// TLS on both listeners, with certificates the test makes: the edge's
// public port serves HTTPS only, the control plane's gRPC port serves TLS
// only (atrax serve's own edge syncs over it), and with clientCA the
// control plane lets in only edges that present a certificate of that CA.

const tlsToken = "tls-e2e-token-0123456789abcdef"

// httpsClient trusts pool; h2 asks for HTTP/2.
func httpsClient(pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
	return &http.Client{Transport: tr, Timeout: callTimeout}
}

func getStatus(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tlsToken)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Proto, nil
}

// grpcHealth calls GetHealth on addr with creds.
func grpcHealth(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = atraxv1.NewStatusServiceClient(conn).GetHealth(withToken(t, ""), &atraxv1.GetHealthRequest{})
	return err
}

func TestTLSServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "atrax e2e CA")
	ca.Server(t, "localhost", "127.0.0.1").Write(t, dir, "edge")
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	cfg := fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"tls": {"cert": "edge.pem", "key": "edge-key.pem"},
		"controlPlane": {"tls": {"cert": "cp.pem", "key": "cp-key.pem"}},
	}`, tlsToken)
	// startAtraxIn returns once the edge has applied a snapshot: its Sync
	// stream runs over TLS to the control plane of its own process.
	p := startAtraxIn(t, dir, "serve", cfg, nil)
	base := "https://" + strings.TrimPrefix(p.HTTP, "http://")

	for _, h2 := range []bool{false, true} {
		code, proto, err := getStatus(t, httpsClient(ca.Pool(), h2), base+"/health")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /health over HTTPS (h2 %v): %d %v", h2, code, err)
		}
		if h2 && proto != "HTTP/2.0" {
			t.Errorf("HTTPS with HTTP/2 offered: %s", proto)
		}
	}
	// An MCP client over HTTPS.
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+tlsToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := httpsClient(ca.Pool(), false).Do(req)
	if err != nil {
		t.Fatalf("initialize over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Errorf("initialize over HTTPS: %s, session %q", resp.Status, resp.Header.Get("Mcp-Session-Id"))
	}

	// A client that does not trust the CA, and plain HTTP, get nothing.
	if _, _, err := getStatus(t, httpsClient(nil, false), base+"/health"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}
	if code, _, err := getStatus(t, httpClient, p.HTTP+"/health"); err == nil && code == http.StatusOK {
		t.Error("plain HTTP to the TLS port was answered with 200")
	}

	// The control plane's gRPC port: TLS only.
	if err := grpcHealth(t, p.GRPC, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})); err != nil {
		t.Errorf("GetHealth over TLS: %v", err)
	}
	if err := grpcHealth(t, p.GRPC, insecure.NewCredentials()); err == nil {
		t.Error("GetHealth over plain gRPC to the TLS port succeeded")
	}
	// grpcurl, as an operator would run it.
	tlstest.WriteFile(t, dir+"/ca.pem", ca.PEM)
	if out, errOut, err := grpcurl(t, "-cacert", dir+"/ca.pem", p.GRPC, "atrax.v1.StatusService/GetHealth"); err != nil || !strings.Contains(out, `"ok"`) {
		t.Errorf("grpcurl -cacert: %v\n%s%s", err, out, errOut)
	}

	// Certificates renewed in place, as cert-manager or certbot renew
	// them, are served to new connections without a restart.
	edgeRenewed, cpRenewed := ca.Server(t, "localhost", "127.0.0.1"), ca.Server(t, "127.0.0.1")
	renewPair(t, dir, "edge", edgeRenewed)
	renewPair(t, dir, "cp", cpRenewed)
	for _, l := range []struct {
		name, addr string
		want       tlstest.Pair
	}{
		{"the edge", strings.TrimPrefix(p.HTTP, "http://"), edgeRenewed},
		{"the control plane", p.GRPC, cpRenewed},
	} {
		block, _ := pem.Decode(l.want.Cert)
		if !poll(pollTimeout, func() bool { return bytes.Equal(servedCert(l.addr, ca.Pool()), block.Bytes) }) {
			t.Errorf("%s did not serve its renewed certificate", l.name)
		}
	}
	for _, key := range []string{"tls.cert", "controlPlane.tls.cert"} {
		if _, err := p.waitLogFrom(0, func(m map[string]any) bool { return m["msg"] == "TLS files reloaded" && m["key"] == key }, callTimeout); err != nil {
			t.Errorf("no reload of %s logged: %v", key, err)
		}
	}
	if code, _, err := getStatus(t, httpsClient(ca.Pool(), true), base+"/health"); err != nil || code != http.StatusOK {
		t.Errorf("GET /health over HTTPS after the renewal: %d %v", code, err)
	}
}

// renewPair replaces dir/NAME.pem and dir/NAME-key.pem with p as a
// renewal does: each written beside and renamed over the old one.
func renewPair(t *testing.T, dir, name string, p tlstest.Pair) {
	t.Helper()
	tmp := t.TempDir()
	cert, key := p.Write(t, tmp, name)
	for _, f := range []string{key, cert} {
		if err := os.Rename(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
}

// servedCert returns the DER of the certificate a TLS listener at addr
// presents to a new connection trusting pool, nil if the handshake fails.
func servedCert(addr string, pool *x509.CertPool) []byte {
	d := &net.Dialer{Timeout: callTimeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// startNoWait starts atrax like startAtraxIn but waits only for the edge
// to listen: the test expects its Sync to fail.
func startNoWait(t *testing.T, dir, mode, cfg string) *proc {
	t.Helper()
	p := launchAtrax(t, dir, mode, cfg, nil)
	m := p.waitLog("edge serving", startTimeout)
	p.HTTP = "http://" + str(m["address"])
	return p
}

// edgeSynced reports whether an edge's /health says it is connected to the
// control plane.
func edgeSynced(t *testing.T, p *proc) bool {
	r := httpDo(t, http.MethodGet, p.HTTP+"/health", "", "")
	return r.Status == http.StatusOK && str(r.JSON(t)["controlPlane"]) == "connected"
}

func TestMutualTLSSplit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA := tlstest.NewCA(t, "control plane CA")
	edgeCA := tlstest.NewCA(t, "edge CA")
	otherCA := tlstest.NewCA(t, "another CA")
	serverCA.Server(t, "127.0.0.1").Write(t, dir, "cp")
	edgeCA.Client(t, "edge-1").Write(t, dir, "edge1")
	otherCA.Client(t, "intruder").Write(t, dir, "intruder")
	tlstest.WriteFile(t, dir+"/server-ca.pem", serverCA.PEM)
	tlstest.WriteFile(t, dir+"/edge-ca.pem", edgeCA.PEM)

	cp := startAtraxIn(t, dir, "controlplane", fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"controlPlane": {"address": "127.0.0.1:0", "tls": {"cert": "cp.pem", "key": "cp-key.pem", "clientCA": "edge-ca.pem"}},
	}`, tlsToken), nil)

	// Edge configs live in directories of their own and name the
	// certificates by absolute path.
	edgeCfg := func(extra string) string {
		return fmt.Sprintf(`{
			"auth": {"type": "token", "options": {"token": %q}},
			"controlPlane": {"address": %q, "ca": %q%s},
		}`, tlsToken, cp.GRPC, dir+"/server-ca.pem", extra)
	}
	clientCert := func(name string) string {
		return fmt.Sprintf(`, "clientCert": %q, "clientKey": %q`, dir+"/"+name+".pem", dir+"/"+name+"-key.pem")
	}
	// An edge with its certificate syncs.
	good := startAtrax(t, "edge", edgeCfg(clientCert("edge1")), nil)
	if !edgeSynced(t, good) {
		t.Error("the edge with a client certificate is not connected")
	}

	// Without a certificate, with one of another CA, or without TLS at
	// all, an edge cannot Sync: it serves, says it is disconnected, and
	// logs why.
	cases := []struct{ name, cfg string }{
		{"no client certificate", edgeCfg("")},
		{"certificate of another CA", edgeCfg(clientCert("intruder"))},
		{"plain gRPC", fmt.Sprintf(`{"auth": {"type": "token", "options": {"token": %q}}, "controlPlane": {"address": %q}}`, tlsToken, cp.GRPC)},
	}
	for _, c := range cases {
		p := startNoWait(t, t.TempDir(), "edge", c.cfg)
		m, err := p.waitLogFrom(0, func(m map[string]any) bool {
			return m["msg"] == "sync stream ended; serving the last known registry and reconnecting"
		}, startTimeout)
		if err != nil {
			t.Errorf("%s: no failed sync logged: %v", c.name, err)
		}
		t.Logf("%s: %v", c.name, m["err"])
		if edgeSynced(t, p) {
			t.Errorf("%s: the edge is connected to the control plane", c.name)
		}
		for _, m := range p.Logs() {
			if m["msg"] == "snapshot applied" {
				t.Errorf("%s: the edge applied a snapshot", c.name)
			}
		}
	}
	if !edgeSynced(t, good) {
		t.Error("the good edge lost its connection")
	}
}

// A TLS file that cannot be used stops atrax at start with the key named.
func TestTLSBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	ca.Server(t, "localhost").Write(t, dir, "a")
	ca.Server(t, "localhost").Write(t, dir, "b")
	cases := []struct{ cfg, want string }{
		{`"tls": {"cert": "missing.pem", "key": "a-key.pem"}`, "tls.cert: cannot read the certificate"},
		{`"tls": {"cert": "a.pem", "key": "b-key.pem"}`, "tls.key: "},
		{`"controlPlane": {"address": "127.0.0.1:0", "tls": {"cert": "a.pem", "key": "a-key.pem", "clientCA": "nope.pem"}}`, "controlPlane.tls.clientCA: cannot read"},
		{`"controlPlane": {"address": "127.0.0.1:0", "tls": {"cert": "a.pem", "key": "a-key.pem", "clientCA": "a.pem"}}`, "controlPlane.clientCert: required"},
	}
	for _, c := range cases {
		path := writeConfig(t, dir, fmt.Sprintf(`{"auth": {"type": "token", "options": {"token": %q}}, %s}`, tlsToken, c.cfg))
		_, stderr, code := runAtrax(t, nil, "serve", "-f", path)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want non-zero and %q", c.cfg, code, stderr, c.want)
		}
		if strings.Contains(stderr, "PRIVATE KEY") {
			t.Errorf("%s: stderr shows a key", c.cfg)
		}
	}
}
