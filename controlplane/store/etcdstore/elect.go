package etcdstore

import (
	"context"
	"errors"
	"math"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Elect campaigns in the election under PREFIX/election/ (etcd's
// concurrency package: a key on a lease this process keeps alive) and
// returns once this process leads, or when ctx ends or the store closes
// (then with the context's error or ErrClosed). The returned context ends
// when the lease is lost (etcd unreachable for longer than the election
// TTL), when ctx ends, or when resign is called; resign deletes the key, so
// that another replica takes over at once rather than after the TTL.
func (s *Store) Elect(ctx context.Context) (context.Context, func(), error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, nil, ErrClosed
	}
	// Campaigning ends with ctx or with the store.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	fail := func(err error) (context.Context, func(), error) {
		stop()
		cancel()
		if s.ctx.Err() != nil {
			return nil, nil, ErrClosed
		}
		return nil, nil, err
	}
	ttl := int(math.Ceil(s.ttl.Seconds()))
	pause := minRewatch
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
		if err == nil {
			e := concurrency.NewElection(sess, s.prefix+"/election/")
			if err = e.Campaign(ctx, s.instance); err == nil {
				s.log.Info("elected to lead the control planes sharing the store", "prefix", s.prefix, "id", s.instance)
				return s.leading(ctx, cancel, stop, sess, e)
			}
			sess.Close()
		}
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		s.log.Warn("election: cannot campaign; retrying", "err", err, "retry_in", pause.String())
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(pause):
		}
		pause = min(pause*2, maxRewatch)
	}
}

// leading returns the leader's context and its resign function.
func (s *Store) leading(ctx context.Context, cancel context.CancelFunc, stop func() bool, sess *concurrency.Session, e *concurrency.Election) (context.Context, func(), error) {
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.leaders.Add(1)
	go func() {
		defer s.leaders.Done()
		defer close(done)
		select {
		case <-sess.Done():
			s.log.Warn("leadership lost: the election lease expired", "prefix", s.prefix)
		case <-lctx.Done():
		}
		lcancel()
		// Give the leadership up while etcd can still be told; a lease
		// that cannot be revoked now expires after the TTL.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer rcancel()
		if err := e.Resign(rctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("resign leadership", "err", err)
		}
		sess.Close()
		stop()
		cancel()
	}()
	resign := func() {
		lcancel()
		<-done
	}
	return lctx, resign, nil
}
