package config

import (
	"path/filepath"

	"github.com/tailscale/hujson"
)

// TLS is a "tls" object: the PEM files a listener serves TLS with. Paths
// are expanded (${VAR}) and, when relative, taken relative to the config
// file's directory (see Config.File). The files are read when the
// listener starts (internal/tlsconf), not when the config is loaded.
type TLS struct {
	// Cert is the certificate chain, leaf first.
	Cert string
	// Key is the certificate's private key.
	Key string
	// ClientCA, only in controlPlane.tls, holds the CA certificates that
	// sign the client certificates edges present; set, every gRPC client
	// must present one (mutual TLS).
	ClientCA string
}

// tls decodes a "tls" object; clientCA is accepted only where
// withClientCA (controlPlane.tls).
func (d *decoder) tls(path string, v *hujson.Value, withClientCA bool) *TLS {
	members, ok := d.object(path, v)
	if !ok {
		return nil
	}
	t := &TLS{}
	for _, m := range members {
		switch m.key {
		case "cert":
			t.Cert, _ = d.nonEmpty(m.path, m.val)
		case "key":
			t.Key, _ = d.nonEmpty(m.path, m.val)
		case "clientCA":
			if !withClientCA {
				d.unknown(m)
				continue
			}
			t.ClientCA, _ = d.nonEmpty(m.path, m.val)
		default:
			d.unknown(m)
		}
	}
	if !hasMember(members, "cert") {
		d.add(join(path, "cert"), "required: the certificate (PEM file) to serve TLS with")
	}
	if !hasMember(members, "key") {
		d.add(join(path, "key"), "required: the private key (PEM file) of the certificate")
	}
	return t
}

func hasMember(members []member, key string) bool {
	for _, m := range members {
		if m.key == key {
			return true
		}
	}
	return false
}

// File returns a path from the config file (a certificate, a key) as the
// process should open it: relative paths are taken relative to the config
// file's directory, as dataDir is.
func (c *Config) File(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}
