//go:build !linux

package upstream

import "syscall"

// childAttr puts a stdio child in a process group of its own.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
