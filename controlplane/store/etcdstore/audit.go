package etcdstore

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// An audit key, after PREFIX/audit/, is TIME "/" SEQ INSTANCE in hex:
// 16 + 1 + 16 + 8 characters. A cursor is the same 20 bytes, raw, in
// base64url.
const (
	auditCursorLen = 8 + 8 + 4
	auditSuffixLen = 16 + 1 + 16 + 8
)

// maxAuditBytes bounds the values of one audit transaction, below etcd's
// default request limit of 1.5 MiB.
const maxAuditBytes = 1 << 20

// auditTime is the TIME part of an audit key: nanoseconds with the sign bit
// flipped, so that times before 1970 sort first.
func auditTime(nanos int64) string {
	return fmt.Sprintf("%016x", uint64(nanos)^(1<<63))
}

// auditBound is the smallest key at time t: every key below it is earlier.
func (s *Store) auditBound(t time.Time) string {
	return s.auditPrefix() + auditTime(clampNanos(t)) + "/"
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

// AppendAudit adds events to the audit log. An event without an ID gets a
// random one and an event without a time gets the current time; the
// caller's messages are not modified. The revision does not change. Event
// times must lie between the years 1678 and 2262. Every event is checked
// before any is written; a large batch is written in several transactions
// (etcd bounds one), so a failure part way may leave the first part
// written.
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
	var ops []clientv3.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := s.commit(ctx, "append audit events", ops)
		ops, size = nil, 0
		return err
	}
	for _, r := range records {
		if len(ops) == maxOps || (len(ops) > 0 && size+len(r.value) > maxAuditBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		k := s.auditKey(r.nanos, s.seq.Add(1))
		ops = append(ops, clientv3.OpPut(k, string(r.value)))
		size += len(k) + len(r.value)
	}
	return flush()
}

// auditKey is the key of an event at Unix nanoseconds nanos, appended
// with sequence number seq by this process.
func (s *Store) auditKey(nanos int64, seq uint64) string {
	return s.auditPrefix() + auditTime(nanos) + "/" + fmt.Sprintf("%016x", seq) + s.instance
}

// commit runs ops in one transaction without touching the state revision.
func (s *Store) commit(ctx context.Context, what string, ops []clientv3.Op) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		return s.fail(ctx, what, err)
	}
	return nil
}

// cursorKey turns a cursor back into the key it names.
func (s *Store) cursorKey(cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", fmt.Errorf("audit cursor %q is malformed (not base64url: %v): %w", cursor, err, store.ErrInvalidCursor)
	}
	if len(b) != auditCursorLen {
		return "", fmt.Errorf("audit cursor %q is malformed (%d bytes, want %d): %w", cursor, len(b), auditCursorLen, store.ErrInvalidCursor)
	}
	return s.auditPrefix() + hex.EncodeToString(b[:8]) + "/" + hex.EncodeToString(b[8:]), nil
}

// keyCursor is the cursor of an audit key.
func (s *Store) keyCursor(key string) string {
	suffix := key[len(s.auditPrefix()):]
	if len(suffix) != auditSuffixLen {
		return "" // not a key of this package's
	}
	t, err1 := hex.DecodeString(suffix[:16])
	rest, err2 := hex.DecodeString(suffix[17:])
	if err1 != nil || err2 != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append(t, rest...))
}

// ListAudit returns the events matching q, newest first, at most q.Limit
// (default 100, at most 1000) of them, and a cursor for the next page, ""
// when there is none. The cursor is opaque; one that does not come from
// ListAudit is an error wrapping store.ErrInvalidCursor. Every page reads
// the log at one etcd revision.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]*atraxv1.AuditEvent, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	limit = min(limit, maxAuditLimit)

	upper := clientv3.GetPrefixRangeEnd(s.auditPrefix()) // exclusive
	if q.Cursor != "" {
		k, err := s.cursorKey(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		upper = k
	}
	if !q.Until.IsZero() {
		upper = min(upper, s.auditBound(q.Until))
	}
	lower := s.auditPrefix() // inclusive
	if !q.Since.IsZero() {
		lower = s.auditBound(q.Since)
	}

	var out []*atraxv1.AuditEvent
	var last, next string
	var atRev int64
	chunk := int64(limit + 1)
	for lower < upper && next == "" {
		opts := []clientv3.OpOption{
			clientv3.WithRange(upper),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
			clientv3.WithLimit(chunk),
		}
		if atRev > 0 {
			opts = append(opts, clientv3.WithRev(atRev))
		}
		resp, err := s.get(ctx, "list audit events", lower, opts...)
		if err != nil {
			return nil, "", err
		}
		atRev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			upper = string(kv.Key)
			ev := new(atraxv1.AuditEvent)
			if err := proto.Unmarshal(kv.Value, ev); err != nil {
				return nil, "", fmt.Errorf("decode audit event %s: %w", kv.Key, err)
			}
			if !matches(ev, q) {
				continue
			}
			if len(out) == limit {
				// One more match exists: the page is not the last.
				next = s.keyCursor(last)
				break
			}
			out = append(out, ev)
			last = string(kv.Key)
		}
		if !resp.More {
			break
		}
		chunk = min(chunk*2, maxAuditLimit+1)
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
