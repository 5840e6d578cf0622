package grpcauth_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/grpcauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func ExampleInterceptors() {
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{
		{Name: "edge", Token: "edge-token", Scopes: []string{authn.ScopeEdge}},
	}})
	in := &grpcauth.Interceptors{Verifier: v, Policy: grpcauth.Policy{
		"/atrax.v1.EdgeService/Sync": grpcauth.Edge,
	}}
	// In the control plane:
	//	grpc.NewServer(grpc.UnaryInterceptor(in.Unary()), grpc.StreamInterceptor(in.Stream()))
	unary := in.Unary()
	handler := func(ctx context.Context, _ any) (any, error) {
		return "hello " + authn.FromContext(ctx).Subject, nil
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer edge-token"))

	resp, err := unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/atrax.v1.EdgeService/Sync"}, handler)
	fmt.Println(resp, err)

	// A method the policy does not list needs the admin scope.
	_, err = unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/atrax.v1.ServerService/DeleteServer"}, handler)
	fmt.Println(status.Code(err))

	_, err = unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/atrax.v1.EdgeService/Sync"}, handler)
	fmt.Println(status.Code(err))
	// Output:
	// hello static:edge <nil>
	// PermissionDenied
	// Unauthenticated
}
