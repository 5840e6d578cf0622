package cli_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Tokens the fake control plane knows.
const (
	adminToken = "admin-token-1"
	userToken  = "user-token-2" // valid, without the admin scope
)

// fake is an in-process control plane on 127.0.0.1:0 that implements the
// atrax.v1 services the CLI calls, with the real one's auth rules and
// error codes.
type fake struct {
	addr    string
	servers *fakeServers
	auth    *fakeAuth
	status  *fakeStatus
	audit   *fakeAudit
}

func startFake(t *testing.T) *fake {
	t.Helper()
	return startFakeWith(t)
}

// startFakeWith starts the fake with more server options (TLS).
func startFakeWith(t *testing.T, opts ...grpc.ServerOption) *fake {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{
		addr:    lis.Addr().String(),
		servers: &fakeServers{servers: map[string]*atraxv1.Server{}, pending: map[string]map[string]string{}},
		auth:    &fakeAuth{},
		status:  &fakeStatus{},
		audit:   &fakeAudit{},
	}
	srv := grpc.NewServer(append(opts, grpc.UnaryInterceptor(authorize))...)
	atraxv1.RegisterServerServiceServer(srv, f.servers)
	atraxv1.RegisterAuthServiceServer(srv, f.auth)
	atraxv1.RegisterStatusServiceServer(srv, f.status)
	atraxv1.RegisterAuditServiceServer(srv, f.audit)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f
}

var publicMethods = []string{
	"/atrax.v1.StatusService/GetStatus",
	"/atrax.v1.StatusService/GetHealth",
	"/atrax.v1.AuthService/IssueToken",
}

type callerKey struct{}

// authorize applies the control plane's rules (controlplane/grpcauth).
func authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	token := ""
	if v := md.Get("authorization"); len(v) > 0 {
		token = strings.TrimPrefix(v[0], "Bearer ")
	}
	if slices.Contains(publicMethods, info.FullMethod) {
		if token == adminToken || token == userToken {
			ctx = context.WithValue(ctx, callerKey{}, token)
		}
		return handler(ctx, req)
	}
	switch token {
	case "":
		return nil, status.Error(codes.Unauthenticated, "no token: send the header authorization: Bearer TOKEN")
	case adminToken:
		return handler(ctx, req)
	case userToken:
		return nil, status.Error(codes.PermissionDenied, "this call needs the admin scope")
	}
	return nil, status.Error(codes.Unauthenticated, "token is not valid")
}

type fakeServers struct {
	atraxv1.UnimplementedServerServiceServer
	mu      sync.Mutex
	servers map[string]*atraxv1.Server
	created []*atraxv1.Server // as the CLI sent them
	// pending holds, by server, the tools the edges hold back: name →
	// digest, "split" when the edges disagree.
	pending  map[string]map[string]string
	approves []*atraxv1.ApproveServerToolsRequest
}

func (f *fakeServers) put(s *atraxv1.Server) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers[s.GetName()] = s
}

func (f *fakeServers) get(name string) (*atraxv1.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.servers[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "server not found: %q", name)
	}
	return s, nil
}

func (f *fakeServers) ListServers(context.Context, *atraxv1.ListServersRequest) (*atraxv1.ListServersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.servers {
		names = append(names, n)
	}
	slices.Sort(names)
	resp := &atraxv1.ListServersResponse{}
	for _, n := range names {
		resp.Servers = append(resp.Servers, f.servers[n])
	}
	return resp, nil
}

func (f *fakeServers) GetServer(_ context.Context, req *atraxv1.GetServerRequest) (*atraxv1.GetServerResponse, error) {
	s, err := f.get(req.GetName())
	if err != nil {
		return nil, err
	}
	return &atraxv1.GetServerResponse{Server: s}, nil
}

func (f *fakeServers) CreateServer(_ context.Context, req *atraxv1.CreateServerRequest) (*atraxv1.CreateServerResponse, error) {
	s := req.GetServer()
	f.mu.Lock()
	f.created = append(f.created, proto.Clone(s).(*atraxv1.Server))
	_, exists := f.servers[s.GetName()]
	f.mu.Unlock()
	if exists {
		return nil, status.Errorf(codes.AlreadyExists, "server already exists: %q", s.GetName())
	}
	var bad []*errdetails.BadRequest_FieldViolation
	if s.GetUrl() != "" && !strings.HasPrefix(s.GetUrl(), "http") {
		bad = append(bad, &errdetails.BadRequest_FieldViolation{Field: "url", Description: "must be an absolute http:// or https:// URL"})
	}
	if s.GetTimeout() == "soon" {
		bad = append(bad, &errdetails.BadRequest_FieldViolation{Field: "timeout", Description: "not a duration"})
	}
	if len(bad) > 0 {
		st, _ := status.New(codes.InvalidArgument, "invalid server").WithDetails(&errdetails.BadRequest{FieldViolations: bad})
		return nil, st.Err()
	}
	if s.GetCommand() == "forbidden" {
		return nil, status.Error(codes.PermissionDenied, `command not allowed: "forbidden" is not in controlPlane.allowCommands`)
	}
	out := proto.Clone(s).(*atraxv1.Server)
	out.Source, out.State = "api", "running"
	if s.GetDisabled() {
		out.State = "stopped"
	}
	out.CreateTime = timestamppb.Now()
	f.put(out)
	return &atraxv1.CreateServerResponse{Server: out}, nil
}

func (f *fakeServers) DeleteServer(_ context.Context, req *atraxv1.DeleteServerRequest) (*atraxv1.DeleteServerResponse, error) {
	s, err := f.get(req.GetName())
	if err != nil {
		return nil, err
	}
	if s.GetSource() == "config" {
		return nil, status.Errorf(codes.FailedPrecondition, "server is defined by the config file: %q", s.GetName())
	}
	f.mu.Lock()
	delete(f.servers, req.GetName())
	f.mu.Unlock()
	return &atraxv1.DeleteServerResponse{}, nil
}

func (f *fakeServers) setState(name, state string) (*atraxv1.Server, error) {
	s, err := f.get(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s = proto.Clone(s).(*atraxv1.Server)
	if state != "" {
		s.State = state
	} else {
		s.RestartTime = timestamppb.Now()
	}
	f.servers[name] = s
	return s, nil
}

func (f *fakeServers) StartServer(_ context.Context, req *atraxv1.StartServerRequest) (*atraxv1.StartServerResponse, error) {
	s, err := f.setState(req.GetName(), "running")
	return &atraxv1.StartServerResponse{Server: s}, err
}

func (f *fakeServers) StopServer(_ context.Context, req *atraxv1.StopServerRequest) (*atraxv1.StopServerResponse, error) {
	s, err := f.setState(req.GetName(), "stopped")
	return &atraxv1.StopServerResponse{Server: s}, err
}

func (f *fakeServers) RestartServer(_ context.Context, req *atraxv1.RestartServerRequest) (*atraxv1.RestartServerResponse, error) {
	s, err := f.setState(req.GetName(), "")
	return &atraxv1.RestartServerResponse{Server: s}, err
}

// ApproveServerTools approves pending tools, with the real one's errors.
func (f *fakeServers) ApproveServerTools(_ context.Context, req *atraxv1.ApproveServerToolsRequest) (*atraxv1.ApproveServerToolsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.approves = append(f.approves, proto.Clone(req).(*atraxv1.ApproveServerToolsRequest))
	name := req.GetName()
	s, ok := f.servers[name]
	switch {
	case !ok:
		return nil, status.Errorf(codes.NotFound, "server not found: %q", name)
	case !s.GetPinTools():
		return nil, status.Errorf(codes.FailedPrecondition, "server does not pin its tools: %q has pinTools false, so every definition is served", name)
	}
	pending := f.pending[name]
	want := req.GetTools()
	if len(want) == 0 {
		for tool := range pending {
			want = append(want, tool)
		}
	}
	slices.Sort(want)
	var approved []string
	for _, tool := range want {
		digest, ok := pending[tool]
		switch {
		case !ok && s.GetApprovedTools()[tool] != "":
			continue // served as approved
		case !ok:
			return nil, status.Errorf(codes.FailedPrecondition, "cannot approve: no connected edge reports a tool %q of %q", tool, name)
		case digest == "split":
			return nil, status.Errorf(codes.FailedPrecondition, "cannot approve: the edges report 2 different definitions of tool %q; restart %q so that they agree, then approve", tool, name)
		}
		approved = append(approved, tool)
	}
	s = proto.Clone(s).(*atraxv1.Server)
	if s.ApprovedTools == nil {
		s.ApprovedTools = map[string]string{}
	}
	for _, tool := range approved {
		s.ApprovedTools[tool] = pending[tool]
		delete(pending, tool)
	}
	f.servers[name] = s
	return &atraxv1.ApproveServerToolsResponse{Server: s, Approved: approved}, nil
}

type fakeAuth struct {
	atraxv1.UnimplementedAuthServiceServer
	mu      sync.Mutex
	issued  []*atraxv1.IssueTokenRequest
	revoked []string
}

func (f *fakeAuth) IssueToken(ctx context.Context, req *atraxv1.IssueTokenRequest) (*atraxv1.IssueTokenResponse, error) {
	f.mu.Lock()
	f.issued = append(f.issued, proto.Clone(req).(*atraxv1.IssueTokenRequest))
	f.mu.Unlock()
	switch {
	case req.GetClientId() != "":
		if req.GetClientId() != "agent" || req.GetClientSecret() != "s3cret" {
			return nil, status.Error(codes.Unauthenticated, "invalid_client: unknown client or wrong secret")
		}
	case req.GetToken() != "":
		if req.GetToken() != adminToken && req.GetToken() != userToken {
			return nil, status.Error(codes.Unauthenticated, "invalid_client: unknown token")
		}
	case ctx.Value(callerKey{}) == nil:
		return nil, status.Error(codes.Unauthenticated, "invalid_client: no credential: send token, client_id and client_secret, or a bearer token")
	}
	if strings.Contains(req.GetScope(), "bogus") {
		return nil, status.Error(codes.InvalidArgument, `invalid_scope: unknown scope "bogus"`)
	}
	scope := req.GetScope()
	if scope == "" {
		scope = "admin edge"
	}
	return &atraxv1.IssueTokenResponse{AccessToken: "eyJ.fake.jwt", TokenType: "Bearer", ExpiresIn: 900, Scope: scope, Jti: "jti-1"}, nil
}

func (f *fakeAuth) RevokeToken(_ context.Context, req *atraxv1.RevokeTokenRequest) (*atraxv1.RevokeTokenResponse, error) {
	f.mu.Lock()
	f.revoked = append(f.revoked, req.GetJti())
	f.mu.Unlock()
	return &atraxv1.RevokeTokenResponse{Jti: req.GetJti(), RevokeTime: timestamppb.Now()}, nil
}

// fakeStatus answers GetStatus with the next of its statuses, and then the
// last one again.
type fakeStatus struct {
	atraxv1.UnimplementedStatusServiceServer
	mu       sync.Mutex
	statuses []*atraxv1.GetStatusResponse
	calls    int
}

func (f *fakeStatus) set(st ...*atraxv1.GetStatusResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses, f.calls = st, 0
}

func (f *fakeStatus) GetStatus(context.Context, *atraxv1.GetStatusRequest) (*atraxv1.GetStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.statuses) == 0 {
		return &atraxv1.GetStatusResponse{Status: "ok", Version: "test"}, nil
	}
	st := f.statuses[min(f.calls, len(f.statuses)-1)]
	f.calls++
	return st, nil
}

type fakeAudit struct {
	atraxv1.UnimplementedAuditServiceServer
	mu       sync.Mutex
	events   []*atraxv1.AuditEvent
	requests []*atraxv1.ListAuditEventsRequest
}

func (f *fakeAudit) ListAuditEvents(_ context.Context, req *atraxv1.ListAuditEventsRequest) (*atraxv1.ListAuditEventsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req).(*atraxv1.ListAuditEventsRequest))
	var match []*atraxv1.AuditEvent
	for _, e := range f.events {
		if (req.GetActor() == "" || e.GetActor() == req.GetActor()) &&
			(req.GetAction() == "" || e.GetAction() == req.GetAction()) &&
			(req.GetServer() == "" || e.GetServer() == req.GetServer()) &&
			(req.GetStartTime() == nil || !e.GetTime().AsTime().Before(req.GetStartTime().AsTime())) {
			match = append(match, e)
		}
	}
	start, _ := strconv.Atoi(req.GetPageToken())
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	end := min(start+size, len(match))
	resp := &atraxv1.ListAuditEventsResponse{Events: match[start:end]}
	if end < len(match) {
		resp.NextPageToken = fmt.Sprint(end)
	}
	return resp, nil
}
