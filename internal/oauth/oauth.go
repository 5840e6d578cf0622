// Package oauth talks to an OAuth 2.1 authorization server for the token
// verifier: it discovers the server's metadata (RFC 8414, OpenID Connect
// Discovery), fetches and refreshes its signing keys (JWKS), and asks its
// introspection endpoint about opaque tokens (RFC 7662). A Source is the
// authn.OAuthSource that internal/authn, which knows no network, verifies
// access tokens with.
//
// Nothing here decides whether a token is good: signatures, iss, aud,
// exp, scopes and revocation are authn's. This package only fetches, and
// bounds how often it does.
package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// Defaults of Options.
const (
	DefaultJWKSRefresh       = 15 * time.Minute
	DefaultMinRefresh        = 30 * time.Second
	DefaultTimeout           = 10 * time.Second
	DefaultIntrospectionTTL  = time.Minute
	DefaultIntrospectionSize = 10000
	// maxDocument bounds a metadata, JWKS or introspection answer.
	maxDocument = 1 << 20
)

// Options configure a Source.
type Options struct {
	// Issuer is the authorization server's issuer URL. Required.
	Issuer string
	// JWKSRefresh is how often the keys are fetched again while they are
	// used (DefaultJWKSRefresh when 0).
	JWKSRefresh time.Duration
	// MinRefresh is the least time between two fetches of the keys,
	// however many unknown key ids tokens name, and between two tries
	// after a failure (DefaultMinRefresh when 0).
	MinRefresh time.Duration
	// Introspection, when set, lets the Source introspect opaque tokens.
	Introspection *Introspection
	// Client makes the requests; when nil, a client with a DefaultTimeout
	// that follows redirects to https (or loopback) URLs only.
	Client *http.Client
	// TLS, when set, is the TLS config of that default client's
	// connections, such as the CAs it trusts (auth.options.ca, see
	// tlsconf.OAuth); nil means Go's defaults, the system's roots. Unused
	// when Client is set.
	TLS *tls.Config
	// OnKeysRemoved, when set, is told the ids of keys the server no
	// longer publishes (authn.Verifier.ForgetOAuthKeys).
	OnKeysRemoved func(kids []string)
	Logger        *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Introspection configures RFC 7662 introspection.
type Introspection struct {
	// Endpoint is the introspection endpoint; empty means the one the
	// server's metadata names.
	Endpoint string
	// ClientID and ClientSecret authenticate the gateway (HTTP Basic).
	ClientID     string
	ClientSecret string
	// CacheTTL bounds how long an answer is reused; a token's exp bounds
	// it further (DefaultIntrospectionTTL when 0).
	CacheTTL time.Duration
	// CacheSize bounds how many answers are kept
	// (DefaultIntrospectionSize when 0).
	CacheSize int
}

// Source fetches what the verifier needs of one authorization server. It
// starts no goroutine: keys are fetched when a verification needs them,
// once for all the verifications waiting, and never more often than
// MinRefresh allows.
type Source struct {
	opts   Options
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	meta     *Metadata
	keys     map[string]authn.OAuthKey // nil until the first fetch
	fetched  time.Time                 // the last successful fetch of the keys
	tried    time.Time                 // the last try, successful or not
	inflight chan struct{}             // closed when the running fetch ends

	cache *answers // introspection answers; nil without introspection
}

// The verifier's view of a Source.
var _ authn.OAuthSource = (*Source)(nil)

// New returns a Source for opts.
func New(opts Options) *Source {
	if opts.JWKSRefresh <= 0 {
		opts.JWKSRefresh = DefaultJWKSRefresh
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = DefaultMinRefresh
	}
	s := &Source{opts: opts, client: opts.Client, log: opts.Logger, now: opts.Now}
	if s.client == nil {
		var transport http.RoundTripper // nil: http.DefaultTransport
		if opts.TLS != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			// A copy: the transport adds its protocols to the one it has.
			t.TLSClientConfig = opts.TLS.Clone()
			transport = t
		}
		s.client = &http.Client{
			Transport: transport,
			Timeout:   DefaultTimeout,
			// Keys and tokens are fetched from and sent to https (or
			// loopback) only, redirected or not.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				if !secureURL(req.URL.String()) {
					return errors.New("redirected to a URL that is not https")
				}
				return nil
			},
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if in := opts.Introspection; in != nil {
		if in.CacheTTL <= 0 {
			in.CacheTTL = DefaultIntrospectionTTL
		}
		if in.CacheSize <= 0 {
			in.CacheSize = DefaultIntrospectionSize
		}
		s.cache = newAnswers(in.CacheSize)
	}
	return s
}

// Key returns the server's key kid. The keys are fetched on first use,
// again every JWKSRefresh, and again when a token names a kid they lack,
// but never twice within MinRefresh. When a refresh fails the keys already
// fetched stay in use.
func (s *Source) Key(ctx context.Context, kid string) (authn.OAuthKey, error) {
	for {
		s.mu.Lock()
		k, known := s.keys[kid]
		now := s.now()
		stale := s.keys == nil || now.Sub(s.fetched) >= s.opts.JWKSRefresh
		if known && !stale {
			s.mu.Unlock()
			return k, nil
		}
		if wait := s.inflight; wait != nil {
			// Another verification is fetching: its keys will do.
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return authn.OAuthKey{}, ctx.Err()
			}
		}
		if !s.tried.IsZero() && now.Sub(s.tried) < s.opts.MinRefresh {
			s.mu.Unlock()
			return s.without(k, known)
		}
		done := make(chan struct{})
		s.inflight = done
		s.tried = now
		s.mu.Unlock()

		// The fetch serves every verification waiting on it, so it does
		// not end with the one that started it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
		keys, err := s.fetchKeys(fctx)
		cancel()

		s.mu.Lock()
		var removed []string
		if err != nil {
			s.log.Warn("fetch the authorization server's keys", "issuer", s.opts.Issuer, "err", err)
			s.meta = nil // discover again next time: the metadata may have moved
		} else {
			for old := range s.keys {
				if _, ok := keys[old]; !ok {
					removed = append(removed, old)
				}
			}
			s.keys, s.fetched = keys, s.now()
		}
		s.inflight = nil
		close(done)
		k, known = s.keys[kid]
		s.mu.Unlock()
		if len(removed) > 0 && s.opts.OnKeysRemoved != nil {
			s.opts.OnKeysRemoved(removed)
		}
		if known {
			return k, nil
		}
		return s.without(k, known)
	}
}

// without is the answer for a kid that is not (freshly) known.
func (s *Source) without(k authn.OAuthKey, known bool) (authn.OAuthKey, error) {
	if known {
		return k, nil // stale, but the refresh failed or must wait
	}
	s.mu.Lock()
	none := s.keys == nil
	s.mu.Unlock()
	if none {
		return authn.OAuthKey{}, errors.New("the authorization server's keys could not be fetched")
	}
	return authn.OAuthKey{}, authn.ErrUnknownKey
}

// fetchKeys discovers the metadata if need be and fetches the JWKS.
func (s *Source) fetchKeys(ctx context.Context) (map[string]authn.OAuthKey, error) {
	meta, err := s.metadata(ctx)
	if err != nil {
		return nil, err
	}
	if meta.JWKSURI == "" {
		return nil, fmt.Errorf("the metadata of %s names no jwks_uri", s.opts.Issuer)
	}
	body, err := get(ctx, s.client, meta.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	keys, skipped, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	for _, why := range skipped {
		s.log.Debug("authorization server key skipped", "issuer", s.opts.Issuer, "reason", why)
	}
	return keys, nil
}

// metadata returns the server's metadata, discovering it when unknown.
func (s *Source) metadata(ctx context.Context) (*Metadata, error) {
	s.mu.Lock()
	m := s.meta
	s.mu.Unlock()
	if m != nil {
		return m, nil
	}
	m, err := Discover(ctx, s.client, s.opts.Issuer)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.meta = m
	s.mu.Unlock()
	return m, nil
}

// get fetches url and returns its body, at most maxDocument bytes, when the
// status is 200.
func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return do(client, req)
}

// do sends req and returns the body of a 200 answer, at most maxDocument
// bytes. Errors name the URL without its credentials, never a body.
func do(client *http.Client, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDocument {
		return nil, fmt.Errorf("%s: the answer is over %d bytes", req.URL.Redacted(), maxDocument)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", req.URL.Redacted(), resp.StatusCode)
	}
	return body, nil
}

// digest is the key of a token in the introspection cache: never the token.
func digest(token string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token))
}
