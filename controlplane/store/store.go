// Package store declares where the control plane keeps what must survive a
// restart: the server registry, signing and seal keys, revocations and the
// audit log. Implementations live in subpackages (boltstore, one file on
// disk, the default; etcdstore, an etcd cluster several control planes
// share); the registry and issuer see only these interfaces.
//
// A store that several control planes share also implements Watcher (each
// replica learns of the others' writes), Conditional (writes that must not
// overwrite what another replica wrote since) and Elector (work done once
// per fleet).
package store

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Sentinel errors; implementations wrap them with %w.
var (
	// ErrNotFound means the named record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew means the store was written by a newer Atrax whose
	// schema this binary does not know.
	ErrSchemaTooNew = errors.New("store schema is newer than this binary supports")
	// ErrInvalidCursor means an audit cursor did not come from ListAudit.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrConflict means a conditional write found that another writer
	// changed what it depends on; nothing was written.
	ErrConflict = errors.New("changed by another writer")
	// ErrUnavailable means a shared store could not be reached in time;
	// the operation may or may not have taken effect.
	ErrUnavailable = errors.New("store unavailable")
)

// Store is durable state. Every write is durable before it returns and bumps
// the store's revision, a counter that only grows (also across restarts), so
// that snapshots built from the store carry increasing versions.
//
// Implementations are safe for concurrent use.
type Store interface {
	// Revision returns the current revision.
	Revision(ctx context.Context) (int64, error)

	// ListServers returns every server, ordered by name.
	ListServers(ctx context.Context) ([]*atraxv1.Server, error)
	// GetServer returns one server or ErrNotFound.
	GetServer(ctx context.Context, name string) (*atraxv1.Server, error)
	// PutServers creates or replaces the given servers and deletes the named
	// ones, all in one transaction, and returns the new revision. Deleting a
	// name that does not exist is ErrNotFound and nothing is written.
	PutServers(ctx context.Context, put []*atraxv1.Server, del []string) (int64, error)

	// SigningKeys returns every stored signing key, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// PutSigningKey stores a key (replacing one with the same ID).
	PutSigningKey(ctx context.Context, k SigningKey) (int64, error)
	// DeleteSigningKey removes a key; ErrNotFound when absent.
	DeleteSigningKey(ctx context.Context, id string) (int64, error)
	// SealKeys returns every stored seal key, oldest first.
	SealKeys(ctx context.Context) ([]SealKey, error)
	// PutSealKey stores a seal key (replacing one with the same ID).
	PutSealKey(ctx context.Context, k SealKey) (int64, error)

	// Revoke records that the token jti is revoked until expires.
	Revoke(ctx context.Context, jti string, expires time.Time) (int64, error)
	// Revocations returns every revocation, jti to expiry.
	Revocations(ctx context.Context) (map[string]time.Time, error)
	// PruneRevocations deletes revocations that expired before now and
	// returns how many it deleted (the revision changes only when some were).
	PruneRevocations(ctx context.Context, now time.Time) (int, int64, error)

	// AppendAudit adds events to the audit log. Events without an ID get one.
	// Appending does not change the revision.
	AppendAudit(ctx context.Context, events []*atraxv1.AuditEvent) error
	// ListAudit returns events newest first, filtered, at most q.Limit of
	// them, and a cursor for the next page ("" on the last page).
	ListAudit(ctx context.Context, q AuditQuery) ([]*atraxv1.AuditEvent, string, error)

	// Close releases the store. It is safe to call more than once.
	Close() error
}

// SigningKey is an Ed25519 key that signs issued tokens.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
	Created time.Time
}

// Public returns the key's public half.
func (k SigningKey) Public() ed25519.PublicKey {
	return k.Private.Public().(ed25519.PublicKey)
}

// SealKey is a 32-byte key for authenticated encryption of state handed to
// clients.
type SealKey struct {
	ID      string
	Key     []byte
	Created time.Time
}

// AuditQuery filters ListAudit. Zero fields match everything.
type AuditQuery struct {
	Limit   int    // at most this many; implementations cap it at 1000
	Cursor  string // from the previous page
	Actor   string
	Action  string
	Server  string
	Tool    string
	Outcome string
	Since   time.Time // inclusive
	Until   time.Time // exclusive
}

// Event is one write to a shared store, as Watch reports it.
type Event struct {
	// Revision is the store's revision after the write.
	Revision int64
	// Reset means the history before Revision could not be replayed (the
	// watch started too far back, or the store compacted it): Servers is
	// then the whole registry at Revision, and keys and revocations may
	// have changed in any way.
	Reset bool
	// Servers are the servers the write created or replaced (every server,
	// on a Reset).
	Servers []*atraxv1.Server
	// Deleted names the servers the write deleted.
	Deleted []string
	// Keys reports that signing or seal keys changed.
	Keys bool
	// Revocations reports that revocations changed.
	Revocations bool
}

// Watcher is implemented by a store that several control planes share: each
// learns of the writes of the others by watching it.
type Watcher interface {
	// Watch sends every write after revision from, in order, one Event per
	// revision, until ctx ends; then it closes the channel. It survives
	// reconnections without losing a write; when the writes after from can
	// no longer be replayed it sends a Reset event and goes on from there.
	// Audit appends are not reported.
	Watch(ctx context.Context, from int64) (<-chan Event, error)
}

// Conditional is implemented by a store that several control planes write
// at once. Its writes succeed only if what the writer last read still holds,
// so that two replicas cannot both create the same server or both create a
// first key.
type Conditional interface {
	// PutServersIf is PutServers done only when no server was written
	// after revision since; otherwise it writes nothing and returns an
	// error wrapping ErrConflict.
	PutServersIf(ctx context.Context, since int64, put []*atraxv1.Server, del []string) (int64, error)
	// PutFirstSigningKey stores k only when the store holds no signing
	// key, and reports whether it did.
	PutFirstSigningKey(ctx context.Context, k SigningKey) (stored bool, rev int64, err error)
	// PutFirstSealKey stores k only when the store holds no seal key, and
	// reports whether it did.
	PutFirstSealKey(ctx context.Context, k SealKey) (stored bool, rev int64, err error)
}

// Elector is implemented by a store that several control planes share, so
// that work meant to run once per fleet (pruning revocations) runs on one
// replica at a time.
type Elector interface {
	// Elect blocks until this process leads the replicas sharing the store,
	// or ctx ends (then it returns ctx's error). The returned context ends
	// when the leadership is lost or ctx ends; resign gives it up at once
	// and must be called when the leader's work is done.
	Elect(ctx context.Context) (leading context.Context, resign func(), err error)
}
