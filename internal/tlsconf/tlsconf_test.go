package tlsconf_test

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

// handshake serves one TLS connection with srv on 127.0.0.1 and dials it
// with cli; it returns the client's and the server's handshake errors.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err = c.(*tls.Conn).Handshake(); err == nil {
			// One byte each way: the client sees a late refusal (TLS 1.3
			// checks a client certificate after the client's handshake
			// has ended).
			b := make([]byte, 1)
			if _, err = io.ReadFull(c, b); err == nil {
				_, err = c.Write(b)
			}
		}
		done <- err
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", lis.Addr().String(), cli)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err = c.Write([]byte("x")); err == nil {
			_, err = io.ReadFull(c, make([]byte, 1))
		}
		c.Close()
	}
	return err, <-done
}

func TestEdge(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	ca.Server(t, "localhost", "127.0.0.1").Write(t, dir, "edge")
	cfg := &config.Config{Path: filepath.Join(dir, "atrax.json"), TLS: &config.TLS{Cert: "edge.pem", Key: "edge-key.pem"}}
	srv, err := tlsconf.Edge(cfg, nil)
	if err != nil {
		t.Fatalf("Edge: %v", err)
	}
	if srv.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", srv.MinVersion)
	}
	if cerr, serr := handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}); cerr != nil || serr != nil {
		t.Errorf("a client trusting the CA: client %v, server %v", cerr, serr)
	}
	if cerr, _ := handshake(t, srv, &tls.Config{ServerName: "127.0.0.1"}); cerr == nil {
		t.Error("a client that does not trust the CA completed the handshake")
	}
	if c, err := tlsconf.Edge(&config.Config{}, nil); c != nil || err != nil {
		t.Errorf("Edge without tls = %v, %v; want nil, nil", c, err)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	edges := tlstest.NewCA(t, "edge CA")
	other := tlstest.NewCA(t, "another CA")
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	tlstest.WriteFile(t, filepath.Join(dir, "edges-ca.pem"), edges.PEM)
	tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	edges.Client(t, "edge-1").Write(t, dir, "edge")
	other.Client(t, "intruder").Write(t, dir, "intruder")

	cfg := &config.Config{Path: filepath.Join(dir, "atrax.json"), ControlPlane: config.ControlPlane{
		TLS: &config.TLS{Cert: "cp.pem", Key: "cp-key.pem", ClientCA: "edges-ca.pem"},
		CA:  "ca.pem", ClientCert: "edge.pem", ClientKey: "edge-key.pem",
	}}
	srv, err := tlsconf.ControlPlane(cfg, nil)
	if err != nil {
		t.Fatalf("ControlPlane: %v", err)
	}
	if srv.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("ClientAuth = %v, want RequireAndVerifyClientCert", srv.ClientAuth)
	}
	cli, err := tlsconf.EdgeClient(cfg, false, nil)
	if err != nil {
		t.Fatalf("EdgeClient: %v", err)
	}
	cli.ServerName = "127.0.0.1"
	if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
		t.Errorf("an edge with its certificate: client %v, server %v", cerr, serr)
	}

	// No client certificate, or one from another CA: refused.
	bare := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if _, serr := handshake(t, srv, bare); serr == nil {
		t.Error("the control plane accepted a client without a certificate")
	}
	intruder := *cfg
	intruder.ControlPlane.ClientCert, intruder.ControlPlane.ClientKey = "intruder.pem", "intruder-key.pem"
	icli, err := tlsconf.EdgeClient(&intruder, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	icli.ServerName = "127.0.0.1"
	if _, serr := handshake(t, srv, icli); serr == nil {
		t.Error("the control plane accepted a certificate of another CA")
	}
}

func TestEdgeClient(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	path := filepath.Join(dir, "atrax.json")

	if c, err := tlsconf.EdgeClient(&config.Config{Path: path}, true, nil); c != nil || err != nil {
		t.Errorf("EdgeClient without TLS keys = %v, %v; want plain gRPC", c, err)
	}

	// atrax serve without ca: the edge trusts its control plane's own
	// certificate.
	cfg := &config.Config{Path: path, ControlPlane: config.ControlPlane{TLS: &config.TLS{Cert: "cp.pem", Key: "cp-key.pem"}}}
	srv, err := tlsconf.ControlPlane(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.EdgeClient(cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli.ServerName = "127.0.0.1"
	if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
		t.Errorf("serve's edge: client %v, server %v", cerr, serr)
	}
	// It pins that certificate: names do not matter, another certificate
	// of the same CA is refused.
	ca.Server(t, "cp.internal").Write(t, dir, "named")
	named := &config.Config{Path: path, ControlPlane: config.ControlPlane{TLS: &config.TLS{Cert: "named.pem", Key: "named-key.pem"}}}
	nsrv, err := tlsconf.ControlPlane(named, nil)
	if err != nil {
		t.Fatal(err)
	}
	ncli, err := tlsconf.EdgeClient(named, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cerr, serr := handshake(t, nsrv, ncli); cerr != nil || serr != nil {
		t.Errorf("serve's edge, certificate without its address: client %v, server %v", cerr, serr)
	}
	if cerr, _ := handshake(t, srv, ncli); cerr == nil || !strings.Contains(cerr.Error(), "controlPlane.tls.cert") {
		t.Errorf("serve's edge accepted another certificate: %v", cerr)
	}
	// A separate edge without ca uses the system's roots, which do not
	// hold the test CA.
	cli, err = tlsconf.EdgeClient(cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli.ServerName = "127.0.0.1"
	if cerr, _ := handshake(t, srv, cli); cerr == nil {
		t.Error("an edge trusted a certificate no root of it signed")
	}

	// atrax serve with clientCA but no client certificate for its edge.
	tlstest.WriteFile(t, filepath.Join(dir, "edges-ca.pem"), ca.PEM)
	mtls := &config.Config{Path: path, ControlPlane: config.ControlPlane{TLS: &config.TLS{Cert: "cp.pem", Key: "cp-key.pem", ClientCA: "edges-ca.pem"}}}
	if _, err := tlsconf.EdgeClient(mtls, true, nil); err == nil || !strings.HasPrefix(err.Error(), "controlPlane.clientCert: required") {
		t.Errorf("serve with clientCA and no client certificate: %v", err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	good := ca.Server(t, "localhost")
	good.Write(t, dir, "good")
	other := ca.Server(t, "localhost")
	other.Write(t, dir, "other")
	ca.Expired(t, "localhost").Write(t, dir, "expired")
	tlstest.WriteFile(t, filepath.Join(dir, "garbage.pem"), []byte("not a certificate\n"))
	secretKey := string(good.Key)

	path := filepath.Join(dir, "atrax.json")
	edge := func(cert, key string) error {
		_, err := tlsconf.Edge(&config.Config{Path: path, TLS: &config.TLS{Cert: cert, Key: key}}, nil)
		return err
	}
	cp := func(t *config.TLS, ca string) error {
		c := &config.Config{Path: path, ControlPlane: config.ControlPlane{TLS: t, CA: ca}}
		if _, err := tlsconf.ControlPlane(c, nil); err != nil {
			return err
		}
		_, err := tlsconf.EdgeClient(c, false, nil)
		return err
	}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"missing cert", edge("nope.pem", "good-key.pem"), []string{"tls.cert: cannot read the certificate", filepath.Join(dir, "nope.pem"), "no such file"}},
		{"missing key", edge("good.pem", "nope-key.pem"), []string{"tls.key: cannot read the private key", "nope-key.pem"}},
		{"not a certificate", edge("garbage.pem", "good-key.pem"), []string{"tls.cert: ", "garbage.pem: no PEM certificate found"}},
		{"key of another certificate", edge("good.pem", "other-key.pem"), []string{"tls.key: ", "other-key.pem is not the private key of tls.cert", "good.pem"}},
		{"key is a certificate", edge("good.pem", "good.pem"), []string{"tls.key: ", "is not the private key of tls.cert"}},
		{"expired", edge("expired.pem", "expired-key.pem"), []string{"tls.cert: ", "expired.pem expired on"}},
		{"control plane key", cp(&config.TLS{Cert: "good.pem", Key: "other-key.pem"}, ""), []string{"controlPlane.tls.key: "}},
		{"client CA unreadable", cp(&config.TLS{Cert: "good.pem", Key: "good-key.pem", ClientCA: "none.pem"}, ""), []string{"controlPlane.tls.clientCA: cannot read the certificates"}},
		{"client CA garbage", cp(&config.TLS{Cert: "good.pem", Key: "good-key.pem", ClientCA: "garbage.pem"}, ""), []string{"controlPlane.tls.clientCA: ", "no PEM certificate found"}},
		{"ca garbage", cp(&config.TLS{Cert: "good.pem", Key: "good-key.pem"}, "garbage.pem"), []string{"controlPlane.ca: ", "no PEM certificate found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.err.Error(), w) {
					t.Errorf("error %q does not contain %q", tt.err, w)
				}
			}
			if strings.Contains(tt.err.Error(), "PRIVATE KEY") || strings.Contains(tt.err.Error(), secretKey[40:80]) {
				t.Errorf("error %q shows a key's content", tt.err)
			}
		})
	}
	// An edge's client key without its certificate's match.
	c := &config.Config{Path: path, ControlPlane: config.ControlPlane{ClientCert: "good.pem", ClientKey: "other-key.pem"}}
	if _, err := tlsconf.EdgeClient(c, false, nil); err == nil || !strings.HasPrefix(err.Error(), "controlPlane.clientKey: ") {
		t.Errorf("mismatched client key: %v", err)
	}
}

// Relative paths are taken beside the config file, absolute ones as they
// are.
func TestPaths(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	sub := filepath.Join(dir, "certs")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, key := ca.Server(t, "localhost").Write(t, sub, "edge")
	cfg := &config.Config{Path: filepath.Join(dir, "atrax.json"), TLS: &config.TLS{Cert: "certs/edge.pem", Key: key}}
	if _, err := tlsconf.Edge(cfg, nil); err != nil {
		t.Errorf("relative cert, absolute key: %v", err)
	}
	if got := cfg.File("certs/edge.pem"); got != cert {
		t.Errorf("File = %q, want %q", got, cert)
	}
}
