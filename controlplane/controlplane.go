// Package controlplane runs the Atrax control plane: the gRPC API (atrax.v1
// with reflection and grpc.health.v1) over the server registry, the token
// issuer and the store (the embedded file, or etcd shared by several
// replicas), and the Sync streams that feed the edges.
//
// It never imports the edge: edges reach it only through the gRPC API, so
// one control plane can feed many edges in other processes, and several
// replicas on one etcd store can feed a fleet (see shared.go).
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/grpcauth"
	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/service"
	"github.com/atrax-mcp/atrax/controlplane/snapshot"
	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authconf"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/logctx"
	"github.com/atrax-mcp/atrax/internal/metrics"
	"github.com/atrax-mcp/atrax/internal/tracing"
)

// StoreFile is the embedded store's file name inside the data directory.
const StoreFile = "atrax.db"

// Options configure Run.
type Options struct {
	// Config is the loaded config file.
	Config *config.Config
	// Listener, when set, is used instead of listening on
	// Config.ControlPlane.Address (tests pass 127.0.0.1:0).
	Listener net.Listener
	// ServiceTokens are accepted in every auth mode; `atrax serve` gives one
	// with the edge scope to the edge it runs.
	ServiceTokens []authn.StaticToken
	// TLS, when set, makes the gRPC listener serve TLS.
	TLS *tls.Config
	// OAuthTLS, when set, is what the verifier reaches the OAuth
	// authorization server with (auth.options.ca, see tlsconf.OAuth); nil
	// trusts the system's roots.
	OAuthTLS *tls.Config
	// Version is reported by GetHealth and GetStatus.
	Version string
	Logger  *slog.Logger
	// Ready, when set, is called with the listening address once the
	// control plane serves.
	Ready func(net.Addr)
	// MetricsListener, when set, serves /metrics instead of a listener on
	// Config.ControlPlane.MetricsAddress (tests pass 127.0.0.1:0).
	MetricsListener net.Listener
	// TracerProvider, when set, gives each RPC served a span, continuing
	// the caller's trace.
	TracerProvider trace.TracerProvider
	// Now, when set, is the clock of token lifetimes and key ages (tests
	// set one to age a signing key).
	Now func() time.Time
}

// housekeepEvery is how often expired revocations are forgotten and the
// signing key's age is checked against auth.options.keyRotation
// (config.MinKeyRotation is not shorter).
const housekeepEvery = time.Hour

// Run serves the control plane until ctx ends, then stops gracefully and
// closes the store. It returns only after everything it started has ended.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Lines logged with an RPC's context carry its request id.
	log = slog.New(logctx.NewHandler(log.Handler()))
	cfg := opts.Config
	st, where, err := openStore(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	lis := opts.Listener
	if lis == nil {
		lis, err = net.Listen("tcp", cfg.ControlPlane.Address)
		if err != nil {
			return fmt.Errorf("listen on controlPlane.address %s: %w", cfg.ControlPlane.Address, err)
		}
	}
	defer lis.Close() // until Serve, which closes it
	cp, err := newPlane(ctx, opts, st, replicaName(lis.Addr()), log)
	if err != nil {
		return err
	}
	// What follows the store (its watch, the election, the edge records,
	// the checks) ends before it closes.
	ctx, cancel := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer background.Wait()
	defer cancel()
	housekeepHere := cp.shareStore(ctx, &background)
	background.Go(func() { cp.fleet.Share(ctx) })
	if c, ok := st.(checker); ok {
		background.Go(func() { cp.checkStore(ctx, c, "etcd") })
	}
	mlis, err := metricsListener(opts)
	if err != nil {
		return err
	}
	if mlis != nil {
		stopMetrics := serveMetrics(mlis, metrics.Handler(cp.metrics.reg, cfg.HTTP.Metrics, cp.counted), log)
		defer stopMetrics()
		log.Info("control plane metrics serving", "address", mlis.Addr().String(), "access", cfg.HTTP.Metrics)
	}

	stopping := make(chan struct{})
	srv := cp.grpcServer(opts.TLS, stopping)
	log.Info("control plane serving", "address", lis.Addr().String(), "data", where, "replica", cp.replica)
	if opts.Ready != nil {
		opts.Ready(lis.Addr())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	if housekeepHere {
		// Otherwise the replica elected to lead the fleet does.
		background.Go(func() { cp.housekeepWhile(ctx) })
	}
	for {
		select {
		case err := <-serveErr:
			return fmt.Errorf("serve gRPC: %w", err)
		case <-ctx.Done():
			log.Info("control plane stopping")
			cp.health.Shutdown()
			close(stopping)
			stopGracefully(srv, 10*time.Second)
			if err := <-serveErr; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("serve gRPC: %w", err)
			}
			return nil
		}
	}
}

// stopGracefully lets in-flight RPCs finish, but no longer than grace:
// Sync and Watch streams never finish by themselves.
func stopGracefully(srv *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		srv.Stop()
		<-done
	}
}

// A store several replicas share lets them list each other's edges.
var _ fleet.Shared = (*etcdstore.Store)(nil)

// plane is the control plane's wired parts.
type plane struct {
	opts      Options
	log       *slog.Logger
	store     store.Store
	verifier  *authn.Verifier
	counted   metrics.CountingVerifier // verifier, counted in metrics
	metrics   *planeMetrics
	registry  *registry.Registry
	issuer    *issuer.Issuer
	snapshots *snapshot.Publisher
	fleet     *fleet.Fleet
	replica   string // this control plane in its edges' records
	audit     *service.Auditor
	health    *health.Server
	ready     *readiness // whether it reaches its store
	started   time.Time
	// shared is set when control-plane replicas share the store; applied
	// is then the revision through which the watch has brought every
	// other replica's writes here, the version of edge snapshots.
	shared  store.Watcher
	applied atomic.Int64
}

func newPlane(ctx context.Context, opts Options, st store.Store, replica string, log *slog.Logger) (*plane, error) {
	cfg := opts.Config
	p := &plane{opts: opts, log: log, store: st, replica: replica, health: health.NewServer(), ready: newReadiness(), started: time.Now()}
	p.health.SetServingStatus(livenessService, healthpb.HealthCheckResponse_SERVING)
	// Replicas sharing a store list each other's edges.
	shared, _ := st.(fleet.Shared)
	p.fleet = fleet.New(fleet.Options{Replica: replica, Shared: shared, Logger: log})
	p.verifier = authconf.NewVerifier(cfg.Auth, opts.OAuthTLS, log.With("part", "oauth"), opts.ServiceTokens...)
	p.metrics = newPlaneMetrics(p)
	p.counted = metrics.CountingVerifier{Verifier: p.verifier, Counts: p.metrics.verifications}

	// Snapshots are rebuilt after every change; until the publisher exists
	// (during start-up) there is nobody to tell.
	rebuild := func() {
		if p.snapshots == nil {
			return
		}
		if err := p.snapshots.Rebuild(); err != nil {
			log.Error("rebuild edge snapshot", "err", err)
		}
	}
	var err error
	if w, ok := st.(store.Watcher); ok {
		// Every write after this revision reaches the registry and the
		// issuer through the watch, whatever they load below.
		from, err := st.Revision(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the store's revision: %w", err)
		}
		p.shared = w
		p.applied.Store(from)
	}
	p.registry, err = registry.Open(ctx, registry.Options{
		Store:         st,
		Config:        cfg.Servers,
		AllowCommands: cfg.ControlPlane.AllowCommands,
		OnChange:      rebuild,
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	var clients []issuer.Client
	for _, c := range cfg.Auth.Clients {
		clients = append(clients, issuer.Client{ID: c.ID, Secret: c.Secret, Scopes: c.Scopes, Servers: c.Servers, Tools: c.Tools})
	}
	p.issuer, err = issuer.New(ctx, issuer.Options{
		Store:    st,
		Verifier: p.verifier,
		Clients:  clients,
		Issuer:   cfg.Auth.Issuer,
		Audience: cfg.Auth.Audience,
		TTL:      cfg.Auth.TTL,
		MaxTTL:   cfg.Auth.MaxTTL,
		OnChange: rebuild,
		Logger:   log,
		Now:      opts.Now,
	})
	if err != nil {
		return nil, err
	}
	p.audit = &service.Auditor{Store: st, Logger: log}
	p.snapshots, err = snapshot.NewPublisher(p.buildSnapshot)
	if err != nil {
		return nil, fmt.Errorf("build first snapshot: %w", err)
	}
	return p, nil
}

// buildSnapshot reads every source after its write completed; the store's
// revision, read last, is therefore at least as new as the content.
func (p *plane) buildSnapshot() (*atraxv1.Snapshot, error) {
	servers, _ := p.registry.List()
	ns := p.opts.Config.Namespacing
	s := &atraxv1.Snapshot{
		Servers: servers,
		Namespacing: &atraxv1.Namespacing{
			Mode: ns.Mode, Separator: ns.Separator, Conflict: ns.Conflict, Prefer: ns.Prefer,
		},
		TokenIssuer:   p.opts.Config.Auth.Issuer,
		TokenAudience: p.opts.Config.Auth.Audience,
	}
	for _, k := range p.issuer.PublicKeys() {
		s.VerificationKeys = append(s.VerificationKeys, &atraxv1.VerificationKey{
			Kid: k.ID, Algorithm: authn.Algorithm, PublicKey: k.Key, CreateTime: timestamppb.New(k.Created),
		})
	}
	for jti, exp := range p.issuer.Revocations() {
		s.Revocations = append(s.Revocations, &atraxv1.Revocation{Jti: jti, ExpireTime: timestamppb.New(exp)})
	}
	for _, k := range p.issuer.SealKeys() {
		s.SealKeys = append(s.SealKeys, &atraxv1.SealKey{Id: k.ID, Key: k.Key, CreateTime: timestamppb.New(k.Created)})
	}
	if p.shared != nil {
		// Never ahead of what the watch brought: a replica that has not
		// seen a write must not claim its revision.
		s.Version = p.applied.Load()
		return s, nil
	}
	rev, err := p.store.Revision(context.Background())
	if err != nil {
		return nil, err
	}
	s.Version = rev
	return s, nil
}

// policy is the access level of every atrax.v1 method. Methods not listed
// need the admin scope.
func policy() grpcauth.Policy {
	return grpcauth.Policy{
		atraxv1.StatusService_GetHealth_FullMethodName:     grpcauth.Public,
		atraxv1.StatusService_GetStatus_FullMethodName:     grpcauth.Public,
		atraxv1.AuthService_IssueToken_FullMethodName:      grpcauth.Public,
		atraxv1.AuthService_ListSigningKeys_FullMethodName: grpcauth.Public,
		atraxv1.EdgeService_Sync_FullMethodName:            grpcauth.Edge,
	}
}

// logInternal logs the cause of an internal error, which the client sees
// only as "internal error".
func (p *plane) logInternal() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if cause, ok := service.InternalCause(err); ok {
			p.log.ErrorContext(ctx, "internal error", "method", info.FullMethod, "err", cause)
		}
		return resp, err
	}
}

func (p *plane) logInternalStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		if cause, ok := service.InternalCause(err); ok {
			p.log.ErrorContext(ss.Context(), "internal error", "method", info.FullMethod, "err", cause)
		}
		return err
	}
}

func (p *plane) grpcServer(tlsConfig *tls.Config, stopping <-chan struct{}) *grpc.Server {
	auth := &grpcauth.Interceptors{Verifier: p.counted, Policy: policy()}
	var sopts []grpc.ServerOption
	sopts = append(sopts,
		grpc.StatsHandler(tracing.GRPCServer(p.opts.TracerProvider)),
		grpc.ChainUnaryInterceptor(p.metrics.observeUnary(), p.logInternal(), auth.Unary()),
		grpc.ChainStreamInterceptor(p.metrics.observeStream(), p.logInternalStream(), auth.Stream()))
	if tlsConfig != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	srv := grpc.NewServer(sopts...)
	audit := p.audit
	atraxv1.RegisterServerServiceServer(srv, &service.Servers{Registry: p.registry, Audit: audit, Fleet: p.fleet, Stopping: stopping})
	atraxv1.RegisterAuthServiceServer(srv, &service.Auth{Issuer: p.issuer, Audit: audit})
	atraxv1.RegisterStatusServiceServer(srv, &service.Status{Registry: p.registry, Fleet: p.fleet, Version: p.opts.Version, Started: p.started, Ready: p.ready.Err})
	atraxv1.RegisterEdgeServiceServer(srv, &service.Edges{Snapshots: p.snapshots, Fleet: p.fleet, Store: p.store, Logger: p.log, Stopping: stopping, Ready: p.ready.State})
	atraxv1.RegisterAuditServiceServer(srv, &service.AuditLog{Store: p.store})
	healthpb.RegisterHealthServer(srv, p.health)
	reflection.Register(srv)
	return srv
}
