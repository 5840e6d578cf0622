package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Faults of Atrax's own processes: SIGTERM with calls in flight, the
// control plane stopped under a running edge, an edge restarted under its
// clients, the control plane killed right after a write.

// TestFaultSIGTERM stops a gateway with SIGTERM while a call is in flight
// on each transport: every call finishes with its answer, the process
// exits cleanly within the grace period, its stdio servers and their
// children (process groups) are gone with it, and the store was closed
// cleanly (the gateway starts again on it).
func TestFaultSIGTERM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := newMarker("sigterm")
	pids := filepath.Join(dir, "slow.pids")
	servers := `"slow": ` + fixtureDef(t, "slow", []string{"-name", "slow", "-marker", marker, "-grandchild", "-pidfile", pids}, map[string]any{"timeout": "10m"}) +
		`, "other": ` + fixtureDef(t, "catalog", []string{"-name", "other", "-marker", marker}, nil)
	cfg := faultConfig(servers, "")
	p := startAtraxIn(t, dir, "serve", cfg, nil)
	waitUpstreams(t, p, "slow", "other")
	if got := pidsWithArg(t, marker); len(got) != 3 {
		t.Fatalf("processes with the marker: %v, want 3 (two servers and a grandchild)", got)
	}

	wc := newWireClient(p.HTTP, adminToken)
	defer wc.close()
	ctx := ctxFor(t, 2*time.Minute)
	s, standalone, legacy := openEvery(t, ctx, wc)

	const sleep = 3000
	from := len(p.Logs())
	// The legacy call is in flight once the edge has accepted its POST;
	// a POST still unanswered at SIGTERM may find its connection closed,
	// as any HTTP server's shutdown does.
	legacyWait, err := legacy.start(ctx, "tools/call", toolCall("slow__sleep", map[string]any{"ms": sleep}))
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() (*rpcReply, error){
		"streamable": func() (*rpcReply, error) {
			return s.call(ctx, "tools/call", toolCall("slow__sleep", map[string]any{"ms": sleep}))
		},
		"legacy": legacyWait,
		"stateless": func() (*rpcReply, error) {
			return wc.stateless(ctx, "tools/call", toolCall("slow__sleep", map[string]any{"ms": sleep}))
		},
	}
	var wg sync.WaitGroup
	results := map[string]string{}
	var mu sync.Mutex
	for name, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := call()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				results[name] = err.Error()
			case r.Error != nil:
				results[name] = r.Error.Error()
			default:
				results[name] = r.text()
			}
		}()
	}
	// SIGTERM once the server holds every call. waitLogFrom looks at the
	// lines again each time one comes: the calls are told apart by their
	// lines ("slow: sleeping 3s in call N"), never counted twice.
	sleeping := map[string]bool{}
	if _, err := p.waitLogFrom(from, func(m map[string]any) bool {
		if msg := str(m["msg"]); strings.HasPrefix(msg, "slow: sleeping") {
			sleeping[msg] = true
		}
		return len(sleeping) == len(calls)
	}, callTimeout); err != nil {
		t.Fatalf("the calls did not all reach the server: %v", err)
	}
	start := time.Now()
	p.Stop()
	took := time.Since(start)
	t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
	// The grace period is 10 s; the calls needed 3.
	if took > 9*time.Second {
		t.Errorf("the gateway took %v to stop: open streams held it beyond its calls", took)
	}
	wg.Wait()
	if !standalone.ended() || !legacy.ended() {
		t.Errorf("streams still open after the gateway stopped: standalone ended %v, legacy ended %v", standalone.ended(), legacy.ended())
	}
	for name := range calls {
		if want := fmt.Sprintf("slow slept %v", sleep*time.Millisecond); results[name] != want {
			t.Errorf("%s call in flight at SIGTERM: got %q, want %q", name, results[name], want)
		}
	}
	if !poll(5*time.Second, func() bool { return len(pidsWithArg(t, marker)) == 0 }) {
		t.Errorf("processes left behind after SIGTERM: %v", pidsWithArg(t, marker))
	}

	// The store was closed cleanly: the gateway starts on it again.
	p2 := startAtraxIn(t, dir, "serve", cfg, nil)
	waitUpstreams(t, p2, "slow", "other")
	p2.Stop()
	if !poll(5*time.Second, func() bool { return len(pidsWithArg(t, marker)) == 0 }) {
		t.Errorf("processes left behind after the second SIGTERM: %v", pidsWithArg(t, marker))
	}
}

// TestFaultControlPlaneAway kills the control plane (kill -9) under a
// running edge: the edge goes on serving its last registry (lists, calls,
// tokens it can verify), and when the control plane is back on the same
// address it syncs again: a server added after the restart reaches its
// clients.
func TestFaultControlPlaneAway(t *testing.T) {
	t.Parallel()
	cpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	servers := `"cat": ` + fixtureDef(t, "catalog", []string{"-name", "cat"}, nil)
	cfg := faultConfig(servers, `"controlPlane": {"address": "`+cpAddr+`", "allowCommands": true}`)
	cpDir := t.TempDir()
	cp := startAtraxIn(t, cpDir, "controlplane", cfg, nil)
	edge := startAtrax(t, "edge", cfg, nil)
	waitUpstreams(t, edge, "cat")
	jwt := issueToken(t, edge.HTTP, `{"token": "`+adminToken+`"}`)

	wc := newWireClient(edge.HTTP, jwt.AccessToken)
	defer wc.close()
	ctx := ctxFor(t, 2*time.Minute)
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	standalone, err := s.stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer standalone.close()

	cp.Kill()
	if !poll(pollTimeout, func() bool {
		return str(httpDo(t, "GET", edge.HTTP+"/health", "", "").JSON(t)["controlPlane"]) == "disconnected"
	}) {
		t.Fatalf("the edge never noticed the control plane was gone")
	}
	// The last registry is served, to old sessions and new, with a JWT the
	// edge verifies on its own.
	check := func(when string) {
		t.Helper()
		r, err := s.call(ctx, "tools/call", toolCall("cat__echo", map[string]any{"message": when}))
		if err != nil || r.text() != "cat: "+when {
			t.Errorf("%s: cat__echo on an open session: %v %+v", when, err, r)
		}
		s2, err := wc.open(ctx)
		if err != nil {
			t.Errorf("%s: a new session: %v", when, err)
			return
		}
		l, err := s2.call(ctx, "tools/list", nil)
		if err != nil || !slices.Contains(l.names("tools"), "cat__echo") {
			t.Errorf("%s: tools/list on a new session: %v %v", when, err, l.names("tools"))
		}
		r, err = wc.stateless(ctx, "resources/read", map[string]any{"uri": "catalog://cat/doc"})
		if err != nil || r.Error != nil {
			t.Errorf("%s: a stateless resources/read: %v %+v", when, err, r)
		}
	}
	check("without the control plane")
	time.Sleep(2 * time.Second) // a while of the edge retrying
	check("still without the control plane")

	cp2 := startAtraxIn(t, cpDir, "controlplane", cfg, nil)
	if !poll(pollTimeout, func() bool {
		return str(httpDo(t, "GET", edge.HTTP+"/health", "", "").JSON(t)["controlPlane"]) == "connected"
	}) {
		t.Fatalf("the edge did not reconnect to the control plane")
	}
	// A change made on the new control plane reaches the edge's clients.
	changed := standalone.notifications("notifications/tools/list_changed")
	servers2 := atraxv1.NewServerServiceClient(dialGRPC(t, cp2.GRPC))
	if _, err := servers2.CreateServer(withToken(t, adminToken), &atraxv1.CreateServerRequest{Server: &atraxv1.Server{
		Name: "late", Command: fixture(t, "catalog"), Args: []string{"-name", "late"},
	}}); err != nil {
		t.Fatalf("CreateServer on the restarted control plane: %v", err)
	}
	waitUpstreams(t, edge, "cat", "late")
	if !poll(pollTimeout, func() bool { return standalone.notifications("notifications/tools/list_changed") > changed }) {
		t.Errorf("the open session was not told of the new server's tools")
	}
	r, err := s.call(ctx, "tools/call", toolCall("late__echo", map[string]any{"message": "synced"}))
	if err != nil || r.text() != "late: synced" {
		t.Errorf("late__echo after the re-sync: %v %+v", err, r)
	}
	check("after the restart")
	edge.Stop()
}

// TestFaultEdgeRestart restarts an edge (split mode) under its clients:
// the old streamable session gets 404 (so that the client initializes
// again, as the spec says), the legacy SSE stream ends and its session id
// gets 404, and everything else goes on: new sessions on the new edge, the
// control plane and the tokens it issued.
func TestFaultEdgeRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	servers := `"cat": ` + fixtureDef(t, "catalog", []string{"-name", "cat"}, nil)
	cp := startAtrax(t, "controlplane", faultConfig(servers, ""), nil)
	cfg := faultConfig(servers, fmt.Sprintf(`"port": %d, "controlPlane": {"address": %q}`, port, cp.GRPC))
	edge := startAtrax(t, "edge", cfg, nil)
	waitUpstreams(t, edge, "cat")
	jwt := issueToken(t, edge.HTTP, `{"token": "`+adminToken+`"}`)

	wc := newWireClient(edge.HTTP, jwt.AccessToken)
	defer wc.close()
	ctx := ctxFor(t, 2*time.Minute)
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := wc.openLegacy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.close()
	if _, err := legacy.call(ctx, "tools/list", nil); err != nil {
		t.Fatal(err)
	}

	edge.Stop()
	select {
	case <-legacy.done:
	case <-time.After(callTimeout):
		t.Errorf("the legacy SSE stream did not end when its edge stopped")
	}
	edge2 := startAtrax(t, "edge", cfg, nil)
	if edge2.HTTP != edge.HTTP {
		t.Fatalf("the new edge serves on %s, want %s", edge2.HTTP, edge.HTTP)
	}
	waitUpstreams(t, edge2, "cat")

	if _, err := s.call(ctx, "tools/list", nil); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("the old streamable session on the new edge: %v, want HTTP 404", err)
	}
	var se *httpStatusError
	if err := legacy.send(ctx, request(0, "notifications/initialized", nil)); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("the old legacy session id on the new edge: %v, want HTTP 404", err)
	}
	// Clients start again, with the token issued before.
	s2, err := wc.open(ctx)
	if err != nil {
		t.Fatalf("a new streamable session: %v", err)
	}
	r, err := s2.call(ctx, "tools/call", toolCall("cat__echo", map[string]any{"message": "again"}))
	if err != nil || r.text() != "cat: again" {
		t.Errorf("cat__echo on a new session: %v %+v", err, r)
	}
	l2, err := wc.openLegacy(ctx)
	if err != nil {
		t.Fatalf("a new legacy session: %v", err)
	}
	defer l2.close()
	if r, err := l2.call(ctx, "tools/call", toolCall("cat__echo", map[string]any{"message": "legacy"})); err != nil || r.text() != "cat: legacy" {
		t.Errorf("cat__echo on a new legacy session: %v %+v", err, r)
	}
	// The control plane did not notice anything but a new edge.
	api := atraxv1.NewServerServiceClient(dialGRPC(t, cp.GRPC))
	if _, err := api.ListServers(withToken(t, jwt.AccessToken), &atraxv1.ListServersRequest{}); err != nil {
		t.Errorf("gRPC ListServers after the edge restarted: %v", err)
	}
	if !poll(pollTimeout, func() bool {
		e := statusEdge(t, edge2.HTTP, edge2.EdgeID)
		return e != nil && e["connected"] == true
	}) {
		t.Errorf("/status does not list the new edge as connected")
	}
	edge2.Stop()
}

// TestFaultControlPlaneKilledAfterWrite extends TestPersistence (REST on
// `atrax serve`) to the gRPC API of a control plane on its own: after each
// write RPC returns, the process is killed at once (kill -9) and started
// again, and the write is there.
func TestFaultControlPlaneKilledAfterWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := faultConfig(`"cfg": {"url": "http://127.0.0.1:9/mcp"}`, `"controlPlane": {"allowCommands": true}`)
	type step struct {
		name  string
		write func(ctx context.Context, srv atraxv1.ServerServiceClient, auth atraxv1.AuthServiceClient) error
		check func(ctx context.Context, srv atraxv1.ServerServiceClient, auth atraxv1.AuthServiceClient) error
	}
	var jti, revokedToken string
	steps := []step{
		{"CreateServer",
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				_, err := srv.CreateServer(ctx, &atraxv1.CreateServerRequest{Server: &atraxv1.Server{Name: "made", Url: "http://127.0.0.1:9/made", Tags: []string{"t1"}}})
				return err
			},
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				r, err := srv.GetServer(ctx, &atraxv1.GetServerRequest{Name: "made"})
				if err != nil || r.GetServer().GetUrl() != "http://127.0.0.1:9/made" {
					return fmt.Errorf("GetServer made: %v %v", r, err)
				}
				return nil
			}},
		{"UpdateServer and StopServer",
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				if _, err := srv.UpdateServer(ctx, &atraxv1.UpdateServerRequest{Server: &atraxv1.Server{Name: "made", Url: "http://127.0.0.1:9/made-v2", Description: "changed"}}); err != nil {
					return err
				}
				_, err := srv.StopServer(ctx, &atraxv1.StopServerRequest{Name: "cfg"})
				return err
			},
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				r, err := srv.GetServer(ctx, &atraxv1.GetServerRequest{Name: "made"})
				if err != nil || r.GetServer().GetUrl() != "http://127.0.0.1:9/made-v2" || r.GetServer().GetDescription() != "changed" {
					return fmt.Errorf("GetServer made after UpdateServer: %v %v", r, err)
				}
				c, err := srv.GetServer(ctx, &atraxv1.GetServerRequest{Name: "cfg"})
				if err != nil || c.GetServer().GetState() != "stopped" {
					return fmt.Errorf("GetServer cfg after StopServer: %v %v", c, err)
				}
				return nil
			}},
		{"RevokeToken",
			func(ctx context.Context, _ atraxv1.ServerServiceClient, auth atraxv1.AuthServiceClient) error {
				tok, err := auth.IssueToken(ctx, &atraxv1.IssueTokenRequest{Token: adminToken})
				if err != nil {
					return err
				}
				jti, revokedToken = tok.GetJti(), tok.GetAccessToken()
				_, err = auth.RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: jti})
				return err
			},
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				_, err := srv.ListServers(withToken(t, revokedToken), &atraxv1.ListServersRequest{})
				if status.Code(err) != codes.Unauthenticated {
					return fmt.Errorf("ListServers with the token revoked before the kill: %v, want Unauthenticated", err)
				}
				return nil
			}},
		{"DeleteServer",
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				_, err := srv.DeleteServer(ctx, &atraxv1.DeleteServerRequest{Name: "made"})
				return err
			},
			func(ctx context.Context, srv atraxv1.ServerServiceClient, _ atraxv1.AuthServiceClient) error {
				if _, err := srv.GetServer(ctx, &atraxv1.GetServerRequest{Name: "made"}); status.Code(err) != codes.NotFound {
					return fmt.Errorf("GetServer made after DeleteServer: %v, want NotFound", err)
				}
				return nil
			}},
	}
	p := startAtraxIn(t, dir, "controlplane", cfg, nil)
	for _, st := range steps {
		conn := dialGRPC(t, p.GRPC)
		srv, auth := atraxv1.NewServerServiceClient(conn), atraxv1.NewAuthServiceClient(conn)
		if err := st.write(withToken(t, adminToken), srv, auth); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		p.Kill()
		p = startAtraxIn(t, dir, "controlplane", cfg, nil)
		conn = dialGRPC(t, p.GRPC)
		srv, auth = atraxv1.NewServerServiceClient(conn), atraxv1.NewAuthServiceClient(conn)
		if err := st.check(withToken(t, adminToken), srv, auth); err != nil {
			t.Errorf("after %s and kill -9: %v", st.name, err)
		}
	}
	p.Stop()
}
