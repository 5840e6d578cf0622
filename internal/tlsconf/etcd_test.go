package tlsconf_test

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
	"github.com/atrax-mcp/atrax/internal/tlsconf/tlstest"
)

func TestEtcd(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "etcd CA")
	ca.Server(t, "127.0.0.1").Write(t, dir, "etcd")
	tlstest.WriteFile(t, filepath.Join(dir, "etcd-ca.pem"), ca.PEM)
	clients := tlstest.NewCA(t, "client CA")
	clients.Client(t, "atrax").Write(t, dir, "cp")
	at := func(e *config.Etcd) *config.Config {
		return &config.Config{Path: filepath.Join(dir, "atrax.json"), Store: config.Store{Etcd: e}}
	}

	for _, c := range []*config.Config{at(nil), at(&config.Etcd{Endpoints: []string{"http://127.0.0.1:2379", "etcd:2379"}})} {
		if got, err := tlsconf.Etcd(c, nil); got != nil || err != nil {
			t.Errorf("Etcd without TLS = %v, %v; want nil, nil", got, err)
		}
	}
	if got, err := tlsconf.Etcd(at(&config.Etcd{Endpoints: []string{"https://etcd:2379"}}), nil); err != nil || got == nil || got.RootCAs != nil {
		t.Errorf("Etcd with an https:// endpoint = %v, %v; want TLS with the system's roots", got, err)
	}

	cli, err := tlsconf.Etcd(at(&config.Etcd{Endpoints: []string{"127.0.0.1:2379"},
		TLS: &config.EtcdTLS{CA: "etcd-ca.pem", Cert: "cp.pem", Key: "cp-key.pem"}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "etcd.pem"), filepath.Join(dir, "etcd-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clients.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	cli.ServerName = "127.0.0.1"
	if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
		t.Errorf("the control plane dialing etcd with mutual TLS: client %v, server %v", cerr, serr)
	}

	_, err = tlsconf.Etcd(at(&config.Etcd{Endpoints: []string{"etcd:2379"}, TLS: &config.EtcdTLS{CA: "missing.pem"}}), nil)
	if err == nil || !strings.Contains(err.Error(), "store.etcd.tls.ca") {
		t.Errorf("Etcd with a missing CA file: err = %v, want one naming store.etcd.tls.ca", err)
	}
}
