package fleet_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func hello(id string) *atraxv1.EdgeHello {
	return &atraxv1.EdgeHello{EdgeId: id, Address: "10.0.0.1:4000", Version: "v1.2.3", SnapshotVersion: 7}
}

func ids(edges []*atraxv1.EdgeStatus) []string {
	var out []string
	for _, e := range edges {
		out = append(out, e.GetEdgeId())
	}
	return out
}

func TestConnectReportDisconnect(t *testing.T) {
	c := fakeclock.New(t0)
	f := fleet.New(fleet.Options{Now: c.Now})
	if got := f.Edges(); len(got) != 0 {
		t.Fatalf("Edges of a new fleet = %v, want none", got)
	}

	disconnect := f.Connect(hello("edge-a"))
	want := &atraxv1.EdgeStatus{
		EdgeId: "edge-a", Address: "10.0.0.1:4000", Version: "v1.2.3", Connected: true,
		ConnectTime: ts(t0), LastSeenTime: ts(t0), SnapshotVersion: 7,
	}
	if diff := cmp.Diff([]*atraxv1.EdgeStatus{want}, f.Edges(), protocmp.Transform()); diff != "" {
		t.Errorf("Edges after Connect (-want +got):\n%s", diff)
	}

	c.Advance(time.Minute)
	report := &atraxv1.EdgeReport{
		SnapshotVersion: 8,
		Upstreams:       []*atraxv1.UpstreamStatus{{Name: "memory"}},
		Sessions:        []*atraxv1.SessionCount{{}},
	}
	f.Report("edge-a", report)
	want.SnapshotVersion, want.LastSeenTime = 8, ts(t0.Add(time.Minute))
	want.Upstreams, want.Sessions = []*atraxv1.UpstreamStatus{{Name: "memory"}}, []*atraxv1.SessionCount{{}}
	if diff := cmp.Diff([]*atraxv1.EdgeStatus{want}, f.Edges(), protocmp.Transform()); diff != "" {
		t.Errorf("Edges after Report (-want +got):\n%s", diff)
	}

	// The fleet keeps copies: neither the reporter nor a reader can change it.
	report.Upstreams[0].Name = "changed by the reporter"
	f.Edges()[0].Upstreams[0].Name = "changed by a reader"
	f.Edges()[0].Address = "changed"
	if diff := cmp.Diff([]*atraxv1.EdgeStatus{want}, f.Edges(), protocmp.Transform()); diff != "" {
		t.Errorf("Edges after callers changed their messages (-want +got):\n%s", diff)
	}

	// A later report replaces the whole state.
	f.Report("edge-a", &atraxv1.EdgeReport{SnapshotVersion: 9})
	want.SnapshotVersion, want.Upstreams, want.Sessions = 9, nil, nil
	if diff := cmp.Diff([]*atraxv1.EdgeStatus{want}, f.Edges(), protocmp.Transform()); diff != "" {
		t.Errorf("Edges after an empty Report (-want +got):\n%s", diff)
	}

	// Reports from edges that never said hello are dropped.
	f.Report("stranger", &atraxv1.EdgeReport{SnapshotVersion: 1})
	if got := ids(f.Edges()); !cmp.Equal(got, []string{"edge-a"}) {
		t.Errorf("Edges after a report from a stranger = %q, want [edge-a]", got)
	}

	c.Advance(time.Minute)
	disconnect()
	want.Connected, want.LastSeenTime = false, ts(t0.Add(2*time.Minute))
	if diff := cmp.Diff([]*atraxv1.EdgeStatus{want}, f.Edges(), protocmp.Transform()); diff != "" {
		t.Errorf("Edges after disconnect (-want +got):\n%s", diff)
	}
	c.Advance(time.Minute)
	disconnect() // once only
	if diff := cmp.Diff([]*atraxv1.EdgeStatus{want}, f.Edges(), protocmp.Transform()); diff != "" {
		t.Errorf("Edges after a second disconnect (-want +got):\n%s", diff)
	}

	// Reconnecting marks it connected again.
	c.Advance(time.Minute)
	again := f.Connect(hello("edge-a"))
	defer again()
	if e := f.Edges()[0]; !e.GetConnected() || !e.GetConnectTime().AsTime().Equal(c.Now()) {
		t.Errorf("after reconnect: connected %v since %v, want true since %v", e.GetConnected(), e.GetConnectTime().AsTime(), c.Now())
	}
}

func TestMultipleStreamsForOneEdge(t *testing.T) {
	// An edge that reconnects may open its new stream before the control
	// plane notices the old one ended: the edge stays connected until its
	// last stream ends.
	c := fakeclock.New(t0)
	f := fleet.New(fleet.Options{Now: c.Now})
	first := f.Connect(hello("edge-a"))
	second := f.Connect(hello("edge-a"))
	other := f.Connect(hello("edge-b"))
	defer other()

	first()
	first() // a repeated call must not end the second stream
	if e := f.Edges()[0]; !e.GetConnected() {
		t.Fatal("edge disconnected while a stream is still open")
	}
	second()
	edges := f.Edges()
	if edges[0].GetConnected() || !edges[1].GetConnected() {
		t.Errorf("after the last stream: edge-a connected %v, edge-b connected %v; want false, true", edges[0].GetConnected(), edges[1].GetConnected())
	}

	// A fresh stream after all ended counts from zero again.
	third := f.Connect(hello("edge-a"))
	if !f.Edges()[0].GetConnected() {
		t.Error("edge not connected after a new stream")
	}
	third()
	if f.Edges()[0].GetConnected() {
		t.Error("edge still connected after its only stream ended")
	}
}

func TestForget(t *testing.T) {
	c := fakeclock.New(t0)
	f := fleet.New(fleet.Options{Now: c.Now})
	gone := f.Connect(hello("gone"))
	stays := f.Connect(hello("stays"))
	defer stays()
	gone()

	c.Advance(10 * time.Minute)
	if got := ids(f.Edges()); !cmp.Equal(got, []string{"gone", "stays"}) {
		t.Errorf("Edges 10 minutes after a disconnect = %q, want both", got)
	}
	c.Advance(time.Second)
	if got := ids(f.Edges()); !cmp.Equal(got, []string{"stays"}) {
		t.Errorf("Edges after 10 minutes and a second = %q, want [stays]", got)
	}

	// A connected edge is never forgotten, however long it stays quiet.
	c.Advance(24 * time.Hour)
	if got := ids(f.Edges()); !cmp.Equal(got, []string{"stays"}) {
		t.Errorf("Edges a day later = %q, want [stays]", got)
	}

	// A forgotten edge that comes back is listed afresh.
	back := f.Connect(hello("gone"))
	defer back()
	if got := ids(f.Edges()); !cmp.Equal(got, []string{"gone", "stays"}) {
		t.Errorf("Edges after the forgotten edge returned = %q, want both", got)
	}
}

func TestEdgesOrder(t *testing.T) {
	f := fleet.New(fleet.Options{}) // the real clock
	for _, id := range []string{"c", "a", "b"} {
		defer f.Connect(hello(id))()
	}
	if got := ids(f.Edges()); !cmp.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Edges order = %q, want [a b c]", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	f := fleet.New(fleet.Options{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			id := string(rune('a' + i))
			for range 50 {
				done := f.Connect(hello(id))
				f.Report(id, &atraxv1.EdgeReport{SnapshotVersion: 1})
				f.Edges()
				done()
			}
		})
	}
	wg.Wait()
	for _, e := range f.Edges() {
		if e.GetConnected() {
			t.Errorf("edge %s connected after every stream ended", e.GetEdgeId())
		}
	}
}

// shared is a Shared in memory: the records each replica set.
type shared struct {
	mu   sync.Mutex
	recs map[string][]*atraxv1.EdgeStatus // by replica
	sets int
	fail error
	set  chan struct{}
}

func newShared() *shared {
	return &shared{recs: map[string][]*atraxv1.EdgeStatus{}, set: make(chan struct{}, 100)}
}

func (s *shared) SetEdges(_ context.Context, recs []*atraxv1.EdgeStatus) error {
	s.mu.Lock()
	defer func() { s.set <- struct{}{} }()
	defer s.mu.Unlock()
	s.sets++
	if s.fail != nil {
		return s.fail
	}
	s.recs["local"] = recs
	return nil
}

func (s *shared) ListEdges(context.Context) ([]*atraxv1.EdgeStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	var out []*atraxv1.EdgeStatus
	for _, recs := range s.recs {
		out = append(out, recs...)
	}
	return out, nil
}

// waitSet waits for the next SetEdges.
func (s *shared) waitSet(t *testing.T) {
	t.Helper()
	select {
	case <-s.set:
	case <-time.After(10 * time.Second):
		t.Fatal("no SetEdges within 10s")
	}
}

func (s *shared) local() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ids(s.recs["local"])
}

// waitLocal waits until the records set are those of the edges want.
func (s *shared) waitLocal(t *testing.T, want ...string) {
	t.Helper()
	for !cmp.Equal(s.local(), want, cmpopts.EquateEmpty()) {
		s.waitSet(t)
	}
}

func TestShare(t *testing.T) {
	sh := newShared()
	f := fleet.New(fleet.Options{Replica: "cp-1:4001", Shared: sh})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Share(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	a := f.Connect(hello("edge-a"))
	sh.waitLocal(t, "edge-a")
	if r := sh.recs["local"][0]; r.GetReplica() != "cp-1:4001" || !r.GetConnected() {
		t.Errorf("shared record: replica %q, connected %v; want cp-1:4001, true", r.GetReplica(), r.GetConnected())
	}

	// Changes that come faster than a write a second are written together.
	b := f.Connect(hello("edge-b"))
	for v := range int64(20) {
		f.Report("edge-b", &atraxv1.EdgeReport{SnapshotVersion: v})
	}
	a()
	sh.waitLocal(t, "edge-b")
	sh.mu.Lock()
	sets := sh.sets
	sh.mu.Unlock()
	if sets > 3 {
		t.Errorf("%d writes for two connects, twenty reports and a disconnect; want them coalesced", sets)
	}

	// A failed write is tried again.
	sh.mu.Lock()
	sh.fail = errors.New("etcd out of reach")
	sh.mu.Unlock()
	b()
	sh.waitSet(t)
	sh.mu.Lock()
	sh.fail = nil
	sh.mu.Unlock()
	sh.waitLocal(t)
}

func TestAll(t *testing.T) {
	c := fakeclock.New(t0)
	sh := newShared()
	f := fleet.New(fleet.Options{Replica: "cp-1:4001", Shared: sh, Now: c.Now})
	defer f.Connect(hello("mine"))()
	f.Connect(hello("moved"))() // left this replica...
	rec := func(id, replica string, connected time.Time) *atraxv1.EdgeStatus {
		return &atraxv1.EdgeStatus{EdgeId: id, Replica: replica, Connected: true, ConnectTime: ts(connected)}
	}
	sh.recs["cp-2"] = []*atraxv1.EdgeStatus{
		rec("moved", "cp-2:4001", t0.Add(time.Second)), // ... for another
		rec("theirs", "cp-2:4001", t0),
		rec("mine", "cp-2:4001", t0.Add(-time.Hour)), // left there for here
		rec("twice", "cp-2:4001", t0),
	}
	sh.recs["cp-3"] = []*atraxv1.EdgeStatus{
		rec("twice", "cp-3:4001", t0.Add(time.Second)), // the newer stream
	}
	// A previous process by this replica's name left a record behind.
	sh.recs["old"] = []*atraxv1.EdgeStatus{rec("stale", "cp-1:4001", t0.Add(-time.Hour))}

	got, err := f.All(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"mine": "cp-1:4001", "moved": "cp-2:4001", "theirs": "cp-2:4001", "twice": "cp-3:4001"}
	gotReplicas := map[string]string{}
	for _, e := range got {
		gotReplicas[e.GetEdgeId()] = e.GetReplica()
		if !e.GetConnected() {
			t.Errorf("edge %s listed disconnected", e.GetEdgeId())
		}
	}
	if diff := cmp.Diff(want, gotReplicas); diff != "" {
		t.Errorf("All: edge to replica (-want +got):\n%s", diff)
	}
	if !slices.IsSortedFunc(got, func(a, b *atraxv1.EdgeStatus) int { return strings.Compare(a.GetEdgeId(), b.GetEdgeId()) }) {
		t.Errorf("All order = %q, want by id", ids(got))
	}

	// Without the others' records, this replica's own edges and the error.
	sh.fail = errors.New("etcd out of reach")
	got, err = f.All(t.Context())
	if err == nil || !cmp.Equal(ids(got), []string{"mine", "moved"}) {
		t.Errorf("All with the store out of reach = %q, %v; want [mine moved] and the error", ids(got), err)
	}

	// A fleet of its own lists its own edges.
	alone := fleet.New(fleet.Options{})
	defer alone.Connect(hello("x"))()
	if got, err := alone.All(t.Context()); err != nil || !cmp.Equal(ids(got), []string{"x"}) {
		t.Errorf("All without Shared = %q, %v; want [x]", ids(got), err)
	}
}

// TestUpstreams: a server's reports come from the edges of every replica,
// one per edge (as All merges them), connected ones only.
func TestUpstreams(t *testing.T) {
	sh := newShared()
	f := fleet.New(fleet.Options{Replica: "cp-1:4001", Shared: sh})
	pins := func(digest string) []*atraxv1.UpstreamStatus {
		return []*atraxv1.UpstreamStatus{
			{Name: "gh", ToolPins: []*atraxv1.ToolPin{{Name: "search", Digest: digest, Pending: true}}, PendingTools: []string{"search"}},
			{Name: "other"},
		}
	}
	defer f.Connect(hello("mine"))()
	f.Report("mine", &atraxv1.EdgeReport{Upstreams: pins("s-mine")})
	f.Connect(hello("gone"))()
	f.Report("gone", &atraxv1.EdgeReport{Upstreams: pins("s-gone")})
	sh.recs["cp-2"] = []*atraxv1.EdgeStatus{
		{EdgeId: "theirs", Replica: "cp-2:4001", Connected: true, Upstreams: pins("s-theirs")},
		{EdgeId: "left", Replica: "cp-2:4001", Connected: false, Upstreams: pins("s-left")},
	}

	got, err := f.Upstreams(t.Context(), "gh")
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, u := range got {
		digests[u.EdgeID] = u.Status.GetToolPins()[0].GetDigest()
		if !cmp.Equal(u.Status.GetPendingTools(), []string{"search"}) {
			t.Errorf("edge %s: pending tools %q, want [search]", u.EdgeID, u.Status.GetPendingTools())
		}
	}
	if diff := cmp.Diff(map[string]string{"mine": "s-mine", "theirs": "s-theirs"}, digests); diff != "" {
		t.Errorf("Upstreams(gh): edge to digest (-want +got):\n%s", diff)
	}
	if got, err := f.Upstreams(t.Context(), "nope"); err != nil || len(got) != 0 {
		t.Errorf("Upstreams(nope) = %v, %v; want none", got, err)
	}

	// Without the others' records: this replica's edges and the error.
	sh.fail = errors.New("etcd out of reach")
	got, err = f.Upstreams(t.Context(), "gh")
	if err == nil || len(got) != 1 || got[0].EdgeID != "mine" {
		t.Errorf("Upstreams with the store out of reach = %v, %v; want mine and the error", got, err)
	}
}
