// Package etcdstore keeps the control plane's state in an etcd cluster that
// several control-plane replicas share: the store of a fleet. Every write is
// an etcd transaction, committed by a quorum of members (and so durable and
// linearizable) before it returns.
//
// Keys, under a prefix (DefaultPrefix; several deployments can share one
// etcd with prefixes of their own):
//
//	PREFIX/schema                     schema version, decimal ("importing ..." while Import runs)
//	PREFIX/state/rev                  touched by every state write
//	PREFIX/state/servers.rev          touched by every write of the servers
//	PREFIX/state/server/NAME          proto (deterministic) of atraxv1.Server
//	PREFIX/state/signing-key/ID       JSON {id, private, created}
//	PREFIX/state/seal-key/ID          JSON {id, key, created}
//	PREFIX/state/revocation/JTI       expiry, RFC 3339 with nanoseconds
//	PREFIX/audit/TIME/SEQ             proto of atraxv1.AuditEvent
//	PREFIX/election/...               the leader election (concurrency)
//	PREFIX/edges/INSTANCE/EDGE_ID     proto of atraxv1.EdgeStatus, on INSTANCE's lease
//
// The store's revision is the etcd revision of the last state write (the
// ModRevision of PREFIX/state/rev), so it only grows, is the same on every
// replica, and Watch can resume from it. Audit keys are TIME (16 hex digits
// of the event's Unix nanoseconds, sign bit flipped) and SEQ (16 hex digits
// of a per-process sequence, then 8 of a per-process random number), so
// that a key range is a time range and pages are ranges. INSTANCE is that
// per-process random number: each control plane's records of the edges
// connected to it (SetEdges) live on a lease of its own.
package etcdstore

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// SchemaVersion is the layout of the keys this package reads and writes.
// Open refuses a prefix with a higher version (store.ErrSchemaTooNew).
const SchemaVersion = 1

// Defaults for zero Options fields.
const (
	DefaultPrefix      = "/atrax"
	DefaultTimeout     = 5 * time.Second
	DefaultElectionTTL = 10 * time.Second
)

// maxOps is the most operations this package puts in one transaction: etcd
// refuses more than 128 (its --max-txn-ops), and two go to the revision
// keys.
const maxOps = 126

// Audit page sizes, as in boltstore.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("store is closed")

// Options configure Open. Endpoints is required.
type Options struct {
	// Endpoints are the etcd members' client URLs (http://HOST:PORT,
	// https://HOST:PORT, or HOST:PORT).
	Endpoints []string
	// TLS, when set, is used to dial the members.
	TLS *tls.Config
	// Username and Password authenticate to etcd when Username is set.
	Username string
	Password string
	// Prefix is put before every key; DefaultPrefix when empty. A
	// trailing "/" is ignored.
	Prefix string
	// Timeout bounds each operation on etcd; DefaultTimeout when zero. An
	// operation that runs out of it fails with store.ErrUnavailable.
	Timeout time.Duration
	// ElectionTTL is how long a leader that vanished without resigning
	// (killed, cut off) keeps its leadership; DefaultElectionTTL when zero.
	// It is rounded up to whole seconds.
	ElectionTTL time.Duration
	// Logger receives open, close, watch and election events; nil
	// discards them. Key material and credentials are never logged.
	Logger *slog.Logger
}

// Store is a store.Store on etcd. It is safe for concurrent use.
type Store struct {
	cli      *clientv3.Client
	prefix   string // without a trailing "/"
	timeout  time.Duration
	ttl      time.Duration
	log      *slog.Logger
	instance string // 8 hex digits: this process in audit keys
	seq      atomic.Uint64

	// ctx ends at Close, ending watches and elections.
	ctx    context.Context
	cancel context.CancelFunc

	// leaders counts the goroutines that resign a leadership; Close
	// waits for them before it closes the client.
	leaders sync.WaitGroup
	// edges are this process's edge records (edges.go).
	edges edgeRecords

	mu     sync.RWMutex // held for reading by every method, for writing by Close
	closed bool
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Watcher     = (*Store)(nil)
	_ store.Conditional = (*Store)(nil)
	_ store.Elector     = (*Store)(nil)
)

// Open connects to etcd and checks (or, on a prefix never used, writes) the
// schema version. It fails when no member answers within the timeout.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	rev, err := s.initialize(ctx)
	if err != nil {
		s.cancel()
		s.cli.Close()
		return nil, fmt.Errorf("etcd at %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	s.log.Info("store opened", "etcd", strings.Join(opts.Endpoints, ","), "prefix", s.prefix, "schema", SchemaVersion, "revision", rev)
	return s, nil
}

// connect returns a Store with its client, which has touched no key yet.
func connect(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		prefix:   strings.TrimSuffix(cmp.Or(opts.Prefix, DefaultPrefix), "/"),
		timeout:  cmp.Or(opts.Timeout, DefaultTimeout),
		ttl:      cmp.Or(opts.ElectionTTL, DefaultElectionTTL),
		log:      log,
		instance: randomHex(4),
	}
	s.seq.Store(uint64(time.Now().UnixNano()))
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		TLS:                  opts.TLS,
		Username:             opts.Username,
		Password:             opts.Password,
		DialTimeout:          s.timeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	s.cli = cli
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return s, nil
}

// initialize writes the schema of a new prefix or checks that of a used one,
// and returns the revision.
func (s *Store) initialize(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := s.prefix + "/schema"
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, strconv.Itoa(SchemaVersion)), clientv3.OpGet(s.key(keyRev))).
		Else(clientv3.OpGet(key), clientv3.OpGet(s.key(keyRev))).
		Commit()
	if err != nil {
		return 0, s.fail(ctx, "check schema", err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if strings.HasPrefix(string(kvs[0].Value), importingSchema) {
			return 0, fmt.Errorf("prefix %s holds a copy of a store that `atrax store migrate` has not finished: wait for it to end; if it failed, delete the prefix (etcdctl del --prefix %s/) and migrate again", s.prefix, s.prefix)
		}
		schema, err := strconv.Atoi(string(kvs[0].Value))
		switch {
		case err != nil || schema < 1:
			return 0, fmt.Errorf("prefix %s is damaged: schema version %q is unknown", s.prefix, kvs[0].Value)
		case schema > SchemaVersion:
			return 0, &schemaError{msg: fmt.Sprintf("prefix %s has schema version %d; this atrax supports up to %d: upgrade atrax", s.prefix, schema, SchemaVersion)}
		}
	}
	return modRevision(resp.Responses[1].GetResponseRange()), nil
}

// schemaError reads as its message and unwraps to store.ErrSchemaTooNew.
type schemaError struct{ msg string }

func (e *schemaError) Error() string { return e.msg }
func (e *schemaError) Unwrap() error { return store.ErrSchemaTooNew }

// Close ends watches and elections (a leader resigns) and closes the
// client. It waits for running methods and is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	if s.edges.done != nil {
		<-s.edges.done // revokes the edge records' lease, bounded by the timeout
	}
	s.leaders.Wait() // each bounded by the timeout
	err := s.cli.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close etcd client: %w", err)
	}
	s.log.Info("store closed", "prefix", s.prefix)
	return nil
}

// Key names under PREFIX/state/.
const (
	keyRev        = "rev"
	keyServersRev = "servers.rev"
	dirServers    = "server/"
	dirSigning    = "signing-key/"
	dirSeal       = "seal-key/"
	dirRevoked    = "revocation/"
)

func (s *Store) statePrefix() string    { return s.prefix + "/state/" }
func (s *Store) key(name string) string { return s.statePrefix() + name }
func (s *Store) auditPrefix() string    { return s.prefix + "/audit/" }

// begin checks ctx and Close, and returns a context bounded by the timeout
// and a function that ends it and releases the read lock.
func (s *Store) begin(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, func() { cancel(); s.mu.RUnlock() }, nil
}

// fail turns an etcd client error into the store's vocabulary: the caller's
// own context error as it is, a member or quorum out of reach as
// store.ErrUnavailable, anything else (a refused credential, a transaction
// too large) as it came.
func (s *Store) fail(ctx context.Context, what string, err error) error {
	if cerr := context.Cause(ctx); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled {
		return fmt.Errorf("%s: %w (etcd: %v)", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: etcd: %w", what, err)
}

// write commits ops after the compares, with the state revision key
// touched, and returns the response (Succeeded false: a compare failed and
// orElse ran).
func (s *Store) write(ctx context.Context, what string, cmps []clientv3.Cmp, ops, orElse []clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	ops = append(ops, clientv3.OpPut(s.key(keyRev), ""))
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if err != nil {
		return nil, s.fail(ctx, what, err)
	}
	return resp, nil
}

// get reads one key or a prefix.
func (s *Store) get(ctx context.Context, what, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	resp, err := s.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, s.fail(ctx, what, err)
	}
	return resp, nil
}

// modRevision is the ModRevision of the one key a range read, 0 for none.
func modRevision(r *pb.RangeResponse) int64 {
	if kvs := r.GetKvs(); len(kvs) > 0 {
		return kvs[0].ModRevision
	}
	return 0
}

// Revision returns the etcd revision of the last state write, 0 for none.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.get(ctx, "read revision", s.key(keyRev))
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return resp.Kvs[0].ModRevision, nil
}

// Check tells whether etcd serves the store now, with a read that needs the
// cluster's leader (a member cut off from the quorum refuses it), bounded
// by ctx and the timeout. It fails with an error wrapping
// store.ErrUnavailable when etcd does not answer.
func (s *Store) Check(ctx context.Context) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if _, err := s.cli.Get(clientv3.WithRequireLeader(ctx), s.prefix+"/schema", clientv3.WithCountOnly()); err != nil {
		return s.fail(ctx, "check etcd", err)
	}
	return nil
}

// ListServers returns every server, ordered by name (bytewise).
func (s *Store) ListServers(ctx context.Context) ([]*atraxv1.Server, error) {
	resp, err := s.get(ctx, "list servers", s.key(dirServers), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make([]*atraxv1.Server, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		srv, err := decodeServer(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("decode server %q: %w", strings.TrimPrefix(string(kv.Key), s.key(dirServers)), err)
		}
		out = append(out, srv)
	}
	return out, nil
}

func decodeServer(v []byte) (*atraxv1.Server, error) {
	srv := new(atraxv1.Server)
	if err := proto.Unmarshal(v, srv); err != nil {
		return nil, err
	}
	return srv, nil
}

// GetServer returns one server, or an error wrapping store.ErrNotFound.
func (s *Store) GetServer(ctx context.Context, name string) (*atraxv1.Server, error) {
	resp, err := s.get(ctx, "get server", s.key(dirServers+name))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("server %q: %w", name, store.ErrNotFound)
	}
	srv, err := decodeServer(resp.Kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("decode server %q: %w", name, err)
	}
	return srv, nil
}

// PutServers creates or replaces put and deletes del in one transaction. A
// name in del that does not exist is an error wrapping store.ErrNotFound,
// and then nothing is written. A name may not appear in both lists; when it
// appears twice in put, the last one wins. One write holds at most 125
// servers put or deleted (etcd's limit of 128 operations per transaction).
func (s *Store) PutServers(ctx context.Context, put []*atraxv1.Server, del []string) (int64, error) {
	return s.putServers(ctx, -1, put, del)
}

// PutServersIf is PutServers done only when no server was written after
// revision since; otherwise nothing is written and the error wraps
// store.ErrConflict.
func (s *Store) PutServersIf(ctx context.Context, since int64, put []*atraxv1.Server, del []string) (int64, error) {
	if since < 0 {
		return 0, fmt.Errorf("put servers: revision %d is negative", since)
	}
	return s.putServers(ctx, since, put, del)
}

// putServers writes the servers, conditionally when since >= 0.
func (s *Store) putServers(ctx context.Context, since int64, put []*atraxv1.Server, del []string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// The last of a name given twice wins; etcd refuses a key twice in a
	// transaction.
	values := map[string][]byte{}
	var names []string
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
		if _, ok := values[srv.GetName()]; !ok {
			names = append(names, srv.GetName())
		}
		values[srv.GetName()] = b
	}
	deleted := map[string]bool{}
	for _, name := range del {
		if _, ok := values[name]; ok {
			return 0, fmt.Errorf("server %q is both put and deleted", name)
		}
		if deleted[name] {
			return 0, fmt.Errorf("delete server %q: %w", name, store.ErrNotFound)
		}
		deleted[name] = true
	}
	if n := len(names) + len(del) + 1; n > maxOps {
		return 0, fmt.Errorf("put servers: %d servers in one write; etcd takes at most %d (its --max-txn-ops, 128, less the revision keys)", n-1, maxOps-1)
	}
	var cmps []clientv3.Cmp
	var ops, orElse []clientv3.Op
	if since >= 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key(keyServersRev)), "<", since+1))
		orElse = append(orElse, clientv3.OpGet(s.key(keyServersRev)))
	}
	for _, name := range del {
		k := s.key(dirServers + name)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), ">", 0))
		orElse = append(orElse, clientv3.OpGet(k, clientv3.WithCountOnly()))
		ops = append(ops, clientv3.OpDelete(k))
	}
	for _, name := range names {
		ops = append(ops, clientv3.OpPut(s.key(dirServers+name), string(values[name])))
	}
	ops = append(ops, clientv3.OpPut(s.key(keyServersRev), ""))
	resp, err := s.write(ctx, "write servers", cmps, ops, orElse)
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	rs := resp.Responses
	if since >= 0 {
		if rev := modRevision(rs[0].GetResponseRange()); rev > since {
			return 0, fmt.Errorf("servers were written at revision %d, after %d: %w", rev, since, store.ErrConflict)
		}
		rs = rs[1:]
	}
	for i, name := range del {
		if rs[i].GetResponseRange().GetCount() == 0 {
			return 0, fmt.Errorf("delete server %q: %w", name, store.ErrNotFound)
		}
	}
	// Every compare held when read back: another writer came between.
	return 0, fmt.Errorf("servers changed during the write: %w", store.ErrConflict)
}

// signingKeyRecord is the JSON form of a store.SigningKey, as in boltstore.
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
	resp, err := s.get(ctx, "list signing keys", s.key(dirSigning), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	var out []store.SigningKey
	for _, kv := range resp.Kvs {
		var r signingKeyRecord
		id := strings.TrimPrefix(string(kv.Key), s.key(dirSigning))
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("decode signing key %q: %w", id, err)
		}
		if len(r.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("decode signing key %q: private key has %d bytes, want %d", id, len(r.Private), ed25519.PrivateKeySize)
		}
		out = append(out, store.SigningKey{ID: r.ID, Private: ed25519.PrivateKey(r.Private), Created: r.Created})
	}
	slices.SortStableFunc(out, func(a, b store.SigningKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func encodeSigningKey(k store.SigningKey) ([]byte, error) {
	if k.ID == "" {
		return nil, errors.New("put signing key: empty ID")
	}
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("put signing key %q: private key has %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
	}
	v, err := json.Marshal(signingKeyRecord{ID: k.ID, Private: k.Private, Created: k.Created.UTC()})
	if err != nil {
		// Only a Created outside years 0-9999; no key bytes in the message.
		return nil, fmt.Errorf("encode signing key %q: %w", k.ID, err)
	}
	return v, nil
}

// PutSigningKey stores k, replacing a key with the same ID.
func (s *Store) PutSigningKey(ctx context.Context, k store.SigningKey) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	v, err := encodeSigningKey(k)
	if err != nil {
		return 0, err
	}
	resp, err := s.write(ctx, "write signing key", nil, []clientv3.Op{clientv3.OpPut(s.key(dirSigning+k.ID), string(v))}, nil)
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// PutFirstSigningKey stores k only when no signing key is stored: of two
// control planes starting together, one key wins.
func (s *Store) PutFirstSigningKey(ctx context.Context, k store.SigningKey) (bool, int64, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	v, err := encodeSigningKey(k)
	if err != nil {
		return false, 0, err
	}
	return s.putFirst(ctx, "write first signing key", dirSigning, k.ID, v)
}

// putFirst puts dir+id only when nothing is stored under dir.
func (s *Store) putFirst(ctx context.Context, what, dir, id string, v []byte) (bool, int64, error) {
	none := clientv3.Compare(clientv3.CreateRevision(s.key(dir)), "=", 0).WithPrefix()
	resp, err := s.write(ctx, what, []clientv3.Cmp{none}, []clientv3.Op{clientv3.OpPut(s.key(dir+id), string(v))}, nil)
	if err != nil {
		return false, 0, err
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

// DeleteSigningKey removes a key, or returns an error wrapping
// store.ErrNotFound.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) (int64, error) {
	k := s.key(dirSigning + id)
	resp, err := s.write(ctx, "delete signing key",
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)},
		[]clientv3.Op{clientv3.OpDelete(k)}, nil)
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("signing key %q: %w", id, store.ErrNotFound)
	}
	return resp.Header.Revision, nil
}

// SealKeys returns every seal key, oldest first (ties by ID).
func (s *Store) SealKeys(ctx context.Context) ([]store.SealKey, error) {
	resp, err := s.get(ctx, "list seal keys", s.key(dirSeal), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	var out []store.SealKey
	for _, kv := range resp.Kvs {
		var r sealKeyRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("decode seal key %q: %w", strings.TrimPrefix(string(kv.Key), s.key(dirSeal)), err)
		}
		out = append(out, store.SealKey{ID: r.ID, Key: r.Key, Created: r.Created})
	}
	slices.SortStableFunc(out, func(a, b store.SealKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func encodeSealKey(k store.SealKey) ([]byte, error) {
	if k.ID == "" {
		return nil, errors.New("put seal key: empty ID")
	}
	if len(k.Key) != 32 {
		return nil, fmt.Errorf("put seal key %q: key has %d bytes, want 32", k.ID, len(k.Key))
	}
	v, err := json.Marshal(sealKeyRecord{ID: k.ID, Key: k.Key, Created: k.Created.UTC()})
	if err != nil {
		return nil, fmt.Errorf("encode seal key %q: %w", k.ID, err)
	}
	return v, nil
}

// PutSealKey stores k, replacing a key with the same ID. The key must be 32
// bytes.
func (s *Store) PutSealKey(ctx context.Context, k store.SealKey) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	v, err := encodeSealKey(k)
	if err != nil {
		return 0, err
	}
	resp, err := s.write(ctx, "write seal key", nil, []clientv3.Op{clientv3.OpPut(s.key(dirSeal+k.ID), string(v))}, nil)
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// PutFirstSealKey stores k only when no seal key is stored.
func (s *Store) PutFirstSealKey(ctx context.Context, k store.SealKey) (bool, int64, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	v, err := encodeSealKey(k)
	if err != nil {
		return false, 0, err
	}
	return s.putFirst(ctx, "write first seal key", dirSeal, k.ID, v)
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
	v := expires.UTC().Format(time.RFC3339Nano)
	resp, err := s.write(ctx, "write revocation", nil, []clientv3.Op{clientv3.OpPut(s.key(dirRevoked+jti), v)}, nil)
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// revocations reads every revocation with the ModRevision of its key.
func (s *Store) revocations(ctx context.Context) (map[string]time.Time, map[string]int64, error) {
	resp, err := s.get(ctx, "list revocations", s.key(dirRevoked), clientv3.WithPrefix())
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]time.Time, len(resp.Kvs))
	revs := make(map[string]int64, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		jti := strings.TrimPrefix(string(kv.Key), s.key(dirRevoked))
		t, err := time.Parse(time.RFC3339Nano, string(kv.Value))
		if err != nil {
			return nil, nil, fmt.Errorf("decode revocation %q: malformed expiry", jti)
		}
		out[jti] = t.UTC()
		revs[jti] = kv.ModRevision
	}
	return out, revs, nil
}

// Revocations returns every revocation, jti to expiry (in UTC).
func (s *Store) Revocations(ctx context.Context) (map[string]time.Time, error) {
	out, _, err := s.revocations(ctx)
	return out, err
}

// PruneRevocations deletes the revocations whose expiry is before now and
// returns how many it deleted and the revision, which changes only when it
// deleted some. A revocation renewed while the prune runs is kept. Many
// expired revocations are deleted in several transactions.
func (s *Store) PruneRevocations(ctx context.Context, now time.Time) (int, int64, error) {
	all, revs, err := s.revocations(ctx)
	if err != nil {
		return 0, 0, err
	}
	var expired []string
	for jti, t := range all {
		if t.Before(now) {
			expired = append(expired, jti)
		}
	}
	slices.Sort(expired)
	n, rev := 0, int64(0)
	for chunk := range slices.Chunk(expired, maxOps) {
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, jti := range chunk {
			k := s.key(dirRevoked + jti)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", revs[jti]))
			ops = append(ops, clientv3.OpDelete(k))
		}
		resp, err := s.write(ctx, "delete revocations", cmps, ops, nil)
		if err != nil {
			return n, rev, err
		}
		if resp.Succeeded {
			n += len(chunk)
			rev = resp.Header.Revision
		}
		// Otherwise one was renewed or pruned by another replica: the
		// next prune looks again.
	}
	if n == 0 {
		rev, err = s.Revision(ctx)
		if err != nil {
			return 0, 0, err
		}
	}
	return n, rev, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}
