package config_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/config"
)

const tokenAuth = `"auth": {"type": "token", "options": {"token": "t"}},`

func TestParseStoreEtcd(t *testing.T) {
	c, err := config.Parse([]byte(`{`+tokenAuth+`
  "store": {"etcd": {
    "endpoints": ["https://etcd-0:2379", "etcd-1:2379"],
    "tls": {"ca": "etcd-ca.pem", "cert": "cp.pem", "key": "cp-key.pem"},
    "username": "atrax",
    "password": "${ETCD_PASSWORD}",
    "prefix": "/prod/atrax",
  }},
  "controlPlane": {"address": ":4001", "addresses": ["cp-0:4001", "cp-1:4001"]},
}`), config.Options{LookupEnv: env(map[string]string{"ETCD_PASSWORD": "s3cret"})})
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Etcd{
		Endpoints: []string{"https://etcd-0:2379", "etcd-1:2379"},
		TLS:       &config.EtcdTLS{CA: "etcd-ca.pem", Cert: "cp.pem", Key: "cp-key.pem"},
		Username:  "atrax",
		Password:  "s3cret",
		Prefix:    "/prod/atrax",
	}
	if diff := cmp.Diff(want, c.Store.Etcd); diff != "" {
		t.Errorf("store.etcd (-want +got):\n%s", diff)
	}
	if got := c.ControlPlane.DialAddresses(); !cmp.Equal(got, []string{"cp-0:4001", "cp-1:4001"}) {
		t.Errorf("DialAddresses = %v, want the addresses", got)
	}
	if c.ControlPlane.Address != ":4001" {
		t.Errorf("controlPlane.address = %q, want :4001 (where it listens)", c.ControlPlane.Address)
	}

	// Defaults: no store, the default prefix, one address to dial.
	c, err = config.Parse([]byte(`{`+tokenAuth+` "store": {"etcd": {"endpoints": ["127.0.0.1:2379"]}}}`), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Etcd.Prefix != config.DefaultEtcdPrefix || c.Store.Etcd.TLS != nil {
		t.Errorf("store.etcd defaults = %+v, want prefix %s and no TLS", c.Store.Etcd, config.DefaultEtcdPrefix)
	}
	if got := c.ControlPlane.DialAddresses(); !cmp.Equal(got, []string{config.DefaultControlPlaneAddress}) {
		t.Errorf("DialAddresses without addresses = %v, want [%s]", got, config.DefaultControlPlaneAddress)
	}
	c, err = config.Parse([]byte(`{`+tokenAuth+`}`), config.Options{})
	if err != nil || c.Store.Etcd != nil {
		t.Errorf("a config without store: store.etcd = %v, %v; want none", c.Store.Etcd, err)
	}
}

func TestParseStoreErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"with dataDir", `"dataDir": "/var/lib/atrax", "store": {"etcd": {"endpoints": ["etcd:2379"]}}`,
			[]string{"store.etcd: cannot be set together with dataDir: the control plane keeps its state either in etcd or in the embedded store under dataDir; remove store.etcd or dataDir"}},
		{"no endpoints", `"store": {"etcd": {}}`,
			[]string{`store.etcd.endpoints: required: the etcd members' client URLs, such as ["https://etcd-0:2379"]`}},
		{"empty endpoints", `"store": {"etcd": {"endpoints": []}}`,
			[]string{"store.etcd.endpoints: must name at least one etcd member"}},
		{"bad endpoints", `"store": {"etcd": {"endpoints": ["grpc://etcd:2379", "etcd", "http://:2379", 7]}}`,
			[]string{
				"store.etcd.endpoints[0]: must be http://HOST:PORT, https://HOST:PORT or HOST:PORT",
				"store.etcd.endpoints[1]: must be http://HOST:PORT, https://HOST:PORT or HOST:PORT",
				"store.etcd.endpoints[2]: must be http://HOST:PORT, https://HOST:PORT or HOST:PORT, with a host and a port other than 0",
				"store.etcd.endpoints[3]: must be a string, not a number",
			}},
		{"http with tls", `"store": {"etcd": {"endpoints": ["http://etcd:2379"], "tls": {"ca": "ca.pem"}}}`,
			[]string{"store.etcd.endpoints[0]: uses http:// while store.etcd.tls is set: write https:// (or no scheme)"}},
		{"cert without key", `"store": {"etcd": {"endpoints": ["etcd:2379"], "tls": {"cert": "c.pem", "clientCA": "x"}}}`,
			[]string{
				"store.etcd.tls.clientCA: unknown key",
				"store.etcd.tls.key: required with store.etcd.tls.cert: the private key of the client certificate",
			}},
		{"user without password", `"store": {"etcd": {"endpoints": ["etcd:2379"], "username": "u"}}`,
			[]string{"store.etcd.password: required with store.etcd.username"}},
		{"unset password", `"store": {"etcd": {"endpoints": ["etcd:2379"], "username": "u", "password": "${NOPE}"}}`,
			[]string{"store.etcd.password: variable NOPE is not set"}},
		{"bad prefix", `"store": {"etcd": {"endpoints": ["etcd:2379"], "prefix": "atrax"}}`,
			[]string{`store.etcd.prefix: must start with "/" and hold no spaces, such as "/atrax"`}},
		{"unknown keys", `"store": {"bolt": {}, "etcd": {"endpoints": ["etcd:2379"], "lease": 3}}`,
			[]string{"store.bolt: unknown key", "store.etcd.lease: unknown key"}},
		{"addresses", `"controlPlane": {"addresses": ["cp-0:4001", "cp-1:0", ":4001", "nope"]}`,
			[]string{
				`controlPlane.addresses[1]: must name a host and a port other than 0, such as "cp-0.atrax:4001"`,
				`controlPlane.addresses[2]: must name a host and a port other than 0, such as "cp-0.atrax:4001"`,
				`controlPlane.addresses[3]: must be host:port, such as "127.0.0.1:4001"`,
			}},
		{"empty addresses", `"controlPlane": {"addresses": []}`,
			[]string{`controlPlane.addresses: must name at least one control plane (or leave it out and set "address")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(`{`+tokenAuth+tt.in+`}`), config.Options{LookupEnv: env(nil)})
			if diff := cmp.Diff(tt.want, messages(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthNoneNeedsLoopbackAddresses(t *testing.T) {
	_, err := config.Parse([]byte(`{"auth": {"type": "none"}, "controlPlane": {"addresses": ["127.0.0.1:4001", "10.0.0.5:4001"]}}`), config.Options{})
	got := messages(t, err)
	if len(got) != 1 || !strings.Contains(got[0], "controlPlane.addresses") {
		t.Errorf("auth none with a remote control plane address: errors %q, want one naming controlPlane.addresses", got)
	}
}
