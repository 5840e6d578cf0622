package restgw_test

import (
	"context"
	"log"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/atrax-mcp/atrax/edge/restgw"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// The edge serves the control plane's REST API on its own port, forwarding
// every call over one gRPC connection so that the control plane's
// interceptors decide who may do what.
func ExampleNew() {
	conn, err := grpc.NewClient("127.0.0.1:4001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// The verifier answers requests the API has no route for.
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{{Name: "ops", Token: "s3cret"}}})
	api, err := restgw.New(context.Background(), conn, v)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, path := range []string{"/auth", "/auth/", "/servers", "/servers/", "/status", "/health", "/audit", "/.well-known/jwks.json"} {
		mux.Handle(path, api)
	}
	_ = http.ListenAndServe("127.0.0.1:4000", mux)
}
