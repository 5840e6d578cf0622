// Package boltstore keeps the control plane's state in one bbolt file, the
// default store: nothing to install, one writer at a time, every write
// fsynced before it returns.
//
// The file holds six buckets:
//
//	meta          "schema" → uint64, "revision" → int64 (both big-endian)
//	servers       name → proto (deterministic) of atraxv1.Server
//	signing_keys  key ID → JSON {id, private, created}
//	seal_keys     key ID → JSON {id, key, created}
//	revocations   jti → expiry (big-endian Unix seconds, then nanoseconds)
//	audit         big-endian time (ns) + sequence → proto of atraxv1.AuditEvent
//
// A process holds an exclusive lock on the file while it is open, so a second
// atrax on the same file fails at Open instead of corrupting it.
package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// SchemaVersion is the layout of the file this package reads and writes.
// Open refuses a file with a higher version (store.ErrSchemaTooNew).
const SchemaVersion = 1

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Audit page sizes.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store is closed")
	// ErrLocked means another process holds the data file open.
	ErrLocked = errors.New("data file is locked")
)

var (
	bucketMeta        = []byte("meta")
	bucketServers     = []byte("servers")
	bucketSigningKeys = []byte("signing_keys")
	bucketSealKeys    = []byte("seal_keys")
	bucketRevocations = []byte("revocations")
	bucketAudit       = []byte("audit")

	allBuckets = [][]byte{bucketMeta, bucketServers, bucketSigningKeys, bucketSealKeys, bucketRevocations, bucketAudit}

	keySchema   = []byte("schema")
	keyRevision = []byte("revision")
)

// auditKeyLen is the length of an audit key: 8 bytes of time, 8 of sequence.
const auditKeyLen = 16

// Options configures Open. The zero value works.
type Options struct {
	// Logger receives open and close events; nil discards them. Key material
	// is never logged.
	Logger *slog.Logger
	// Timeout bounds the wait for the file lock held by another process;
	// zero means DefaultTimeout.
	Timeout time.Duration
}

// Store is a store.Store in one bbolt file. It is safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger

	mu sync.RWMutex // held for reading by every method, for writing by Close
	db *bolt.DB     // nil once closed
}

var _ store.Store = (*Store)(nil)

// Open opens the data file at path, creating it (0600) and its parent
// directory (0700) when missing. A new file gets the current schema and
// revision 0; an existing one must carry a schema this package knows.
func Open(path string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory of data file %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data file %s is in use by another atrax process (no lock after %v): %w", path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	created, rev, err := initialize(db, path)
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("store opened", "path", path, "schema", SchemaVersion, "revision", rev, "created", created)
	return &Store{path: path, log: log, db: db}, nil
}

// initialize writes the meta of a brand-new file or checks that of an
// existing one. It reports whether the file was new and its revision.
func initialize(db *bolt.DB, path string) (created bool, rev int64, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("data file %s is damaged: bucket %q is missing", path, bucketMeta)
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %q in %s: %w", name, path, err)
				}
			}
			meta = tx.Bucket(bucketMeta)
			if err := meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, SchemaVersion)); err != nil {
				return err
			}
			if err := meta.Put(keyRevision, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
				return err
			}
			created = true
			return nil
		}
		v := meta.Get(keySchema)
		if len(v) != 8 {
			return fmt.Errorf("data file %s is damaged: schema version is missing or malformed", path)
		}
		switch schema := binary.BigEndian.Uint64(v); {
		case schema > SchemaVersion:
			return &schemaError{msg: fmt.Sprintf("data file %s has schema version %d; this atrax supports up to %d: upgrade atrax", path, schema, SchemaVersion)}
		case schema < 1:
			return fmt.Errorf("data file %s is damaged: schema version %d is unknown", path, schema)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("data file %s is damaged: bucket %q is missing", path, name)
			}
		}
		rev, err = readRevision(tx)
		if err != nil {
			return fmt.Errorf("data file %s is damaged: %w", path, err)
		}
		// Nothing was written: roll back rather than commit an empty
		// transaction (and fsync) on every start.
		return errNoChange
	})
	if errors.Is(err, errNoChange) {
		err = nil
	}
	return created, rev, err
}

// schemaError reads as its message and unwraps to store.ErrSchemaTooNew.
type schemaError struct{ msg string }

func (e *schemaError) Error() string { return e.msg }
func (e *schemaError) Unwrap() error { return store.ErrSchemaTooNew }

// errNoChange rolls back an Update transaction that found nothing to write.
var errNoChange = errors.New("no change")

// Close releases the file and its lock. It waits for running methods, and is
// safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("close data file %s: %w", s.path, err)
	}
	s.log.Info("store closed", "path", s.path)
	return nil
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction, bumps the revision when fn
// succeeds and returns the new revision. When fn returns errNoChange the
// transaction is rolled back and the current revision returned.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	var rev int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := readRevision(tx)
		if err != nil {
			return err
		}
		rev = cur
		if err := fn(tx); err != nil {
			return err
		}
		rev = cur + 1
		return tx.Bucket(bucketMeta).Put(keyRevision, binary.BigEndian.AppendUint64(nil, uint64(rev)))
	})
	if errors.Is(err, errNoChange) {
		return rev, nil
	}
	if err != nil {
		return 0, err
	}
	return rev, nil
}

func readRevision(tx *bolt.Tx) (int64, error) {
	v := tx.Bucket(bucketMeta).Get(keyRevision)
	if len(v) != 8 {
		return 0, errors.New("revision is missing or malformed")
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Revision returns the current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		rev, err = readRevision(tx)
		return err
	})
	return rev, err
}

// ListServers returns every server, ordered by name (bytewise).
func (s *Store) ListServers(ctx context.Context) ([]*atraxv1.Server, error) {
	var out []*atraxv1.Server
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketServers).ForEach(func(k, v []byte) error {
			srv := new(atraxv1.Server)
			if err := proto.Unmarshal(v, srv); err != nil {
				return fmt.Errorf("decode server %q: %w", k, err)
			}
			out = append(out, srv)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetServer returns one server, or an error wrapping store.ErrNotFound.
func (s *Store) GetServer(ctx context.Context, name string) (*atraxv1.Server, error) {
	var srv *atraxv1.Server
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketServers).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("server %q: %w", name, store.ErrNotFound)
		}
		srv = new(atraxv1.Server)
		if err := proto.Unmarshal(v, srv); err != nil {
			return fmt.Errorf("decode server %q: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// PutServers creates or replaces put and deletes del in one transaction. A
// name in del that does not exist is an error wrapping store.ErrNotFound,
// and then nothing is written. A name may not appear in both lists; when it
// appears twice in put, the last one wins.
func (s *Store) PutServers(ctx context.Context, put []*atraxv1.Server, del []string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	encoded := make([][]byte, len(put))
	putNames := make(map[string]bool, len(put))
	for i, srv := range put {
		if srv == nil {
			return 0, fmt.Errorf("put server %d: nil", i)
		}
		if srv.GetName() == "" {
			return 0, fmt.Errorf("put server %d: empty name", i)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(srv)
		if err != nil {
			return 0, fmt.Errorf("encode server %q: %w", srv.GetName(), err)
		}
		encoded[i] = b
		putNames[srv.GetName()] = true
	}
	for _, name := range del {
		if putNames[name] {
			return 0, fmt.Errorf("server %q is both put and deleted", name)
		}
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketServers)
		// Check every deletion before writing anything; the transaction
		// would roll back anyway, this only keeps the order obvious.
		for _, name := range del {
			if b.Get([]byte(name)) == nil {
				return fmt.Errorf("delete server %q: %w", name, store.ErrNotFound)
			}
		}
		for i, srv := range put {
			if err := b.Put([]byte(srv.GetName()), encoded[i]); err != nil {
				return fmt.Errorf("write server %q: %w", srv.GetName(), err)
			}
		}
		for _, name := range del {
			if b.Get([]byte(name)) == nil {
				// Listed twice in del.
				return fmt.Errorf("delete server %q: %w", name, store.ErrNotFound)
			}
			if err := b.Delete([]byte(name)); err != nil {
				return fmt.Errorf("delete server %q: %w", name, err)
			}
		}
		return nil
	})
}

// signingKeyRecord is the JSON form of a store.SigningKey.
type signingKeyRecord struct {
	ID      string    `json:"id"`
	Private []byte    `json:"private"`
	Created time.Time `json:"created"`
}

// sealKeyRecord is the JSON form of a store.SealKey.
type sealKeyRecord struct {
	ID      string    `json:"id"`
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
}

// SigningKeys returns every signing key, oldest first (ties by ID).
func (s *Store) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSigningKeys).ForEach(func(k, v []byte) error {
			var r signingKeyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode signing key %q: %w", k, err)
			}
			if len(r.Private) != ed25519.PrivateKeySize {
				return fmt.Errorf("decode signing key %q: private key has %d bytes, want %d", k, len(r.Private), ed25519.PrivateKeySize)
			}
			out = append(out, store.SigningKey{ID: r.ID, Private: ed25519.PrivateKey(r.Private), Created: r.Created})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b store.SigningKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// PutSigningKey stores k, replacing a key with the same ID.
func (s *Store) PutSigningKey(ctx context.Context, k store.SigningKey) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if k.ID == "" {
		return 0, errors.New("put signing key: empty ID")
	}
	if len(k.Private) != ed25519.PrivateKeySize {
		return 0, fmt.Errorf("put signing key %q: private key has %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
	}
	v, err := json.Marshal(signingKeyRecord{ID: k.ID, Private: k.Private, Created: k.Created.UTC()})
	if err != nil {
		// Only a Created outside years 0-9999; no key bytes in the message.
		return 0, fmt.Errorf("encode signing key %q: %w", k.ID, err)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSigningKeys).Put([]byte(k.ID), v)
	})
}

// DeleteSigningKey removes a key, or returns an error wrapping
// store.ErrNotFound.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) (int64, error) {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSigningKeys)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("signing key %q: %w", id, store.ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// SealKeys returns every seal key, oldest first (ties by ID).
func (s *Store) SealKeys(ctx context.Context) ([]store.SealKey, error) {
	var out []store.SealKey
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSealKeys).ForEach(func(k, v []byte) error {
			var r sealKeyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode seal key %q: %w", k, err)
			}
			out = append(out, store.SealKey{ID: r.ID, Key: r.Key, Created: r.Created})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b store.SealKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// PutSealKey stores k, replacing a key with the same ID. The key must be 32
// bytes.
func (s *Store) PutSealKey(ctx context.Context, k store.SealKey) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if k.ID == "" {
		return 0, errors.New("put seal key: empty ID")
	}
	if len(k.Key) != 32 {
		return 0, fmt.Errorf("put seal key %q: key has %d bytes, want 32", k.ID, len(k.Key))
	}
	v, err := json.Marshal(sealKeyRecord{ID: k.ID, Key: k.Key, Created: k.Created.UTC()})
	if err != nil {
		return 0, fmt.Errorf("encode seal key %q: %w", k.ID, err)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSealKeys).Put([]byte(k.ID), v)
	})
}

// encodeTime is big-endian Unix seconds then nanoseconds: exact for any time.
func encodeTime(t time.Time) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func decodeTime(b []byte) (time.Time, bool) {
	if len(b) != 12 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint32(b[8:]))).UTC(), true
}

// Revoke records that the token jti is revoked until expires (replacing an
// earlier expiry for the same jti).
func (s *Store) Revoke(ctx context.Context, jti string, expires time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if jti == "" {
		return 0, errors.New("revoke: empty jti")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevocations).Put([]byte(jti), encodeTime(expires))
	})
}

// Revocations returns every revocation, jti to expiry (in UTC).
func (s *Store) Revocations(ctx context.Context) (map[string]time.Time, error) {
	out := make(map[string]time.Time)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevocations).ForEach(func(k, v []byte) error {
			t, ok := decodeTime(v)
			if !ok {
				return fmt.Errorf("decode revocation %q: malformed expiry", k)
			}
			out[string(k)] = t
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PruneRevocations deletes the revocations whose expiry is before now and
// returns how many it deleted and the revision, which changes only when it
// deleted some.
func (s *Store) PruneRevocations(ctx context.Context, now time.Time) (int, int64, error) {
	var n int
	rev, err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketRevocations)
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			t, ok := decodeTime(v)
			if !ok {
				return fmt.Errorf("decode revocation %q: malformed expiry", k)
			}
			if t.Before(now) {
				expired = append(expired, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(expired) == 0 {
			return errNoChange
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return n, rev, nil
}

// AppendAudit adds events to the audit log in one transaction. An event
// without an ID gets a random one and an event without a time gets the
// current time; the caller's messages are not modified. The revision does
// not change. Event times must lie between the years 1678 and 2262 (a
// nanosecond count in an int64).
func (s *Store) AppendAudit(ctx context.Context, events []*atraxv1.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	type record struct {
		nanos int64
		value []byte
	}
	records := make([]record, len(events))
	now := time.Now()
	for i, ev := range events {
		nanos, v, err := store.EncodeAudit(i, ev, now)
		if err != nil {
			return err
		}
		records[i] = record{nanos: nanos, value: v}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		for _, r := range records {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(auditKey(r.nanos, seq), r.value); err != nil {
				return err
			}
		}
		return nil
	})
}

// auditKey orders events by time, then by order of appending. The time's
// sign bit is flipped so that times before 1970 sort first.
func auditKey(nanos int64, seq uint64) []byte {
	k := make([]byte, 0, auditKeyLen)
	k = binary.BigEndian.AppendUint64(k, uint64(nanos)^(1<<63))
	return binary.BigEndian.AppendUint64(k, seq)
}

// auditKeyBound is the smallest key at time t: every key below it is earlier.
func auditKeyBound(t time.Time) []byte {
	return auditKey(clampNanos(t), 0)
}

// clampNanos is t in Unix nanoseconds, clamped to the int64 range.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, -1<<63)):
		return -1 << 63
	case t.After(time.Unix(0, 1<<63-1)):
		return 1<<63 - 1
	}
	return t.UnixNano()
}

// ListAudit returns the events matching q, newest first, at most q.Limit
// (default 100, at most 1000) of them, and a cursor for the next page, ""
// when there is none. The cursor is opaque; one that does not come from
// ListAudit is an error wrapping store.ErrInvalidCursor.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]*atraxv1.AuditEvent, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	limit = min(limit, maxAuditLimit)

	// upper is the exclusive upper bound of the keys to visit.
	var upper []byte
	if q.Cursor != "" {
		k, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("audit cursor %q is malformed (not base64url: %v): %w", q.Cursor, err, store.ErrInvalidCursor)
		}
		if len(k) != auditKeyLen {
			return nil, "", fmt.Errorf("audit cursor %q is malformed (%d bytes, want %d): %w", q.Cursor, len(k), auditKeyLen, store.ErrInvalidCursor)
		}
		upper = k
	}
	if !q.Until.IsZero() {
		if u := auditKeyBound(q.Until); upper == nil || bytes.Compare(u, upper) < 0 {
			upper = u
		}
	}
	var lower []byte // inclusive
	if !q.Since.IsZero() {
		lower = auditKeyBound(q.Since)
	}

	var out []*atraxv1.AuditEvent
	var next string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if upper == nil {
			k, v = c.Last()
		} else if k, _ = c.Seek(upper); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		var last []byte
		for ; k != nil; k, v = c.Prev() {
			if lower != nil && bytes.Compare(k, lower) < 0 {
				break
			}
			ev := new(atraxv1.AuditEvent)
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("decode audit event %x: %w", k, err)
			}
			if !matches(ev, q) {
				continue
			}
			if len(out) == limit {
				// One more match exists: the page is not the last.
				next = base64.RawURLEncoding.EncodeToString(last)
				break
			}
			out = append(out, ev)
			last = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func matches(ev *atraxv1.AuditEvent, q store.AuditQuery) bool {
	return (q.Actor == "" || ev.GetActor() == q.Actor) &&
		(q.Action == "" || ev.GetAction() == q.Action) &&
		(q.Server == "" || ev.GetServer() == q.Server) &&
		(q.Tool == "" || ev.GetTool() == q.Tool) &&
		(q.Outcome == "" || ev.GetOutcome() == q.Outcome)
}
