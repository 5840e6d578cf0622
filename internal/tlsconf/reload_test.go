package tlsconf_test

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/syncbuf"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

// clock is a fake time that only Advance moves. Handshakes read it on the
// server's goroutine.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves past the time a reloading config waits between two looks
// at its files.
func (c *clock) Advance() { c.ns.Add(int64(time.Second)) }

// logs records what the configs log.
type logs struct{ syncbuf.Buffer }

// lines returns the lines logged that contain s.
func (l *logs) lines(s string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

func newOptions() (*tlsconf.Options, *clock, *logs) {
	clk, l := newClock(), &logs{}
	return &tlsconf.Options{Logger: slog.New(slog.NewTextHandler(l, nil)), Now: clk.Now}, clk, l
}

// replace puts data at path as cert-manager or certbot renew a file: a
// new file written beside it and renamed over it.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tlstest.WriteFile(t, path+".new", data)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// rewrite writes data over the file at path, in place, and dates it at
// mtime: file systems that keep coarse times could otherwise give two
// writes of a test the same time.
func rewrite(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	tlstest.WriteFile(t, path, data)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// der returns the DER of the pair's certificate.
func der(t *testing.T, p tlstest.Pair) []byte {
	t.Helper()
	b, _ := pem.Decode(p.Cert)
	if b == nil {
		t.Fatal("no PEM certificate in the pair")
	}
	return b.Bytes
}

func TestReloadServerCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	first := ca.Server(t, "127.0.0.1")
	certFile, keyFile := first.Write(t, dir, "edge")
	opts, clk, log := newOptions()
	srv, err := tlsconf.Edge(&config.Config{Path: filepath.Join(dir, "atrax.json"), TLS: &config.TLS{Cert: "edge.pem", Key: "edge-key.pem"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	// served handshakes with the edge and returns the certificate it
	// presented.
	served := func(t *testing.T, want tlstest.Pair, why string) {
		t.Helper()
		var got []byte
		cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", VerifyConnection: func(cs tls.ConnectionState) error {
			got = cs.PeerCertificates[0].Raw
			return nil
		}}
		if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
			t.Fatalf("%s: handshake: client %v, server %v", why, cerr, serr)
		}
		if !bytes.Equal(got, der(t, want)) {
			t.Errorf("%s: the edge served another certificate than the one expected", why)
		}
	}
	served(t, first, "at start")

	second := ca.Server(t, "127.0.0.1")
	replace(t, keyFile, second.Key)
	replace(t, certFile, second.Cert)
	served(t, first, "renewed, within a second of the last look")
	clk.Advance()
	served(t, second, "renewed")
	if got := log.lines("TLS files reloaded"); len(got) != 1 || !strings.Contains(got[0], "key=tls.cert") {
		t.Errorf("logged on reload: %q, want one line naming tls.cert", got)
	}

	// A renewal caught halfway, its certificate without its key: the last
	// good pair stays, and the refusal is logged once, however many
	// handshakes meet it.
	third := ca.Server(t, "127.0.0.1")
	replace(t, certFile, third.Cert)
	for range 3 {
		clk.Advance()
		served(t, second, "certificate renewed, not the key")
	}
	if got := log.lines("level=WARN"); len(got) != 1 || !strings.Contains(got[0], "tls.key") || !strings.Contains(got[0], "is not the private key of tls.cert") {
		t.Errorf("logged on a mismatched key: %q, want one warning naming tls.key", got)
	}
	// A certificate half written in place: still the last good pair, one
	// more warning.
	rewrite(t, certFile, third.Cert[:len(third.Cert)/2], clk.Now().Add(time.Minute))
	clk.Advance()
	served(t, second, "certificate half written")
	if got := log.lines("level=WARN"); len(got) != 2 || !strings.Contains(got[1], "tls.cert") {
		t.Errorf("logged on a half-written certificate: %q, want a second warning naming tls.cert", got)
	}
	// The renewal completes.
	rewrite(t, certFile, third.Cert, clk.Now().Add(2*time.Minute))
	rewrite(t, keyFile, third.Key, clk.Now().Add(2*time.Minute))
	clk.Advance()
	served(t, third, "renewal completed")
	if got := log.lines("TLS files reloaded"); len(got) != 2 {
		t.Errorf("logged reloads: %q, want two", got)
	}
	if got := log.lines("PRIVATE KEY"); len(got) != 0 {
		t.Errorf("the log shows a key: %q", got)
	}
}

func TestReloadClientCA(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	ca.Server(t, "127.0.0.1").Write(t, dir, "cp")
	oldEdges, newEdges := tlstest.NewCA(t, "old edge CA"), tlstest.NewCA(t, "new edge CA")
	caFile := filepath.Join(dir, "edges-ca.pem")
	tlstest.WriteFile(t, caFile, oldEdges.PEM)
	opts, clk, log := newOptions()
	srv, err := tlsconf.ControlPlane(&config.Config{Path: filepath.Join(dir, "atrax.json"), ControlPlane: config.ControlPlane{
		TLS: &config.TLS{Cert: "cp.pem", Key: "cp-key.pem", ClientCA: "edges-ca.pem"},
	}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	// A field set on the config after it was made holds in handshakes.
	srv.MaxVersion = tls.VersionTLS12

	// accepted reports whether the control plane accepts a client with a
	// certificate of edges, and checks the version the handshake used.
	accepted := func(t *testing.T, edges *tlstest.CA) bool {
		t.Helper()
		p := edges.Client(t, "edge")
		pair, err := tls.X509KeyPair(p.Cert, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair},
			VerifyConnection: func(cs tls.ConnectionState) error {
				if cs.Version != tls.VersionTLS12 {
					t.Errorf("handshake in TLS %x, want 1.2 (MaxVersion set on the config)", cs.Version)
				}
				return nil
			}}
		_, serr := handshake(t, srv, cli)
		return serr == nil
	}
	if !accepted(t, oldEdges) || accepted(t, newEdges) {
		t.Fatal("at start, want the old edge CA's clients accepted and the new one's refused")
	}
	replace(t, caFile, newEdges.PEM)
	clk.Advance()
	if accepted(t, oldEdges) || !accepted(t, newEdges) {
		t.Error("after the client CA was renewed, want the new edge CA's clients accepted and the old one's refused")
	}
	// A bundle that cannot be read keeps the last good one.
	replace(t, caFile, []byte("-----BEGIN CERTIFICATE-----\ntruncated"))
	clk.Advance()
	if !accepted(t, newEdges) {
		t.Error("a broken client CA bundle replaced the working one")
	}
	if got := log.lines("level=WARN"); len(got) != 1 || !strings.Contains(got[0], "controlPlane.tls.clientCA") {
		t.Errorf("logged on a broken bundle: %q, want one warning naming controlPlane.tls.clientCA", got)
	}
}

// The certificate an edge presents to the control plane, and the control
// plane to etcd, follow their files too.
func TestReloadClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	srvPair := ca.Server(t, "127.0.0.1")
	srvCert, err := tls.X509KeyPair(srvPair.Cert, srvPair.Key)
	if err != nil {
		t.Fatal(err)
	}
	tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	clients := tlstest.NewCA(t, "client CA")
	path := filepath.Join(dir, "atrax.json")

	tests := []struct {
		name string
		make func(*tlsconf.Options) (*tls.Config, error)
	}{
		{"controlPlane.clientCert", func(o *tlsconf.Options) (*tls.Config, error) {
			return tlsconf.EdgeClient(&config.Config{Path: path, ControlPlane: config.ControlPlane{CA: "ca.pem", ClientCert: "client.pem", ClientKey: "client-key.pem"}}, false, o)
		}},
		{"store.etcd.tls.cert", func(o *tlsconf.Options) (*tls.Config, error) {
			return tlsconf.Etcd(&config.Config{Path: path, Store: config.Store{Etcd: &config.Etcd{Endpoints: []string{"127.0.0.1:2379"},
				TLS: &config.EtcdTLS{CA: "ca.pem", Cert: "client.pem", Key: "client-key.pem"}}}}, o)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := clients.Client(t, "edge")
			certFile, keyFile := first.Write(t, dir, "client")
			opts, clk, log := newOptions()
			cli, err := tt.make(opts)
			if err != nil {
				t.Fatal(err)
			}
			cli.ServerName = "127.0.0.1"
			presented := func(t *testing.T, want tlstest.Pair, why string) {
				t.Helper()
				var got []byte
				srv := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: clients.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
					VerifyConnection: func(cs tls.ConnectionState) error {
						got = cs.PeerCertificates[0].Raw
						return nil
					}}
				if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
					t.Fatalf("%s: handshake: client %v, server %v", why, cerr, serr)
				}
				if !bytes.Equal(got, der(t, want)) {
					t.Errorf("%s: the client presented another certificate than the one expected", why)
				}
			}
			presented(t, first, "at start")
			second := clients.Client(t, "edge")
			replace(t, certFile, second.Cert)
			replace(t, keyFile, second.Key)
			clk.Advance()
			presented(t, second, "renewed")
			replace(t, keyFile, first.Key)
			clk.Advance()
			presented(t, second, "a key of another certificate")
			if got := log.lines("level=WARN"); len(got) != 1 || !strings.Contains(got[0], tt.name) {
				t.Errorf("logged: %q, want one warning naming %s", got, tt.name)
			}
		})
	}
}

// atrax serve's edge pins its control plane's certificate; the pin
// follows a renewal, whichever of the two looks at the files first, and
// both keep the last good certificate when a renewal is refused.
func TestReloadPin(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	certFile, keyFile := ca.Server(t, "cp.internal").Write(t, dir, "cp")
	cfg := &config.Config{Path: filepath.Join(dir, "atrax.json"), ControlPlane: config.ControlPlane{TLS: &config.TLS{Cert: "cp.pem", Key: "cp-key.pem"}}}
	cpOpts, cpClock, _ := newOptions()
	edgeOpts, edgeClock, _ := newOptions()
	srv, err := tlsconf.ControlPlane(cfg, cpOpts)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.EdgeClient(cfg, true, edgeOpts)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(t *testing.T, why string) {
		t.Helper()
		if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
			t.Errorf("%s: client %v, server %v", why, cerr, serr)
		}
	}
	ok(t, "at start")

	renewed := ca.Server(t, "cp.internal")
	replace(t, certFile, renewed.Cert)
	replace(t, keyFile, renewed.Key)
	cpClock.Advance() // the control plane looks first
	ok(t, "renewed, the control plane first")
	again := ca.Server(t, "cp.internal")
	replace(t, certFile, again.Cert)
	replace(t, keyFile, again.Key)
	edgeClock.Advance() // the edge could look first: it must not move
	ok(t, "renewed, the edge's clock first")
	cpClock.Advance()
	ok(t, "renewed, then the control plane")

	replace(t, certFile, ca.Server(t, "cp.internal").Cert) // without its key
	cpClock.Advance()
	edgeClock.Advance()
	ok(t, "a refused renewal")
}
