package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Bounds on the waits of the process helpers.
const (
	startTimeout = 60 * time.Second // until a process logs that it serves
	stopTimeout  = 10 * time.Second // from SIGTERM to SIGKILL
)

// proc is a process the benchmark started: its own process group, killed
// with the benchmark (Pdeathsig) even when the benchmark itself is killed.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	logs    []map[string]any
	tail    []string // the last stderr lines, for errors
	partial []byte
	changed chan struct{}
}

// procs holds every process started, so that the benchmark stops them all
// on its way out, Ctrl-C included.
var procs struct {
	mu  sync.Mutex
	all map[*proc]bool
}

// startProc starts path with args and env, stderr parsed as JSON log
// lines.
func startProc(name, path string, args, env []string, dir string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), changed: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = env
	p.cmd.Dir = dir
	p.cmd.Stderr = lineWriter{p}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd.WaitDelay = stopTimeout
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procs.mu.Lock()
	if procs.all == nil {
		procs.all = map[*proc]bool{}
	}
	procs.all[p] = true
	procs.mu.Unlock()
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the process group, then SIGKILL after stopTimeout.
func (p *proc) stop() {
	procs.mu.Lock()
	delete(procs.all, p)
	procs.mu.Unlock()
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived their parent in the group (none should).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// stopAll stops every process still running.
func stopAll() {
	procs.mu.Lock()
	all := make([]*proc, 0, len(procs.all))
	for p := range procs.all {
		all = append(all, p)
	}
	procs.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop()
		}()
	}
	wg.Wait()
}

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
		line := p.partial[:i]
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			// Only the lines the benchmark waits for are kept: a long run
			// must not grow without bound.
			if msg, _ := m["msg"].(string); interesting[msg] {
				p.logs = append(p.logs, m)
			}
		}
		p.tail = append(p.tail, string(line))
		if len(p.tail) > 40 {
			p.tail = p.tail[len(p.tail)-40:]
		}
		p.partial = p.partial[i+1:]
		close(p.changed)
		p.changed = make(chan struct{})
	}
	return len(b), nil
}

// interesting are the log messages waitLog is used for.
var interesting = map[string]bool{
	"edge serving": true, "control plane serving": true, "snapshot applied": true,
	"pprof serving": true, "benchserver serving": true, "upstream running": true,
}

// waitLog waits for a log line whose msg is msg and returns it.
func (p *proc) waitLog(ctx context.Context, msg string, timeout time.Duration) (map[string]any, error) {
	return p.waitLogN(ctx, msg, 1, timeout)
}

// waitLogN waits for the nth log line whose msg is msg and returns it.
func (p *proc) waitLogN(ctx context.Context, msg string, n int, timeout time.Duration) (map[string]any, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		seen := 0
		for _, m := range p.logs {
			if m["msg"] == msg {
				seen++
				if seen == n {
					p.mu.Unlock()
					return m, nil
				}
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.done:
			return nil, fmt.Errorf("%s exited before logging %q:\n%s", p.name, msg, p.stderrTail())
		case <-deadline.C:
			return nil, fmt.Errorf("%s did not log %q within %s:\n%s", p.name, msg, timeout, p.stderrTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *proc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b bytes.Buffer
	for _, l := range p.tail {
		b.WriteString("  ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// startBenchServer starts benchserver -http 127.0.0.1:0 with n servers and
// returns it with its address.
func startBenchServer(ctx context.Context, bin string, n int) (*proc, string, error) {
	p, err := startProc("benchserver", bin, []string{"-http", "127.0.0.1:0", "-servers", fmt.Sprint(n)}, baseEnv(), "")
	if err != nil {
		return nil, "", err
	}
	m, err := p.waitLog(ctx, "benchserver serving", startTimeout)
	if err != nil {
		p.stop()
		return nil, "", err
	}
	addr, _ := m["address"].(string)
	return p, addr, nil
}

// baseEnv is what every child gets of the benchmark's environment.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// stdioProc is a benchserver child spoken to over its stdin and stdout,
// for the direct side of the stdio figures.
type stdioProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lineReader
	done  chan struct{}
	next  int64
	buf   []byte
}

func startStdio(bin string) (*stdioProc, error) {
	cmd := exec.Command(bin)
	cmd.Env = baseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = io.Discard
	cmd.WaitDelay = stopTimeout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &stdioProc{cmd: cmd, stdin: stdin, out: newLineReader(stdout), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// initialize performs the handshake.
func (s *stdioProc) initialize() error {
	if _, err := s.call(context.Background(), "initialize", []byte(initParams)); err != nil {
		return err
	}
	_, err := s.stdin.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"))
	return err
}

// call sends one request and reads lines until its response.
func (s *stdioProc) call(_ context.Context, method string, params []byte) ([]byte, error) {
	s.next++
	s.buf = appendRequest(s.buf[:0], s.next, method, params)
	s.buf = append(s.buf, '\n')
	if _, err := s.stdin.Write(s.buf); err != nil {
		return nil, err
	}
	for {
		line, err := s.out.line()
		if err != nil {
			return nil, err
		}
		if id, ok := responseID(line); ok && id == s.next {
			return line, checkResult(line)
		}
	}
}

func (s *stdioProc) pid() int { return s.cmd.Process.Pid }

// close ends the child as the stdio transport says: stdin closed, then
// signals.
func (s *stdioProc) close() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
		return
	case <-time.After(2 * time.Second):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// lineReader reads newline-terminated lines, reusing its buffer.
type lineReader struct {
	r    io.Reader
	buf  []byte
	head int
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{r: r, buf: make([]byte, 0, 64<<10)} }

// line returns the next line, valid until the next call.
func (l *lineReader) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(l.buf[l.head:], '\n'); i >= 0 {
			line := l.buf[l.head : l.head+i]
			l.head += i + 1
			return line, nil
		}
		if l.head > 0 {
			n := copy(l.buf, l.buf[l.head:])
			l.buf = l.buf[:n]
			l.head = 0
		}
		if len(l.buf) == cap(l.buf) {
			if cap(l.buf) >= 64<<20 {
				return nil, errors.New("line too long")
			}
			nb := make([]byte, len(l.buf), 2*cap(l.buf))
			copy(nb, l.buf)
			l.buf = nb
		}
		n, err := l.r.Read(l.buf[len(l.buf):cap(l.buf)])
		l.buf = l.buf[:len(l.buf)+n]
		if err != nil && n == 0 {
			return nil, err
		}
	}
}
