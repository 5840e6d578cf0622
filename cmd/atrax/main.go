// Command atrax runs the Atrax MCP gateway.
//
//	atrax serve -f CONFIG          control plane and one edge (one machine)
//	atrax controlplane -f CONFIG   the control plane alone (gRPC)
//	atrax edge -f CONFIG           an edge alone (the public port)
//	atrax config validate -f CONFIG
//	atrax version
//
// main parses flags, loads the config and wires the packages together; the
// behaviour lives in those packages.
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

	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/edge"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `atrax — one MCP endpoint in front of many MCP servers

Usage:
  atrax serve -f CONFIG            run the control plane and one edge
  atrax controlplane -f CONFIG     run the control plane alone (gRPC API)
  atrax edge -f CONFIG             run an edge alone (public HTTP port)
  atrax config validate -f CONFIG  check a config file and exit
  atrax version                    print the version

Run "atrax COMMAND -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "atrax:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve", "controlplane", "edge":
		return runServer(cmd, rest, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "validate" {
			return errors.New(`unknown config command; did you mean "atrax config validate -f CONFIG"?`)
		}
		return validate(rest[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "atrax", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// configFlag parses the -f flag common to every command.
func configFlag(name string, args []string, stderr io.Writer) (string, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("atrax "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("f", "", "config file (JSON with comments)")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	if *path == "" {
		return "", nil, fmt.Errorf("atrax %s: -f CONFIG is required (see examples/atrax.json)", name)
	}
	if fs.NArg() > 0 {
		return "", nil, fmt.Errorf("atrax %s: unexpected argument %q", name, fs.Arg(0))
	}
	return *path, fs, nil
}

func validate(args []string, stdout, stderr io.Writer) error {
	path, _, err := configFlag("config validate", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		return fmt.Errorf("%s:\n%w", path, err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d servers, auth %s)\n", path, len(cfg.Servers), cfg.Auth.Type)
	return nil
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
	edgeOpts := edge.Options{Config: cfg, Version: version, Logger: log.With("component", "edge")}
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
