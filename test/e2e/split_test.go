package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestSplitMode runs `atrax controlplane` and `atrax edge` as two
// processes: REST on the edge reaches the control plane; the edge stays
// healthy while the control plane is away, reconnects when it comes back on
// the same address, and is then listed by /status.
func TestSplitMode(t *testing.T) {
	t.Parallel()
	// The control plane must come back on the same port: take one the OS
	// offers now.
	cpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := tokenConfig(`
  "controlPlane": {"address": "` + cpAddr + `"},
  "mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp"}},`)
	cpDir := t.TempDir()
	cp := startAtraxIn(t, cpDir, "controlplane", cfg, adminEnv())
	if cp.GRPC != cpAddr {
		t.Fatalf("control plane serves on %s, want %s", cp.GRPC, cpAddr)
	}
	if cp.HTTP != "" {
		t.Fatalf("controlplane mode logged an edge at %s; want gRPC only", cp.HTTP)
	}
	edge := startAtrax(t, "edge", cfg, adminEnv())

	health := func() map[string]any {
		t.Helper()
		r := httpDo(t, "GET", edge.HTTP+"/health", "", "")
		if r.Status != http.StatusOK {
			t.Fatalf("edge GET /health: got %d, want 200; body: %s", r.Status, r.Body)
		}
		return r.JSON(t)
	}
	waitHealth := func(want string) {
		t.Helper()
		var h map[string]any
		if !poll(pollTimeout, func() bool { h = health(); return h["controlPlane"] == want }) {
			t.Fatalf(`edge /health never said "controlPlane": %q within %v; last: %v`, want, pollTimeout, h)
		}
		if h["component"] != "edge" || h["status"] != "ok" {
			t.Errorf(`edge /health: got %v, want status ok, component edge`, h)
		}
	}
	waitHealth("connected")

	// REST on the edge is the control plane's API.
	mustStatus(t, http.StatusOK, "POST", edge.HTTP+"/servers", adminToken, `{"name": "split", "url": "http://127.0.0.1:9/mcp"}`)
	if got := serverNames(t, mustStatus(t, http.StatusOK, "GET", edge.HTTP+"/servers", adminToken, "").JSON(t)); len(got) != 2 {
		t.Errorf("GET /servers through the edge: got %v, want cfg and split", got)
	}
	tok := issueToken(t, edge.HTTP, `{"token": "`+adminToken+`"}`)

	start := time.Now()
	cp.Stop()
	t.Logf("control plane with a connected edge stopped in %v", time.Since(start).Round(time.Millisecond))
	waitHealth("disconnected")
	// The edge still checks tokens on its own paths with what it knows.
	mustStatus(t, http.StatusNotFound, "GET", edge.HTTP+"/nope", tok.AccessToken, "")
	checkUnauthorized(t, "edge without control plane, no token", httpDo(t, "GET", edge.HTTP+"/nope", "", ""), false)

	cp2 := startAtraxIn(t, cpDir, "controlplane", cfg, adminEnv())
	if cp2.GRPC != cpAddr {
		t.Fatalf("restarted control plane serves on %s, want %s", cp2.GRPC, cpAddr)
	}
	waitHealth("connected")

	var e map[string]any
	if !poll(pollTimeout, func() bool {
		e = statusEdge(t, edge.HTTP, edge.EdgeID)
		return e != nil && e["connected"] == true
	}) {
		t.Fatalf("GET /status never listed edge %s as connected; last: %v", edge.EdgeID, e)
	}
	if e["address"] != edge.HTTP {
		t.Errorf("GET /status edge address: got %v, want %s", e["address"], edge.HTTP)
	}
	// The registry survived the control plane's restart.
	if got := serverNames(t, mustStatus(t, http.StatusOK, "GET", edge.HTTP+"/servers", adminToken, "").JSON(t)); len(got) != 2 || got[1] != "split" {
		t.Errorf("GET /servers after the control plane restarted: got %v, want [cfg split]", got)
	}
	edge.Stop()
	cp2.Stop()
}
