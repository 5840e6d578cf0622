package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/atrax-mcp/atrax/internal/config"
)

// StoreCopy is what `atrax store migrate` copied, from where to where.
type StoreCopy struct {
	From        string `json:"from"` // the data file
	To          string `json:"to"`   // "etcd PREFIX"
	Servers     int    `json:"servers"`
	SigningKeys int    `json:"signingKeys"`
	SealKeys    int    `json:"sealKeys"`
	Revocations int    `json:"revocations"`
	AuditEvents int    `json:"auditEvents"`
}

// MigrateStore copies the embedded store under fromDataDir into the etcd
// store that cfg names (cmd/atrax gives controlplane.MigrateStore, which
// this package may not import). Its errors say what to do next.
type MigrateStore func(ctx context.Context, fromDataDir string, cfg *config.Config) (StoreCopy, error)

var storeMigrate = &command{
	name:    "store migrate",
	summary: "copy one machine's store into etcd (servers, keys, revocations, audit log)",
	detail: `
Copies the embedded store under DIR (the dataDir of the machine's config)
into the etcd prefix that CONFIG's store.etcd names: the servers added
through the API, the signing and seal keys (tokens issued before stay
valid), the revocations and the audit log. CONFIG is read as atrax
controlplane reads it, the environment included (ETCD_PASSWORD...).

Stop the machine's control plane first (atrax serve, or atrax controlplane):
it holds the store's lock. The prefix must hold nothing: migrate refuses a
prefix in use. The copy is whole or nothing: control planes refuse the
prefix until it is complete, and a copy that fails is deleted again.

  atrax store migrate --from-data-dir /var/lib/atrax -f fleet.json`,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		path := fs.String("f", "", "the config `FILE` with store.etcd: where to copy to")
		from := fs.String("from-data-dir", "", "the data `DIR` of the store to copy: the dataDir of the machine's config")
		out := addOutputFlag(fs)
		return func(ctx context.Context, _ []string) error {
			if *from == "" {
				return usagef("--from-data-dir DIR is required: the dataDir of the machine's config (\"atrax-data\" beside its config file when it sets none)")
			}
			if *path == "" {
				return usagef("-f CONFIG is required: a config with store.etcd, the etcd cluster the fleet will use")
			}
			if e.migrateStore == nil {
				return errors.New("this atrax binary cannot migrate stores")
			}
			cfg, err := config.Load(*path, config.Options{LookupEnv: e.lookupEnv})
			if err != nil {
				return fmt.Errorf("%s:\n%w", *path, err)
			}
			n, err := e.migrateStore(ctx, *from, cfg)
			if err != nil {
				return err
			}
			if out.json() {
				b, err := json.MarshalIndent(n, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s\n", b)
				return err
			}
			fmt.Fprintf(e.stdout, "Copied %s to %s:\n\n", n.From, n.To)
			t := newTable(e.stdout, "WHAT", "COPIED")
			t.row("servers", strconv.Itoa(n.Servers))
			t.row("signing keys", strconv.Itoa(n.SigningKeys))
			t.row("seal keys", strconv.Itoa(n.SealKeys))
			t.row("revocations", strconv.Itoa(n.Revocations))
			t.row("audit events", strconv.Itoa(n.AuditEvents))
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "\nNext: atrax controlplane -f %s on each replica, then the edges. Keep %s until the fleet serves.\n", *path, n.From)
			return nil
		}
	},
}
