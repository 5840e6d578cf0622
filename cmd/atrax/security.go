package main

import (
	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/edge"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
)

// withTLS fills in the TLS configs of the parts cmd runs from the config
// (tls, controlPlane.tls, what an edge trusts and presents when it dials
// the control plane, and the CAs both trust for the OAuth authorization
// server). Errors name the key at fault. The configs follow renewals of
// their files and log them with the parts' loggers.
func withTLS(cmd string, cp *controlplane.Options, e *edge.Options) error {
	var err error
	if cmd != "edge" {
		if cp.TLS, err = tlsconf.ControlPlane(cp.Config, &tlsconf.Options{Logger: cp.Logger}); err != nil {
			return err
		}
		if cp.OAuthTLS, err = tlsconf.OAuth(cp.Config); err != nil {
			return err
		}
	}
	if cmd != "controlplane" {
		eopts := &tlsconf.Options{Logger: e.Logger}
		if e.TLS, err = tlsconf.Edge(e.Config, eopts); err != nil {
			return err
		}
		if e.ControlPlaneTLS, err = tlsconf.EdgeClient(e.Config, cmd == "serve", eopts); err != nil {
			return err
		}
		if e.OAuthTLS, err = tlsconf.OAuth(e.Config); err != nil {
			return err
		}
	}
	return nil
}

// developmentMode reports whether the environment asks for development
// mode: ATRAX_ENV=development, or, when ATRAX_ENV is unset,
// NODE_ENV=development as the seed's documentation has it. It makes the edge serve /debug/* on a loopback
// listener.
func developmentMode(getenv func(string) string) bool {
	if v := getenv("ATRAX_ENV"); v != "" {
		return v == "development" // Atrax's own variable decides
	}
	return getenv("NODE_ENV") == "development"
}
