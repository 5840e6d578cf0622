package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/logctx"
	"github.com/atrax-mcp/atrax/internal/metrics"
)

// The control plane's Prometheus metrics (docs/operations.md lists them),
// on a registry of its own, served on controlPlane.metricsAddress.

// planeMetrics are the metrics the control plane updates as it works.
type planeMetrics struct {
	reg           *prometheus.Registry
	rpcs          *prometheus.CounterVec
	verifications *metrics.Verifications
}

func newPlaneMetrics(p *plane) *planeMetrics {
	reg := metrics.NewRegistry()
	m := &planeMetrics{
		reg: reg,
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrax_controlplane_rpcs_total",
			Help: "gRPC calls the control plane answered (REST through an edge included), by full method and status code.",
		}, []string{"method", "code"}),
		verifications: metrics.NewVerifications(reg),
	}
	reg.MustRegister(m.rpcs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atrax_controlplane_edges_connected",
			Help: "Edges with a Sync stream open to the control plane.",
		}, func() float64 { return float64(p.fleet.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atrax_controlplane_ready",
			Help: "1 while the control plane is ready: it reaches its store (always, on the embedded one).",
		}, func() float64 {
			if p.ready.Err() != nil {
				return 0
			}
			return 1
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "atrax_controlplane_servers",
			Help: "Servers in the registry (the config file's and those added through the API), running or not.",
		}, func() float64 {
			servers, _ := p.registry.List()
			return float64(len(servers))
		}),
	)
	return m
}

// count counts one finished RPC (a stream counts when it ends).
func (m *planeMetrics) count(method string, err error) {
	m.rpcs.WithLabelValues(method, status.Code(err).String()).Inc()
}

// requestID returns ctx with the request id the caller sent (the edge's
// REST gateway sends the X-Request-Id of the HTTP request), or a new one.
func requestID(ctx context.Context) context.Context {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(logctx.MetadataKey); len(v) > 0 && logctx.ValidRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		id = logctx.NewRequestID()
	}
	return logctx.WithRequestID(ctx, id)
}

// observeUnary gives each RPC a request id and counts it: the first
// interceptor, so that refusals by the others are counted too.
func (m *planeMetrics) observeUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(requestID(ctx), req)
		m.count(info.FullMethod, err)
		return resp, err
	}
}

func (m *planeMetrics) observeStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, &contextStream{ServerStream: ss, ctx: requestID(ss.Context())})
		m.count(info.FullMethod, err)
		return err
	}
}

// contextStream is a server stream with a context of its own.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// serveMetrics serves /metrics on lis with h until the returned function
// is called.
func serveMetrics(lis net.Listener, h http.Handler, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return func() {
		_ = srv.Close()
		<-done
	}
}

// metricsListener returns the listener of the metrics endpoint: opts'
// own, a new one on controlPlane.metricsAddress, or nil for none.
func metricsListener(opts Options) (net.Listener, error) {
	if opts.Config.HTTP.Metrics == config.MetricsOff {
		return nil, nil
	}
	if opts.MetricsListener != nil {
		return opts.MetricsListener, nil
	}
	addr := opts.Config.ControlPlane.MetricsAddress
	if addr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on controlPlane.metricsAddress %s: %w", addr, err)
	}
	return lis, nil
}
