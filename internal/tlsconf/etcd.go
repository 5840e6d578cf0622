package tlsconf

import (
	"crypto/tls"
	"slices"
	"strings"

	"github.com/atrax-mcp/atrax/internal/config"
)

// Etcd returns the TLS config the control plane dials store.etcd with: nil
// (plain gRPC) when store.etcd has no tls and no https:// endpoint. It
// trusts store.etcd.tls.ca, else the system's roots, and presents
// store.etcd.tls.cert when set, from its files as they are renewed.
func Etcd(cfg *config.Config, opts *Options) (*tls.Config, error) {
	e := cfg.Store.Etcd
	if e == nil {
		return nil, nil
	}
	https := slices.ContainsFunc(e.Endpoints, func(ep string) bool { return strings.HasPrefix(strings.ToLower(ep), "https://") })
	if e.TLS == nil && !https {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.TLS == nil {
		return c, nil
	}
	if e.TLS.CA != "" {
		pool, err := certPool(cfg.File(e.TLS.CA), "store.etcd.tls.ca")
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if e.TLS.Cert != "" {
		pair, err := reloadingPair(cfg.File(e.TLS.Cert), cfg.File(e.TLS.Key), "store.etcd.tls.cert", "store.etcd.tls.key", opts)
		if err != nil {
			return nil, err
		}
		c.GetClientCertificate = clientCertificate(pair)
	}
	return c, nil
}
