package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/atrax-mcp/atrax/controlplane/store"
)

// importingSchema begins the value of PREFIX/schema while Import copies a
// store under the prefix: Open refuses the prefix until Import writes the
// schema version, last.
const importingSchema = "importing"

// ErrNotEmpty means Import found keys under its prefix.
var ErrNotEmpty = errors.New("already holds data")

// Imported counts what Import copied.
type Imported struct {
	Servers     int
	SigningKeys int
	SealKeys    int
	Revocations int
	AuditEvents int
}

// Import copies what src holds (servers, signing and seal keys,
// revocations and the audit log) under the prefix of opts, for a control
// plane that moves from a store of its own to a fleet's: tokens signed with
// src's keys stay valid on the fleet, and sealed state still opens. The
// prefix must hold no key at all; otherwise Import writes nothing and
// returns an error wrapping ErrNotEmpty. src must not change while Import
// reads it (boltstore: Import's caller holds its file lock).
//
// etcd bounds one transaction, so the copy takes several. The first marks
// the prefix as being imported (PREFIX/schema, which Open refuses), the
// last writes the schema version and the revision keys: a control plane
// sees either the whole copy or a prefix it refuses. When a step fails (or
// ctx ends) Import deletes what it wrote, and says in its error whether
// that failed too.
func Import(ctx context.Context, opts Options, src store.Store) (Imported, error) {
	s, err := connect(ctx, opts)
	if err != nil {
		return Imported{}, err
	}
	defer func() {
		s.cancel()
		s.cli.Close()
	}()
	im := &importer{s: s, schema: s.prefix + "/schema", marker: importingSchema + " " + s.instance}
	if err := im.claim(ctx); err != nil {
		return Imported{}, fmt.Errorf("etcd at %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	n, err := im.copy(ctx, src)
	if err != nil {
		if uerr := im.undo(); uerr != nil {
			return Imported{}, fmt.Errorf("%w; what was copied so far could not be deleted (%v): control planes refuse prefix %s until you delete it (etcdctl del --prefix %s/)", err, uerr, s.prefix, s.prefix)
		}
		return Imported{}, fmt.Errorf("%w (what was copied so far was deleted again: prefix %s holds nothing)", err, s.prefix)
	}
	s.log.Info("store imported", "etcd", strings.Join(opts.Endpoints, ","), "prefix", s.prefix,
		"servers", n.Servers, "signing_keys", n.SigningKeys, "seal_keys", n.SealKeys, "revocations", n.Revocations, "audit_events", n.AuditEvents)
	return n, nil
}

// importer writes one Import's transactions, each on the condition that
// the prefix is still marked as this import's.
type importer struct {
	s      *Store
	schema string // PREFIX/schema
	marker string // its value while this import runs

	ops  []clientv3.Op // waiting for the next transaction
	size int           // of their keys and values
}

// claim marks the prefix as this import's, if it holds no key.
func (im *importer) claim(ctx context.Context) error {
	ctx, end, err := im.s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	all := im.s.prefix + "/"
	resp, err := im.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(all), "=", 0).WithPrefix()).
		Then(clientv3.OpPut(im.schema, im.marker)).
		Else(clientv3.OpGet(all, clientv3.WithPrefix(), clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return im.s.fail(ctx, "check that the prefix is empty", err)
	}
	if !resp.Succeeded {
		n := resp.Responses[0].GetResponseRange().GetCount()
		return fmt.Errorf("prefix %s %w (%d keys)", im.s.prefix, ErrNotEmpty, n)
	}
	return nil
}

// copy writes everything src holds and then the schema version.
func (im *importer) copy(ctx context.Context, src store.Store) (Imported, error) {
	var n Imported
	servers, err := src.ListServers(ctx)
	if err != nil {
		return n, fmt.Errorf("read the servers to copy: %w", err)
	}
	for _, srv := range servers {
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(srv)
		if err != nil {
			return n, fmt.Errorf("encode server %q: %w", srv.GetName(), err)
		}
		if err := im.put(ctx, im.s.key(dirServers+srv.GetName()), v); err != nil {
			return n, err
		}
	}
	n.Servers = len(servers)

	signing, err := src.SigningKeys(ctx)
	if err != nil {
		return n, fmt.Errorf("read the signing keys to copy: %w", err)
	}
	for _, k := range signing {
		v, err := encodeSigningKey(k)
		if err != nil {
			return n, err
		}
		if err := im.put(ctx, im.s.key(dirSigning+k.ID), v); err != nil {
			return n, err
		}
	}
	n.SigningKeys = len(signing)

	seal, err := src.SealKeys(ctx)
	if err != nil {
		return n, fmt.Errorf("read the seal keys to copy: %w", err)
	}
	for _, k := range seal {
		v, err := encodeSealKey(k)
		if err != nil {
			return n, err
		}
		if err := im.put(ctx, im.s.key(dirSeal+k.ID), v); err != nil {
			return n, err
		}
	}
	n.SealKeys = len(seal)

	revoked, err := src.Revocations(ctx)
	if err != nil {
		return n, fmt.Errorf("read the revocations to copy: %w", err)
	}
	for jti, expires := range revoked {
		if err := im.put(ctx, im.s.key(dirRevoked+jti), []byte(expires.UTC().Format(time.RFC3339Nano))); err != nil {
			return n, err
		}
	}
	n.Revocations = len(revoked)

	// The log comes newest first: sequence numbers count down, so that
	// events of one nanosecond keep their order.
	seq := uint64(math.MaxInt64)
	now := time.Now()
	for cursor := ""; ; {
		page, next, err := src.ListAudit(ctx, store.AuditQuery{Limit: maxAuditLimit, Cursor: cursor})
		if err != nil {
			return n, fmt.Errorf("read the audit log to copy: %w", err)
		}
		for i, ev := range page {
			nanos, v, err := store.EncodeAudit(i, ev, now)
			if err != nil {
				return n, err
			}
			if err := im.put(ctx, im.s.auditKey(nanos, seq), v); err != nil {
				return n, err
			}
			seq--
			n.AuditEvents++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if err := im.flush(ctx); err != nil {
		return n, err
	}

	// Last, what makes the prefix a store: the schema version and the
	// revision keys.
	return n, im.txn(ctx, "finish the copy",
		clientv3.OpPut(im.schema, strconv.Itoa(SchemaVersion)),
		clientv3.OpPut(im.s.key(keyRev), ""),
		clientv3.OpPut(im.s.key(keyServersRev), ""))
}

// put adds a key to the next transaction, writing the pending ones first
// when it would grow past etcd's bounds.
func (im *importer) put(ctx context.Context, key string, value []byte) error {
	size := len(key) + len(value)
	if len(im.ops) == maxOps || (len(im.ops) > 0 && im.size+size > maxAuditBytes) {
		if err := im.flush(ctx); err != nil {
			return err
		}
	}
	im.ops = append(im.ops, clientv3.OpPut(key, string(value)))
	im.size += size
	return nil
}

// flush writes the pending keys.
func (im *importer) flush(ctx context.Context) error {
	if len(im.ops) == 0 {
		return nil
	}
	err := im.txn(ctx, "copy into etcd", im.ops...)
	im.ops, im.size = nil, 0
	return err
}

// txn commits ops if the prefix is still marked as this import's.
func (im *importer) txn(ctx context.Context, what string, ops ...clientv3.Op) error {
	ctx, end, err := im.s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	resp, err := im.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(im.schema), "=", im.marker)).Then(ops...).Commit()
	if err != nil {
		return im.s.fail(ctx, what, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s: %s changed while the copy ran: another process writes under prefix %s", what, im.schema, im.s.prefix)
	}
	return nil
}

// undo deletes every key under the prefix while it is still marked as
// this import's, within the timeout whatever became of the import's ctx.
func (im *importer) undo() error {
	ctx, cancel := context.WithTimeout(context.Background(), im.s.timeout)
	defer cancel()
	resp, err := im.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(im.schema), "=", im.marker)).
		Then(clientv3.OpDelete(im.s.prefix+"/", clientv3.WithPrefix())).
		Commit()
	if err != nil {
		return im.s.fail(ctx, "delete the partial copy", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s changed while the copy ran: another process writes under the prefix", im.schema)
	}
	return nil
}
