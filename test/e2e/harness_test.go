package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailscale/hujson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
)

// Bounds on every wait in this package.
const (
	startTimeout = 30 * time.Second // until a process logs that it serves
	stopTimeout  = 15 * time.Second // from SIGTERM until the process exits
	callTimeout  = 15 * time.Second // one HTTP or gRPC call, one grpcurl run
	pollTimeout  = 20 * time.Second // waiting for a state to propagate
)

// proc is a running atrax process.
type proc struct {
	t    testing.TB
	Mode string
	// Dir holds the config file and, unless the config names another, the
	// data directory.
	Dir        string
	ConfigPath string
	// HTTP is the edge's public base URL (http://127.0.0.1:PORT); empty in
	// controlplane mode.
	HTTP string
	// GRPC is the control plane's gRPC address (127.0.0.1:PORT); empty in
	// edge mode.
	GRPC string
	// EdgeID is the edge's id from its "edge serving" line.
	EdgeID string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, set before done closes
	stdout  bytes.Buffer

	mu      sync.Mutex
	lines   []string         // every stderr line
	logs    []map[string]any // the lines that parse as JSON objects
	partial []byte
	changed chan struct{} // closed and replaced on every new line
}

// startAtrax starts `atrax MODE -f CONFIG` in a new temporary directory.
// cfg is JWCC text; see startAtraxIn for what the harness adds to it.
func startAtrax(t testing.TB, mode, cfg string, env map[string]string) *proc {
	t.Helper()
	return startAtraxIn(t, t.TempDir(), mode, cfg, env)
}

// startAtraxIn starts `atrax MODE -f DIR/atrax.json` with cfg written there.
// Unless cfg sets them, "port" is 0, "controlPlane.address" is
// "127.0.0.1:0" and "dataDir" is DIR/data (unless cfg names a "store"), so
// the OS picks the ports and a second start in the same DIR finds the same
// store. The process gets env
// plus PATH and HOME, nothing else of the test's environment. startAtraxIn
// returns once the process serves (and, with an edge, has applied its first
// snapshot); the process is killed when the test ends.
func startAtraxIn(t testing.TB, dir, mode, cfg string, env map[string]string) *proc {
	t.Helper()
	p := launchAtrax(t, dir, mode, cfg, env)
	switch mode {
	case "serve", "controlplane":
		m := p.waitLog("control plane serving", startTimeout)
		p.GRPC = str(m["address"])
	}
	switch mode {
	case "serve", "edge":
		m := p.waitLog("edge serving", startTimeout)
		p.HTTP = "http://" + str(m["address"])
		p.EdgeID = str(m["edge_id"])
		// Until its first snapshot an edge knows no signing keys.
		p.waitLog("snapshot applied", startTimeout)
	}
	return p
}

// launchAtrax writes cfg to DIR and starts `atrax MODE` on it, without
// waiting for anything; the process is killed when the test ends, and its
// stderr shown if the test failed.
func launchAtrax(t testing.TB, dir, mode, cfg string, env map[string]string) *proc {
	t.Helper()
	path := writeConfig(t, dir, cfg)
	p := &proc{t: t, Mode: mode, Dir: dir, ConfigPath: path, done: make(chan struct{}), changed: make(chan struct{})}
	p.cmd = exec.Command(atraxBin, mode, "-f", path)
	p.cmd.Dir = dir
	p.cmd.Env = processEnv(env)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = lineWriter{p}
	p.cmd.SysProcAttr = sysProcAttr()
	// A child that keeps stderr open must not hold Wait forever.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start atrax %s: %v", mode, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("atrax %s (%s) stderr:\n%s", mode, dir, p.stderr())
		}
	})
	return p
}

// writeConfig writes cfg, with the harness's defaults, to DIR/atrax.json
// and returns the file's path.
func writeConfig(t testing.TB, dir, cfg string) string {
	t.Helper()
	path := filepath.Join(dir, "atrax.json")
	if err := os.WriteFile(path, []byte(withDefaults(t, cfg, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withDefaults adds the harness's port, control plane address and data
// directory to cfg where cfg does not set them, keeping its comments.
func withDefaults(t testing.TB, cfg, dir string) string {
	t.Helper()
	v, err := hujson.Parse([]byte(cfg))
	if err != nil {
		t.Fatalf("test config is not JWCC: %v\n%s", err, cfg)
	}
	var ops []map[string]any
	add := func(path string, value any) {
		ops = append(ops, map[string]any{"op": "add", "path": path, "value": value})
	}
	if v.Find("/port") == nil {
		add("/port", 0)
	}
	switch {
	case v.Find("/controlPlane") == nil:
		add("/controlPlane", map[string]any{"address": "127.0.0.1:0"})
	case v.Find("/controlPlane/address") == nil:
		add("/controlPlane/address", "127.0.0.1:0")
	}
	if v.Find("/dataDir") == nil && v.Find("/store") == nil {
		add("/dataDir", filepath.Join(dir, "data"))
	}
	if len(ops) > 0 {
		patch, _ := json.Marshal(ops)
		if err := v.Patch(patch); err != nil {
			t.Fatalf("add harness defaults to the test config: %v", err)
		}
	}
	return v.String()
}

// processEnv is env plus PATH and HOME from the test's environment.
func processEnv(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// lineWriter splits the process's stderr into lines.
type lineWriter struct{ p *proc }

func (w lineWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		p.lines = append(p.lines, line)
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			p.logs = append(p.logs, m)
		}
		close(p.changed)
		p.changed = make(chan struct{})
	}
	return len(b), nil
}

// Logs returns the JSON log lines so far.
func (p *proc) Logs() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.logs...)
}

// Lines returns every stderr line so far, JSON or not.
func (p *proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n") + string(p.partial)
}

// waitLog waits, at most timeout, for a log line whose msg is msg, and
// returns it. It fails the test if none comes or the process exits first.
func (p *proc) waitLog(msg string, timeout time.Duration) map[string]any {
	p.t.Helper()
	m, err := p.waitLogFrom(0, func(m map[string]any) bool { return m["msg"] == msg }, timeout)
	if err != nil {
		p.t.Fatalf("atrax %s: waiting for log %q: %v\nstderr:\n%s", p.Mode, msg, err, p.stderr())
	}
	return m
}

// waitLogFrom waits for a log line at index from or later that match accepts.
// match sees every line again each time a new one comes: it must not count
// calls to itself.
func (p *proc) waitLogFrom(from int, match func(map[string]any) bool, timeout time.Duration) (map[string]any, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i := from; i < len(p.logs); i++ {
			if match(p.logs[i]) {
				m := p.logs[i]
				p.mu.Unlock()
				return m, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.done:
			// Wait returns only after stderr is copied, so one more scan
			// sees every line the process wrote.
			p.mu.Lock()
			logs := p.logs[from:]
			p.mu.Unlock()
			for _, m := range logs {
				if match(m) {
					return m, nil
				}
			}
			return nil, fmt.Errorf("the process exited (%v)", p.waitErr)
		case <-deadline.C:
			return nil, fmt.Errorf("not logged within %v", timeout)
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit (status 0). A process still
// running after stopTimeout is killed and the test fails.
func (p *proc) Stop() {
	p.t.Helper()
	select {
	case <-p.done:
		p.t.Fatalf("atrax %s had already exited (%v) before Stop", p.Mode, p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.kill()
		p.t.Fatalf("atrax %s did not exit within %v of SIGTERM; killed", p.Mode, stopTimeout)
	}
	if p.waitErr != nil {
		p.t.Fatalf("atrax %s exited after SIGTERM with %v; want a clean exit (status 0)\nstderr:\n%s", p.Mode, p.waitErr, p.stderr())
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *proc) Kill() {
	p.t.Helper()
	if !p.kill() {
		p.t.Fatalf("atrax %s did not go within %v of SIGKILL", p.Mode, stopTimeout)
	}
}

func (p *proc) kill() bool {
	select {
	case <-p.done:
		return true
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return true
	case <-time.After(stopTimeout):
		return false
	}
}

// checkLogsFree fails the test if any of secrets appears in the
// process's stderr.
func (p *proc) checkLogsFree(t testing.TB, secrets ...string) {
	t.Helper()
	all := p.stderr()
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("atrax %s logged a secret (%.12s...)", p.Mode, s)
		}
	}
}

// runAtrax runs the binary to completion (bounded) and returns its output
// and exit code.
func runAtrax(t testing.TB, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, atraxBin, args...)
	cmd.Env = processEnv(env)
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("atrax %s: still running after %v; killed\nstderr:\n%s", strings.Join(args, " "), startTimeout, errb.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("atrax %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// grpcurl runs the grpcurl binary (bounded) and returns what it printed.
func grpcurl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, grpcurlBin, append([]string{"-max-time", "10"}, args...)...)
	cmd.Env = processEnv(nil)
	cmd.SysProcAttr = sysProcAttr()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// grpcurlJSON runs grpcurl, fails the test unless it succeeds, and decodes
// its JSON output.
func grpcurlJSON(t testing.TB, args ...string) map[string]any {
	t.Helper()
	out, errOut, err := grpcurl(t, args...)
	if err != nil {
		t.Fatalf("grpcurl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("grpcurl %s: output is not a JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

var httpClient = &http.Client{Timeout: callTimeout}

// httpDo sends one request. A non-empty token goes in Authorization:
// Bearer. A non-empty body is sent as JSON unless headers (name, value
// pairs) set Content-Type.
func httpDo(t testing.TB, method, url, token, body string, headers ...string) *response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mustStatus sends a request and fails the test unless it gets want.
func mustStatus(t testing.TB, want int, method, url, token, body string, headers ...string) *response {
	t.Helper()
	r := httpDo(t, method, url, token, body, headers...)
	if r.Status != want {
		t.Fatalf("%s %s: got status %d, want %d; body: %s", method, url, r.Status, want, r.Body)
	}
	return r
}

// poll calls cond until it returns true or timeout passes; it reports
// whether cond ever held.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialGRPC returns a client connection to addr, closed when the test ends.
func dialGRPC(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// withToken returns a bounded context carrying token as bearer metadata
// (none when token is empty).
func withToken(t testing.TB, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// signingKey is a key the test put into a store before atrax opened it, so
// atrax trusts (and signs with) it and the test can sign any claims.
type signingKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// seedSigningKey stores a new Ed25519 signing key in the store file of
// dataDir, which atrax must not have open.
func seedSigningKey(t testing.TB, dataDir string) signingKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	k := signingKey{ID: "e2e-" + hex.EncodeToString(b), Private: priv}
	st, err := boltstore.Open(filepath.Join(dataDir, "atrax.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := st.PutSigningKey(ctx, store.SigningKey{ID: k.ID, Private: priv, Created: time.Now()}); err != nil {
		t.Fatalf("put signing key: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	return k
}

// str returns v as a string, "" when it is not one.
func str(v any) string {
	s, _ := v.(string)
	return s
}
