package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
)

var configValidate = &command{
	name:    "config validate",
	summary: "check a config file and exit",
	detail: `
Every problem is reported at once, one per line, with its key path. The
environment is read as atrax serve would read it: an unset ${VAR} is an
error unless it has a default or its server is disabled. The TLS files the
config names (tls, controlPlane.tls, controlPlane.ca, controlPlane.clientCert
and clientKey, auth.options.ca) are read and checked as atrax serve reads
them: each must be readable PEM, each key must belong to its certificate,
and each certificate must be valid now.`,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		path := fs.String("f", "", "the config `FILE` (JSON with comments)")
		return func(context.Context, []string) error {
			if *path == "" {
				return usagef("-f CONFIG is required (see examples/atrax.json, or write one with `atrax init`)")
			}
			cfg, err := config.Load(*path, config.Options{LookupEnv: e.lookupEnv})
			if err != nil {
				return fmt.Errorf("%s:\n%w", *path, err)
			}
			checked, err := checkTLS(cfg)
			if err != nil {
				return fmt.Errorf("%s:\n%w", *path, err)
			}
			fmt.Fprintf(e.stdout, "%s: ok (%d servers, auth %s)\n", *path, len(cfg.Servers), cfg.Auth.Type)
			if len(checked) > 0 {
				fmt.Fprintf(e.stdout, "TLS files read and checked: %s\n", strings.Join(checked, ", "))
			}
			// A control plane that requires client certificates, and no
			// certificate for the edge of atrax serve: fine for atrax
			// controlplane alone.
			if _, err := tlsconf.EdgeClient(cfg, true, nil); err != nil {
				fmt.Fprintf(e.stdout, "note: atrax serve would refuse this config (atrax controlplane would not): %v\n", err)
			}
			return nil
		}
	},
}

// checkTLS reads the TLS files of cfg with internal/tlsconf, as the
// server commands do, and returns the keys it checked, or every problem.
func checkTLS(cfg *config.Config) (checked []string, err error) {
	var errs []error
	if _, err := tlsconf.Edge(cfg, nil); err != nil {
		errs = append(errs, err)
	} else if cfg.TLS != nil {
		checked = append(checked, tlsconf.KeyEdge)
	}
	if _, err := tlsconf.ControlPlane(cfg, nil); err != nil {
		errs = append(errs, err)
	} else if cfg.ControlPlane.TLS != nil {
		checked = append(checked, tlsconf.KeyControlPlane)
	}
	if _, err := tlsconf.Etcd(cfg, nil); err != nil {
		errs = append(errs, err)
	} else if e := cfg.Store.Etcd; e != nil && e.TLS != nil {
		checked = append(checked, "store.etcd.tls")
	}
	// As an edge of its own (atrax edge) reads them.
	cp := cfg.ControlPlane
	if _, err := tlsconf.EdgeClient(cfg, false, nil); err != nil {
		errs = append(errs, err)
	} else {
		if cp.CA != "" {
			checked = append(checked, "controlPlane.ca")
		}
		if cp.ClientCert != "" {
			checked = append(checked, "controlPlane.clientCert")
		}
	}
	if c, err := tlsconf.OAuth(cfg); err != nil {
		errs = append(errs, err)
	} else if c != nil {
		checked = append(checked, tlsconf.KeyOAuthCA)
	}
	return checked, errors.Join(errs...)
}
