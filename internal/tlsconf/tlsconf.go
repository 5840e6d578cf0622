// Package tlsconf turns the TLS keys of the config (the edge's "tls", the
// control plane's "controlPlane.tls", what an edge presents and trusts
// when it dials the control plane, and the CAs trusted for the OAuth
// authorization server) into *tls.Config values. It reads the PEM files
// the keys name and checks them, and every error names the key at fault
// and the file, never a key's content.
//
// The configs serve their certificates, keys and client CAs from the
// files rather than from copies taken at start: a renewal that replaces
// the files is served from the next handshake on, without a restart (see
// reloading).
package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/atrax-mcp/atrax/internal/config"
)

// Key paths of the config, as errors name them.
const (
	KeyEdge         = "tls"
	KeyControlPlane = "controlPlane.tls"
)

// Edge returns the TLS config of the edge's public listener, nil when the
// config has no "tls". It offers HTTP/2 and HTTP/1.1.
func Edge(cfg *config.Config, opts *Options) (*tls.Config, error) {
	if cfg.TLS == nil {
		return nil, nil
	}
	c, err := server(cfg, cfg.TLS, KeyEdge, opts)
	if err != nil {
		return nil, err
	}
	c.NextProtos = []string{"h2", "http/1.1"}
	return c, nil
}

// ControlPlane returns the TLS config of the control plane's gRPC
// listener, nil when the config has no controlPlane.tls. With clientCA,
// every client must present a certificate that CA signed (mutual TLS).
//
// With clientCA, each handshake runs on a copy of the returned config as
// it is then (fields a caller set on it included) with the current client
// CAs: a tls.Config holds one fixed pool, and GetConfigForClient is the
// hook crypto/tls gives to change it per connection.
func ControlPlane(cfg *config.Config, opts *Options) (*tls.Config, error) {
	t := cfg.ControlPlane.TLS
	if t == nil {
		return nil, nil
	}
	c, err := server(cfg, t, KeyControlPlane, opts)
	if err != nil {
		return nil, err
	}
	if t.ClientCA != "" {
		cas, err := reloadingPool(cfg.File(t.ClientCA), KeyControlPlane+".clientCA", opts)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = cas.current() // what callers see; handshakes use the copy's
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cc := c.Clone()
			cc.GetConfigForClient = nil
			cc.ClientCAs = cas.get()
			return cc, nil
		}
	}
	return c, nil
}

// EdgeClient returns the TLS config an edge dials the control plane with,
// nil (plain gRPC) when the config names none of controlPlane.tls,
// controlPlane.ca and controlPlane.clientCert. It trusts controlPlane.ca,
// else the system's roots; when sameProcess (atrax serve, which runs the
// control plane itself) and no ca is given, it trusts the control plane's
// own certificate, pinned. It presents controlPlane.clientCert when set; a control
// plane that requires one (clientCA) and an edge of the same process
// without one is an error here rather than a refused handshake later.
// The client certificate and the pin follow renewals of their files.
func EdgeClient(cfg *config.Config, sameProcess bool, opts *Options) (*tls.Config, error) {
	cp := cfg.ControlPlane
	if cp.TLS == nil && cp.CA == "" && cp.ClientCert == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cp.CA != "":
		pool, err := certPool(cfg.File(cp.CA), "controlPlane.ca")
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	case sameProcess && cp.TLS != nil:
		// The edge dials the control plane of its own process: it pins
		// that exact certificate, whatever names it carries (the edge
		// dials the address the listener got, such as 127.0.0.1:PORT).
		// The pair is checked as the control plane checks it, so that
		// both keep the same last good certificate when a renewal is
		// refused.
		pin, err := reloadingPair(cfg.File(cp.TLS.Cert), cfg.File(cp.TLS.Key), KeyControlPlane+".cert", KeyControlPlane+".key", opts)
		if err != nil {
			return nil, err
		}
		c.InsecureSkipVerify = true // replaced by the pin below
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				// Another certificate than the pinned one may be a
				// renewal the control plane has loaded first: the
				// files are looked at again before it is refused.
				// Looking only then keeps the pin from moving ahead
				// of the control plane.
				got := cs.PeerCertificates[0].Raw
				if bytes.Equal(got, pin.current().Certificate[0]) || bytes.Equal(got, pin.reload().Certificate[0]) {
					return nil
				}
			}
			return errors.New("the control plane did not present the certificate of controlPlane.tls.cert")
		}
	}
	if cp.ClientCert != "" {
		pair, err := reloadingPair(cfg.File(cp.ClientCert), cfg.File(cp.ClientKey), "controlPlane.clientCert", "controlPlane.clientKey", opts)
		if err != nil {
			return nil, err
		}
		c.GetClientCertificate = clientCertificate(pair)
	} else if sameProcess && cp.TLS != nil && cp.TLS.ClientCA != "" {
		return nil, errors.New("controlPlane.clientCert: required: controlPlane.tls.clientCA makes the control plane require a client certificate, and its own edge has none (set controlPlane.clientCert and controlPlane.clientKey)")
	}
	return c, nil
}

// server loads a listener's certificate and key, and serves them from
// their files.
func server(cfg *config.Config, t *config.TLS, key string, opts *Options) (*tls.Config, error) {
	pair, err := reloadingPair(cfg.File(t.Cert), cfg.File(t.Key), key+".cert", key+".key", opts)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get(), nil },
	}, nil
}

// keyPair reads a certificate chain and its private key and checks that
// they belong together and that the certificate is valid now.
func keyPair(certFile, keyFile, certKey, keyKey string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: cannot read the certificate: %w", certKey, err)
	}
	if _, err := parseCerts(certPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %s: %w", certKey, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: cannot read the private key: %w", keyKey, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The standard library's messages name no content of the files.
		return tls.Certificate{}, fmt.Errorf("%s: %s is not the private key of %s (%s): %w", keyKey, keyFile, certKey, certFile, err)
	}
	now := time.Now()
	switch leaf := pair.Leaf; {
	case leaf == nil:
	case now.After(leaf.NotAfter):
		return tls.Certificate{}, fmt.Errorf("%s: %s expired on %s", certKey, certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return tls.Certificate{}, fmt.Errorf("%s: %s is not valid before %s", certKey, certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return pair, nil
}

// certPool reads a file of PEM CA certificates.
func certPool(file, key string) (*x509.CertPool, error) {
	certs, err := readCerts(file, key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func readCerts(file, key string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read the certificates: %w", key, err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", key, file, err)
	}
	return certs, nil
}

// parseCerts returns the CERTIFICATE blocks of PEM data; other blocks are
// skipped, and no certificate at all is an error.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a certificate cannot be parsed: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}
