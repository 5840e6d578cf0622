// Package watch keeps an edge in step with the control plane over the Sync
// stream: it applies every newer snapshot it receives and sends the edge's
// state and audit events back. When the control plane is away the edge keeps
// what it last applied and reconnects with capped exponential backoff.
package watch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Backoff bounds between reconnection attempts.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// maxPendingAudit bounds audit events held while the control plane is away;
// beyond it the oldest are dropped and the loss is logged.
const maxPendingAudit = 10000

// Audit events wait up to auditDelay for more before they are sent, unless
// auditBatch of them are pending: a busy edge sends one message, and the
// control plane writes one transaction, per batch instead of per tool call
// (a write to the store is a sync to disk).
const (
	auditDelay = 50 * time.Millisecond
	auditBatch = 512
)

// Options configure a Watcher.
type Options struct {
	// Client is the EdgeService client over the control plane connection.
	Client atraxv1.EdgeServiceClient
	// Token is the bearer token the edge presents (it needs the edge scope).
	Token string
	// Hello describes the edge; SnapshotVersion is filled in per stream.
	Hello *atraxv1.EdgeHello
	// Apply is called with each snapshot newer than the last applied one,
	// from one goroutine at a time.
	Apply  func(*atraxv1.Snapshot)
	Logger *slog.Logger
}

// Watcher runs the Sync stream.
type Watcher struct {
	opts      Options
	log       *slog.Logger
	connected atomic.Bool
	applied   atomic.Int64

	mu      sync.Mutex
	report  *atraxv1.EdgeReport // latest, unsent
	last    *atraxv1.EdgeReport // latest sent, resent on every new stream
	audit   []*atraxv1.AuditEvent
	dropped int
	wake    chan struct{}
}

// New returns a watcher; Run starts it.
func New(opts Options) *Watcher {
	w := &Watcher{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// Connected reports whether the Sync stream is up.
func (w *Watcher) Connected() bool { return w.connected.Load() }

// Version returns the version of the last applied snapshot, 0 for none.
func (w *Watcher) Version() int64 { return w.applied.Load() }

// Report queues the edge's current state; only the latest is sent.
func (w *Watcher) Report(r *atraxv1.EdgeReport) {
	w.mu.Lock()
	w.report = proto.Clone(r).(*atraxv1.EdgeReport)
	w.mu.Unlock()
	w.signal()
}

// Audit queues audit events for the control plane's log.
func (w *Watcher) Audit(events ...*atraxv1.AuditEvent) {
	w.mu.Lock()
	w.audit = append(w.audit, events...)
	if over := len(w.audit) - maxPendingAudit; over > 0 {
		w.audit = w.audit[over:]
		w.dropped += over
	}
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run keeps a Sync stream open until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := minBackoff
	for {
		start := time.Now()
		err := w.stream(ctx)
		w.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > maxBackoff {
			backoff = minBackoff // the stream was healthy for a while
		}
		level := slog.LevelWarn
		if status.Code(err) == codes.Unauthenticated || status.Code(err) == codes.PermissionDenied {
			level = slog.LevelError // needs an operator: the edge's token is wrong
		}
		w.log.Log(ctx, level, "sync stream ended; serving the last known registry and reconnecting",
			"err", err, "retry_in", backoff.String())
		// Full jitter keeps a fleet of edges from reconnecting in step.
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (w *Watcher) stream(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+w.opts.Token)
	s, err := w.opts.Client.Sync(ctx, grpc.WaitForReady(false))
	if err != nil {
		return err
	}
	hello := proto.Clone(w.opts.Hello).(*atraxv1.EdgeHello)
	hello.SnapshotVersion = w.applied.Load()
	if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Hello{Hello: hello}}); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() {
		recvErr <- w.receive(s)
		cancel()
	}()
	// The first snapshot proves the stream is accepted (the control plane
	// checks the token before it sends anything).
	var batch *time.Timer
	var batchDue <-chan time.Time
	defer func() {
		if batch != nil {
			batch.Stop()
		}
	}()
	for {
		select {
		case err := <-recvErr:
			return err
		case <-ctx.Done():
			return <-recvErr
		case <-w.wake:
			if !w.urgent() {
				// Only audit events: let a few more join them.
				if batchDue == nil {
					if batch == nil {
						batch = time.NewTimer(auditDelay)
					} else {
						batch.Reset(auditDelay)
					}
					batchDue = batch.C
				}
				continue
			}
			if err := w.flush(s); err != nil {
				return err
			}
		case <-batchDue:
			batchDue = nil
			if err := w.flush(s); err != nil {
				return err
			}
		}
	}
}

// urgent reports whether what is pending must go at once: a report, or a
// full batch of audit events.
func (w *Watcher) urgent() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.report != nil || len(w.audit) >= auditBatch || !w.connected.Load()
}

func (w *Watcher) receive(s atraxv1.EdgeService_SyncClient) error {
	for {
		msg, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("control plane closed the stream")
		}
		if err != nil {
			return err
		}
		snap := msg.GetSnapshot()
		if snap == nil {
			continue
		}
		if !w.connected.Swap(true) {
			w.log.Info("sync stream up", "snapshot_version", snap.GetVersion())
			// A control plane that restarted knows nothing of this edge:
			// tell it again.
			w.mu.Lock()
			if w.report == nil {
				w.report = w.last
			}
			w.mu.Unlock()
			w.signal()
		}
		if snap.GetVersion() <= w.applied.Load() {
			continue
		}
		w.opts.Apply(snap)
		w.applied.Store(snap.GetVersion())
	}
}

// flush sends the pending report and audit events. On failure they are
// kept for the next stream.
func (w *Watcher) flush(s atraxv1.EdgeService_SyncClient) error {
	if !w.connected.Load() {
		return nil
	}
	w.mu.Lock()
	report, audit, dropped := w.report, w.audit, w.dropped
	w.report, w.audit, w.dropped = nil, nil, 0
	w.mu.Unlock()
	if dropped > 0 {
		w.log.Error("audit events dropped while the control plane was unreachable", "count", dropped)
	}
	if report != nil {
		report.SnapshotVersion = w.applied.Load()
		if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Report{Report: report}}); err != nil {
			w.requeue(report, audit)
			return err
		}
		w.mu.Lock()
		w.last = report
		w.mu.Unlock()
	}
	if len(audit) > 0 {
		if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Audit{Audit: &atraxv1.AuditBatch{Events: audit}}}); err != nil {
			w.requeue(nil, audit)
			return err
		}
	}
	return nil
}

func (w *Watcher) requeue(report *atraxv1.EdgeReport, audit []*atraxv1.AuditEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.report == nil {
		w.report = report
	}
	w.audit = append(audit, w.audit...)
}
