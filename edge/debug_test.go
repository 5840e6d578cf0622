package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/atrax-mcp/atrax/edge"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/cptest"
)

const userToken = "debug-test-user-token"

// debugEdge runs an edge on listenAddr with development mode set as dev,
// and returns its base URL on 127.0.0.1 once it has a snapshot.
func debugEdge(t *testing.T, listenAddr string, dev bool) string {
	t.Helper()
	cp := cptest.New(t)
	c, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q, "tokens": [{"name": "user", "token": %q}]}},
		"controlPlane": {"address": %q, "token": %q},
	}`, token, userToken, cp.Addr, token)), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cp.SetSnapshot(&atraxv1.Snapshot{Version: 1, Namespacing: &atraxv1.Namespacing{Mode: "always", Separator: "__", Conflict: "first-wins"}})
	lis, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- edge.Run(ctx, edge.Options{Config: c, Listener: lis, Development: dev, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge.Run: %v", err)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", lis.Addr().(*net.TCPAddr).Port)
}

func get(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// In development mode on a loopback listener, /debug/* answers an admin.
func TestDebugInDevelopment(t *testing.T) {
	base := debugEdge(t, "127.0.0.1:0", true)
	// A session, for the dump to show.
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+userToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")

	code, body := get(t, base+"/debug/state", token)
	if code != http.StatusOK {
		t.Fatalf("/debug/state: %d %s", code, body)
	}
	var st struct {
		EdgeID   string `json:"edgeId"`
		Sessions []struct {
			ID, Transport, Principal string
		} `json:"sessions"`
		Limits struct {
			Sessions int `json:"sessions"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/debug/state is not JSON: %v\n%s", err, body)
	}
	if st.EdgeID == "" || len(st.Sessions) != 1 || st.Sessions[0].Principal != "static:user" || st.Limits.Sessions != 1 {
		t.Errorf("/debug/state = %s", body)
	}
	if sid == "" || strings.Contains(body, sid) {
		t.Errorf("/debug/state shows the whole session id (a bearer handle)")
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, body := get(t, base+path, token); code != http.StatusOK {
			t.Errorf("%s: %d %.200s", path, code, body)
		}
	}
	if code, _ := get(t, base+"/debug/state", ""); code != http.StatusUnauthorized {
		t.Errorf("/debug/state without a token: %d, want 401", code)
	}
	if code, _ := get(t, base+"/debug/state", userToken); code != http.StatusForbidden {
		t.Errorf("/debug/state without the admin scope: %d, want 403", code)
	}
}

// In production, or in development on a listener that is not loopback,
// /debug/* is an unknown path: 404 after auth.
func TestDebugNotServed(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		dev  bool
	}{
		{"production", "127.0.0.1:0", false},
		{"development on every interface", "0.0.0.0:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := debugEdge(t, tc.addr, tc.dev)
			for _, path := range []string{"/debug/state", "/debug/pprof/", "/debug/pprof/heap"} {
				if code, _ := get(t, base+path, token); code != http.StatusNotFound {
					t.Errorf("%s with a token: %d, want 404", path, code)
				}
				if code, _ := get(t, base+path, ""); code != http.StatusUnauthorized {
					t.Errorf("%s without a token: %d, want 401", path, code)
				}
			}
		})
	}
}
