// Package edge runs an Atrax edge: the public HTTP port that MCP clients and
// REST clients reach. It serves the seed's endpoints (/health, /status,
// /auth, /servers/*), checks tokens with the same verifier as the control
// plane, and follows the control plane's Sync stream.
//
// The edge reaches the control plane only through the gRPC API (gen/) and
// the shared token verifier; it never imports the control plane.
package edge

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/edge/console"
	"github.com/atrax-mcp/atrax/edge/downstream"
	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/edge/restgw"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/seal"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/edge/upstream"
	"github.com/atrax-mcp/atrax/edge/watch"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authconf"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/logctx"
	"github.com/atrax-mcp/atrax/internal/metrics"
	"github.com/atrax-mcp/atrax/internal/tracing"
)

// Options configure Run.
type Options struct {
	// Config is the loaded config file: the public host and port, auth, and
	// where the control plane is.
	Config *config.Config
	// Listener, when set, is used instead of listening on Config's host and
	// port (tests pass 127.0.0.1:0).
	Listener net.Listener
	// ControlPlaneToken is the token the edge presents to the control
	// plane; Config.ControlPlane.Token when empty.
	ControlPlaneToken string
	// ServiceTokens are accepted in every auth mode (see authn.Options).
	ServiceTokens []authn.StaticToken
	// ControlPlaneTLS, when set, dials the control plane over TLS.
	ControlPlaneTLS *tls.Config
	// TLS, when set, makes the public listener serve HTTPS.
	TLS *tls.Config
	// OAuthTLS, when set, is what the verifier reaches the OAuth
	// authorization server with (auth.options.ca, see tlsconf.OAuth); nil
	// trusts the system's roots.
	OAuthTLS *tls.Config
	// Version is reported by /health and in the Sync hello.
	Version string
	Logger  *slog.Logger
	// TracerProvider makes the spans of client requests and upstream
	// calls; nil records none (a client's trace context is still passed
	// on to upstreams).
	TracerProvider trace.TracerProvider
	// Ready, when set, is called with the public address once the edge
	// serves.
	Ready func(net.Addr)
	// Pprof, when set, serves net/http/pprof on this loopback address
	// (host:port; port 0 picks one, logged as "pprof serving"). Empty, the
	// default, serves no profiles.
	Pprof string
	// Development serves /debug/* (pprof and a JSON dump of the sessions
	// and upstreams) on the public listener when it is a loopback address
	// (see debug.go); atrax sets it from ATRAX_ENV or NODE_ENV. Off, the
	// default, /debug/ is 404 like any unknown path.
	Development bool
}

// The router says which server serves what, for the console.
var _ console.Catalog = (*router.Router)(nil)

// shutdownGrace bounds how long in-flight requests may take at shutdown.
const shutdownGrace = 10 * time.Second

// Run serves the edge until ctx ends. It returns only after everything it
// started has ended.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Lines logged with a request's context carry its request id and trace.
	log = slog.New(logctx.NewHandler(log.Handler()))
	cfg := opts.Config
	token := opts.ControlPlaneToken
	if token == "" {
		token = cfg.ControlPlane.Token
	}
	if token == "" && cfg.Auth.Type != config.AuthNone {
		return errors.New("the edge has no credential for the control plane: set controlPlane.token")
	}

	e := &edgeServer{
		cfg:      cfg,
		log:      log,
		version:  opts.Version,
		verifier: authconf.NewVerifier(cfg.Auth, opts.OAuthTLS, log.With("part", "oauth"), opts.ServiceTokens...),
		id:       newEdgeID(),
		refs:     map[string]*serverRef{},
		reports:  make(chan struct{}, 1),
	}
	e.metrics = newEdgeMetrics(e)
	e.counted = metrics.CountingVerifier{Verifier: e.verifier, Counts: e.metrics.verifications}

	creds := insecure.NewCredentials()
	if opts.ControlPlaneTLS != nil {
		creds = credentials.NewTLS(opts.ControlPlaneTLS)
	}
	cpAddrs := strings.Join(cfg.ControlPlane.DialAddresses(), ",")
	// Its RPCs continue the trace of the request that makes them (a REST
	// call through the gateway).
	conn, err := dialControlPlane(cfg.ControlPlane.DialAddresses(), creds, grpc.WithStatsHandler(tracing.GRPCClient(opts.TracerProvider)))
	if err != nil {
		return fmt.Errorf("control plane at %s: %w", cpAddrs, err)
	}
	defer conn.Close()

	lis := opts.Listener
	if lis == nil {
		addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		lis, err = net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s (host and port in the config): %w", addr, err)
		}
	}
	e.debug = debugAllowed(opts.Development, lis.Addr())
	if opts.Development && !e.debug {
		log.Warn("development mode, but /debug is not served: the listener is not a loopback address", "address", lis.Addr().String())
	}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
		lis = tls.NewListener(lis, opts.TLS)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Pprof != "" {
		stopPprof, err := servePprof(ctx, opts.Pprof, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	rest, err := restgw.New(ctx, conn, e.counted)
	if err != nil {
		return err
	}
	// Upstreams outlive the HTTP server's shutdown by a little: calls in
	// flight finish first, then the children stop.
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	e.mcpParts(upCtx, opts)
	if cfg.UI.Enabled {
		e.console, err = console.New(console.Options{
			Verifier: e.counted,
			Catalog:  e.router,
			Version:  opts.Version,
			Logger:   log.With("part", "console"),
		})
		if err != nil {
			return err
		}
	}
	e.watcher = watch.New(watch.Options{
		Client: atraxv1.NewEdgeServiceClient(conn),
		Token:  token,
		Hello: &atraxv1.EdgeHello{
			EdgeId:    e.id,
			Address:   scheme + "://" + lis.Addr().String(),
			Version:   opts.Version,
			StartTime: timestamppb.Now(),
		},
		Apply:  e.apply,
		Logger: log.With("part", "sync"),
	})

	reqCtx, reqCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer reqCancel()
	srv := &http.Server{
		Handler: e.routes(rest),
		// No WriteTimeout: SSE streams live as long as their clients keep
		// them; other responses get a deadline of their own
		// (http.writeTimeout, in downstream).
		ReadHeaderTimeout: orDefault(cfg.HTTP.ReadHeaderTimeout, config.DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(cfg.HTTP.ReadTimeout, config.DefaultReadTimeout),
		IdleTimeout:       orDefault(cfg.HTTP.IdleTimeout, config.DefaultIdleTimeout),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests outlive the signal to stop: calls in flight finish
		// within shutdownGrace, then reqCtx ends whatever is left.
		BaseContext: func(net.Listener) context.Context { return reqCtx },
	}
	// Streams that carry no answer end as soon as the shutdown starts, so
	// that it waits only for calls in flight.
	srv.RegisterOnShutdown(e.mcp.Drain)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		_ = e.watcher.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		// Sessions end (all of them) only once their requests have.
		e.sessions.Expire(reqCtx, cfg.HTTP.SessionIdleTimeout, min(time.Minute, cfg.HTTP.SessionIdleTimeout/2))
	}()
	go func() {
		defer wg.Done()
		e.reportLoop(ctx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	log.Info("edge serving", "address", lis.Addr().String(), "edge_id", e.id, "control_plane", cpAddrs)
	if opts.Ready != nil {
		opts.Ready(lis.Addr())
	}

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
		log.Info("edge stopping")
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("in-flight requests cut off at shutdown", "err", serr)
			srv.Close()
		}
		scancel()
		reqCancel()
		<-serveErr
		err = nil
	}
	cancel()
	reqCancel()
	wg.Wait()
	e.pool.Close()
	upCancel()
	return err
}

// edgeServer is the edge's wired parts.
type edgeServer struct {
	cfg      *config.Config
	log      *slog.Logger
	version  string
	id       string
	verifier *authn.Verifier
	watcher  *watch.Watcher

	// counted is verifier with each verification counted in metrics.
	counted metrics.CountingVerifier
	metrics *edgeMetrics
	obs     *observer
	// applied is set once the first snapshot has been applied (/ready).
	applied atomic.Bool

	sessions *session.Store
	router   *router.Router
	pool     *upstream.Pool
	mcp      *downstream.Handler
	refs     map[string]*serverRef // by server name; used by apply only
	reports  chan struct{}
	seal     *seal.Ring // keys for the state handed to stateless clients
	limits   *limits.Limiter
	debug    bool // serve /debug/* (debug.go)
	// console is the web console, when ui.enabled.
	console *console.Console
	// stopped are the servers the registry says not to run, for reports.
	stopped atomic.Pointer[[]string]
}

// newEdgeID returns an id unique to this process: the host name, for
// operators, and random bytes, so that a restarted edge is a new edge.
func newEdgeID() string {
	host, _ := os.Hostname()
	host = strings.ToLower(strings.Split(host, ".")[0])
	if host == "" {
		host = "edge"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// apply takes a new snapshot into use.
func (e *edgeServer) apply(s *atraxv1.Snapshot) {
	keys := map[string]ed25519.PublicKey{}
	for _, k := range s.GetVerificationKeys() {
		if k.GetAlgorithm() != authn.Algorithm || len(k.GetPublicKey()) != ed25519.PublicKeySize {
			e.log.Error("snapshot carries a verification key this edge cannot use; skipped", "kid", k.GetKid(), "algorithm", k.GetAlgorithm())
			continue
		}
		keys[k.GetKid()] = ed25519.PublicKey(k.GetPublicKey())
	}
	e.verifier.SetKeys(keys)
	revoked := map[string]time.Time{}
	for _, r := range s.GetRevocations() {
		revoked[r.GetJti()] = r.GetExpireTime().AsTime()
	}
	e.verifier.SetRevocations(revoked)
	// A session opened with a token revoked since ends now: its open
	// streams would otherwise go on carrying notifications and requests
	// to the token's holder.
	if len(revoked) > 0 {
		e.sessions.Each(func(ss *session.Session) {
			if p := ss.Principal; p != nil && p.TokenID != "" {
				if _, ok := revoked[p.TokenID]; ok {
					e.log.Info("session ended: its token was revoked", "principal", p.Subject, "transport", ss.Transport)
					e.sessions.Remove(ss)
				}
			}
		})
	}
	var sealKeys []seal.Key
	for _, k := range s.GetSealKeys() {
		sealKeys = append(sealKeys, seal.Key{ID: k.GetId(), Key: k.GetKey()})
	}
	if err := e.seal.Set(sealKeys); err != nil {
		e.log.Error("snapshot carries seal keys this edge cannot use", "err", err)
	}
	want, entries := e.desired(s.GetServers())
	e.forgetRemoved(entries)
	var stopped []string
	for _, srv := range s.GetServers() {
		if srv.GetState() != "running" {
			stopped = append(stopped, srv.GetName())
		}
	}
	e.stopped.Store(&stopped)
	e.queueReport()
	e.pool.Apply(want)
	ns := s.GetNamespacing()
	e.router.SetServers(entries, router.Namespacing{
		Mode: ns.GetMode(), Separator: ns.GetSeparator(), Conflict: ns.GetConflict(), Prefer: ns.GetPrefer(),
	})
	e.applied.Store(true)
	e.log.Info("snapshot applied", "version", s.GetVersion(), "servers", len(s.GetServers()))
}

// routes is the edge's URL space. The control plane's REST paths go to the
// gateway, which forwards them with the caller's token; the control plane's
// interceptors decide. /health is answered here, for this process. Every
// other path needs a valid token before it is even told that it does not
// exist.
func (e *edgeServer) routes(rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", e.health)
	mux.HandleFunc("GET /ready", e.ready)
	switch access := e.cfg.HTTP.Metrics; access {
	case config.MetricsOff:
	case config.MetricsPublic:
		mux.Handle("GET /metrics", metrics.Handler(e.metrics.reg, access, nil))
	default:
		// Behind the edge's own check, so that a refusal carries the
		// same challenge (resource_metadata under OAuth) as every other.
		mux.Handle("GET /metrics", httpauth.Require(e.counted, metrics.Handler(e.metrics.reg, config.MetricsPublic, nil)))
	}
	e.mcp.Register(mux)
	if e.debug {
		e.registerDebug(mux)
	}
	for _, p := range []string{"/status", "/auth", "/auth/", "/servers", "/servers/", "/audit", "/.well-known/jwks.json"} {
		mux.Handle(p, rest)
	}
	// The web console (ui.enabled): pages under /ui/ that call the REST
	// API and /mcp from the browser with the signed-in token.
	if e.console != nil {
		e.console.Register(mux)
	}
	// auth.type "oauth": the RFC 9728 metadata document (oauth.go).
	e.registerOAuth(mux)
	mux.Handle("/", httpauth.Require(e.counted, http.NotFoundHandler()))
	return withRequest(e.withChallenges(mux))
}

func (e *edgeServer) health(w http.ResponseWriter, r *http.Request) {
	cp := "disconnected"
	if e.watcher.Connected() {
		cp = "connected"
	}
	body, _ := protojson.Marshal(&atraxv1.GetHealthResponse{
		Status: "ok", Component: "edge", Version: e.version, ControlPlane: cp,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
