package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// EncodeAudit is what every store does to event i of an AppendAudit batch
// before it writes it: a copy (the caller's message is left alone) gets a
// random ID if it has none and the time now if it has no time; the time
// must be a Unix nanosecond count that fits an int64 (the years 1678 to
// 2262), which the stores key events by. It returns that count and the
// event's deterministic encoding.
func EncodeAudit(i int, ev *atraxv1.AuditEvent, now time.Time) (nanos int64, value []byte, err error) {
	if ev == nil {
		return 0, nil, fmt.Errorf("audit event %d: nil", i)
	}
	ev = proto.CloneOf(ev)
	if ev.Id == "" {
		b := make([]byte, 16)
		rand.Read(b) // never fails (crypto/rand since Go 1.24)
		ev.Id = hex.EncodeToString(b)
	}
	if ev.Time == nil {
		ev.Time = timestamppb.New(now)
	}
	if err := ev.Time.CheckValid(); err != nil {
		return 0, nil, fmt.Errorf("audit event %q: time: %w", ev.Id, err)
	}
	t := ev.Time.AsTime()
	nanos = t.UnixNano()
	if !time.Unix(0, nanos).Equal(t) {
		return 0, nil, fmt.Errorf("audit event %q: time %v is out of range", ev.Id, t)
	}
	value, err = proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return 0, nil, fmt.Errorf("encode audit event %q: %w", ev.Id, err)
	}
	return nanos, value, nil
}
