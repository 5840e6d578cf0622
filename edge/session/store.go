package session

import (
	"context"
	"sync"
	"time"
)

// Store holds the sessions an edge has open. Looking a session up takes no
// lock that other requests share (sync.Map): every request of every client
// does it.
type Store struct {
	// OnClose is called once for each session that ends (removed, expired
	// or closed with the store), after it is closed.
	OnClose func(*Session)

	sessions sync.Map // id → *Session
	anon     sync.Map // *Session → struct{}: sessions without an id
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{}
}

// Add stores s.
func (st *Store) Add(s *Session) {
	if s.ID == "" {
		st.anon.Store(s, struct{}{})
		return
	}
	st.sessions.Store(s.ID, s)
}

// Get returns the session with id, or nil.
func (st *Store) Get(id string) *Session {
	v, ok := st.sessions.Load(id)
	if !ok {
		return nil
	}
	return v.(*Session)
}

// Remove ends and forgets s. It reports whether s was stored.
func (st *Store) Remove(s *Session) bool {
	var ok bool
	if s.ID != "" {
		ok = st.sessions.CompareAndDelete(s.ID, s)
	} else {
		_, ok = st.anon.LoadAndDelete(s)
	}
	s.Close()
	if ok && st.OnClose != nil {
		st.OnClose(s)
	}
	return ok
}

// Each calls f for every session.
func (st *Store) Each(f func(*Session)) {
	var all []*Session
	st.sessions.Range(func(_, v any) bool {
		all = append(all, v.(*Session))
		return true
	})
	st.anon.Range(func(k, _ any) bool {
		all = append(all, k.(*Session))
		return true
	})
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
