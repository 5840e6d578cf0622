// Package fleet remembers what each edge last reported through its Sync
// stream, for GetStatus, /status and ApproveServerTools. It is memory only: a restarted control
// plane learns the fleet again as the edges reconnect. Control planes that
// share a store also share their connected edges' records through it
// (Shared), so that each can list every edge of the fleet.
package fleet

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// forget is how long a disconnected edge stays listed.
const forget = 10 * time.Minute

// shareEvery bounds how often Share writes this replica's records: the
// changes that come faster (edges report up to four times a second each)
// are written together.
const shareEvery = time.Second

// Shared is where the control-plane replicas that share a store keep the
// records of the edges connected to each (etcdstore implements it).
type Shared interface {
	// SetEdges makes recs this replica's records, replacing those it set
	// before. They vanish when the replica stops or dies.
	SetEdges(ctx context.Context, recs []*atraxv1.EdgeStatus) error
	// ListEdges returns every replica's records, this one's included.
	ListEdges(ctx context.Context) ([]*atraxv1.EdgeStatus, error)
}

// Options configure New. The zero value works: a fleet of its own, on the
// real clock.
type Options struct {
	// Replica names this control plane in its edges' records
	// (EdgeStatus.replica), "HOST:PORT".
	Replica string
	// Shared, when set, is where the records of this replica's connected
	// edges go (Share) and those of the other replicas come from (All).
	Shared Shared
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives failures to share; nil discards them.
	Logger *slog.Logger
}

// Fleet is the set of edges. It is safe for concurrent use.
type Fleet struct {
	now     func() time.Time
	replica string
	shared  Shared
	log     *slog.Logger
	changed chan struct{} // signalled when a connected edge's record changes

	mu    sync.Mutex
	edges map[string]*atraxv1.EdgeStatus
	conns map[string]int // open streams per edge id
}

// New returns an empty fleet.
func New(opts Options) *Fleet {
	f := &Fleet{
		now: opts.Now, replica: opts.Replica, shared: opts.Shared, log: opts.Logger,
		changed: make(chan struct{}, 1),
		edges:   map[string]*atraxv1.EdgeStatus{}, conns: map[string]int{},
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

func (f *Fleet) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Connect records an edge's hello and returns the function to call when its
// stream ends.
func (f *Fleet) Connect(h *atraxv1.EdgeHello) (disconnect func()) {
	id := h.GetEdgeId()
	now := timestamppb.New(f.now())
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.edges[id]
	if !ok {
		e = &atraxv1.EdgeStatus{EdgeId: id}
		f.edges[id] = e
	}
	e.Address, e.Version, e.Replica = h.GetAddress(), h.GetVersion(), f.replica
	e.Connected, e.ConnectTime, e.LastSeenTime = true, now, now
	e.SnapshotVersion = h.GetSnapshotVersion()
	f.conns[id]++
	f.signal()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.conns[id]--
			if f.conns[id] <= 0 {
				delete(f.conns, id)
				if e, ok := f.edges[id]; ok {
					e.Connected = false
					e.LastSeenTime = timestamppb.New(f.now())
				}
				f.signal()
			}
		})
	}
}

// Connected returns how many edges have a Sync stream open.
func (f *Fleet) Connected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Upstream is one edge's report of one server.
type Upstream struct {
	EdgeID string
	Status *atraxv1.UpstreamStatus
}

// Upstreams returns what the connected edges last reported of the server
// name, ordered by edge id: the edges of this replica and, with
// Options.Shared, those of the other replicas, one report per edge, as All
// merges them. The messages are copies. When the other replicas' records
// cannot be read it returns this replica's edges' reports and the error.
func (f *Fleet) Upstreams(ctx context.Context, name string) ([]Upstream, error) {
	edges, err := f.All(ctx)
	var out []Upstream
	for _, e := range edges {
		if !e.GetConnected() {
			continue
		}
		for _, u := range e.GetUpstreams() {
			if u.GetName() == name {
				out = append(out, Upstream{EdgeID: e.GetEdgeId(), Status: proto.Clone(u).(*atraxv1.UpstreamStatus)})
			}
		}
	}
	return out, err
}

// Report replaces what an edge last reported.
func (f *Fleet) Report(edgeID string, r *atraxv1.EdgeReport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.edges[edgeID]
	if !ok {
		return
	}
	e.SnapshotVersion = r.GetSnapshotVersion()
	e.Upstreams = cloneAll(r.GetUpstreams())
	e.Sessions = cloneAll(r.GetSessions())
	e.LastSeenTime = timestamppb.New(f.now())
	f.signal()
}

// Edges returns every connected edge and those disconnected recently,
// ordered by id. The messages are copies.
func (f *Fleet) Edges() []*atraxv1.EdgeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	var out []*atraxv1.EdgeStatus
	for id, e := range f.edges {
		if !e.GetConnected() && now.Sub(e.GetLastSeenTime().AsTime()) > forget {
			delete(f.edges, id)
			continue
		}
		out = append(out, proto.Clone(e).(*atraxv1.EdgeStatus))
	}
	slices.SortFunc(out, func(a, b *atraxv1.EdgeStatus) int { return strings.Compare(a.GetEdgeId(), b.GetEdgeId()) })
	return out
}

// All returns Edges and, with Options.Shared, the edges connected to the
// other replicas, one record per edge (a connected one first: this
// replica's, else the one connected last), ordered by id. When the other
// replicas' records cannot be read it returns Edges and the error.
func (f *Fleet) All(ctx context.Context) ([]*atraxv1.EdgeStatus, error) {
	out := f.Edges()
	if f.shared == nil {
		return out, nil
	}
	recs, err := f.shared.ListEdges(ctx)
	if err != nil {
		return out, err
	}
	byID := make(map[string]int, len(out))
	for i, e := range out {
		byID[e.GetEdgeId()] = i
	}
	for _, r := range recs {
		// This replica's own records (and those a previous process by
		// its name left on a lease not yet expired) are older than what
		// it holds.
		if !r.GetConnected() || r.GetReplica() == f.replica {
			continue
		}
		i, ok := byID[r.GetEdgeId()]
		switch {
		case !ok:
			byID[r.GetEdgeId()] = len(out)
			out = append(out, r)
		case !out[i].GetConnected(),
			out[i].GetReplica() != f.replica && r.GetConnectTime().AsTime().After(out[i].GetConnectTime().AsTime()):
			out[i] = r
		}
	}
	slices.SortFunc(out, func(a, b *atraxv1.EdgeStatus) int { return strings.Compare(a.GetEdgeId(), b.GetEdgeId()) })
	return out, nil
}

// Share writes the records of the edges connected to this replica to
// Options.Shared whenever they change, at most once per shareEvery, and
// again after a failed write, until ctx ends. Without Options.Shared it
// returns at once.
func (f *Fleet) Share(ctx context.Context) {
	if f.shared == nil {
		return
	}
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.changed:
		}
		err := f.shared.SetEdges(ctx, f.connected())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				f.log.Warn("share the records of this control plane's edges with the others; retrying", "err", err)
			}
			failing = true
			f.signal()
		case failing:
			f.log.Info("the records of this control plane's edges are shared again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(shareEvery):
		}
	}
}

// connected returns copies of the connected edges' records.
func (f *Fleet) connected() []*atraxv1.EdgeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*atraxv1.EdgeStatus, 0, len(f.conns))
	for id := range f.conns {
		if e, ok := f.edges[id]; ok {
			out = append(out, proto.Clone(e).(*atraxv1.EdgeStatus))
		}
	}
	return out
}

func cloneAll[M proto.Message](in []M) []M {
	out := make([]M, len(in))
	for i, m := range in {
		out[i] = proto.Clone(m).(M)
	}
	return out
}
