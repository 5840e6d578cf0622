package config

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Scopes a credential can hold. internal/authn defines the same two; this
// package imports nothing of Atrax's.
const (
	scopeAdmin = "admin"
	scopeEdge  = "edge"
)

// authState is the decoded "auth" object and what the top level needs to
// know about it for checks that span sections.
type authState struct {
	Auth
	// present is whether the file has an "auth" key at all, whatever its
	// value: a bad value has its own error, so "required" would be noise.
	present bool
	// typePath is where an error about the auth type belongs.
	typePath string
}

// fullGrant is the grant of a token written as a bare string (the seed's
// options.token): admin and edge scopes, every server, every tool.
func fullGrant() Grant {
	return Grant{Scopes: []string{scopeAdmin, scopeEdge}}
}

// auth decodes the "auth" object.
func (d *decoder) auth(path string, v *hujson.Value) authState {
	st := authState{
		Auth: Auth{
			TTL:         DefaultTokenTTL,
			MaxTTL:      DefaultMaxTokenTTL,
			KeyRotation: DefaultKeyRotation,
			Issuer:      DefaultIssuer,
			Audience:    DefaultAudience,
		},
		present:  true,
		typePath: join(path, "type"),
	}
	members, ok := d.object(path, v)
	if !ok {
		return st
	}
	var (
		typeSeen bool
		opts     *member
	)
	for _, m := range members {
		switch m.key {
		case "type":
			typeSeen = true
			st.Type, _ = d.oneOf(m.path, m.val, AuthNone, AuthToken, AuthJWT, AuthOAuth)
		case "options":
			opts = &m
		default:
			d.unknown(m)
		}
	}
	if !typeSeen {
		d.add(st.typePath, `required: "none", "token", "jwt" or "oauth"`)
	}

	optionsPath := join(path, "options")
	var (
		broken credentialErrors
		oauth  = &oauthState{OAuth: OAuth{
			JWKSRefresh: DefaultJWKSRefresh,
			Claims:      OAuthClaims{Subject: DefaultSubjectClaim},
		}}
		seen map[string]bool
	)
	if opts != nil {
		broken, seen = d.authOptions(opts.path, opts.val, &st.Auth, st.Type, oauth)
	}
	switch st.Type {
	case AuthOAuth:
		// Static tokens, clients and issued JWTs work beside OAuth; none
		// is required.
		d.checkOAuth(optionsPath, oauth, seen)
		st.OAuth = &oauth.OAuth
	case AuthToken:
		if len(st.Tokens) == 0 && !broken.tokens {
			d.add(join(optionsPath, "token"), `required when auth.type is "token" (or set auth.options.tokens)`)
		}
	case AuthJWT:
		if len(st.Tokens) == 0 && len(st.Clients) == 0 && !broken.tokens && !broken.clients {
			d.add(join(optionsPath, "clients"), `required when auth.type is "jwt" (or set auth.options.token or auth.options.tokens): credentials are exchanged for tokens at /auth`)
		}
	}
	return st
}

// credentialErrors says which credential lists had a bad entry. A missing
// credential is then already explained, and "required" would mislead.
type credentialErrors struct {
	tokens, clients bool
}

// authOptions decodes "auth.options" into a, and, when typ is AuthOAuth,
// its OAuth keys into o. It also returns which keys the object has.
func (d *decoder) authOptions(path string, v *hujson.Value, a *Auth, typ string, o *oauthState) (credentialErrors, map[string]bool) {
	var broken credentialErrors
	members, ok := d.object(path, v)
	if !ok {
		broken.tokens, broken.clients = true, true
		return broken, map[string]bool{"issuer": true, "audience": true, "claims": true}
	}
	seen := make(map[string]bool, len(members))
	var (
		single     []StaticToken // options.token, first whatever the key order
		list       []StaticToken
		singlePath []string
		listPaths  []string
		ttlPath    string
		maxPath    string
		ttlOK      = true
		maxOK      = true
	)
	for _, m := range members {
		seen[m.key] = true
		if typ == AuthOAuth && d.oauthOption(m, o) {
			continue
		}
		if oauthKeys[m.key] {
			d.add(m.path, `only with auth.type "oauth"`)
			continue
		}
		switch m.key {
		case "token":
			tok, ok := d.nonEmpty(m.path, m.val)
			if !ok {
				broken.tokens = true
				break
			}
			single = append(single, StaticToken{Name: "default", Token: tok, Grant: fullGrant()})
			singlePath = append(singlePath, m.path)
		case "tokens":
			elems, ok := d.array(m.path, m.val)
			if !ok {
				broken.tokens = true
				break
			}
			for i := range elems {
				p := index(m.path, i)
				t, tokPath, ok := d.staticToken(p, &elems[i], "tokens["+strconv.Itoa(i)+"]")
				if !ok {
					broken.tokens = true
					continue
				}
				list = append(list, t)
				listPaths = append(listPaths, tokPath)
			}
		case "clients":
			if !d.clients(m.path, m.val, a) {
				broken.clients = true
			}
		case "ttl":
			ttlPath = m.path
			if a.TTL, ttlOK = d.duration(m.path, m.val); !ttlOK {
				a.TTL = DefaultTokenTTL
			}
		case "maxTtl":
			maxPath = m.path
			if a.MaxTTL, maxOK = d.duration(m.path, m.val); !maxOK {
				a.MaxTTL = DefaultMaxTokenTTL
			}
		case "keyRotation":
			s, ok := d.str(m.path, m.val)
			if !ok {
				break
			}
			if s == "off" {
				a.KeyRotation = 0
				break
			}
			dur, err := parsePositiveDuration(s)
			switch {
			case err != nil:
				d.add(m.path, err.Error()+`, or "off"`)
			case dur < MinKeyRotation:
				d.addf(m.path, `must be at least %s (a rotation is checked for hourly), or "off"`, shortDuration(MinKeyRotation))
			default:
				a.KeyRotation = dur
			}
		case "issuer":
			if s, ok := d.nonEmpty(m.path, m.val); ok {
				a.Issuer = s
			}
		case "audience":
			if s, ok := d.nonEmpty(m.path, m.val); ok {
				a.Audience = s
			}
		default:
			d.unknown(m)
		}
	}
	switch {
	case !ttlOK || !maxOK || a.TTL <= a.MaxTTL:
	case ttlPath != "":
		d.addf(ttlPath, "must not be longer than maxTtl (%s)", shortDuration(a.MaxTTL))
	default:
		d.addf(maxPath, "must not be shorter than ttl (%s by default)", shortDuration(a.TTL))
	}

	a.Tokens = append(single, list...)
	paths := append(singlePath, listPaths...)
	byValue := make(map[string]string, len(a.Tokens))
	byName := make(map[string]string, len(a.Tokens))
	for i, t := range a.Tokens {
		// Token values are compared but never printed: the message names the
		// other key instead.
		if other, dup := byValue[t.Token]; dup {
			d.addf(paths[i], "same token as %s: each token must be unique", other)
		} else {
			byValue[t.Token] = paths[i]
		}
		if other, dup := byName[t.Name]; dup {
			d.addf(paths[i], "token name %q is already used by %s", t.Name, other)
		} else {
			byName[t.Name] = paths[i]
		}
	}
	return broken, seen
}

// staticToken decodes one entry of options.tokens: a bare string (a token
// with the full grant, like options.token) or an object. It also returns the
// key path of the secret, where a duplicate is reported.
func (d *decoder) staticToken(path string, v *hujson.Value, defaultName string) (StaticToken, string, bool) {
	switch v.Value.Kind() {
	case '"':
		tok, ok := d.nonEmpty(path, v)
		return StaticToken{Name: defaultName, Token: tok, Grant: fullGrant()}, path, ok
	case '{':
	default:
		d.typeError(path, "a string or an object", v)
		return StaticToken{}, "", false
	}
	members, _ := d.object(path, v)
	t := StaticToken{Name: defaultName}
	ok := true
	tokenPath := join(path, "token")
	var tokenSeen bool
	for _, m := range members {
		var fine bool
		switch m.key {
		case "name":
			t.Name, fine = d.nonEmpty(m.path, m.val)
		case "token":
			tokenSeen = true
			t.Token, fine = d.nonEmpty(m.path, m.val)
		default:
			fine = d.grantKey(m, &t.Grant)
		}
		ok = ok && fine
	}
	if !tokenSeen {
		d.add(tokenPath, "required")
		ok = false
	}
	return t, tokenPath, ok
}

// clients decodes options.clients into a.Clients, reporting whether every
// entry was usable.
func (d *decoder) clients(path string, v *hujson.Value, a *Auth) bool {
	elems, ok := d.array(path, v)
	if !ok {
		return false
	}
	a.Clients = make([]Client, 0, len(elems))
	ids := make(map[string]string, len(elems))
	for i := range elems {
		p := index(path, i)
		members, fine := d.object(p, &elems[i])
		if !fine {
			ok = false
			continue
		}
		var c Client
		var idSeen, secretSeen bool
		for _, m := range members {
			var good bool
			switch m.key {
			case "id":
				idSeen = true
				c.ID, good = d.nonEmpty(m.path, m.val)
				if good {
					if other, dup := ids[c.ID]; dup {
						d.addf(m.path, "duplicate client id %q (also %s)", c.ID, other)
						good = false
					} else {
						ids[c.ID] = m.path
					}
				}
			case "secret":
				secretSeen = true
				c.Secret, good = d.nonEmpty(m.path, m.val)
			default:
				good = d.grantKey(m, &c.Grant)
			}
			fine = fine && good
		}
		if !idSeen {
			d.add(join(p, "id"), "required")
			fine = false
		}
		if !secretSeen {
			d.add(join(p, "secret"), "required")
			fine = false
		}
		if fine {
			a.Clients = append(a.Clients, c)
		}
		ok = ok && fine
	}
	return ok
}

// grantKey decodes one of the keys a token or client object shares (scopes,
// servers, tools) into g. Any other key is unknown.
func (d *decoder) grantKey(m member, g *Grant) bool {
	var ok bool
	switch m.key {
	case "scopes":
		var elems []hujson.Value
		if elems, ok = d.array(m.path, m.val); !ok {
			return false
		}
		g.Scopes = make([]string, 0, len(elems))
		for i := range elems {
			s, fine := d.oneOf(index(m.path, i), &elems[i], scopeAdmin, scopeEdge)
			if fine {
				g.Scopes = append(g.Scopes, s)
			}
			ok = ok && fine
		}
	case "servers":
		g.Servers, ok = d.patterns(m.path, m.val)
	case "tools":
		g.Tools, ok = d.patterns(m.path, m.val)
	default:
		d.unknown(m)
	}
	return ok
}

// parsePositiveDuration parses a Go duration that must be above zero. Its
// error, unlike time.ParseDuration's, does not repeat the value.
func parsePositiveDuration(s string) (time.Duration, error) {
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, errors.New(`must be a positive duration such as "90s", "5m" or "1h"`)
	}
	return dur, nil
}

// shortDuration prints 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-len("0s")]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-len("0m")]
	}
	return s
}
