package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/internal/syncbuf"
)

// StartTimeout bounds the wait for a started server to accept connections.
const StartTimeout = 30 * time.Second

// stopTimeout bounds the wait for a killed server to be reaped.
const stopTimeout = 10 * time.Second

// EverythingServerPackage is the import path of go-sdk's conformance fixture,
// a `tool` of the main module (go.mod), so its version is the go-sdk version
// pinned there.
const EverythingServerPackage = "github.com/modelcontextprotocol/go-sdk/conformance/everything-server"

// StdioCommand is the command line of an MCP server that speaks over
// stdin/stdout, for a gateway config to launch or a test to exec.
type StdioCommand struct {
	// Command is an absolute path (the Node 22 binary for npm servers).
	Command string
	// Args follow Command; for npm servers the first is the package's JS entry file.
	Args []string
	// Env holds KEY=VALUE settings the server needs on top of the usual
	// environment (none for most servers).
	Env []string
}

// Cmd returns an exec.Cmd for c with the environment of this process plus
// c.Env, in its own process group that is killed when ctx is done.
func (c *StdioCommand) Cmd(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Command, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	setProcessGroup(cmd)
	return cmd
}

// EverythingStdio returns the command line of
// @modelcontextprotocol/server-everything over stdio, run by Node 22.
func (p *Peers) EverythingStdio() *StdioCommand {
	return &StdioCommand{Command: p.Node, Args: []string{p.entry("mcp-server-everything"), "stdio"}}
}

// MemoryStdio returns the command line of @modelcontextprotocol/server-memory
// (stdio only), run by Node 22, keeping its knowledge graph in memoryFile
// (MEMORY_FILE_PATH; give a file in a test's temporary directory: left
// empty, the package writes into node_modules).
func (p *Peers) MemoryStdio(memoryFile string) *StdioCommand {
	c := &StdioCommand{Command: p.Node, Args: []string{p.entry("mcp-server-memory")}}
	if memoryFile != "" {
		c.Env = []string{"MEMORY_FILE_PATH=" + memoryFile}
	}
	return c
}

// entry is the JS file behind the bin name.
func (p *Peers) entry(bin string) string {
	e, _ := p.resolve(bin)
	return e
}

// Server is a running HTTP MCP server on 127.0.0.1. Stop it (or cancel the
// context it was started with) when done.
type Server struct {
	// URL is the MCP endpoint: http://127.0.0.1:PORT/mcp for streamable
	// HTTP, http://127.0.0.1:PORT/sse for the SSE transport.
	URL string
	// Addr is 127.0.0.1:PORT.
	Addr string

	cmd      *exec.Cmd
	out      *syncbuf.Buffer
	done     chan struct{}
	stopOnce sync.Once
}

// Output returns what the server wrote to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// Stop kills the server's process group and waits (bounded) for it to exit.
// It may be called more than once.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		if s.cmd.Cancel != nil {
			_ = s.cmd.Cancel()
		}
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			err = fmt.Errorf("peers: server %s (pid %d) did not exit within %s", s.URL, s.cmd.Process.Pid, stopTimeout)
		}
	})
	return err
}

// StartEverything starts @modelcontextprotocol/server-everything under Node 22
// with transport "streamableHttp" (URL .../mcp) or "sse" (URL .../sse, the
// older HTTP+SSE transport; messages go to /message) on a free port of
// 127.0.0.1, and waits (bounded by [StartTimeout]) until it accepts
// connections.
//
// The package takes its port from the PORT environment variable and listens
// on every interface; a preload (listen_loopback.cjs) makes it bind
// 127.0.0.1 only. The server is killed when ctx is done or Stop is called.
func (p *Peers) StartEverything(ctx context.Context, transport string) (*Server, error) {
	var path string
	switch transport {
	case "streamableHttp":
		path = "/mcp"
	case "sse":
		path = "/sse"
	default:
		return nil, fmt.Errorf("peers: server-everything transport %q: want streamableHttp or sse", transport)
	}
	preload := filepath.Join(p.Dir, "node_modules", loopbackPreload)
	return startHTTP(ctx, path, func(addr string) *exec.Cmd {
		_, port, _ := net.SplitHostPort(addr)
		cmd := p.nodeCommand(ctx, []string{"--require", preload}, "mcp-server-everything", transport)
		cmd.Env = append(cmd.Env, "PORT="+port)
		return cmd
	})
}

// BuildEverythingServer builds go-sdk's conformance fixture
// (`go build -o OUTDIR/everything-server` of [EverythingServerPackage], run
// in the main module so go.mod pins its version) and returns the binary's
// path. The go build cache makes a second build cheap.
func BuildEverythingServer(ctx context.Context, outDir string) (string, error) {
	dir, err := e2eDir()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("peers: go is needed to build %s: %w", EverythingServerPackage, err)
	}
	out := filepath.Join(outDir, "everything-server")
	if !filepath.IsAbs(out) {
		if out, err = filepath.Abs(out); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, EverythingServerPackage)
	cmd.Dir = (&Peers{Dir: dir}).moduleRoot()
	setProcessGroup(cmd)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("peers: go build %s: %w\n%s", EverythingServerPackage, err, b)
	}
	return out, nil
}

// StartEverythingServer starts go-sdk's conformance fixture (bin, from
// [BuildEverythingServer]) with `-http 127.0.0.1:PORT` on a free port and
// `-stateless=false` unless stateless is true, and waits (bounded by
// [StartTimeout]) until it accepts connections. Stateful serves the
// 2025-era session lifecycle (conformance --requirements 2025-11-25),
// stateless the 2026-07-28 one. The fixture answers on every path; URL ends
// in /mcp. It is killed when ctx is done or Stop is called.
func StartEverythingServer(ctx context.Context, bin string, stateless bool) (*Server, error) {
	return startHTTP(ctx, "/mcp", func(addr string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "-http", addr, "-stateless="+strconv.FormatBool(stateless))
		setProcessGroup(cmd)
		return cmd
	})
}

// EverythingServerStdio returns the command line of go-sdk's conformance
// fixture over stdio (always the stateful, 2025-era lifecycle).
func EverythingServerStdio(bin string) *StdioCommand {
	return &StdioCommand{Command: bin}
}

// startHTTP picks a free port, starts the command that newCmd makes for
// 127.0.0.1:PORT and waits until the port accepts connections. A server that
// exits before that (someone else took the port meanwhile) is retried on
// another port, three times in all.
func startHTTP(ctx context.Context, path string, newCmd func(addr string) *exec.Cmd) (*Server, error) {
	var errs []error
	for range 3 {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		s := &Server{URL: "http://" + addr + path, Addr: addr, out: &syncbuf.Buffer{}, done: make(chan struct{})}
		s.cmd = newCmd(addr)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("peers: start %s: %w", s.cmd.Path, err)
		}
		go func() {
			_ = s.cmd.Wait()
			close(s.done)
		}()
		err = waitListening(ctx, addr, s.done)
		if err == nil {
			return s, nil
		}
		stopErr := s.Stop()
		errs = append(errs, fmt.Errorf("%s: %w\n%s", strings.Join(s.cmd.Args, " "), errors.Join(err, stopErr), s.Output()))
		if !errors.Is(err, errExited) || ctx.Err() != nil {
			break
		}
		// It may have lost the port to another process: try another.
	}
	return nil, fmt.Errorf("peers: server did not start: %w", errors.Join(errs...))
}

var errExited = errors.New("exited before accepting connections")

// waitListening dials addr until it accepts, the process exits (done is
// closed), ctx is done or StartTimeout passes.
func waitListening(ctx context.Context, addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(StartTimeout)
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errExited
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %s", StartTimeout)
		}
	}
}

// FreeAddr returns 127.0.0.1:PORT for a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("peers: free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// Inspector returns a command that runs @modelcontextprotocol/inspector-cli
// in CLI mode under Node 22: `mcp-inspector-cli --cli ARGS...`, for example
//
//	p.Inspector(ctx, srv.URL, "--transport", "http", "--method", "tools/list")
//	p.Inspector(ctx, p.Node, entry, "stdio", "--method", "tools/list") // a stdio server
//
// It prints the result as JSON on stdout (and a deprecation notice on
// stderr). The command runs in node_modules: the CLI looks for
// ../package.json relative to its working directory but imports it relative
// to its own file, so it fails when run from test/e2e itself.
func (p *Peers) Inspector(ctx context.Context, args ...string) *exec.Cmd {
	cmd := p.Command(ctx, "mcp-inspector-cli", append([]string{"--cli"}, args...)...)
	cmd.Dir = filepath.Join(p.Dir, "node_modules")
	return cmd
}
