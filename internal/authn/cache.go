package authn

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheSize is how many verified JWTs a Verifier remembers.
const DefaultCacheSize = 10000

// cacheShards spreads the cache over locks, so that concurrent requests do
// not queue on one.
const cacheShards = 16

// tokenCache remembers verified JWTs, so that a client that sends the same
// token on every request pays for the Ed25519 signature once (about 64 µs
// on a small machine) and then a SHA-256 (well under a microsecond).
//
// Entries are keyed by the SHA-256 of the token, never by the token. An
// entry is used only between the token's nbf/iat and its exp (without the
// verifier's leeway: a token is never served from the cache past its exp);
// revocations and key changes evict what they concern. Each shard holds at
// most its share of the bound and evicts with the CLOCK algorithm (an
// approximation of least recently used that costs nothing on a hit but a
// flag).
type tokenCache struct {
	shards [cacheShards]cacheShard
	// gen changes with every revocation and key change. A verification
	// that began under another generation may have read the state before
	// the change, so its entry is not kept (see put).
	gen atomic.Uint64
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*cacheEntry
	ring    []*cacheEntry // CLOCK order; nil slots are free
	hand    int
	max     int
}

type cacheEntry struct {
	key      [sha256.Size]byte
	p        *Principal
	kid      string
	notAfter time.Time // the token's exp
	from     time.Time // nbf or iat, less the leeway
	used     atomic.Bool
	slot     int
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{}
	per := max(1, (size+cacheShards-1)/cacheShards)
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]*cacheEntry)
		c.shards[i].max = per
	}
	return c
}

func (c *tokenCache) shard(key *[sha256.Size]byte) *cacheShard {
	return &c.shards[key[0]%cacheShards]
}

// get returns the principal of a cached token that is valid at now.
func (c *tokenCache) get(key *[sha256.Size]byte, now time.Time) (*Principal, bool) {
	s := c.shard(key)
	s.mu.Lock()
	e := s.entries[*key]
	s.mu.Unlock()
	if e == nil || !now.Before(e.notAfter) || now.Before(e.from) {
		return nil, false
	}
	e.used.Store(true)
	return e.p, true
}

// put remembers a token verified under generation gen.
func (c *tokenCache) put(key *[sha256.Size]byte, p *Principal, kid string, from, notAfter time.Time, gen uint64) {
	if c.gen.Load() != gen {
		return
	}
	s := c.shard(key)
	e := &cacheEntry{key: *key, p: p, kid: kid, from: from, notAfter: notAfter}
	s.mu.Lock()
	if old := s.entries[*key]; old != nil {
		s.ring[old.slot] = nil
		delete(s.entries, *key)
	}
	e.slot = s.free()
	s.ring[e.slot] = e
	s.entries[*key] = e
	s.mu.Unlock()
	// A revocation or key change that came meanwhile may have missed the
	// entry: take it out again.
	if c.gen.Load() != gen {
		s.mu.Lock()
		if s.entries[*key] == e {
			s.ring[e.slot] = nil
			delete(s.entries, *key)
		}
		s.mu.Unlock()
	}
}

// free returns a free slot of the ring, evicting with CLOCK when the shard
// is full. s.mu is held.
func (s *cacheShard) free() int {
	if len(s.ring) < s.max {
		s.ring = append(s.ring, nil)
		return len(s.ring) - 1
	}
	for range 2*len(s.ring) + 1 {
		i := s.hand
		s.hand = (s.hand + 1) % len(s.ring)
		e := s.ring[i]
		if e == nil {
			return i
		}
		if e.used.Swap(false) {
			continue // a second chance
		}
		delete(s.entries, e.key)
		s.ring[i] = nil
		return i
	}
	// Unreachable: a second pass finds every flag cleared.
	i := s.hand
	if e := s.ring[i]; e != nil {
		delete(s.entries, e.key)
	}
	return i
}

// evict drops every entry drop reports true for, after moving to a new
// generation.
func (c *tokenCache) evict(drop func(*cacheEntry) bool) {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.entries {
			if drop(e) {
				delete(s.entries, k)
				s.ring[e.slot] = nil
			}
		}
		s.mu.Unlock()
	}
}

// len returns how many tokens are cached.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
