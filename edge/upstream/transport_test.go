package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atrax-mcp/atrax/edge/protocol"
)

// sdkServer is a go-sdk MCP server with one tool, greet.
func sdkServer(*http.Request) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "sdk", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "greet"}, func(ctx context.Context, r *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello"}}}, nil, nil
	})
	return s
}

// headerLog records the X-Api-Key of every request before h.
type headerLog struct {
	h    http.Handler
	mu   sync.Mutex
	keys []string
}

func (l *headerLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.keys = append(l.keys, r.Method+" "+r.Header.Get("X-Api-Key"))
	l.mu.Unlock()
	l.h.ServeHTTP(w, r)
}

// A server given by URL alone is probed: streamable HTTP when it takes an
// initialize POST, the legacy SSE transport when it refuses POST.
func TestTransportDetection(t *testing.T) {
	legacy := mcp.NewSSEHandler(sdkServer, nil)
	tests := []struct {
		name      string
		handler   http.Handler
		transport string // configured
		want      string // used
	}{
		{"go-sdk streamable", mcp.NewStreamableHTTPHandler(sdkServer, nil), "", "http"},
		{"go-sdk stateless streamable", mcp.NewStreamableHTTPHandler(sdkServer, &mcp.StreamableHTTPOptions{Stateless: true}), "", "http"},
		{"go-sdk legacy SSE", mcp.NewSSEHandler(sdkServer, nil), "", "sse"},
		{"legacy SSE configured", mcp.NewSSEHandler(sdkServer, nil), "sse", "sse"},
		{"legacy SSE without a POST route", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Query().Get("sessionid") == "" {
				http.NotFound(w, r)
				return
			}
			legacy.ServeHTTP(w, r)
		}), "", "sse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &headerLog{h: tt.handler}
			srv := httptest.NewServer(log)
			defer srv.Close()
			u := New(Options{HTTPClient: srv.Client(), Spec: Spec{
				Name: "remote", Transport: tt.transport, URL: srv.URL, Timeout: testWait,
				Headers: map[string]string{"X-Api-Key": "k1"},
			}})
			u.Start(context.Background())
			defer u.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if err := u.Ready(ctx); err != nil {
				t.Fatalf("not ready: %v", err)
			}
			if st := u.Status(); st.Transport != tt.want || st.Tools != 1 {
				t.Errorf("Status = %+v, want transport %s and one tool", st, tt.want)
			}
			resp, err := u.Call(ctx, protocol.MethodToolsCall, json.RawMessage(`{"name":"greet","arguments":{}}`), CallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(resp.Result), "hello") {
				t.Errorf("greet = %s", resp.Result)
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			if i := slices.IndexFunc(log.keys, func(k string) bool { return !strings.HasSuffix(k, " k1") }); i >= 0 {
				t.Errorf("request %q lacks the configured header (all: %q)", log.keys[i], log.keys)
			}
		})
	}
}

// The probe's own session is ended; the connection opens its own.
func TestProbeEndsItsSession(t *testing.T) {
	f, srv := newStreamServer(t)
	u := New(Options{HTTPClient: srv.Client(), Spec: Spec{Name: "remote", URL: srv.URL + "/mcp", Timeout: testWait}})
	u.Start(context.Background())
	defer u.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := u.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	deletes := slices.Clone(f.deletes)
	f.mu.Unlock()
	if !slices.Equal(deletes, []string{"sess-1"}) {
		t.Errorf("DELETEs = %q, want the probe's session sess-1 ended", deletes)
	}
	if st := u.Status(); st.Transport != "http" {
		t.Errorf("transport = %s", st.Transport)
	}
	reqs := f.requests()
	if last := reqs[len(reqs)-1]; last.Session != "sess-2" {
		t.Errorf("the connection uses session %q, want its own sess-2", last.Session)
	}
}
