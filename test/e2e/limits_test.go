package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The limits object on a real edge: a call beyond an upstream's bound
// fails at once with a JSON-RPC error naming the limit (while the call
// holding the place goes on), a session beyond a token's bound and a
// request beyond its rate get 429 with Retry-After and a JSON-RPC error
// naming the limit. Nothing waits.

// initializeRaw opens a streamable session by hand and returns the
// response.
func initializeRaw(t *testing.T, base string) *response {
	t.Helper()
	return httpDo(t, http.MethodPost, base+"/mcp", pinToken,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`,
		"Accept", "application/json, text/event-stream")
}

// refusedWith checks a 429 that names limit.
func refusedWith(t *testing.T, r *response, limit string) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d (%s), want 429 for %s", r.Status, r.Body, limit)
	}
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error.Code != -32029 || !strings.Contains(body.Error.Message, limit) {
		t.Errorf("429 body %s, want a JSON-RPC error -32029 naming %s", r.Body, limit)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	record := filepath.Join(dir, "record")
	cfg := fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"limits": {"maxInFlightPerUpstream": 1, "maxSessionsPerToken": 2, "requestsPerSecond": 0.01, "burst": 30},
		"mcpServers": {"slow": {"command": %q, "args": ["-name", "slow", "-record", %q]}},
	}`, pinToken, fixture(t, "slow"), record)
	p := startAtraxIn(t, dir, "serve", cfg, nil)
	waitUpstreams(t, p, "slow")

	// One call holds the upstream's one place until the test cancels it.
	s1 := sdkSession(t, p.HTTP, make(chan struct{}, 1))
	first := make(chan error, 1)
	firstCtx, cancelFirst := context.WithTimeout(context.Background(), callTimeout)
	defer cancelFirst()
	go func() {
		_, err := s1.CallTool(firstCtx, &mcp.CallToolParams{Name: "slow__sleep", Arguments: map[string]any{"ms": 60000}})
		first <- err
	}()
	if !poll(pollTimeout, func() bool {
		b, _ := os.ReadFile(record)
		return strings.Contains(string(b), "tools/call")
	}) {
		t.Fatal("the first call did not reach the server")
	}

	// A second call on another session is refused at once, the first one
	// still running.
	s2 := sdkSession(t, p.HTTP, make(chan struct{}, 1))
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := s2.CallTool(ctx, &mcp.CallToolParams{Name: "slow__sleep", Arguments: map[string]any{"ms": 1}})
	if err == nil || !strings.Contains(err.Error(), "limits.maxInFlightPerUpstream") {
		t.Errorf("second call: %v, want an error naming limits.maxInFlightPerUpstream", err)
	}
	select {
	case err := <-first:
		t.Fatalf("the first call ended (%v) before the refusal was checked: the test proves nothing", err)
	default:
	}

	// A third session of the token: 429.
	refusedWith(t, initializeRaw(t, p.HTTP), "limits.maxSessionsPerToken")

	// The place comes back when the first call ends (cancelled here).
	cancelFirst()
	<-first
	if !poll(pollTimeout, func() bool {
		_, err := s2.CallTool(ctx, &mcp.CallToolParams{Name: "slow__sleep", Arguments: map[string]any{"ms": 1}})
		return err == nil
	}) {
		t.Error("no call succeeded after the place came back")
	}

	// The token's rate (burst 30, then one request per 100s) runs out.
	var last *response
	for range 40 {
		last = httpDo(t, http.MethodPost, p.HTTP+"/mcp", pinToken,
			`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			"Accept", "application/json, text/event-stream", "MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/list")
		if last.Status != http.StatusOK {
			break
		}
	}
	refusedWith(t, last, "limits.requestsPerSecond")
	if n, _ := strconv.Atoi(last.Header.Get("Retry-After")); n < 50 {
		t.Errorf("Retry-After = %d, want about 100 (one request per 100s)", n)
	}
	// The edge is unharmed: /health answers.
	mustStatus(t, http.StatusOK, http.MethodGet, p.HTTP+"/health", "", "")
}
