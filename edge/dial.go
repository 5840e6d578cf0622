package edge

import (
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/health" // client-side health checks (healthyReplicas)
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// healthyReplicas connects to every address and sends each RPC to one of
// those whose grpc.health.v1 status for the server ("") is SERVING, in
// turn, starting at one each edge draws at random (so that the edges of a
// fleet spread over the control-plane replicas). A replica that cannot
// reach its store (etcd) answers NOT_SERVING and ends its Sync streams: the
// edge's next stream goes to another one. A server without the health
// service counts as healthy.
const healthyReplicas = `{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}`

// dialControlPlane returns the one client connection that the edge's Sync
// stream and its REST gateway share, over every replica it finds: with one
// address, those it resolves to (a DNS name that resolves to several
// replicas); with several (controlPlane.addresses), all of them, each
// keeping its own host as the TLS server name. RPCs go only to replicas
// that answer and report themselves healthy (healthyReplicas): when the
// one holding the Sync stream goes away or becomes unhealthy, the stream
// ends and the next one (it reconnects with capped backoff) goes to
// another. While none is healthy, RPCs fail at once with UNAVAILABLE, and
// the edge serves its last snapshot. extra are further options (tracing).
func dialControlPlane(addrs []string, creds credentials.TransportCredentials, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultServiceConfig(healthyReplicas)}, extra...)
	if len(addrs) == 1 {
		return grpc.NewClient(addrs[0], opts...)
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
	return grpc.NewClient(r.Scheme()+":///control-plane", append(opts, grpc.WithResolvers(r))...)
}
