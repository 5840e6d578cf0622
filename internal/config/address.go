package config

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// checkHost accepts an IP address or a host name: what a listener can bind.
func checkHost(host string) error {
	if host == "" {
		return errors.New(`must not be empty (use "0.0.0.0" to listen on every interface)`)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostName(host) {
		return errors.New(`must be an IP address or a host name such as "localhost"`)
	}
	return nil
}

// validHostName reports whether s is a DNS name: dot-separated labels of
// letters, digits, "-" and "_", each 1 to 63 characters, 253 in all.
func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// checkAddress accepts host:port with a port from 0 (the OS picks one) to
// 65535. The host may
// be empty (every interface), as net.Listen allows.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New(`must be host:port, such as "127.0.0.1:4001"`)
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			return errors.New(`host must be an IP address or a host name, such as "127.0.0.1:4001"`)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number between 0 and 65535")
	}
	return nil
}

// isLoopbackHost reports whether host only ever means this machine:
// "localhost", 127.0.0.0/8 or ::1. Auth "none" is allowed only there.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// isLoopbackAddress is isLoopbackHost for a host:port. An empty host means
// every interface, which is not loopback.
func isLoopbackAddress(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}
