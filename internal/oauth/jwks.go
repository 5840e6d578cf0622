package oauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// minRSABits is the smallest RSA modulus accepted (RFC 7518 section 3.3).
const minRSABits = 2048

// jwk is one key of a JWK Set (RFC 7517), public members only.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	// RSA
	N string `json:"n"`
	E string `json:"e"`
	// EC and OKP
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// A private member means a private key was published: refused.
	D string `json:"d"`
}

// ParseJWKS returns the signing keys of a JWK Set by key id. Each key is
// pinned to one algorithm: the alg it declares, or for a key without one
// the algorithm its type implies (RSA: RS256; EC: ES256, ES384 or ES512 by
// curve; OKP Ed25519: EdDSA). Keys that cannot verify an access token
// here (encryption keys, symmetric keys, "none" or HS* algorithms, RSA
// under 2048 bits, points off their curve, keys without a kid, private
// keys) are skipped, and why is returned beside the keys. A document that
// is not a JWK Set is an error.
func ParseJWKS(body []byte) (map[string]authn.OAuthKey, []string, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New("not a JWK Set: no keys member")
	}
	keys := make(map[string]authn.OAuthKey, len(set.Keys))
	var skipped []string
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		key, err := k.signingKey()
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %q): %v", i, k.Kid, err))
			continue
		}
		if _, dup := keys[key.ID]; dup {
			// Two keys under one id: neither can be told apart.
			delete(keys, key.ID)
			skipped = append(skipped, fmt.Sprintf("keys[%d]: kid %q is used twice", i, k.Kid))
			continue
		}
		keys[key.ID] = key
	}
	return keys, skipped, nil
}

// signingKey turns k into a verification key pinned to its algorithm.
func (k *jwk) signingKey() (authn.OAuthKey, error) {
	switch {
	case k.Kid == "":
		return authn.OAuthKey{}, errors.New("no kid")
	case k.Use != "" && k.Use != "sig":
		return authn.OAuthKey{}, fmt.Errorf("use %q is not sig", k.Use)
	case k.D != "":
		return authn.OAuthKey{}, errors.New("a private key")
	}
	out := authn.OAuthKey{ID: k.Kid, Algorithm: k.Alg}
	var err error
	switch k.Kty {
	case "RSA":
		if out.Algorithm == "" {
			out.Algorithm = "RS256"
		}
		if !slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, out.Algorithm) {
			return out, fmt.Errorf("alg %q is not an RSA signature algorithm", out.Algorithm)
		}
		out.Public, err = k.rsa()
	case "EC":
		want := map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[k.Crv]
		if want == "" {
			return out, fmt.Errorf("curve %q is not supported", k.Crv)
		}
		if out.Algorithm == "" {
			out.Algorithm = want
		}
		if out.Algorithm != want {
			return out, fmt.Errorf("alg %q does not go with curve %s", out.Algorithm, k.Crv)
		}
		out.Public, err = k.ec()
	case "OKP":
		if k.Crv != "Ed25519" {
			return out, fmt.Errorf("curve %q is not supported", k.Crv)
		}
		if out.Algorithm == "" {
			out.Algorithm = "EdDSA"
		}
		if out.Algorithm != "EdDSA" {
			return out, fmt.Errorf("alg %q does not go with Ed25519", out.Algorithm)
		}
		var x []byte
		if x, err = b64(k.X); err == nil && len(x) != ed25519.PublicKeySize {
			err = errors.New("an Ed25519 key is 32 bytes")
		}
		out.Public = ed25519.PublicKey(x)
	default:
		return out, fmt.Errorf("kty %q cannot verify a token here", k.Kty)
	}
	if err != nil {
		return authn.OAuthKey{}, err
	}
	return out, nil
}

func (k *jwk) rsa() (*rsa.PublicKey, error) {
	n, err := b64(k.N)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	e, err := b64(k.E)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
	if len(e) == 0 || len(e) > 4 {
		return nil, errors.New("e is not a small exponent")
	}
	for _, b := range e {
		pub.E = pub.E<<8 | int(b)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("e is not an odd exponent above 2")
	}
	if bits := pub.N.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("an RSA key of %d bits is under %d", bits, minRSABits)
	}
	return pub, nil
}

func (k *jwk) ec() (*ecdsa.PublicKey, error) {
	x, err := b64(k.X)
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	y, err := b64(k.Y)
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[k.Crv]
	size := (curve.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("x and y of %s are %d bytes each", k.Crv, size)
	}
	// The point must be on the curve, and not the point at infinity.
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, errors.New("the point is not on the curve")
	}
	return pub, nil
}

// b64 decodes base64url without padding, as JWKs write their members.
func b64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	return base64.RawURLEncoding.DecodeString(s)
}
