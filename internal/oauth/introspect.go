package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// errInactive is the answer for a token the server says is not active.
var errInactive = fmt.Errorf("%w: the authorization server says the token is not active", authn.ErrInvalidToken)

// Introspect asks the introspection endpoint about token (RFC 7662) and
// returns the answer of an active token; the map is shared with later
// callers and must not be changed. Answers are cached by the token's
// SHA-256, active ones until the token's exp and never longer than the
// cache TTL, inactive ones for the TTL; the cache holds at most CacheSize
// answers. Failures to reach the endpoint are not cached.
func (s *Source) Introspect(ctx context.Context, token string) (map[string]any, error) {
	in := s.opts.Introspection
	if in == nil {
		return nil, authn.ErrNoIntrospection
	}
	key := digest(token)
	now := s.now()
	if a, ok := s.cache.get(&key, now); ok {
		if !a.active {
			return nil, errInactive
		}
		return a.claims, nil
	}
	endpoint := in.Endpoint
	if endpoint == "" {
		meta, err := s.metadata(ctx)
		if err != nil {
			s.log.Warn("introspect a token", "issuer", s.opts.Issuer, "err", err)
			return nil, err
		}
		if endpoint = meta.IntrospectionEndpoint; endpoint == "" {
			return nil, fmt.Errorf("the metadata of %s names no introspection_endpoint", s.opts.Issuer)
		}
	}
	claims, err := s.introspect(ctx, endpoint, token)
	if err != nil {
		s.log.Warn("introspect a token", "issuer", s.opts.Issuer, "err", err)
		return nil, err
	}
	until := now.Add(in.CacheTTL)
	active, _ := claims["active"].(bool)
	if active {
		if exp, ok := claims["exp"].(float64); ok && !math.IsNaN(exp) && exp < float64(until.Unix()) {
			until = time.Unix(int64(exp), 0)
		}
	} else {
		claims = nil
	}
	s.cache.put(&key, &answer{active: active, claims: claims, until: until})
	if !active {
		return nil, errInactive
	}
	return claims, nil
}

// introspect sends one introspection request.
func (s *Source) introspect(ctx context.Context, endpoint, token string) (map[string]any, error) {
	in := s.opts.Introspection
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: both are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.ClientSecret))
	body, err := do(s.client, req)
	if err != nil {
		return nil, fmt.Errorf("introspection endpoint: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, errors.New("introspection endpoint: the answer is not a JSON object")
	}
	if _, ok := claims["active"].(bool); !ok {
		return nil, errors.New("introspection endpoint: the answer has no boolean active")
	}
	return claims, nil
}

// answer is one cached introspection answer.
type answer struct {
	active bool
	claims map[string]any
	until  time.Time
}

// answers is a bounded cache of introspection answers by token digest. When
// full it drops the answer stored first (expired ones go as they are met).
type answers struct {
	mu    sync.Mutex
	m     map[[sha256.Size]byte]*answer
	order [][sha256.Size]byte // insertion order, a ring of len max
	next  int
	max   int
}

func newAnswers(max int) *answers {
	return &answers{m: make(map[[sha256.Size]byte]*answer, max), max: max}
}

func (c *answers) get(key *[sha256.Size]byte, now time.Time) (*answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[*key]
	if !ok {
		return nil, false
	}
	if !now.Before(a.until) {
		delete(c.m, *key)
		return nil, false
	}
	return a, true
}

func (c *answers) put(key *[sha256.Size]byte, a *answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[*key]; ok {
		c.m[*key] = a
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, *key)
	} else {
		// The slot's old key may have gone already; if not, it goes now.
		delete(c.m, c.order[c.next])
		c.order[c.next] = *key
		c.next = (c.next + 1) % c.max
	}
	c.m[*key] = a
}

// len returns how many answers are cached.
func (c *answers) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
