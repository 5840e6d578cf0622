package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
)

// Environment variables of the TLS flags.
const (
	envCA   = "ATRAX_CA"
	envCert = "ATRAX_CERT"
	envKey  = "ATRAX_KEY"
)

// probeTimeout bounds the TLS probe that explains a failed connection.
const probeTimeout = 3 * time.Second

// fileOpt is a file named by a flag or by its environment variable.
type fileOpt struct {
	path string
	from string // "--ca" or "ATRAX_CA": what named the file, for messages
}

// tlsFlags are --ca, --cert, --key and --tls: how the CLI speaks TLS to a
// control plane with controlPlane.tls. There is no flag that skips the
// verification of the control plane's certificate.
type tlsFlags struct {
	ca, cert, key fileOpt
	system        bool // --tls
}

func (t *tlsFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&t.ca.path, "ca", "", "PEM `FILE` of the CA certificates that signed the control plane's certificate (controlPlane.tls); implies TLS (default $"+envCA+")")
	fs.StringVar(&t.cert.path, "cert", "", "client certificate `FILE` (PEM) for a control plane that requires one (controlPlane.tls.clientCA); implies TLS, needs --key (default $"+envCert+")")
	fs.StringVar(&t.key.path, "key", "", "private key `FILE` (PEM) of --cert (default $"+envKey+")")
	fs.BoolVar(&t.system, "tls", false, "speak TLS to the control plane, trusting the system's CA certificates (implied by --ca and --cert)")
}

// resolve fills in the files from the environment where no flag names
// them, and checks that --cert and --key come together.
func (t *tlsFlags) resolve(e *env) error {
	for _, o := range []struct {
		opt       *fileOpt
		flag, env string
	}{{&t.ca, "--ca", envCA}, {&t.cert, "--cert", envCert}, {&t.key, "--key", envKey}} {
		if o.opt.path != "" {
			o.opt.from = o.flag
		} else if v := strings.TrimSpace(e.getenv(o.env)); v != "" {
			o.opt.path, o.opt.from = v, o.env
		}
	}
	switch {
	case t.cert.path != "" && t.key.path == "":
		return usagef("%s needs --key (or %s): the private key of the client certificate", t.cert.from, envKey)
	case t.key.path != "" && t.cert.path == "":
		return usagef("%s needs --cert (or %s): the client certificate of the key", t.key.from, envCert)
	}
	return nil
}

// enabled reports whether the CLI speaks TLS.
func (t *tlsFlags) enabled() bool {
	return t.system || t.ca.path != "" || t.cert.path != ""
}

// plain says how to turn TLS off: which flags to drop and which
// variables to unset.
func (t *tlsFlags) plain() string {
	var flags, vars []string
	for _, o := range []fileOpt{t.ca, t.cert, t.key} {
		switch {
		case o.path == "":
		case strings.HasPrefix(o.from, "--"):
			flags = append(flags, o.from)
		default:
			vars = append(vars, o.from)
		}
	}
	if t.system {
		flags = append(flags, "--tls")
	}
	var do []string
	if len(flags) > 0 {
		do = append(do, "drop "+strings.Join(flags, ", "))
	}
	if len(vars) > 0 {
		do = append(do, "unset "+strings.Join(vars, ", "))
	}
	return strings.Join(do, " and ")
}

// config returns the TLS config of the connection to the control plane
// and the record of its handshakes; nil, nil for plain gRPC. The files are
// read and checked by internal/tlsconf, as an edge's controlPlane.ca,
// clientCert and clientKey are; its errors then name the flag (or the
// variable) instead of those keys.
func (t *tlsFlags) config() (*tls.Config, *handshake, error) {
	if !t.enabled() {
		return nil, nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12} // the system's roots
	if t.ca.path != "" || t.cert.path != "" {
		cfg := &config.Config{ControlPlane: config.ControlPlane{CA: t.ca.path, ClientCert: t.cert.path, ClientKey: t.key.path}}
		var err error
		if c, err = tlsconf.EdgeClient(cfg, false, nil); err != nil {
			return nil, nil, errors.New(strings.NewReplacer(
				"controlPlane.clientCert", t.cert.from,
				"controlPlane.clientKey", t.key.from,
				"controlPlane.ca", t.ca.from,
			).Replace(err.Error()))
		}
	}
	h := &handshake{}
	// tlsconf chooses the certificate, as crypto/tls chooses among
	// Certificates; what it sends is recorded.
	choose := c.GetClientCertificate
	c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		h.asked.Store(true)
		if choose == nil {
			return &tls.Certificate{}, nil
		}
		cert, err := choose(cri)
		if err == nil && len(cert.Certificate) > 0 {
			h.sent.Store(true)
		}
		return cert, err
	}
	return c, h, nil
}

// handshake records what the control plane asked of the CLI in its TLS
// handshakes, to explain a refusal.
type handshake struct {
	asked atomic.Bool // the control plane asked for a client certificate
	sent  atomic.Bool // and the CLI had one it accepts to send
}

// tlsError is a failed connection that TLS explains: retrying does not
// help.
type tlsError struct{ error }

// explainTLS explains a failed connection that TLS explains: a control
// plane that speaks TLS to a CLI that does not, or the other way round,
// or a certificate one side does not accept. It returns nil when TLS is
// not the cause.
func (c *client) explainTLS(msg string) error {
	t := c.tls
	if c.hs == nil {
		// Plain gRPC to a TLS listener: the listener drops the connection
		// at the first bytes, which are not a TLS handshake.
		dropped := false
		for _, s := range []string{"server preface", "EOF", "connection reset", "broken pipe"} {
			dropped = dropped || strings.Contains(msg, s)
		}
		if !dropped {
			return nil
		}
		speaks, wantsCert := probeTLS(c.addr)
		switch {
		case !speaks:
			return nil
		case wantsCert:
			return &tlsError{fmt.Errorf("the control plane at %s speaks TLS and requires a client certificate: pass --ca FILE (the CA that signed its certificate, controlPlane.tls.cert), and --cert and --key (a certificate that a CA of its controlPlane.tls.clientCA signed), or set %s, %s and %s", c.addr, envCA, envCert, envKey)}
		}
		return &tlsError{fmt.Errorf("the control plane at %s speaks TLS: pass --ca FILE, the CA that signed its certificate (controlPlane.tls.cert), or set %s; or --tls when a CA the system trusts signed it", c.addr, envCA)}
	}
	cause := tlsCause(msg)
	// A control plane that refuses the client's certificate says so with
	// an alert, or, when the client has already written (TLS 1.3), by
	// closing the connection under it.
	refused := false
	for _, s := range []string{"remote error: tls", "broken pipe", "connection reset", "EOF"} {
		refused = refused || strings.Contains(msg, s)
	}
	distrust := "the system's CA certificates do not trust"
	if t.ca.path != "" {
		distrust = fmt.Sprintf("%s (%s) does not trust", t.ca.from, t.ca.path)
	}
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return &tlsError{fmt.Errorf("%s does not speak TLS: either it is a control plane without controlPlane.tls (then %s), or it is not the control plane's gRPC address (controlPlane.address) at all", c.addr, t.plain())}
	case strings.Contains(msg, "certificate required"), c.hs.asked.Load() && !c.hs.sent.Load() && refused:
		if t.cert.path == "" {
			return &tlsError{fmt.Errorf("the control plane at %s requires a client certificate: pass --cert and --key (or set %s and %s), a certificate that a CA of its controlPlane.tls.clientCA signed, and its key", c.addr, envCert, envKey)}
		}
		return &tlsError{fmt.Errorf("the control plane at %s requires a client certificate that a CA of its controlPlane.tls.clientCA signed, and %s (%s) is not one: pass --cert and --key of such a certificate", c.addr, t.cert.from, t.cert.path)}
	case c.hs.sent.Load() && refused:
		if !strings.Contains(msg, "remote error: tls") {
			cause = "it closed the connection"
		}
		return &tlsError{fmt.Errorf("the control plane at %s refused the client certificate of %s, %s (%s): is it valid now, meant for clients, and signed by a CA of its controlPlane.tls.clientCA?", c.addr, t.cert.from, t.cert.path, cause)}
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: certificate is not valid for any names"), strings.Contains(msg, "x509: cannot validate certificate for"):
		return &tlsError{fmt.Errorf("the certificate of the control plane at %s does not name the host of --addr (%s): give --addr (or %s) a host name or IP address that its certificate names", c.addr, cause, envAddr)}
	case strings.Contains(msg, "x509: certificate has expired or is not yet valid"):
		return &tlsError{fmt.Errorf("the certificate of the control plane at %s is not valid now (%s): renew controlPlane.tls.cert, or check this machine's clock", c.addr, cause)}
	case strings.Contains(msg, "x509:"), strings.Contains(msg, "failed to verify certificate"):
		hint := "pass --ca FILE (or set " + envCA + "), the CA that signed its certificate (controlPlane.tls.cert)"
		if t.ca.path != "" {
			hint = "pass --ca the CA that signed its certificate (controlPlane.tls.cert)"
		}
		return &tlsError{fmt.Errorf("the control plane at %s presented a certificate that %s (%s): %s", c.addr, distrust, cause, hint)}
	case strings.Contains(msg, "authentication handshake failed"), strings.Contains(msg, "remote error: tls"):
		return &tlsError{fmt.Errorf("the TLS handshake with the control plane at %s failed (%s)", c.addr, cause)}
	}
	return nil
}

// tlsCause is the part of a gRPC transport message that says what TLS
// refused.
func tlsCause(msg string) string {
	for _, prefix := range []string{"authentication handshake failed: ", "error reading server preface: "} {
		if _, after, ok := strings.Cut(msg, prefix); ok {
			msg = after
			break
		}
	}
	return strings.TrimSuffix(msg, `"`)
}

// probeTLS reports whether addr answers a TLS handshake and whether it
// asks for a client certificate. The probe sends the handshake and nothing
// else (no token, no call): it trusts no certificate and needs none to be
// trusted.
func probeTLS(addr string) (speaks, wantsCert bool) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, false
	}
	defer conn.Close()
	var sawCert, asked atomic.Bool
	host, _, _ := net.SplitHostPort(addr)
	tc := tls.Client(conn, &tls.Config{
		ServerName: host,
		NextProtos: []string{"h2"},
		// Only a probe: the connection carries no data, so there is
		// nothing to protect, and the certificate is only looked at.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			sawCert.Store(len(raw) > 0)
			return nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked.Store(true)
			return &tls.Certificate{}, nil
		},
	})
	_ = tc.HandshakeContext(ctx)
	return sawCert.Load(), asked.Load()
}
