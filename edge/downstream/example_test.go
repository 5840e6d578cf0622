package downstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// pingDispatcher answers initialize and ping.
type pingDispatcher struct{}

func (pingDispatcher) Initialize(_ context.Context, s *session.Session, params json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	return json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"example"}}`), nil
}

func (pingDispatcher) Handle(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	return jsonrpc.ResultResponse(req.ID, json.RawMessage(`{}`))
}

func (pingDispatcher) HandleNotification(context.Context, *session.Session, *jsonrpc.Request) {}

func (pingDispatcher) Listen(ctx context.Context, s *session.Session, req *jsonrpc.Request) *jsonrpc.Response {
	return jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no listen"))
}

func (pingDispatcher) Tool(string) (json.RawMessage, bool) { return nil, false }

// A Handler serves /sse, /message and /mcp for a Dispatcher; every request
// carries a token the Verifier knows.
func Example() {
	sessions := session.NewStore()
	h := downstream.New(downstream.Options{
		Dispatcher: pingDispatcher{},
		Verifier:   authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{{Name: "ci", Token: "secret-token"}}}),
		Sessions:   sessions,
		RouteKey:   "edge-1",
	})
	sessions.OnClose = h.SessionClosed
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(sid, body string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer secret-token")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		return srv.Client().Do(req)
	}
	init, err := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	init.Body.Close()
	sid := init.Header.Get("Mcp-Session-Id")
	ping, err := post(sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(ping.Body)
	ping.Body.Close()
	fmt.Println(strings.HasPrefix(sid, "edge-1."), ping.Header.Get("Content-Type"), string(body))
	// Output: true application/json {"jsonrpc":"2.0","id":2,"result":{}}
}
