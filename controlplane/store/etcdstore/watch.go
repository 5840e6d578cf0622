package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Bounds of the pause between attempts to watch again after an error.
const (
	minRewatch = 100 * time.Millisecond
	maxRewatch = 5 * time.Second
)

// Watch sends every state write after revision from, one Event per etcd
// revision, in order, until ctx ends or the store closes; then it closes
// the channel.
//
// It watches PREFIX/state/ from the revision after the last it sent, so a
// watch broken by a member going away, a lost leader (the watch requires
// one, so that a member cut off from the quorum does not keep it waiting)
// or a network fault resumes without losing a write. When etcd compacted
// the revisions it would need, it reads the whole state at one revision,
// sends it as a Reset event and goes on from there.
func (s *Store) Watch(ctx context.Context, from int64) (<-chan store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	// The watch ends with ctx or with the store.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	out := make(chan store.Event, 64)
	go func() {
		defer close(out)
		defer stop()
		defer cancel()
		s.watch(ctx, from, out)
	}()
	return out, nil
}

func (s *Store) watch(ctx context.Context, from int64, out chan<- store.Event) {
	next := from + 1
	pause := minRewatch
	for ctx.Err() == nil {
		started := time.Now()
		reset, err := s.watchFrom(ctx, next, func(ev store.Event, etcdRev int64) bool {
			select {
			case out <- ev:
				next = etcdRev + 1
				return true
			case <-ctx.Done():
				return false
			}
		})
		if ctx.Err() != nil {
			return
		}
		if reset {
			ev, rev, err := s.load(ctx)
			if err == nil {
				select {
				case out <- ev:
					next = rev + 1
					s.log.Warn("store watch resumed from a whole read: the revisions it needed were compacted", "revision", ev.Revision)
					pause = minRewatch
					continue
				case <-ctx.Done():
					return
				}
			}
			s.log.Warn("store watch: cannot read the state after a compaction; retrying", "err", err, "retry_in", pause.String())
		} else if err != nil {
			s.log.Warn("store watch broken; resuming", "from_revision", next, "err", err, "retry_in", pause.String())
		}
		if time.Since(started) > maxRewatch {
			pause = minRewatch // the watch was healthy for a while
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(pause*2, maxRewatch)
	}
}

// watchFrom watches from etcd revision rev and hands each revision's event
// to send, until the watch ends (an error or ctx) or send refuses. It
// reports whether the revisions were compacted away.
func (s *Store) watchFrom(ctx context.Context, rev int64, send func(store.Event, int64) bool) (compacted bool, err error) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(ctx, s.statePrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return true, nil
		}
		if err := resp.Err(); err != nil {
			return false, err
		}
		// Events are ordered by revision; one transaction's events arrive
		// in one response.
		for i := 0; i < len(resp.Events); {
			r := resp.Events[i].Kv.ModRevision
			j := i
			for j < len(resp.Events) && resp.Events[j].Kv.ModRevision == r {
				j++
			}
			ev, err := s.event(r, resp.Events[i:j])
			if err != nil {
				return false, err
			}
			if !send(ev, r) {
				return false, nil
			}
			i = j
		}
	}
	if ctx.Err() == nil {
		return false, errors.New("watch channel closed")
	}
	return false, nil
}

// event turns the etcd events of one revision into a store.Event.
func (s *Store) event(rev int64, events []*clientv3.Event) (store.Event, error) {
	ev := store.Event{Revision: rev}
	for _, e := range events {
		name := strings.TrimPrefix(string(e.Kv.Key), s.statePrefix())
		switch {
		case strings.HasPrefix(name, dirServers):
			server := strings.TrimPrefix(name, dirServers)
			if e.Type == mvccpb.DELETE {
				ev.Deleted = append(ev.Deleted, server)
				continue
			}
			srv, err := decodeServer(e.Kv.Value)
			if err != nil {
				return ev, fmt.Errorf("decode server %q at revision %d: %w", server, rev, err)
			}
			ev.Servers = append(ev.Servers, srv)
		case strings.HasPrefix(name, dirSigning), strings.HasPrefix(name, dirSeal):
			ev.Keys = true
		case strings.HasPrefix(name, dirRevoked):
			ev.Revocations = true
		}
	}
	return ev, nil
}

// load reads the whole state at one revision as a Reset event, and returns
// the etcd revision it read at.
func (s *Store) load(ctx context.Context) (store.Event, int64, error) {
	resp, err := s.get(ctx, "read the state", s.statePrefix(), clientv3.WithPrefix())
	if err != nil {
		return store.Event{}, 0, err
	}
	ev := store.Event{Reset: true, Keys: true, Revocations: true, Servers: []*atraxv1.Server{}}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.statePrefix())
		switch {
		case name == keyRev:
			ev.Revision = kv.ModRevision
		case strings.HasPrefix(name, dirServers):
			srv, err := decodeServer(kv.Value)
			if err != nil {
				return ev, 0, fmt.Errorf("decode server %q: %w", strings.TrimPrefix(name, dirServers), err)
			}
			ev.Servers = append(ev.Servers, srv)
		}
	}
	return ev, resp.Header.Revision, nil
}
