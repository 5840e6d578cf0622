package session

import (
	"context"
	"sync"
	"time"
)

// Store holds the sessions an edge has open.
type Store struct {
	// OnClose is called once for each session that ends (removed, expired
	// or closed with the store), after it is closed.
	OnClose func(*Session)

	mu       sync.RWMutex
	sessions map[string]*Session
	anon     map[*Session]struct{} // sessions without an id
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{sessions: map[string]*Session{}, anon: map[*Session]struct{}{}}
}

// Add stores s.
func (st *Store) Add(s *Session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.ID == "" {
		st.anon[s] = struct{}{}
		return
	}
	st.sessions[s.ID] = s
}

// Get returns the session with id, or nil.
func (st *Store) Get(id string) *Session {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.sessions[id]
}

// Remove ends and forgets s. It reports whether s was stored.
func (st *Store) Remove(s *Session) bool {
	st.mu.Lock()
	_, ok := st.sessions[s.ID]
	if s.ID != "" && ok && st.sessions[s.ID] == s {
		delete(st.sessions, s.ID)
	} else if _, anon := st.anon[s]; anon {
		delete(st.anon, s)
		ok = true
	} else {
		ok = false
	}
	st.mu.Unlock()
	s.Close()
	if ok && st.OnClose != nil {
		st.OnClose(s)
	}
	return ok
}

// Each calls f for every session.
func (st *Store) Each(f func(*Session)) {
	st.mu.RLock()
	all := make([]*Session, 0, len(st.sessions)+len(st.anon))
	for _, s := range st.sessions {
		all = append(all, s)
	}
	for s := range st.anon {
		all = append(all, s)
	}
	st.mu.RUnlock()
	for _, s := range all {
		f(s)
	}
}

// Counts returns the number of sessions per transport.
func (st *Store) Counts() map[string]int {
	out := map[string]int{}
	st.Each(func(s *Session) { out[s.Transport]++ })
	return out
}

// Expire ends sessions idle for longer than ttl, every interval, until ctx
// ends; then it ends every session.
func (st *Store) Expire(ctx context.Context, ttl, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			st.Each(func(s *Session) { st.Remove(s) })
			return
		case now := <-t.C:
			st.Each(func(s *Session) {
				if s.Idle(now) > ttl {
					st.Remove(s)
				}
			})
		}
	}
}
