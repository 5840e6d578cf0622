package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore"
	"github.com/atrax-mcp/atrax/internal/config"
)

// MigrateOptions configure MigrateStore.
type MigrateOptions struct {
	// FromDataDir is the data directory of the embedded store to copy:
	// the dataDir of the machine's config.
	FromDataDir string
	// Config names the etcd store to copy it to (store.etcd), and its
	// credentials.
	Config *config.Config
	// Logger receives the stores' open and close events; nil discards
	// them.
	Logger *slog.Logger
}

// Migrated is what MigrateStore copied, from where to where.
type Migrated struct {
	From string // the data file
	To   string // "etcd PREFIX"
	etcdstore.Imported
}

// MigrateStore copies the embedded store of one machine (FromDataDir) into
// the empty etcd prefix that Config's store.etcd names, for a move to a
// fleet: the servers added through the API, the signing and seal keys
// (tokens issued before stay valid), the revocations and the audit log.
// The control plane of the machine must be stopped (it holds the data
// file's lock). The copy is whole or nothing: see etcdstore.Import. Its
// errors say what to do next.
func MigrateStore(ctx context.Context, opts MigrateOptions) (Migrated, error) {
	cfg := opts.Config
	if cfg == nil || cfg.Store.Etcd == nil {
		file := "the config"
		if cfg != nil && cfg.Path != "" {
			file = cfg.Path
		}
		return Migrated{}, fmt.Errorf("%s has no store.etcd: name there the etcd cluster to copy to (endpoints, prefix, TLS, credentials), as the fleet's control planes will use it", file)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := opts.FromDataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	path := filepath.Join(dir, StoreFile)
	out := Migrated{From: path, To: "etcd " + cfg.Store.Etcd.Prefix}
	// boltstore.Open would create a missing file: an empty store to copy.
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("no store in %s (%s does not exist): give the dataDir of the machine's config (\"atrax-data\" beside its config file when it sets none)", dir, StoreFile)
	} else if err != nil {
		return out, fmt.Errorf("read the store: %w", err)
	}
	src, err := boltstore.Open(path, boltstore.Options{Logger: log})
	if errors.Is(err, boltstore.ErrLocked) {
		return out, fmt.Errorf("%s is in use: stop the control plane first (atrax serve or atrax controlplane on that machine), then migrate", path)
	}
	if err != nil {
		return out, err
	}
	defer src.Close()

	eopts, err := etcdOptions(cfg, log)
	if err != nil {
		return out, err
	}
	n, err := etcdstore.Import(ctx, eopts, src)
	prefix := cfg.Store.Etcd.Prefix
	switch {
	case errors.Is(err, etcdstore.ErrNotEmpty):
		return out, fmt.Errorf("%w: the copy goes to an empty prefix only; set store.etcd.prefix to another (such as %s-2), or, if nothing uses this one, delete it (etcdctl del --prefix %s/) and migrate again", err, prefix, prefix)
	case errors.Is(err, store.ErrUnavailable):
		return out, fmt.Errorf("%w: is etcd running, and are store.etcd.endpoints and its credentials right?", err)
	case err != nil:
		return out, err
	}
	out.Imported = n
	return out, nil
}
