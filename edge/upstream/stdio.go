package upstream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// safeEnv are the variables a stdio child inherits from the edge: enough to
// find and run programs, nothing that could carry the gateway's secrets.
var safeEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM", "SYSTEMROOT"}

// stopGrace is how long a child gets between each step of the spec's stdio
// shutdown: close stdin, wait, SIGTERM, wait, SIGKILL.
const stopGrace = 2 * time.Second

// stdioConn runs a child process in its own process group and speaks
// newline-delimited JSON-RPC on its stdin and stdout (go-sdk's framing).
type stdioConn struct {
	*lineConn
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	waited chan struct{}
	werr   error
	once   sync.Once
	cerr   error
}

// startStdio starts the child. Its stderr is logged line by line.
func startStdio(s *Spec, maxMessage int, log *slog.Logger) (*stdioConn, error) {
	cmd := exec.Command(s.Command, s.Args...)
	cmd.Dir = s.Cwd
	cmd.Env = childEnv(s.Env)
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", s.Command, err)
	}
	c := &stdioConn{cmd: cmd, stdin: stdin, waited: make(chan struct{})}
	go logLines(stderr, log.With("stream", "stderr"))
	go func() {
		c.werr = cmd.Wait()
		close(c.waited)
	}()
	c.lineConn = newLineConn(stdout, stdin, maxMessage, log)
	return c, nil
}

// childEnv is the safe base plus the configured variables.
func childEnv(env map[string]string) []string {
	var out []string
	for _, k := range safeEnv {
		if v, ok := os.LookupEnv(k); ok {
			if _, overridden := env[k]; !overridden {
				out = append(out, k+"="+v)
			}
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// Close ends the child as the spec's stdio shutdown says: close stdin, wait
// for it to exit, then SIGTERM, then SIGKILL — each to the whole process
// group, so that no grandchild is left behind.
func (c *stdioConn) Close() error {
	c.once.Do(func() {
		c.lineConn.Close()
		pgid := c.cmd.Process.Pid
		for _, sig := range []syscall.Signal{0, syscall.SIGTERM, syscall.SIGKILL} {
			if sig != 0 {
				_ = syscall.Kill(-pgid, sig)
			}
			select {
			case <-c.waited:
				// The leader is gone; make sure its group is too.
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				return
			case <-time.After(stopGrace):
			}
		}
		<-c.waited
	})
	return c.cerr
}

// Exited is closed when the child has exited.
func (c *stdioConn) Exited() <-chan struct{} { return c.waited }

// ExitErr describes how the child exited.
func (c *stdioConn) ExitErr() error {
	select {
	case <-c.waited:
		if c.werr == nil {
			return errors.New("child exited")
		}
		return fmt.Errorf("child exited: %w", c.werr)
	default:
		return nil
	}
}
