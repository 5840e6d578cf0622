package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Metadata is what the gateway reads of an authorization server's metadata
// (RFC 8414 section 2; OpenID Connect Discovery 1.0 section 3).
type Metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string   `json:"token_endpoint,omitempty"`
	JWKSURI               string   `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint string   `json:"introspection_endpoint,omitempty"`
	ScopesSupported       []string `json:"scopes_supported,omitempty"`
}

// MetadataURLs returns where the metadata of issuer may be, in the order
// the MCP authorization specification has clients try them: RFC 8414's
// oauth-authorization-server and OpenID Connect's openid-configuration,
// the well-known part inserted before the issuer's path, and for an issuer
// with a path also OpenID Connect's original form, appended after it.
func MetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, errors.New("the issuer is not an absolute URL")
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	urls := []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
	}
	if path != "" {
		urls = append(urls, origin+path+"/.well-known/openid-configuration")
	}
	return urls, nil
}

// Discover fetches the metadata of issuer from the first of MetadataURLs
// that answers with a document for that very issuer (RFC 8414 section
// 3.3: a document naming another issuer must not be used).
func Discover(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	urls, err := MetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		body, err := get(ctx, client, u)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var m Metadata
		if err := json.Unmarshal(body, &m); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a metadata document: %w", u, err))
			continue
		}
		if m.Issuer != issuer {
			errs = append(errs, fmt.Errorf("%s: the document is for issuer %q, not %q (they must be identical, trailing slash included)", u, m.Issuer, issuer))
			continue
		}
		for name, endpoint := range map[string]string{"jwks_uri": m.JWKSURI, "introspection_endpoint": m.IntrospectionEndpoint} {
			if endpoint != "" && !secureURL(endpoint) {
				return nil, fmt.Errorf("%s: %s is not an https URL (http only on loopback)", u, name)
			}
		}
		return &m, nil
	}
	return nil, fmt.Errorf("discover the metadata of %s: %w", issuer, errors.Join(errs...))
}

// secureURL reports whether s is an absolute https URL, or http on a
// loopback host: where keys and tokens may be fetched from and sent to.
func secureURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			return true
		}
		ip, err := netip.ParseAddr(host)
		return err == nil && ip.Unmap().IsLoopback()
	}
	return false
}
