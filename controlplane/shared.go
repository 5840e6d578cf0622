package controlplane

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/tlsconf"
)

// openStore opens the store the config names: etcd (store.etcd), which
// several control planes share, or the embedded file under dataDir. It
// also says where the store is, for the log.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, string, error) {
	e := cfg.Store.Etcd
	if e == nil {
		dataDir := cfg.DataDirPath()
		st, err := boltstore.Open(filepath.Join(dataDir, StoreFile), boltstore.Options{Logger: log})
		if err != nil {
			return nil, "", err
		}
		return st, dataDir, nil
	}
	opts, err := etcdOptions(cfg, log)
	if err != nil {
		return nil, "", err
	}
	st, err := etcdstore.Open(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	return st, "etcd " + e.Prefix, nil
}

// etcdOptions are the etcdstore options of store.etcd, which cfg must set,
// its TLS files read.
func etcdOptions(cfg *config.Config, log *slog.Logger) (etcdstore.Options, error) {
	e := cfg.Store.Etcd
	tlsConfig, err := tlsconf.Etcd(cfg, &tlsconf.Options{Logger: log})
	if err != nil {
		return etcdstore.Options{}, err
	}
	return etcdstore.Options{
		Endpoints: e.Endpoints,
		TLS:       tlsConfig,
		Username:  e.Username,
		Password:  e.Password,
		Prefix:    e.Prefix,
		Logger:    log,
	}, nil
}

// shareStore starts, for a store several control planes share, the watch
// that brings the other replicas' writes here and the campaign to lead the
// fleet, both ending with ctx; wg counts them. It reports whether this
// process housekeeps on its own (a store of its own: there is no
// fleet to lead).
func (p *plane) shareStore(ctx context.Context, wg *sync.WaitGroup) (housekeepHere bool) {
	if p.shared != nil {
		wg.Go(func() { p.follow(ctx) })
	}
	el, ok := p.store.(store.Elector)
	if !ok {
		return true
	}
	wg.Go(func() { p.lead(ctx, el) })
	return false
}

// follow applies every write to the shared store, in order, to the
// registry (which tells its watchers) and the issuer (which hands keys and
// revocations to the verifier), then rebuilds the edge snapshot at the
// write's revision. The store's watch resumes by itself after a lost
// connection, and sends the whole state when it cannot.
func (p *plane) follow(ctx context.Context) {
	events, err := p.shared.Watch(ctx, p.applied.Load())
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("watch the store: the other control planes' writes will not reach this one", "err", err)
		}
		return
	}
	for ev := range events {
		p.registry.Apply(ev)
		if ev.Keys || ev.Revocations || ev.Reset {
			if !p.reloadIssuer(ctx) {
				return
			}
		}
		if ev.Revision > p.applied.Load() {
			p.applied.Store(ev.Revision)
		}
		if err := p.snapshots.Rebuild(); err != nil {
			p.log.Error("rebuild edge snapshot", "err", err)
		}
	}
}

// reloadIssuer reads keys and revocations again until it succeeds or ctx
// ends (then it reports false).
func (p *plane) reloadIssuer(ctx context.Context) bool {
	pause := 100 * time.Millisecond
	for {
		err := p.issuer.Reload(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.log.Warn("reload keys and revocations written by another control plane; retrying", "err", err, "retry_in", pause.String())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// lead campaigns to lead the control planes sharing the store and, while
// this one leads, does what must run once per fleet (housekeep) at once
// and every housekeepEvery. Leadership lost (etcd out of
// reach for longer than the election's lease) is campaigned for again.
func (p *plane) lead(ctx context.Context, el store.Elector) {
	for {
		leading, resign, err := el.Elect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("election ended: this control plane no longer campaigns to lead the fleet", "err", err)
			}
			return
		}
		p.log.Info("leading the fleet: this control plane prunes expired revocations and rotates the signing key")
		p.housekeepWhile(leading)
		resign()
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("no longer leading the fleet; campaigning again")
	}
}

// housekeepWhile housekeeps now and every housekeepEvery until ctx ends.
func (p *plane) housekeepWhile(ctx context.Context) {
	ticker := time.NewTicker(housekeepEvery)
	defer ticker.Stop()
	for {
		p.housekeep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// housekeep does what must run once per fleet (or once per control plane
// with a store of its own): it forgets expired revocations and, when
// auth.options.keyRotation says the signing key is due, makes a new one,
// recorded in the audit log as key.rotate by this replica.
func (p *plane) housekeep(ctx context.Context) {
	if err := p.issuer.Prune(ctx); err != nil && ctx.Err() == nil {
		p.log.Error("prune revocations", "err", err)
	}
	rotated, err := p.issuer.RotateIfDue(ctx, p.opts.Config.Auth.KeyRotation)
	if err != nil && ctx.Err() == nil {
		p.log.Error("rotate the signing key", "err", err, "key_rotation", p.opts.Config.Auth.KeyRotation.String())
	}
	if rotated || err != nil && ctx.Err() == nil {
		who := authn.NewContext(ctx, &authn.Principal{Subject: "control-plane:" + p.replica})
		p.audit.Change(who, "key.rotate", "", err)
	}
	if rotated {
		p.log.Info("signing key rotated", "key_rotation", p.opts.Config.Auth.KeyRotation.String())
	}
}
