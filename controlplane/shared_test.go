package controlplane_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/syncbuf"
)

// logBuffer collects a control plane's log.
type logBuffer struct{ syncbuf.Buffer }

func (l *logBuffer) has(msg string) bool {
	return strings.Contains(l.String(), fmt.Sprintf(`"msg":%q`, msg))
}

// replica is a control plane run by the test.
type replica struct {
	addr string // its gRPC address
	conn *grpc.ClientConn
	log  *logBuffer
	stop func()
}

func startReplica(t *testing.T, cfg *config.Config) *replica {
	t.Helper()
	return startPlane(t, controlplane.Options{Config: cfg})
}

// startPlane runs a control plane with opts on 127.0.0.1 until the test
// ends (or stop); its listener, logger and Ready are the test's.
func startPlane(t *testing.T, opts controlplane.Options) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{addr: lis.Addr().String(), log: &logBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	opts.Listener = lis
	opts.Logger = slog.New(slog.NewJSONHandler(r.log, nil))
	opts.Ready = func(net.Addr) { close(ready) }
	go func() {
		done <- controlplane.Run(ctx, opts)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("controlplane.Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("control plane not serving within 30s")
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("controlplane.Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("control plane did not stop within 30s")
			}
		})
	}
	t.Cleanup(r.stop)
	r.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.conn.Close() })
	return r
}

// nextSnapshot reads snapshots until one satisfies ok.
func nextSnapshot(t *testing.T, s atraxv1.EdgeService_SyncClient, what string, ok func(*atraxv1.Snapshot) bool) *atraxv1.Snapshot {
	t.Helper()
	for {
		msg, err := s.Recv()
		if err != nil {
			t.Fatalf("%s: Sync ended: %v", what, err)
		}
		if snap := msg.GetSnapshot(); snap != nil && ok(snap) {
			return snap
		}
	}
}

// TestReplicasShareEtcd runs two control planes on one etcd: each serves
// what the other writes (servers to WatchServers and Sync, revocations to
// Sync), they agree on one signing key, and one of them leads the fleet
// until it stops, when the other takes over.
func TestReplicasShareEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"store": {"etcd": {"endpoints": [%q], "prefix": "/replicas"}},
		"mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp", "disabled": true}},
	}`, token, c.Endpoints()[0])), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Started together, as a fleet's replicas are.
	var a, b *replica
	var wg sync.WaitGroup
	wg.Go(func() { a = startReplica(t, cfg) })
	wg.Go(func() { b = startReplica(t, cfg) })
	wg.Wait()
	if t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 30*time.Second)
	defer cancel()

	var kids [][]string
	for _, r := range []*replica{a, b} {
		keys, err := atraxv1.NewAuthServiceClient(r.conn).ListSigningKeys(ctx, &atraxv1.ListSigningKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys.GetKeys() {
			ids = append(ids, k.GetKid())
		}
		kids = append(kids, ids)
	}
	if len(kids[0]) != 1 || !slices.Equal(kids[0], kids[1]) {
		t.Errorf("signing keys of the replicas: %v and %v; want the same one", kids[0], kids[1])
	}

	watch, err := atraxv1.NewServerServiceClient(b.conn).WatchServers(ctx, &atraxv1.WatchServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil { // the registry as it is
		t.Fatal(err)
	}
	openSync := func(r *replica) atraxv1.EdgeService_SyncClient {
		s, err := atraxv1.NewEdgeServiceClient(r.conn).Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Hello{Hello: &atraxv1.EdgeHello{EdgeId: "test-edge"}}}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	syncA, syncB := openSync(a), openSync(b)
	first := nextSnapshot(t, syncB, "first snapshot", func(*atraxv1.Snapshot) bool { return true })

	if _, err := atraxv1.NewServerServiceClient(a.conn).CreateServer(ctx, &atraxv1.CreateServerRequest{
		Server: &atraxv1.Server{Name: "api", Url: "http://127.0.0.1:9/api"},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got.GetEvent() != "created" || got.GetServers()[0].GetName() != "api" {
		t.Errorf("B's WatchServers got %s %v, want api created", got.GetEvent(), got.GetServers())
	}
	snap := nextSnapshot(t, syncB, "B's snapshot with the server created on A", func(s *atraxv1.Snapshot) bool {
		return slices.ContainsFunc(s.GetServers(), func(s *atraxv1.Server) bool { return s.GetName() == "api" })
	})
	if snap.GetVersion() <= first.GetVersion() {
		t.Errorf("snapshot version %d after the write, %d before", snap.GetVersion(), first.GetVersion())
	}

	tok, err := atraxv1.NewAuthServiceClient(a.conn).IssueToken(ctx, &atraxv1.IssueTokenRequest{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	jti := tok.GetJti()
	if _, err := atraxv1.NewAuthServiceClient(b.conn).RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: jti}); err != nil {
		t.Fatal(err)
	}
	nextSnapshot(t, syncA, "A's snapshot with the revocation made on B", func(s *atraxv1.Snapshot) bool {
		return slices.ContainsFunc(s.GetRevocations(), func(r *atraxv1.Revocation) bool { return r.GetJti() == jti })
	})

	// One leader; when it stops, the other takes over.
	const leading = "leading the fleet: this control plane prunes expired revocations and rotates the signing key"
	deadline := time.Now().Add(10 * time.Second)
	for !a.log.has(leading) && !b.log.has(leading) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	leader, other := a, b
	if b.log.has(leading) {
		leader, other = b, a
	}
	if !leader.log.has(leading) || other.log.has(leading) {
		t.Fatalf("leaders: A %v, B %v; want exactly one", a.log.has(leading), b.log.has(leading))
	}
	leader.stop()
	deadline = time.Now().Add(10 * time.Second)
	for !other.log.has(leading) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !other.log.has(leading) {
		t.Error("the other replica did not lead within 10s of the leader stopping")
	}
}
