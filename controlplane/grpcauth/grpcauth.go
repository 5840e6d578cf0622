// Package grpcauth enforces tokens on the control plane's gRPC API with a
// unary and a stream interceptor. REST calls reach the same interceptors
// because the edge forwards them over gRPC, so grpcurl, REST and the CLI all
// meet one rule.
//
// The interceptors only extract the bearer token, ask authn who it is, put
// the principal in the context and apply the method's access level. Which
// servers or tools a principal may use is decided further in.
package grpcauth

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/internal/authn"
)

// Access is what a method requires of its caller.
type Access int

// Access levels, from least to most demanding.
const (
	// Public methods need no token; one that is sent and valid is still
	// put in the context (IssueToken uses it).
	Public Access = iota
	// Authenticated methods need any valid token.
	Authenticated
	// Edge methods need the edge scope.
	Edge
	// Admin methods need the admin scope.
	Admin
)

// Policy maps a full method name ("/atrax.v1.ServerService/ListServers") to
// its access level. Methods it does not know need Admin, so a new RPC is
// closed until someone opens it.
type Policy map[string]Access

func (p Policy) access(method string) Access {
	if a, ok := p[method]; ok {
		return a
	}
	// Reflection and health are public for every version of them.
	if strings.HasPrefix(method, "/grpc.reflection.") || strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return Public
	}
	return Admin
}

// Verifier is what the interceptors need of authn.
type Verifier interface {
	Verify(ctx context.Context, token string) (*authn.Principal, error)
}

// Interceptors holds the two interceptors over one verifier and policy.
type Interceptors struct {
	Verifier Verifier
	Policy   Policy
}

// Unary returns the unary server interceptor.
func (in *Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := in.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor.
func (in *Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := in.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func (in *Interceptors) authorize(ctx context.Context, method string) (context.Context, error) {
	access := in.Policy.access(method)
	token := bearer(ctx)
	p, err := in.Verifier.Verify(ctx, token)
	if access == Public {
		if err == nil {
			ctx = authn.NewContext(ctx, p)
		}
		return ctx, nil
	}
	switch {
	case errors.Is(err, authn.ErrNoToken):
		return nil, status.Error(codes.Unauthenticated, "no token: send the header authorization: Bearer TOKEN")
	case err != nil:
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	switch access {
	case Admin:
		if !p.HasScope(authn.ScopeAdmin) {
			return nil, insufficientScope(authn.ScopeAdmin)
		}
	case Edge:
		if !p.HasScope(authn.ScopeEdge) && !p.HasScope(authn.ScopeAdmin) {
			return nil, insufficientScope(authn.ScopeEdge)
		}
	}
	return authn.NewContext(ctx, p), nil
}

// ReasonInsufficientScope is the ErrorInfo reason of a refusal for want of
// a scope; its metadata names the scope under "scope". HTTP gateways turn it
// into RFC 6750's insufficient_scope challenge.
const ReasonInsufficientScope = "insufficient_scope"

func insufficientScope(scope string) error {
	st := status.New(codes.PermissionDenied, "this call needs the "+scope+" scope")
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: ReasonInsufficientScope, Domain: "atrax.dev", Metadata: map[string]string{"scope": scope},
	}); err == nil {
		st = d
	}
	return st.Err()
}

// bearer returns the bearer token in the request's metadata, or "".
func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t := authn.BearerToken(v); t != "" {
			return t
		}
	}
	return ""
}
