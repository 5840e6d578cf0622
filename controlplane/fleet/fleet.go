// Package fleet remembers what each edge last reported through its Sync
// stream, for GetStatus and /status. It is memory only: a restarted control
// plane learns the fleet again as the edges reconnect.
package fleet

import (
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

// Fleet is the set of edges. It is safe for concurrent use.
type Fleet struct {
	now func() time.Time

	mu    sync.Mutex
	edges map[string]*atraxv1.EdgeStatus
	conns map[string]int // open streams per edge id
}

// New returns an empty fleet; now is the clock (time.Now when nil).
func New(now func() time.Time) *Fleet {
	if now == nil {
		now = time.Now
	}
	return &Fleet{now: now, edges: map[string]*atraxv1.EdgeStatus{}, conns: map[string]int{}}
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
	e.Address, e.Version = h.GetAddress(), h.GetVersion()
	e.Connected, e.ConnectTime, e.LastSeenTime = true, now, now
	e.SnapshotVersion = h.GetSnapshotVersion()
	f.conns[id]++
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
// name, ordered by edge id. The messages are copies.
func (f *Fleet) Upstreams(name string) []Upstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Upstream
	for id, e := range f.edges {
		if !e.GetConnected() {
			continue
		}
		for _, u := range e.GetUpstreams() {
			if u.GetName() == name {
				out = append(out, Upstream{EdgeID: id, Status: proto.Clone(u).(*atraxv1.UpstreamStatus)})
			}
		}
	}
	slices.SortFunc(out, func(a, b Upstream) int { return strings.Compare(a.EdgeID, b.EdgeID) })
	return out
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

func cloneAll[M proto.Message](in []M) []M {
	out := make([]M, len(in))
	for i, m := range in {
		out[i] = proto.Clone(m).(M)
	}
	return out
}
