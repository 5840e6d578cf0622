package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/atrax-mcp/atrax/internal/config"
)

var configValidate = &command{
	name:    "config validate",
	summary: "check a config file and exit",
	detail: `
Every problem is reported at once, one per line, with its key path. The
environment is read as atrax serve would read it: an unset ${VAR} is an
error unless it has a default or its server is disabled.`,
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
			fmt.Fprintf(e.stdout, "%s: ok (%d servers, auth %s)\n", *path, len(cfg.Servers), cfg.Auth.Type)
			return nil
		}
	},
}
