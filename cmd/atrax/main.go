// Command atrax runs the Atrax MCP gateway, and manages it.
//
//	atrax serve -f CONFIG          control plane and one edge (one machine)
//	atrax controlplane -f CONFIG   the control plane alone (gRPC)
//	atrax edge -f CONFIG           an edge alone (the public port)
//	atrax servers|token|status|audit ...   manage a running control plane
//	atrax init, atrax config validate -f CONFIG
//	atrax store migrate --from-data-dir DIR -f CONFIG   one machine's store into etcd
//	atrax connect URL              stdio MCP relayed to a remote endpoint
//	atrax version
//
// main parses flags, loads the config and wires the packages together; the
// behaviour lives in those packages (the commands besides the servers in
// internal/cli).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/edge"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/cli"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tracing"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs one command and returns the exit code: 0 ok, 1 error, 2 usage
// error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch cmd := args[0]; cmd {
		case "serve", "controlplane", "edge":
			return exitCode(cmd, runServer(cmd, args[1:], stderr), stderr)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, ok := stderr.(*os.File)
	return cli.Run(ctx, args, cli.Options{
		Stdin:        stdin,
		Stdout:       stdout,
		Stderr:       stderr,
		Interactive:  ok && isTerminal(f),
		Version:      version,
		MigrateStore: migrateStore,
	})
}

// migrateStore runs atrax store migrate: the CLI may not import the
// control plane, so main hands it the function.
func migrateStore(ctx context.Context, fromDataDir string, cfg *config.Config) (cli.StoreCopy, error) {
	m, err := controlplane.MigrateStore(ctx, controlplane.MigrateOptions{FromDataDir: fromDataDir, Config: cfg})
	if err != nil {
		return cli.StoreCopy{}, err
	}
	return cli.StoreCopy{
		From: m.From, To: m.To,
		Servers: m.Servers, SigningKeys: m.SigningKeys, SealKeys: m.SealKeys,
		Revocations: m.Revocations, AuditEvents: m.AuditEvents,
	}, nil
}

// exitCode reports a server command's error and returns its exit code.
func exitCode(cmd string, err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return cli.ExitOK
	case errors.As(err, &ue):
		if ue.err.Error() != "" { // else the flag package has said it
			fmt.Fprintf(stderr, "atrax %s: %v\n", cmd, ue.err)
		}
		return cli.ExitUsage
	}
	fmt.Fprintf(stderr, "atrax %s: %v\n", cmd, err)
	return cli.ExitError
}

// usageError is a mistake on the command line of a server command.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// configFlag parses the -f flag of the server commands.
func configFlag(name string, args []string, stderr io.Writer) (string, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("atrax "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("f", "", "config file (JSON with comments)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil, err
		}
		// The flag package has printed the error and the usage.
		return "", nil, usageError{errors.New("")}
	}
	if *path == "" {
		return "", nil, usageError{errors.New("-f CONFIG is required (see examples/atrax.json, or write one with `atrax init`)")}
	}
	if fs.NArg() > 0 {
		return "", nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return *path, fs, nil
}

func runServer(cmd string, args []string, stderr io.Writer) error {
	path, _, err := configFlag(cmd, args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		return fmt.Errorf("%s:\n%w", path, err)
	}
	var level slog.Level
	if s := os.Getenv("ATRAX_LOG_LEVEL"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("ATRAX_LOG_LEVEL=%q: want debug, info, warn or error", s)
		}
	}
	log := newLogger(stderr, level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cpOpts := controlplane.Options{Config: cfg, Version: version, Logger: log.With("component", "controlplane")}
	// ATRAX_PPROF=127.0.0.1:PORT serves profiles of the edge (make bench).
	edgeOpts := edge.Options{Config: cfg, Version: version, Logger: log.With("component", "edge"), Pprof: os.Getenv("ATRAX_PPROF")}
	if err := withTLS(cmd, &cpOpts, &edgeOpts); err != nil {
		return err
	}
	edgeOpts.Development = developmentMode(os.Getenv)
	// OTEL_* variables say where the edge's spans go; unset, none leave.
	tp, stopTracing, err := tracing.FromEnv(ctx, version)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("spans not exported at exit", "err", err)
		}
	}()
	edgeOpts.TracerProvider = tp
	cpOpts.TracerProvider = tp
	switch cmd {
	case "controlplane":
		return controlplane.Run(ctx, cpOpts)
	case "edge":
		return edge.Run(ctx, edgeOpts)
	}
	// serve: when the config names no credential for the edge, the two
	// halves share a random service token that lives as long as the process.
	if cfg.ControlPlane.Token == "" {
		svc := authn.StaticToken{Name: "serve-edge", Token: randomToken(), Scopes: []string{authn.ScopeEdge}, Servers: []string{}, Tools: []string{}}
		cpOpts.ServiceTokens = []authn.StaticToken{svc}
		edgeOpts.ControlPlaneToken = svc.Token
	}
	return runBoth(ctx, cpOpts, edgeOpts)
}

// runBoth runs the control plane and, once it listens, the edge, until ctx
// ends or either fails, and then stops the other.
func runBoth(ctx context.Context, cp controlplane.Options, e edge.Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var cpErr, edgeErr error
	cp.Ready = func(addr net.Addr) {
		// The edge dials the address the control plane really listens on
		// (port 0 in the config means the OS picked one).
		cfg := *e.Config
		cfg.ControlPlane.Address = addr.String()
		cfg.ControlPlane.Addresses = nil // its own control plane, not a fleet's
		e.Config = &cfg
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			edgeErr = edge.Run(ctx, e)
		}()
	}
	cpErr = controlplane.Run(ctx, cp)
	cancel()
	wg.Wait()
	return errors.Join(cpErr, edgeErr)
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newLogger logs text to a terminal and JSON otherwise, at logLevel.
func newLogger(w io.Writer, logLevel slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevel}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
