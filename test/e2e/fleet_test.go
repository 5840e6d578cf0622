package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// fleetCall is the tool the fleet's client calls: the stateless
// everything-server's, through the edge.
const fleetCall = "everything__test_simple_text"

// caller is a 2026-07-28 client calling one edge again and again, until
// stopped. Every call must get an answer: a result, or an error the edge
// gives in JSON-RPC with an HTTP status. A call without an HTTP answer, or
// with a result that is not the tool's, is not clean.
type caller struct {
	mu        sync.Mutex
	ok        int
	failed    []string // clean failures: status and JSON-RPC error
	unclean   []string
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	okByPhase map[string]int
	phase     string
}

func startCaller(base string) *caller {
	c := &caller{stop: make(chan struct{}), done: make(chan struct{}), okByPhase: map[string]int{}, phase: "start"}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r, err := statelessDo(base, adminToken, "tools/call", map[string]any{"name": fleetCall, "arguments": map[string]any{}}, nil)
			c.mu.Lock()
			switch {
			case err != nil:
				c.unclean = append(c.unclean, err.Error())
			case r.Status == http.StatusOK && r.Error == nil && strings.Contains(fmt.Sprint(r.Result["content"]), "text"):
				c.ok++
				c.okByPhase[c.phase]++
			case r.Error != nil && r.Status != 0:
				c.failed = append(c.failed, fmt.Sprintf("HTTP %d: %d %s", r.Status, r.Error.Code, r.Error.Message))
			default:
				c.unclean = append(c.unclean, fmt.Sprintf("HTTP %d without a result or an error: %v", r.Status, r.Result))
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// halt stops the calls and waits for the last one.
func (c *caller) halt() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// enter starts a phase, once the previous one had successful calls.
func (c *caller) enter(t *testing.T, phase string) {
	t.Helper()
	if !poll(pollTimeout, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.okByPhase[c.phase] >= 3
	}) {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("phase %q: fewer than 3 calls succeeded within %v (failed: %q; unclean: %q)", c.phase, pollTimeout, c.failed, c.unclean)
	}
	c.mu.Lock()
	c.phase = phase
	c.mu.Unlock()
}

// writer creates servers (more connections to the upstream) through an
// edge's REST API, trying again until the control plane confirms each, and
// keeps the names it confirmed.
type writer struct {
	base      string
	url       string
	confirmed []string
	refused   int
}

func (w *writer) create(t *testing.T, name string) {
	t.Helper()
	body := fmt.Sprintf(`{"name": %q, "url": %q, "transportType": "http"}`, name, w.url)
	deadline := time.Now().Add(pollTimeout)
	for {
		r := httpDo(t, "POST", w.base+"/servers", adminToken, body)
		switch {
		case r.Status == http.StatusOK:
			w.confirmed = append(w.confirmed, name)
			return
		case r.Status == http.StatusConflict && strings.Contains(string(r.Body), "already exists"):
			// An earlier attempt was written, though its answer was lost:
			// it is not counted as confirmed, but it exists.
			return
		case r.Status >= 500 || r.Status == http.StatusConflict:
			w.refused++ // unavailable while the fleet fails over: try again
		default:
			t.Fatalf("POST /servers %s: %d %s", name, r.Status, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /servers %s: not confirmed within %v; last %d %s", name, pollTimeout, r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchAll collects every change a WatchServers stream reports.
type watchAll struct {
	mu      sync.Mutex
	created map[string]bool
	err     error
}

func watchServers(t *testing.T, addr string) *watchAll {
	t.Helper()
	w := &watchAll{created: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := atraxv1.NewServerServiceClient(dialGRPC(t, addr)).WatchServers(
		withTokenCtx(ctx, adminToken), &atraxv1.WatchServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			msg, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			if msg.GetEvent() == "created" || msg.GetEvent() == "snapshot" {
				for _, s := range msg.GetServers() {
					w.created[s.GetName()] = true
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watchAll) has(names ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range names {
		if !w.created[n] {
			return false
		}
	}
	return true
}

// tools lists the tools an edge serves a stateless client with token.
func tools(t *testing.T, e *proc, token string) (names []string, status int) {
	t.Helper()
	r := statelessCall(t, e.HTTP, token, "tools/list", nil, nil)
	if r.Error != nil {
		return nil, r.Status
	}
	for _, tool := range r.Result["tools"].([]any) {
		names = append(names, str(tool.(map[string]any)["name"]))
	}
	return names, r.Status
}

// TestFleet runs Atrax as a fleet: a three-member etcd cluster (in this
// process), two control-plane replicas on it and two edges that know both
// replicas, as real atrax processes.
//
//   - A server created through replica 1 reaches both edges, and a client
//     on each calls it.
//   - A token revoked through replica 2 stops working on both edges.
//   - A 2025 session opened on one edge is unknown to the other (404, so
//     the client initializes again), never another client's.
//   - /status through either replica lists both edges, each with the
//     replica that holds its Sync stream.
//   - With etcd out of reach of both replicas (every byte held back), both
//     report not ready, naming etcd; when it is back, both are ready again.
//   - While a 2026-07-28 client keeps calling through edge 2, the etcd
//     leader, the replica edge 2 uses and edge 1 are stopped in turn, and
//     servers are created meanwhile: every call succeeds or fails cleanly,
//     the surviving replica's watch and edge 2's snapshot hold every write
//     the fleet confirmed, and the surviving replica leads the fleet.
//
// It is not parallel: etcd elects its leader on timers, and the test wants
// the machine's cores to itself.
func TestFleet(t *testing.T) {
	start := time.Now()
	cluster := etcdtest.Start(t, 3)
	t.Logf("etcd cluster of 3 up in %v", time.Since(start).Round(time.Millisecond))
	upstream := statelessEverything(t)

	// The control planes reach etcd through proxies that can hold back
	// every byte, as a partition would.
	proxies, proxied := cluster.Proxies(t)
	endpoints, _ := json.Marshal(proxied)
	cpAddrs := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	addrs, _ := json.Marshal(cpAddrs)
	servers := `"mcpServers": {"everything": ` + upstream + `},`
	cpConfig := func(addr string) string {
		return tokenConfig(servers + `
  "store": {"etcd": {"endpoints": ` + string(endpoints) + `, "prefix": "/fleet"}},
  "controlPlane": {"address": "` + addr + `"},`)
	}
	edgeConfig := tokenConfig(servers + `
  "controlPlane": {"addresses": ` + string(addrs) + `},`)

	cps := []*proc{startAtrax(t, "controlplane", cpConfig(cpAddrs[0]), adminEnv()), startAtrax(t, "controlplane", cpConfig(cpAddrs[1]), adminEnv())}
	edges := []*proc{startAtrax(t, "edge", edgeConfig, adminEnv()), startAtrax(t, "edge", edgeConfig, adminEnv())}
	for _, e := range edges {
		waitUpstreams(t, e, "everything")
	}
	t.Logf("fleet up in %v", time.Since(start).Round(time.Millisecond))
	watches := []*watchAll{watchServers(t, cpAddrs[0]), watchServers(t, cpAddrs[1])}

	// A server created through replica 1 reaches both edges and a client
	// on each.
	ctx := withToken(t, adminToken)
	if _, err := atraxv1.NewServerServiceClient(dialGRPC(t, cps[0].GRPC)).CreateServer(ctx, &atraxv1.CreateServerRequest{
		Server: &atraxv1.Server{Name: "extra", Url: jsonURL(t, upstream), TransportType: "http"},
	}); err != nil {
		t.Fatalf("CreateServer through replica 1: %v", err)
	}
	for i, e := range edges {
		if !poll(pollTimeout, func() bool {
			r, err := statelessDo(e.HTTP, adminToken, "tools/call", map[string]any{"name": "extra__test_simple_text", "arguments": map[string]any{}}, nil)
			return err == nil && r.Status == http.StatusOK && r.Error == nil
		}) {
			names, _ := tools(t, e, adminToken)
			t.Fatalf("edge %d: extra__test_simple_text not callable within %v; tools: %v", i+1, pollTimeout, names)
		}
	}

	// A token revoked through replica 2 stops working on both edges.
	tok := issueToken(t, edges[0].HTTP, `{"token": "`+adminToken+`"}`)
	for i, e := range edges {
		if _, status := tools(t, e, tok.AccessToken); status != http.StatusOK {
			t.Fatalf("edge %d: a fresh token got %d, want 200", i+1, status)
		}
	}
	if _, err := atraxv1.NewAuthServiceClient(dialGRPC(t, cps[1].GRPC)).RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: tok.Jti}); err != nil {
		t.Fatalf("RevokeToken through replica 2: %v", err)
	}
	for i, e := range edges {
		if !poll(pollTimeout, func() bool {
			r, err := statelessDo(e.HTTP, tok.AccessToken, "tools/list", nil, nil)
			return err == nil && r.Status == http.StatusUnauthorized
		}) {
			t.Fatalf("edge %d: the token revoked through replica 2 still works after %v", i+1, pollTimeout)
		}
	}
	t.Logf("writes of both replicas reached both edges by %v", time.Since(start).Round(time.Millisecond))

	sessionsAcrossEdges(t, edges[0], edges[1])
	statusAcrossReplicas(t, cps, edges)
	etcdOutOfReach(t, proxies, cps)
	t.Logf("status across replicas, and readiness without etcd, checked by %v", time.Since(start).Round(time.Millisecond))

	// Failures in turn, while a client calls through edge 2 and servers
	// are created through it.
	client := startCaller(edges[1].HTTP)
	defer client.halt()
	w := &writer{base: edges[1].HTTP, url: jsonURL(t, upstream)}
	w.create(t, "before")

	client.enter(t, "etcd member stopped")
	leader := cluster.Leader()
	if leader == nil {
		t.Fatal("the etcd cluster has no leader")
	}
	leader.Stop()
	t.Logf("etcd leader %s stopped at %v", leader.Name, time.Since(start).Round(time.Millisecond))
	for i := range 3 {
		w.create(t, fmt.Sprintf("after-etcd-%d", i))
	}

	client.enter(t, "control plane stopped")
	// Stop the replica edge 2 uses: edge 2 must fail over.
	used, survivor := 0, 1
	if !edgeOf(t, cps[0], edges[1]) {
		used, survivor = 1, 0
	}
	cps[used].Stop()
	t.Logf("replica %d (edge 2's) stopped at %v", used+1, time.Since(start).Round(time.Millisecond))
	for i := range 3 {
		w.create(t, fmt.Sprintf("after-cp-%d", i))
	}
	if !poll(pollTimeout, func() bool { return edgeOf(t, cps[survivor], edges[1]) }) {
		t.Fatalf("edge 2 did not reconnect to replica %d within %v", survivor+1, pollTimeout)
	}
	if _, err := cps[survivor].waitLogFrom(0, func(m map[string]any) bool {
		return m["msg"] == "leading the fleet: this control plane prunes expired revocations and rotates the signing key"
	}, pollTimeout); err != nil {
		t.Errorf("replica %d never led the fleet: %v", survivor+1, err)
	}

	client.enter(t, "edge stopped")
	edges[0].Stop()
	t.Logf("edge 1 stopped at %v", time.Since(start).Round(time.Millisecond))
	w.create(t, "after-edge")
	client.enter(t, "end")

	// Every confirmed write is in the store, in the surviving replica's
	// watch, and in edge 2's snapshot: it serves the server's tools.
	list, err := atraxv1.NewServerServiceClient(dialGRPC(t, cps[survivor].GRPC)).ListServers(withToken(t, adminToken), &atraxv1.ListServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, s := range list.GetServers() {
		stored = append(stored, s.GetName())
	}
	for _, name := range w.confirmed {
		if !slices.Contains(stored, name) {
			t.Errorf("server %q, confirmed to the client, is not in the registry: %v", name, stored)
		}
	}
	if !poll(pollTimeout, func() bool { return watches[survivor].has(w.confirmed...) }) {
		watches[survivor].mu.Lock()
		t.Errorf("replica %d's WatchServers did not report every confirmed server (%v); it saw %v, err %v",
			survivor+1, w.confirmed, watches[survivor].created, watches[survivor].err)
		watches[survivor].mu.Unlock()
	}
	var served []string
	if !poll(pollTimeout, func() bool {
		served, _ = tools(t, edges[1], adminToken)
		for _, name := range w.confirmed {
			if !slices.Contains(served, name+"__test_simple_text") {
				return false
			}
		}
		return true
	}) {
		t.Errorf("edge 2 does not serve every confirmed server (%v); its tools: %v", w.confirmed, served)
	}

	client.halt()
	client.mu.Lock()
	defer client.mu.Unlock()
	t.Logf("client: %d calls answered, %d failed cleanly %q; writes: %d confirmed, %d refused while failing over; %v in all",
		client.ok, len(client.failed), client.failed, len(w.confirmed), w.refused, time.Since(start).Round(time.Millisecond))
	if len(client.unclean) > 0 {
		t.Errorf("%d calls did not fail cleanly: %q", len(client.unclean), client.unclean)
	}
	if len(client.failed) > client.ok/10 {
		t.Errorf("%d of %d calls failed; the data path should not depend on the control plane or etcd", len(client.failed), client.ok+len(client.failed))
	}
}

// withTokenCtx adds token as bearer metadata to ctx.
func withTokenCtx(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// jsonURL returns the "url" of a server definition in JSON.
func jsonURL(t *testing.T, def string) string {
	t.Helper()
	var d struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(def), &d); err != nil || d.URL == "" {
		t.Fatalf("server definition %s has no url", def)
	}
	return d.URL
}

// edgeOf reports whether the control plane cp has edge e connected, as cp
// says.
func edgeOf(t *testing.T, cp *proc, e *proc) bool {
	t.Helper()
	return replicasOf(t, cp)[e.EdgeID] == cp.GRPC
}

// replicasOf returns, for every connected edge GetStatus on cp lists, the
// gRPC address of the replica that holds its Sync stream ("HOST:PORT" in
// the status; every replica of the test listens on 127.0.0.1).
func replicasOf(t *testing.T, cp *proc) map[string]string {
	t.Helper()
	st, err := atraxv1.NewStatusServiceClient(dialGRPC(t, cp.GRPC)).GetStatus(withToken(t, ""), &atraxv1.GetStatusRequest{})
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, edge := range st.GetEdges() {
		if edge.GetConnected() {
			_, port, _ := strings.Cut(edge.GetReplica(), ":")
			out[edge.GetEdgeId()] = "127.0.0.1:" + port
		}
	}
	return out
}

// statusAcrossReplicas checks that GetStatus on either replica, and GET
// /status through an edge, list both edges, each with the replica that
// holds its stream: whichever answers lists the edges of the other.
func statusAcrossReplicas(t *testing.T, cps, edges []*proc) {
	t.Helper()
	var got map[string]string
	for i, cp := range cps {
		if !poll(pollTimeout, func() bool {
			got = replicasOf(t, cp)
			return len(got) == 2 && got[edges[0].EdgeID] != "" && got[edges[1].EdgeID] != "" &&
				(got[edges[0].EdgeID] == cps[0].GRPC || got[edges[0].EdgeID] == cps[1].GRPC) &&
				(got[edges[1].EdgeID] == cps[0].GRPC || got[edges[1].EdgeID] == cps[1].GRPC)
		}) {
			t.Fatalf("GetStatus on replica %d (%s) lists %v within %v; want edges %s and %s, each on a replica",
				i+1, cp.GRPC, got, pollTimeout, edges[0].EdgeID, edges[1].EdgeID)
		}
	}
	t.Logf("edge 1 on %s, edge 2 on %s; both replicas list both", got[edges[0].EdgeID], got[edges[1].EdgeID])
	if other := replicasOf(t, cps[0]); !maps.Equal(other, got) {
		t.Errorf("the replicas disagree on where the edges are: %v and %v", other, got)
	}

	var rest struct {
		Edges []struct {
			EdgeID    string `json:"edgeId"`
			Connected bool   `json:"connected"`
			Replica   string `json:"replica"`
		} `json:"edges"`
	}
	r := mustStatus(t, http.StatusOK, "GET", edges[0].HTTP+"/status", "", "")
	if err := json.Unmarshal(r.Body, &rest); err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	listed := map[string]bool{}
	for _, e := range rest.Edges {
		listed[e.EdgeID] = e.Connected && e.Replica != ""
	}
	if !listed[edges[0].EdgeID] || !listed[edges[1].EdgeID] {
		t.Errorf("GET /status through edge 1 lists %s; want both edges, connected, with their replica", r.Body)
	}
}

// etcdOutOfReach holds back every byte between the replicas and etcd:
// both report not ready (grpc.health.v1 NOT_SERVING, GetHealth and
// GetStatus "degraded" naming etcd), and ready again once etcd is back.
func etcdOutOfReach(t *testing.T, proxies []*etcdtest.Proxy, cps []*proc) {
	t.Helper()
	serving := func(cp *proc) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := healthpb.NewHealthClient(dialGRPC(t, cp.GRPC)).Check(withToken(t, ""), &healthpb.HealthCheckRequest{})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.GetStatus()
	}
	for _, p := range proxies {
		p.Pause()
	}
	for i, cp := range cps {
		if !poll(pollTimeout, func() bool { return serving(cp) == healthpb.HealthCheckResponse_NOT_SERVING }) {
			t.Fatalf("replica %d still ready %v after etcd went out of its reach", i+1, pollTimeout)
		}
		h, err := atraxv1.NewStatusServiceClient(dialGRPC(t, cp.GRPC)).GetHealth(withToken(t, ""), &atraxv1.GetHealthRequest{})
		if err != nil || h.GetStatus() != "degraded" || !strings.Contains(h.GetReason(), "etcd") {
			t.Errorf("replica %d without etcd: GetHealth %v, %v; want degraded, with a reason naming etcd", i+1, h, err)
		}
		st, err := atraxv1.NewStatusServiceClient(dialGRPC(t, cp.GRPC)).GetStatus(withToken(t, ""), &atraxv1.GetStatusRequest{})
		if err != nil || st.GetStatus() != "degraded" || !strings.Contains(st.GetReason(), "etcd") {
			t.Errorf("replica %d without etcd: GetStatus %q (%s), %v; want degraded, with a reason naming etcd", i+1, st.GetStatus(), st.GetReason(), err)
		}
	}
	for _, p := range proxies {
		p.Resume()
	}
	for i, cp := range cps {
		if !poll(pollTimeout, func() bool { return serving(cp) == healthpb.HealthCheckResponse_SERVING }) {
			t.Fatalf("replica %d not ready %v after etcd came back", i+1, pollTimeout)
		}
	}
}

// sessionsAcrossEdges opens a 2025 session (streamable HTTP) and a
// 2024-11-05 session on edge a and sends their ids to edge b: b holds
// neither, and answers 404 with no result, so the client initializes
// again; the ids carry a's routing key, not b's.
func sessionsAcrossEdges(t *testing.T, a, b *proc) {
	t.Helper()
	ctx := ctxFor(t, callTimeout)
	ca, cb := newWireClient(a.HTTP, adminToken), newWireClient(b.HTTP, adminToken)
	defer ca.close()
	defer cb.close()
	s, err := ca.open(ctx)
	if err != nil {
		t.Fatalf("open a session on edge 1: %v", err)
	}
	if r, err := s.call(ctx, "tools/call", toolCall(fleetCall, nil)); err != nil || r.Error != nil {
		t.Fatalf("a call on its own edge: %v %v", r, err)
	}
	other, err := cb.open(ctx)
	if err != nil {
		t.Fatalf("open a session on edge 2: %v", err)
	}
	keyA, _, _ := strings.Cut(s.ID, ".")
	keyB, _, _ := strings.Cut(other.ID, ".")
	if keyA == keyB || keyA == s.ID {
		t.Errorf("session ids %q and %q of two edges: want each to start with its edge's routing key", s.ID, other.ID)
	}

	r, _, err := cb.post(ctx, "/mcp", 9, request(9, "tools/call", toolCall(fleetCall, nil)), "Mcp-Session-Id", s.ID, "MCP-Protocol-Version", "2025-06-18")
	if err != nil {
		t.Fatalf("edge 2 with edge 1's session: %v", err)
	}
	if r.Status != http.StatusNotFound || r.Result != nil {
		t.Errorf("edge 2 with edge 1's session: HTTP %d, result %s; want 404 and no result", r.Status, r.Result)
	}
	// The session lives on at its own edge.
	if r, err := s.call(ctx, "tools/call", toolCall(fleetCall, nil)); err != nil || r.Error != nil {
		t.Errorf("a call on its own edge after the other edge refused it: %v %v", r, err)
	}

	legacy, err := ca.openLegacy(ctx)
	if err != nil {
		t.Fatalf("open a 2024-11-05 session on edge 1: %v", err)
	}
	defer legacy.close()
	lr := httpDo(t, "POST", b.HTTP+"/message?sessionId="+legacy.ID, adminToken, string(request(3, "tools/call", toolCall(fleetCall, nil))))
	if lr.Status != http.StatusNotFound {
		t.Errorf("edge 2 with edge 1's 2024-11-05 session: HTTP %d %s, want 404", lr.Status, lr.Body)
	}
}
