package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Edge records: each control plane keeps the edges connected to it under
// PREFIX/edges/INSTANCE/, one key per edge, on a lease of its own, so that
// any replica can list every edge of the fleet. They are not state: they
// do not change the store's revision, and Watch does not report them.

// edgeRecords are this process's edge records and the lease they live on.
type edgeRecords struct {
	mu      sync.Mutex
	want    map[string][]byte // edge id → record, as last set
	written map[string][]byte // what etcd holds under lease
	lease   clientv3.LeaseID  // 0 while this process holds none
	keeper  sync.Once         // starts keep
	done    chan struct{}     // closed when keep has ended; nil before
}

func (s *Store) edgesPrefix() string { return s.prefix + "/edges/" }

func (s *Store) edgeKey(id string) string { return s.edgesPrefix() + s.instance + "/" + id }

// SetEdges makes recs this process's records of the edges connected to it,
// replacing those it set before (and writing only the records that
// changed). Every replica's ListEdges returns them until this process sets
// others, closes the store, or is cut off from etcd for longer than the
// lease (ElectionTTL): the records live on a lease this process keeps
// alive, so those of a replica that died vanish by themselves.
//
// While this process holds no lease (before the first call, or after
// losing one), SetEdges returns at once and the records are written when
// it gets one.
func (s *Store) SetEdges(ctx context.Context, recs []*atraxv1.EdgeStatus) error {
	want := make(map[string][]byte, len(recs))
	for i, r := range recs {
		id := r.GetEdgeId()
		if id == "" || strings.Contains(id, "/") {
			return fmt.Errorf("set edges: record %d: edge id %q is empty or has a /", i, id)
		}
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode edge %q: %w", id, err)
		}
		want[id] = v
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	e := &s.edges
	e.keeper.Do(func() {
		e.done = make(chan struct{})
		go s.keep()
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.want = want
	if e.lease == 0 {
		return nil // keep writes them once it holds a lease
	}
	return s.writeEdges(ctx)
}

// writeEdges writes the records that changed and deletes those no longer
// wanted, under e.lease, in transactions of at most maxOps operations. It
// is called with e.mu held.
func (s *Store) writeEdges(ctx context.Context) error {
	e := &s.edges
	type op struct {
		id string
		op clientv3.Op
	}
	var ops []op
	for _, id := range slices.Sorted(maps.Keys(e.want)) {
		if w, ok := e.written[id]; !ok || !bytes.Equal(w, e.want[id]) {
			ops = append(ops, op{id, clientv3.OpPut(s.edgeKey(id), string(e.want[id]), clientv3.WithLease(e.lease))})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(e.written)) {
		if _, ok := e.want[id]; !ok {
			ops = append(ops, op{id, clientv3.OpDelete(s.edgeKey(id))})
		}
	}
	for chunk := range slices.Chunk(ops, maxOps) {
		txn := make([]clientv3.Op, len(chunk))
		for i, o := range chunk {
			txn[i] = o.op
		}
		if _, err := s.cli.Txn(ctx).Then(txn...).Commit(); err != nil {
			return s.fail(ctx, "write edge records", err)
		}
		for _, o := range chunk {
			if v, ok := e.want[o.id]; ok {
				e.written[o.id] = v
			} else {
				delete(e.written, o.id)
			}
		}
	}
	return nil
}

// keep holds a lease for the edge records from the first SetEdges until
// the store closes: it takes one, writes every record under it, keeps it
// alive, and when it is lost (etcd out of reach for longer than its TTL,
// so etcd deleted the records) takes another and writes them again. When
// the store closes it revokes the lease: the records vanish at once.
func (s *Store) keep() {
	defer close(s.edges.done)
	pause := minRewatch
	for s.ctx.Err() == nil {
		lease, alive, stop, err := s.takeLease()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("edge records: cannot take a lease; retrying", "err", err, "retry_in", pause.String())
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(pause*2, maxRewatch)
			continue
		}
		pause = minRewatch
		for range alive {
		}
		stop()
		s.edges.mu.Lock()
		s.edges.lease, s.edges.written = 0, nil
		s.edges.mu.Unlock()
		if s.ctx.Err() != nil {
			s.revoke(lease)
			return
		}
		s.log.Warn("edge records: lease lost (etcd out of reach for longer than its TTL); taking a new one", "prefix", s.prefix)
	}
}

// takeLease grants a lease, keeps it alive until s.ctx ends or stop is
// called, and writes every wanted record under it. The channel closes when
// the lease is lost or s.ctx ends.
func (s *Store) takeLease() (_ clientv3.LeaseID, _ <-chan *clientv3.LeaseKeepAliveResponse, stop func(), _ error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	g, err := s.cli.Grant(ctx, int64(math.Ceil(s.ttl.Seconds())))
	if err != nil {
		return 0, nil, nil, s.fail(ctx, "grant a lease", err)
	}
	kctx, stop := context.WithCancel(s.ctx)
	alive, err := s.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		stop()
		s.revoke(g.ID)
		return 0, nil, nil, s.fail(ctx, "keep a lease alive", err)
	}
	s.edges.mu.Lock()
	defer s.edges.mu.Unlock()
	s.edges.lease, s.edges.written = g.ID, map[string][]byte{}
	if err := s.writeEdges(ctx); err != nil {
		s.edges.lease, s.edges.written = 0, nil
		stop()
		s.revoke(g.ID)
		return 0, nil, nil, err
	}
	return g.ID, alive, stop, nil
}

// revoke gives a lease up, deleting its keys, as far as etcd can be told
// within the timeout; otherwise it expires after its TTL.
func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, id); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("edge records: revoke the lease; they vanish after its TTL", "err", err)
	}
}

// ListEdges returns the edge records of every process sharing the prefix,
// this one's included, ordered by process and then edge id.
func (s *Store) ListEdges(ctx context.Context) ([]*atraxv1.EdgeStatus, error) {
	resp, err := s.get(ctx, "list edges", s.edgesPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make([]*atraxv1.EdgeStatus, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r := new(atraxv1.EdgeStatus)
		if err := proto.Unmarshal(kv.Value, r); err != nil {
			return nil, fmt.Errorf("decode edge record %q: %w", strings.TrimPrefix(string(kv.Key), s.edgesPrefix()), err)
		}
		out = append(out, r)
	}
	return out, nil
}
