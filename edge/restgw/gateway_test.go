package restgw_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atrax-mcp/atrax/edge/restgw"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// controlPlane is a fake of the services the gateway forwards to. It
// records what reached it.
type controlPlane struct {
	atraxv1.UnimplementedAuthServiceServer
	atraxv1.UnimplementedServerServiceServer

	mu            sync.Mutex
	authorization []string
	issue         *atraxv1.IssueTokenRequest
	update        *atraxv1.UpdateServerRequest
}

func (c *controlPlane) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	c.authorization = md.Get("authorization")
	c.mu.Unlock()
}

func (c *controlPlane) IssueToken(ctx context.Context, req *atraxv1.IssueTokenRequest) (*atraxv1.IssueTokenResponse, error) {
	c.record(ctx)
	c.mu.Lock()
	c.issue = proto.Clone(req).(*atraxv1.IssueTokenRequest)
	c.mu.Unlock()
	if req.GetClientId() != "ci" || req.GetClientSecret() != "s3cret" {
		st, _ := status.New(codes.Unauthenticated, "invalid_client: unknown client or wrong secret").
			WithDetails(&errdetails.ErrorInfo{Reason: "invalid_client", Domain: "atrax.dev"})
		return nil, st.Err()
	}
	return &atraxv1.IssueTokenResponse{AccessToken: "issued", TokenType: "Bearer", ExpiresIn: 3600, Scope: req.GetScope()}, nil
}

func (c *controlPlane) lastUpdate() *atraxv1.UpdateServerRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.update
}

func (c *controlPlane) ListServers(ctx context.Context, _ *atraxv1.ListServersRequest) (*atraxv1.ListServersResponse, error) {
	c.record(ctx)
	return &atraxv1.ListServersResponse{}, nil
}

func (c *controlPlane) UpdateServer(ctx context.Context, req *atraxv1.UpdateServerRequest) (*atraxv1.UpdateServerResponse, error) {
	c.record(ctx)
	c.mu.Lock()
	c.update = proto.Clone(req).(*atraxv1.UpdateServerRequest)
	c.mu.Unlock()
	return &atraxv1.UpdateServerResponse{Server: req.GetServer()}, nil
}

func (c *controlPlane) DeleteServer(ctx context.Context, req *atraxv1.DeleteServerRequest) (*atraxv1.DeleteServerResponse, error) {
	return nil, status.Errorf(codes.FailedPrecondition, "server is defined by the config file: remove %q from the config file instead", req.GetName())
}

// verifier accepts the token "good".
type verifier struct{}

func (verifier) Verify(_ context.Context, token string) (*authn.Principal, error) {
	switch token {
	case "":
		return nil, authn.ErrNoToken
	case "good":
		return &authn.Principal{Subject: "static:ops", Kind: authn.KindStatic}, nil
	}
	return nil, authn.ErrInvalidToken
}

// gateway returns the REST handler forwarding to a fake control plane on
// 127.0.0.1.
func gateway(t *testing.T) (http.Handler, *controlPlane) {
	t.Helper()
	cp := &controlPlane{}
	srv := grpc.NewServer()
	atraxv1.RegisterAuthServiceServer(srv, cp)
	atraxv1.RegisterServerServiceServer(srv, cp)
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
	h, err := restgw.New(context.Background(), conn, verifier{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, cp
}

func do(t *testing.T, h http.Handler, method, target, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return m
}

const form = "application/x-www-form-urlencoded"

func TestAuthForm(t *testing.T) {
	h, cp := gateway(t)
	tests := []struct {
		name, contentType, body string
		code                    int
		want                    map[string]any
	}{{
		name: "form", contentType: form, body: "grant_type=client_credentials&client_id=ci&client_secret=s3cret&scope=edge",
		code: 200, want: map[string]any{"access_token": "issued", "token_type": "Bearer", "expires_in": float64(3600), "scope": "edge"},
	}, {
		name: "JSON labelled as a form", contentType: form, body: `{"client_id": "ci", "client_secret": "s3cret"}`,
		code: 200, want: map[string]any{"access_token": "issued", "token_type": "Bearer", "expires_in": float64(3600)},
	}, {
		name: "JSON", contentType: "application/json", body: `{"client_id": "ci", "client_secret": "s3cret"}`,
		code: 200, want: map[string]any{"access_token": "issued", "token_type": "Bearer", "expires_in": float64(3600)},
	}, {
		name: "wrong secret", contentType: form, body: "client_id=ci&client_secret=nope",
		code: 401, want: map[string]any{"error": "invalid_client", "error_description": "unknown client or wrong secret"},
	}, {
		name: "unknown form field", contentType: form, body: "client_id=ci&password=x",
		code: 400, want: map[string]any{"error": "invalid_request", "error_description": `unknown form field "password"`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, h, "POST", "/auth", tt.contentType, tt.body)
			if w.Code != tt.code {
				t.Errorf("status = %d, want %d (body %s)", w.Code, tt.code, w.Body)
			}
			if diff := cmp.Diff(tt.want, decode(t, w)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.issue.GetClientSecret() != "nope" {
		t.Errorf("last request reaching the control plane = %v, want the wrong-secret one", cp.issue)
	}
}

func TestQueryTokenForwarded(t *testing.T) {
	h, cp := gateway(t)
	w := do(t, h, "GET", "/servers?token=abc", "", "")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"servers":[]}` {
		t.Errorf("GET /servers = %d %s, want 200 {\"servers\":[]}", w.Code, w.Body)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if diff := cmp.Diff([]string{"Bearer abc"}, cp.authorization); diff != "" {
		t.Errorf("authorization metadata (-want +got):\n%s", diff)
	}
}

func TestPatchMask(t *testing.T) {
	// The mask grpc-gateway derives from a PATCH body uses proto names and
	// dotted paths, as registry.Update expects.
	h, cp := gateway(t)
	w := do(t, h, "PATCH", "/servers/memory", "application/json", `{"description": "x", "tools": {"allow": ["a*"]}, "pinTools": true, "env": {"A": "1"}}`)
	if w.Code != 200 {
		t.Fatalf("PATCH = %d %s", w.Code, w.Body)
	}
	update := cp.lastUpdate()
	if diff := cmp.Diff([]string{"description", "env", "pin_tools", "tools.allow"}, update.GetUpdateMask().GetPaths()); diff != "" {
		t.Errorf("update mask (-want +got):\n%s", diff)
	}
	if got := update.GetServer().GetName(); got != "memory" {
		t.Errorf("server name = %q, want memory from the path", got)
	}

	// PUT replaces: no mask.
	if w := do(t, h, "PUT", "/servers/memory", "application/json", `{"url": "https://x.example.com"}`); w.Code != 200 {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	if paths := cp.lastUpdate().GetUpdateMask().GetPaths(); len(paths) != 0 {
		t.Errorf("PUT update mask = %q, want none", paths)
	}
}

func TestErrors(t *testing.T) {
	h, _ := gateway(t)
	tests := []struct {
		method, target string
		code           int
		grpcCode       codes.Code
		allow          string
	}{
		{"DELETE", "/servers/memory", 409, codes.FailedPrecondition, ""},
		{"GET", "/no/such/path?token=good", 404, codes.NotFound, ""},
		{"DELETE", "/auth?token=good", 405, codes.Unimplemented, "GET, POST, PUT, PATCH, DELETE"},
		{"GET", "/status", 501, codes.Unimplemented, ""},
	}
	for _, tt := range tests {
		w := do(t, h, tt.method, tt.target, "", "")
		if w.Code != tt.code {
			t.Errorf("%s %s = %d, want %d (body %s)", tt.method, tt.target, w.Code, tt.code, w.Body)
			continue
		}
		if got := decode(t, w)["code"]; got != float64(tt.grpcCode) {
			t.Errorf("%s %s body code = %v, want %d", tt.method, tt.target, got, tt.grpcCode)
		}
		if got := w.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s %s Allow = %q, want %q", tt.method, tt.target, got, tt.allow)
		}
	}
}

func TestUnknownPathNeedsToken(t *testing.T) {
	// What exists is not told to a caller without a valid token.
	h, _ := gateway(t)
	for _, target := range []string{"/no/such/path", "/no/such/path?token=bad"} {
		for _, method := range []string{"GET", "DELETE"} {
			w := do(t, h, method, target, "", "")
			if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="atrax"`) {
				t.Errorf("%s %s = %d with challenge %q, want 401 and a Bearer challenge", method, target, w.Code, w.Header().Get("WWW-Authenticate"))
			}
		}
	}
	if w := do(t, h, "DELETE", "/auth", "", ""); w.Code != 401 {
		t.Errorf("DELETE /auth without a token = %d, want 401", w.Code)
	}
}

func TestBodyProblems(t *testing.T) {
	// A body that does not fit is refused with the field at fault, before
	// anything reaches the control plane.
	h, _ := gateway(t)
	tests := []struct {
		body, want string
	}{
		{`{"name": "s", "args": "npx"}`, "args: must be an array of strings"},
		{`{"name": 5}`, "name: must be a string"},
		{`{"env": {"A": 1}}`, "env: must be an object of strings"},
		{`{"disabled": "yes"}`, "disabled: must be true or false"},
		{`{"tools": {"allow": "x"}}`, "tools.allow: must be an array of strings"},
		{`{"bogus": 1}`, "bogus: unknown field"},
		{`[1]`, "the body must be a JSON object"},
	}
	for _, tt := range tests {
		w := do(t, h, "POST", "/servers?token=good", "application/json", tt.body)
		if w.Code != 400 {
			t.Errorf("POST /servers %s = %d %s, want 400", tt.body, w.Code, w.Body)
			continue
		}
		if got := decode(t, w)["message"]; got != tt.want {
			t.Errorf("POST /servers %s: message %q, want %q", tt.body, got, tt.want)
		}
	}
}
