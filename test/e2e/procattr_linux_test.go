package e2e

import "syscall"

// sysProcAttr makes the kernel kill a child when the test process dies, so
// that no atrax outlives a crashed or killed test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
