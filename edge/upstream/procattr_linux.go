package upstream

import "syscall"

// childAttr puts a stdio child in a process group of its own (its own
// children end with it, and a signal to the edge's terminal does not reach
// it before the edge shuts it down in order) and has the kernel kill it if
// the edge dies without doing so (kill -9), so that no server outlives its
// gateway.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
