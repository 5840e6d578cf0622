package tlsconf

import (
	"crypto/tls"

	"github.com/atrax-mcp/atrax/internal/config"
)

// KeyOAuthCA is the key path of the CAs trusted for the OAuth
// authorization server, as errors name it.
const KeyOAuthCA = "auth.options.ca"

// OAuth returns the TLS config the verifier reaches the OAuth
// authorization server with (discovery, keys, introspection): nil (Go's
// defaults, the system's roots) unless auth.type is "oauth" and
// auth.options.ca is set. With ca it trusts the certificates of that file
// only, as EdgeClient does with controlPlane.ca: to trust the system's
// roots as well, the file must hold them too. The file is read once, here.
func OAuth(cfg *config.Config) (*tls.Config, error) {
	o := cfg.Auth.OAuth
	if o == nil || o.CA == "" {
		return nil, nil
	}
	pool, err := certPool(cfg.File(o.CA), KeyOAuthCA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
