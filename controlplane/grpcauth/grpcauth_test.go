package grpcauth_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/grpcauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// fakeVerifier knows a few tokens by name and records what it was asked.
type fakeVerifier struct {
	mu   sync.Mutex
	seen []string
}

var principals = map[string]*authn.Principal{
	"user-token":  {Subject: "client:user", Kind: authn.KindJWT, Servers: []string{"*"}},
	"edge-token":  {Subject: "static:edge", Kind: authn.KindStatic, Scopes: []string{authn.ScopeEdge}},
	"admin-token": {Subject: "static:ops", Kind: authn.KindStatic, Scopes: []string{authn.ScopeAdmin}},
}

func (f *fakeVerifier) Verify(_ context.Context, token string) (*authn.Principal, error) {
	f.mu.Lock()
	f.seen = append(f.seen, token)
	f.mu.Unlock()
	switch {
	case token == "":
		return nil, authn.ErrNoToken
	case token == "expired-token":
		return nil, authn.ErrExpired
	case principals[token] != nil:
		return principals[token], nil
	}
	return nil, fmt.Errorf("%w: unknown token", authn.ErrInvalidToken)
}

func (f *fakeVerifier) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

var policy = grpcauth.Policy{
	"/atrax.v1.Test/Public":        grpcauth.Public,
	"/atrax.v1.Test/Authenticated": grpcauth.Authenticated,
	"/atrax.v1.Test/Edge":          grpcauth.Edge,
	"/atrax.v1.Test/Admin":         grpcauth.Admin,
	// An explicit entry wins over the built-in public prefixes.
	"/grpc.health.v1.Health/List": grpcauth.Admin,
}

// incoming returns a server-side context carrying authorization values.
func incoming(authorization ...string) context.Context {
	md := metadata.MD{}
	for _, a := range authorization {
		md.Append("authorization", a)
	}
	return metadata.NewIncomingContext(context.Background(), md)
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeStream) Context() context.Context { return s.ctx }

// call runs the unary or the stream interceptor for method and reports the
// error and the principal the handler saw (nil if it did not run or saw
// none).
func call(in *grpcauth.Interceptors, stream bool, method string, ctx context.Context) (ran bool, p *authn.Principal, err error) {
	if stream {
		err = in.Stream()(nil, &fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: method}, func(_ any, ss grpc.ServerStream) error {
			ran, p = true, authn.FromContext(ss.Context())
			return nil
		})
		return ran, p, err
	}
	resp, err := in.Unary()(ctx, "request", &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, req any) (any, error) {
		if req != "request" {
			return nil, fmt.Errorf("handler got request %v", req)
		}
		ran, p = true, authn.FromContext(ctx)
		return "response", nil
	})
	if err == nil && resp != "response" {
		err = fmt.Errorf("interceptor returned %v, not the handler's response", resp)
	}
	return ran, p, err
}

func TestInterceptors(t *testing.T) {
	levels := []struct {
		methods []string
		access  grpcauth.Access
	}{
		{[]string{
			"/atrax.v1.Test/Public",
			"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
			"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
			"/grpc.health.v1.Health/Check",
			"/grpc.health.v1.Health/Watch",
		}, grpcauth.Public},
		{[]string{"/atrax.v1.Test/Authenticated"}, grpcauth.Authenticated},
		{[]string{"/atrax.v1.Test/Edge"}, grpcauth.Edge},
		{[]string{
			"/atrax.v1.Test/Admin",
			// Methods the policy does not name are closed.
			"/atrax.v1.Test/Unknown",
			"/atrax.v1.ServerService/DeleteServer",
			"/grpc.health.v1.Health/List",
			"/grpc.health.v2.Health/Check",
			"/grpc.healthz/Check",
			"",
		}, grpcauth.Admin},
	}
	tokens := []string{"", "bad-token", "expired-token", "user-token", "edge-token", "admin-token"}

	// want is the code a token meets at an access level.
	want := func(access grpcauth.Access, token string) codes.Code {
		valid := principals[token] != nil
		switch {
		case access == grpcauth.Public:
			return codes.OK
		case !valid:
			return codes.Unauthenticated
		case access == grpcauth.Edge && token == "user-token":
			return codes.PermissionDenied
		case access == grpcauth.Admin && token != "admin-token":
			return codes.PermissionDenied
		}
		return codes.OK
	}

	for _, level := range levels {
		for _, method := range level.methods {
			for _, token := range tokens {
				for _, stream := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/stream=%v", method, token, stream)
					t.Run(name, func(t *testing.T) {
						v := &fakeVerifier{}
						in := &grpcauth.Interceptors{Verifier: v, Policy: policy}
						ctx := incoming()
						if token != "" {
							ctx = incoming("Bearer " + token)
						}
						ran, p, err := call(in, stream, method, ctx)
						code := want(level.access, token)
						if got := status.Code(err); got != code {
							t.Fatalf("code = %v (%v), want %v", got, err, code)
						}
						if ran != (code == codes.OK) {
							t.Errorf("handler ran = %v, want %v", ran, code == codes.OK)
						}
						if code != codes.OK {
							if token != "" && strings.Contains(status.Convert(err).Message(), token) {
								t.Errorf("error message %q repeats the token", status.Convert(err).Message())
							}
							return
						}
						// A valid token puts its principal in the context,
						// even on public methods.
						wantP := principals[token]
						if p != wantP {
							t.Errorf("handler saw principal %+v, want %+v", p, wantP)
						}
						if got := v.tokens(); len(got) != 1 || got[0] != token {
							t.Errorf("verifier asked about %q, want [%q]", got, token)
						}
					})
				}
			}
		}
	}
}

func TestBearerFromMetadata(t *testing.T) {
	tests := []struct {
		name          string
		authorization []string
		want          string // the token the verifier sees
	}{
		{"bearer", []string{"Bearer admin-token"}, "admin-token"},
		{"lower-case scheme", []string{"bearer admin-token"}, "admin-token"},
		{"basic only", []string{"Basic YWRtaW46c2VjcmV0"}, ""},
		{"basic then bearer", []string{"Basic YWRtaW46c2VjcmV0", "Bearer admin-token"}, "admin-token"},
		{"two bearers", []string{"Bearer admin-token", "Bearer user-token"}, "admin-token"},
		{"empty bearer", []string{"Bearer "}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &fakeVerifier{}
			in := &grpcauth.Interceptors{Verifier: v, Policy: policy}
			_, _, err := call(in, false, "/atrax.v1.Test/Admin", incoming(tt.authorization...))
			if got := v.tokens(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("verifier asked about %q, want [%q]", got, tt.want)
			}
			wantCode := codes.Unauthenticated
			if tt.want == "admin-token" {
				wantCode = codes.OK
			}
			if status.Code(err) != wantCode {
				t.Errorf("code = %v, want %v", status.Code(err), wantCode)
			}
		})
	}

	// No metadata at all is no token.
	v := &fakeVerifier{}
	in := &grpcauth.Interceptors{Verifier: v, Policy: policy}
	_, _, err := call(in, false, "/atrax.v1.Test/Admin", context.Background())
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "Bearer") {
		t.Errorf("no metadata: %v, want Unauthenticated saying how to send a token", err)
	}
}

func TestNilPolicy(t *testing.T) {
	// Without a policy every method but reflection and health needs admin.
	in := &grpcauth.Interceptors{Verifier: &fakeVerifier{}}
	for token, code := range map[string]codes.Code{"admin-token": codes.OK, "edge-token": codes.PermissionDenied, "": codes.Unauthenticated} {
		if _, _, err := call(in, false, "/atrax.v1.StatusService/GetHealth", incoming("Bearer "+token)); status.Code(err) != code {
			t.Errorf("%q: code %v, want %v", token, status.Code(err), code)
		}
	}
	if _, _, err := call(in, true, "/grpc.health.v1.Health/Watch", incoming()); err != nil {
		t.Errorf("health without a policy: %v", err)
	}
}

// TestOverGRPC runs the interceptors in a real server, so that metadata
// travels as it does in production and the stream wrapper carries the
// principal to a real handler.
func TestOverGRPC(t *testing.T) {
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{
		{Name: "ops", Token: "ops-token", Scopes: []string{authn.ScopeAdmin}},
		{Name: "edge", Token: "edge-token", Scopes: []string{authn.ScopeEdge}},
	}})
	in := &grpcauth.Interceptors{Verifier: v, Policy: grpcauth.Policy{
		healthpb.Health_Check_FullMethodName: grpcauth.Admin,
	}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(in.Unary()), grpc.StreamInterceptor(in.Stream()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
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
	client := healthpb.NewHealthClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	for _, tt := range []struct {
		ctx  context.Context
		want codes.Code
	}{
		{ctx, codes.Unauthenticated},
		{withToken("wrong"), codes.Unauthenticated},
		{withToken("edge-token"), codes.PermissionDenied},
		{withToken("ops-token"), codes.OK},
	} {
		_, err := client.Check(tt.ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != tt.want {
			t.Errorf("Check: %v, want %v", err, tt.want)
		}
	}

	// Watch is public by the health prefix: it streams without a token.
	w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.Recv()
	if err != nil {
		t.Fatalf("Watch without a token: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Watch status = %v, want SERVING", resp.GetStatus())
	}
}
