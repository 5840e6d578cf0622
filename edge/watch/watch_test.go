package watch_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/atrax-mcp/atrax/edge/watch"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// wait bounds every wait for something the watcher does.
const wait = 5 * time.Second

// controlPlane is a fake EdgeService. Each Sync stream is handed to the test,
// which sends snapshots on it, reads what the edge sent, and ends it.
type controlPlane struct {
	atraxv1.UnimplementedEdgeServiceServer
	streams chan *stream
	refuse  error // when set, every stream ends with it at once
}

type stream struct {
	authorization []string
	hello         *atraxv1.EdgeHello
	send          chan *atraxv1.Snapshot
	recv          chan *atraxv1.SyncRequest // closed when the edge's side ends
	end           chan error
}

func (c *controlPlane) Sync(ss atraxv1.EdgeService_SyncServer) error {
	if c.refuse != nil {
		return c.refuse
	}
	md, _ := metadata.FromIncomingContext(ss.Context())
	first, err := ss.Recv()
	if err != nil {
		return err
	}
	st := &stream{
		authorization: md.Get("authorization"),
		hello:         first.GetHello(),
		send:          make(chan *atraxv1.Snapshot, 16),
		recv:          make(chan *atraxv1.SyncRequest, 16),
		end:           make(chan error, 1),
	}
	go func() {
		defer close(st.recv)
		for {
			m, err := ss.Recv()
			if err != nil {
				return
			}
			st.recv <- m
		}
	}()
	c.streams <- st
	for {
		select {
		case snap := <-st.send:
			if err := ss.Send(&atraxv1.SyncResponse{Snapshot: snap}); err != nil {
				return err
			}
		case err := <-st.end:
			return err
		case <-ss.Context().Done():
			return nil
		}
	}
}

// start serves cp on 127.0.0.1 and returns a client for it.
func start(t *testing.T, cp *controlPlane) atraxv1.EdgeServiceClient {
	t.Helper()
	cp.streams = make(chan *stream, 16)
	srv := grpc.NewServer()
	atraxv1.RegisterEdgeServiceServer(srv, cp)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return atraxv1.NewEdgeServiceClient(conn)
}

// run starts w and returns a function that stops it and checks that Run
// returned nil promptly.
func run(t *testing.T, w *watch.Watcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil when the context ends", err)
			}
		case <-time.After(wait):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func (c *controlPlane) next(t *testing.T) *stream {
	t.Helper()
	select {
	case st := <-c.streams:
		return st
	case <-time.After(wait):
		t.Fatal("the edge opened no Sync stream")
	}
	panic("unreachable")
}

// expect returns the next message the edge sent on st.
func (st *stream) expect(t *testing.T) *atraxv1.SyncRequest {
	t.Helper()
	select {
	case m, ok := <-st.recv:
		if !ok {
			t.Fatal("the edge ended the stream, want a message")
		}
		return m
	case <-time.After(wait):
		t.Fatal("the edge sent nothing")
	}
	panic("unreachable")
}

// expectN returns the next n messages, as reports and audit events, in
// whichever order they came.
func (st *stream) expectN(t *testing.T, n int) (reports []*atraxv1.EdgeReport, audit []*atraxv1.AuditEvent) {
	t.Helper()
	for range n {
		m := st.expect(t)
		switch {
		case m.GetReport() != nil:
			reports = append(reports, m.GetReport())
		case m.GetAudit() != nil:
			audit = append(audit, m.GetAudit().GetEvents()...)
		default:
			t.Fatalf("unexpected message %v", m)
		}
	}
	return reports, audit
}

func (st *stream) quiet(t *testing.T) {
	t.Helper()
	select {
	case m, ok := <-st.recv:
		if ok {
			t.Fatalf("unexpected message %v", m)
		}
	default:
	}
}

// appliedVersion returns the version of the next snapshot w applies, once
// w counts it as applied (Apply runs just before that).
func appliedVersion(t *testing.T, w *watch.Watcher, applied <-chan int64) int64 {
	t.Helper()
	select {
	case v := <-applied:
		waitFor(t, fmt.Sprintf("Version() = %d", v), func() bool { return w.Version() == v })
		return v
	case <-time.After(wait):
		t.Fatal("no snapshot applied")
	}
	panic("unreachable")
}

// waitFor polls cond, a state the watcher reaches on its own, within wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func snap(v int64) *atraxv1.Snapshot {
	return &atraxv1.Snapshot{Version: v, Servers: []*atraxv1.Server{{Name: fmt.Sprintf("v%d", v)}}}
}

func report(name string) *atraxv1.EdgeReport {
	return &atraxv1.EdgeReport{Upstreams: []*atraxv1.UpstreamStatus{{Name: name, State: "running"}}}
}

func event(action string) *atraxv1.AuditEvent {
	return &atraxv1.AuditEvent{Action: action, Actor: "client:ci"}
}

func newWatcher(client atraxv1.EdgeServiceClient, hello *atraxv1.EdgeHello) (*watch.Watcher, chan int64) {
	applied := make(chan int64, 16)
	w := watch.New(watch.Options{
		Client: client,
		Token:  "edge-token",
		Hello:  hello,
		Apply:  func(s *atraxv1.Snapshot) { applied <- s.GetVersion() },
	})
	return w, applied
}

func TestSync(t *testing.T) {
	cp := &controlPlane{}
	hello := &atraxv1.EdgeHello{EdgeId: "edge-1", Address: "127.0.0.1:4000", Version: "v1.0.0"}
	w, applied := newWatcher(start(t, cp), hello)
	w.Report(report("memory"))
	stop := run(t, w)

	// The stream opens with the bearer token and a hello.
	st := cp.next(t)
	if diff := cmp.Diff([]string{"Bearer edge-token"}, st.authorization); diff != "" {
		t.Errorf("authorization metadata (-want +got):\n%s", diff)
	}
	want := &atraxv1.EdgeHello{EdgeId: "edge-1", Address: "127.0.0.1:4000", Version: "v1.0.0", SnapshotVersion: 0}
	if diff := cmp.Diff(want, st.hello, protocmp.Transform()); diff != "" {
		t.Errorf("hello (-want +got):\n%s", diff)
	}
	// The control plane has accepted nothing yet: the edge is not
	// connected, and sends nothing but its hello.
	if w.Connected() {
		t.Error("Connected before the first snapshot")
	}
	st.quiet(t)

	st.send <- snap(5)
	if v := appliedVersion(t, w, applied); v != 5 {
		t.Fatalf("applied version %d, want 5", v)
	}
	if !w.Connected() || w.Version() != 5 {
		t.Errorf("after the first snapshot: Connected %v, Version %d; want true, 5", w.Connected(), w.Version())
	}
	// The report queued before the stream came up follows.
	if got := st.expect(t).GetReport(); got.GetUpstreams()[0].GetName() != "memory" {
		t.Errorf("first message after connecting = report %v, want the memory report", got)
	}

	// Only newer snapshots are applied.
	st.send <- snap(3)
	st.send <- snap(5)
	st.send <- snap(7)
	if v := appliedVersion(t, w, applied); v != 7 {
		t.Fatalf("applied version %d after 3, 5, 7; want 7 (3 and 5 are not newer)", v)
	}

	w.Audit(event("tools/call"))
	if got := st.expect(t).GetAudit().GetEvents(); len(got) != 1 || got[0].GetAction() != "tools/call" {
		t.Errorf("audit batch = %v, want the tools/call event", got)
	}
	w.Report(report("github"))
	r := st.expect(t).GetReport()
	if r.GetUpstreams()[0].GetName() != "github" || r.GetSnapshotVersion() != 7 {
		t.Errorf("report = %v, want github at snapshot 7", r)
	}

	// The control plane goes away; the edge keeps what it applied and
	// queues what it would have sent.
	st.end <- status.Error(codes.Unavailable, "control plane restarting")
	waitFor(t, "Connected() false after the stream ended", func() bool { return !w.Connected() })
	if w.Version() != 7 {
		t.Errorf("Version after the stream ended = %d, want 7", w.Version())
	}
	w.Audit(event("a"), event("b"))
	w.Audit(event("c"))

	st2 := cp.next(t)
	if st2.hello.GetSnapshotVersion() != 7 || st2.hello.GetEdgeId() != "edge-1" {
		t.Errorf("hello after reconnecting = %v, want edge-1 at snapshot 7", st2.hello)
	}
	if diff := cmp.Diff([]string{"Bearer edge-token"}, st2.authorization); diff != "" {
		t.Errorf("authorization metadata after reconnecting (-want +got):\n%s", diff)
	}
	if w.Connected() {
		t.Error("Connected before the new stream's first snapshot")
	}
	st2.send <- snap(7) // the same version: connects, but is not applied again
	reports, audit := st2.expectN(t, 2)
	// A restarted control plane knows nothing of the edge: the last report
	// is sent again, and the queued events follow.
	if len(reports) != 1 || reports[0].GetUpstreams()[0].GetName() != "github" || reports[0].GetSnapshotVersion() != 7 {
		t.Errorf("reports after reconnecting = %v, want the github report again", reports)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.GetAction())
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, actions); diff != "" {
		t.Errorf("audit events delivered after reconnecting (-want +got):\n%s", diff)
	}
	if !w.Connected() {
		t.Error("not Connected after the new stream's first snapshot")
	}
	st2.send <- snap(8)
	if v := appliedVersion(t, w, applied); v != 8 {
		t.Errorf("applied version %d, want 8 (7 again is not newer)", v)
	}

	stop()
	if w.Connected() {
		t.Error("Connected after Run returned")
	}
	// The options' hello is the caller's; the watcher fills in a copy.
	if hello.GetSnapshotVersion() != 0 {
		t.Errorf("Options.Hello changed: snapshot version %d", hello.GetSnapshotVersion())
	}
}

func TestReportLatestOnly(t *testing.T) {
	cp := &controlPlane{}
	w, applied := newWatcher(start(t, cp), &atraxv1.EdgeHello{EdgeId: "edge-1"})
	r := report("first")
	w.Report(r)
	w.Report(report("second"))
	r.Upstreams[0].Name = "changed after Report" // Report keeps a copy
	run(t, w)
	st := cp.next(t)
	st.send <- snap(1)
	appliedVersion(t, w, applied)
	if got := st.expect(t).GetReport().GetUpstreams()[0].GetName(); got != "second" {
		t.Errorf("report sent = %q, want only the latest, second", got)
	}
	st.send <- snap(2) // a round trip: anything else sent would come first
	appliedVersion(t, w, applied)
	st.quiet(t)
}

func TestAuditBounded(t *testing.T) {
	// While the control plane is away, at most 10000 events wait; the
	// oldest go first.
	cp := &controlPlane{}
	w, applied := newWatcher(start(t, cp), &atraxv1.EdgeHello{EdgeId: "edge-1"})
	const n = 10000 + 5
	for i := range n {
		w.Audit(event(fmt.Sprint(i)))
	}
	run(t, w)
	st := cp.next(t)
	st.send <- snap(1)
	appliedVersion(t, w, applied)
	got := st.expect(t).GetAudit().GetEvents()
	if len(got) != 10000 || got[0].GetAction() != "5" || got[len(got)-1].GetAction() != fmt.Sprint(n-1) {
		t.Errorf("audit batch of %d events from %q to %q, want 10000 from \"5\" to %q",
			len(got), got[0].GetAction(), got[len(got)-1].GetAction(), fmt.Sprint(n-1))
	}
}

func TestRunReturnsWhileRetrying(t *testing.T) {
	// A control plane that refuses the edge: Run keeps retrying, stays
	// disconnected, and returns when its context ends.
	cp := &controlPlane{refuse: status.Error(codes.Unauthenticated, "invalid token")}
	w, _ := newWatcher(start(t, cp), &atraxv1.EdgeHello{EdgeId: "edge-1"})
	stop := run(t, w)
	w.Report(report("x"))
	w.Audit(event("x"))
	if w.Connected() {
		t.Error("Connected to a control plane that refuses the edge")
	}
	stop()

	// A context that has already ended returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run(ended context) = %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatal("Run with an ended context did not return")
	}
}

func TestUnreachableControlPlane(t *testing.T) {
	// Nothing listens: Run retries until its context ends.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, _ := newWatcher(atraxv1.NewEdgeServiceClient(conn), &atraxv1.EdgeHello{EdgeId: "edge-1"})
	stop := run(t, w)
	if w.Connected() || w.Version() != 0 {
		t.Errorf("Connected %v, Version %d; want false, 0", w.Connected(), w.Version())
	}
	stop()
}
