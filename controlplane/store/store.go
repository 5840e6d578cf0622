// Package store declares where the control plane keeps what must survive a
// restart: the server registry, signing and seal keys, revocations and the
// audit log. Implementations live in subpackages (boltstore, one file on
// disk, the default); the registry and issuer see only this interface.
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
