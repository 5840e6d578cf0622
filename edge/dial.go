package edge

import (
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// pickFirstShuffled connects to one address of the list, tried in an order
// each edge draws at random (so that the edges of a fleet spread over the
// control-plane replicas), and to the next one when that fails.
const pickFirstShuffled = `{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}`

// dialControlPlane returns the one client connection that the edge's Sync
// stream and its REST gateway share. With one address it is a plain
// client of that address (a DNS name that resolves to several replicas is
// tried address by address by gRPC itself). With several
// (controlPlane.addresses) the connection holds them all: when the
// replica it uses goes away, the next RPC (the Sync stream reconnects with
// capped backoff) connects to another one that answers. Each address
// keeps its own host as the TLS server name.
func dialControlPlane(addrs []string, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	if len(addrs) == 1 {
		return grpc.NewClient(addrs[0], grpc.WithTransportCredentials(creds))
	}
	r := manual.NewBuilderWithScheme("atrax-control-plane")
	var state resolver.State
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{
			Addresses: []resolver.Address{{Addr: a, ServerName: host}},
		})
	}
	r.InitialState(state)
	return grpc.NewClient(r.Scheme()+":///control-plane",
		grpc.WithTransportCredentials(creds),
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(pickFirstShuffled))
}
