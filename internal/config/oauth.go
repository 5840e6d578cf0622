package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Defaults of auth.type "oauth".
const (
	// DefaultJWKSRefresh is how often the authorization server's keys are
	// fetched again (options.jwksRefresh).
	DefaultJWKSRefresh = 15 * time.Minute
	// DefaultIntrospectionCacheTTL bounds how long an introspection answer
	// is reused (options.introspection.cacheTtl); a token's exp bounds it
	// further.
	DefaultIntrospectionCacheTTL = time.Minute
	// DefaultSubjectClaim names the caller in an access token.
	DefaultSubjectClaim = "sub"
)

// OAuth is auth.options of auth.type "oauth": Atrax as an OAuth 2.1
// resource server in front of an existing authorization server (an IdP).
// Access tokens the server issues for this gateway are bearer tokens here,
// beside the static tokens and issued JWTs of auth.options.
type OAuth struct {
	// Issuer is the authorization server's issuer URL (options.issuer).
	// Its metadata is discovered from it (RFC 8414, OpenID Connect
	// Discovery), and tokens must carry it as iss.
	Issuer string
	// Audience is this gateway's canonical URL (options.audience), the
	// resource of RFC 8707 and RFC 9728: tokens must name it in aud.
	Audience string
	// JWKSRefresh is how often the server's keys are fetched again.
	JWKSRefresh time.Duration
	// Claims says what the claims of a token grant.
	Claims OAuthClaims
	// Introspection, when set, checks tokens that are not JWTs (RFC 7662).
	Introspection *Introspection
	// ScopesSupported are the scopes the metadata document lists
	// (options.scopesSupported); nil means the scopes of Claims.Scopes.
	ScopesSupported []string
	// CA is a PEM file of the CA certificates trusted for the
	// authorization server's HTTPS (options.ca): discovery, keys and
	// introspection. Empty means the system's roots; when set, it replaces
	// them, as controlPlane.ca does. A relative path is taken beside the
	// config file (Config.File). The file is read at start, by
	// internal/tlsconf, not here.
	CA string
}

// OAuthClaims is options.claims: which claims of an access token say who
// the caller is and what it may do. Subject, Scope, Servers and Tools name
// claims; Scopes and ScopePrefix say what scope values grant.
type OAuthClaims struct {
	// Subject is the claim that names the caller (DefaultSubjectClaim).
	Subject string
	// Scope is the claim that holds the granted scopes, a space-separated
	// string or an array; empty means "scope", else "scp".
	Scope string
	// Scopes maps a scope to the grants it carries, in file order.
	Scopes []ScopeGrant
	// ScopePrefix, when set, makes a scope PREFIX+GRANT carry GRANT
	// directly ("atrax:server:memory" with the prefix "atrax:").
	ScopePrefix string
	// Servers and Tools, when set, are claims whose values (an array or a
	// space-separated string of patterns) are granted as servers and tools.
	Servers string
	Tools   string
}

// ScopeGrant is one entry of options.claims.scopes.
type ScopeGrant struct {
	Scope string
	// Grants are in the vocabulary of /auth's scope: "admin", "edge",
	// "server:PATTERN" and "tool:PATTERN".
	Grants []string
}

// Introspection is options.introspection: how opaque access tokens are
// checked (RFC 7662).
type Introspection struct {
	// Endpoint is the introspection endpoint; empty means the one the
	// authorization server's metadata names.
	Endpoint string
	// ClientID and ClientSecret authenticate the gateway to the endpoint
	// (HTTP Basic).
	ClientID     string
	ClientSecret string
	// CacheTTL bounds how long an answer is reused.
	CacheTTL time.Duration
}

// oauthState is OAuth while it is decoded.
type oauthState struct {
	OAuth
	// claimsBroken is set when options.claims had a bad key: "needs
	// scopes" would then mislead.
	claimsBroken bool
}

// oauthKeys are the keys of auth.options that only auth.type "oauth" has.
var oauthKeys = map[string]bool{"jwksRefresh": true, "claims": true, "introspection": true, "scopesSupported": true, "ca": true}

// oauthOption decodes one member of auth.options that belongs to OAuth
// (issuer and audience in oauth mode, and the oauth-only keys), reporting
// whether it was one.
func (d *decoder) oauthOption(m member, o *oauthState) bool {
	switch m.key {
	case "issuer":
		o.Issuer, _ = d.oauthURL(m.path, m.val)
	case "audience":
		o.Audience, _ = d.oauthURL(m.path, m.val)
	case "jwksRefresh":
		if dur, ok := d.duration(m.path, m.val); ok {
			o.JWKSRefresh = dur
		}
	case "claims":
		var ok bool
		if o.Claims, ok = d.oauthClaims(m.path, m.val, o.Claims); !ok {
			o.claimsBroken = true
		}
	case "introspection":
		o.Introspection = d.introspection(m.path, m.val)
	case "ca":
		o.CA, _ = d.nonEmpty(m.path, m.val)
	case "scopesSupported":
		o.ScopesSupported, _ = d.strings(m.path, m.val, true, func(p, s string) bool {
			if s == "" || strings.ContainsAny(s, " \t\"\\") {
				d.add(p, "must be a scope: not empty, without spaces, quotes or backslashes")
				return false
			}
			return true
		})
	default:
		return false
	}
	return true
}

// checkOAuth reports what oauth mode requires and the file lacks.
func (d *decoder) checkOAuth(optionsPath string, o *oauthState, seen map[string]bool) {
	for _, k := range []string{"issuer", "audience"} {
		if !seen[k] {
			d.addf(join(optionsPath, k), `required when auth.type is "oauth": %s`, map[string]string{
				"issuer":   "the authorization server's issuer URL",
				"audience": "this gateway's canonical URL, which tokens must name in aud",
			}[k])
		}
	}
	c := o.Claims
	if !seen["claims"] {
		d.add(join(optionsPath, "claims"), `required when auth.type is "oauth": say which scopes or claims grant what ("scopes", "scopePrefix", "servers" or "tools")`)
	} else if len(c.Scopes) == 0 && c.ScopePrefix == "" && c.Servers == "" && c.Tools == "" && !o.claimsBroken {
		d.add(join(optionsPath, "claims"), `needs "scopes", "scopePrefix", "servers" or "tools": otherwise no token grants anything`)
	}
}

// oauthURL accepts an absolute https URL without query or fragment; http
// only on a loopback host (tests, a local authorization server). An issuer
// and a resource may have a path.
func (d *decoder) oauthURL(path string, v *hujson.Value) (string, bool) {
	s, ok := d.nonEmpty(path, v)
	if !ok {
		return "", false
	}
	if msg := checkOAuthURL(s); msg != "" {
		d.add(path, msg)
		return "", false
	}
	return s, true
}

// checkOAuthURL returns what is wrong with s as an issuer, a resource or
// an endpoint, or "". The message never repeats the value.
func checkOAuthURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return `must be an absolute URL such as "https://idp.example.com/realms/main"`
	case u.User != nil:
		return "must not hold a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a query or a fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "must use https (http only on a loopback host such as 127.0.0.1)"
	default:
		return "must be an https URL"
	}
}

// oauthClaims decodes options.claims, reporting whether every key was
// usable.
func (d *decoder) oauthClaims(path string, v *hujson.Value, c OAuthClaims) (OAuthClaims, bool) {
	members, fine := d.object(path, v)
	if !fine {
		return c, false
	}
	claimName := func(m member) string {
		s, ok := d.nonEmpty(m.path, m.val)
		fine = fine && ok
		return s
	}
	for _, m := range members {
		switch m.key {
		case "subject":
			if s := claimName(m); s != "" {
				c.Subject = s
			}
		case "scope":
			c.Scope = claimName(m)
		case "servers":
			c.Servers = claimName(m)
		case "tools":
			c.Tools = claimName(m)
		case "scopePrefix":
			c.ScopePrefix = claimName(m)
		case "scopes":
			var ok bool
			c.Scopes, ok = d.scopeGrants(m.path, m.val)
			fine = fine && ok
		default:
			d.unknown(m)
			fine = false
		}
	}
	return c, fine
}

// scopeGrants decodes options.claims.scopes: an object from scope to an
// array of grants.
func (d *decoder) scopeGrants(path string, v *hujson.Value) ([]ScopeGrant, bool) {
	members, ok := d.object(path, v)
	if !ok {
		return nil, false
	}
	out := make([]ScopeGrant, 0, len(members))
	for _, m := range members {
		if m.key == "" || strings.ContainsAny(m.key, " \t\"\\") {
			d.add(m.path, "must be a scope: not empty, without spaces, quotes or backslashes")
			ok = false
			continue
		}
		grants, fine := d.strings(m.path, m.val, true, func(p, s string) bool {
			if msg := checkGrant(s); msg != "" {
				d.add(p, msg)
				return false
			}
			return true
		})
		if !fine {
			ok = false
			continue
		}
		out = append(out, ScopeGrant{Scope: m.key, Grants: grants})
	}
	return out, ok
}

// checkGrant returns what is wrong with a grant of options.claims.scopes,
// or "".
func checkGrant(s string) string {
	switch {
	case s == scopeAdmin, s == scopeEdge:
		return ""
	case strings.HasPrefix(s, "server:") && len(s) > len("server:"),
		strings.HasPrefix(s, "tool:") && len(s) > len("tool:"):
		return ""
	}
	return `must be "admin", "edge", "server:PATTERN" or "tool:PATTERN"`
}

// introspection decodes options.introspection.
func (d *decoder) introspection(path string, v *hujson.Value) *Introspection {
	in := &Introspection{CacheTTL: DefaultIntrospectionCacheTTL}
	members, ok := d.object(path, v)
	if !ok {
		return in
	}
	var idSeen, secretSeen bool
	for _, m := range members {
		switch m.key {
		case "endpoint":
			if s, ok := d.nonEmpty(m.path, m.val); ok {
				if msg := checkOAuthURL(s); msg != "" {
					d.add(m.path, msg)
				} else {
					in.Endpoint = s
				}
			}
		case "clientId":
			idSeen = true
			in.ClientID, _ = d.nonEmpty(m.path, m.val)
		case "clientSecret":
			secretSeen = true
			in.ClientSecret, _ = d.nonEmpty(m.path, m.val)
		case "cacheTtl":
			if dur, ok := d.duration(m.path, m.val); ok {
				in.CacheTTL = dur
			}
		default:
			d.unknown(m)
		}
	}
	if !idSeen {
		d.add(join(path, "clientId"), "required: the gateway's client id at the introspection endpoint")
	}
	if !secretSeen {
		d.add(join(path, "clientSecret"), "required: the gateway's client secret at the introspection endpoint")
	}
	return in
}
