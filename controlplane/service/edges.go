package service

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/snapshot"
	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Edges implements atraxv1.EdgeServiceServer.
type Edges struct {
	atraxv1.UnimplementedEdgeServiceServer
	Snapshots *snapshot.Publisher
	Fleet     *fleet.Fleet
	Store     store.Store
	Logger    *slog.Logger
	// Stopping is closed when the control plane shuts down; Sync streams
	// then end, and the edges reconnect (to this one when it is back).
	Stopping <-chan struct{}
	// Ready, when set, says why the control plane is not ready (nil while
	// it is) and returns a channel closed when that changes. While it is
	// not (its store is out of reach), Sync streams end and new ones are
	// refused with UNAVAILABLE, so that edges move to a replica that can
	// serve them, and keep their audit events until one does.
	Ready func() (changed <-chan struct{}, err error)
}

var _ atraxv1.EdgeServiceServer = (*Edges)(nil)

func (e *Edges) ready() (<-chan struct{}, error) {
	if e.Ready == nil {
		return nil, nil
	}
	changed, err := e.Ready()
	if err != nil {
		return nil, status.Error(codes.Unavailable, "this control plane is not ready: "+err.Error())
	}
	return changed, nil
}

// Sync sends the current snapshot after the edge's hello and each newer one
// after that, while a reader takes the edge's reports and audit events.
func (e *Edges) Sync(stream atraxv1.EdgeService_SyncServer) error {
	readyChanged, err := e.ready()
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil || hello.GetEdgeId() == "" {
		return status.Error(codes.InvalidArgument, "the first message of a Sync stream must be a hello with an edge_id")
	}
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("edge", hello.GetEdgeId())
	disconnect := e.Fleet.Connect(hello)
	defer disconnect()
	log.Info("edge connected", "address", hello.GetAddress(), "version", hello.GetVersion())
	defer log.Info("edge disconnected")

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		readErr <- e.read(ctx, hello.GetEdgeId(), stream, log)
		cancel()
	}()

	wake, unsubscribe := e.Snapshots.Subscribe()
	defer unsubscribe()
	sent := int64(-1)
	for {
		if cur := e.Snapshots.Current(); cur.GetVersion() != sent {
			if err := stream.Send(&atraxv1.SyncResponse{Snapshot: cur}); err != nil {
				return err
			}
			sent = cur.GetVersion()
		}
		select {
		case <-wake:
		case <-readyChanged:
			if readyChanged, err = e.ready(); err != nil {
				log.Warn("ending the edge's stream: this control plane is not ready", "err", err)
				return err
			}
		case <-e.Stopping:
			return errShuttingDown
		case <-ctx.Done():
			select {
			case err := <-readErr:
				if err == nil || errors.Is(err, io.EOF) {
					return nil
				}
				return err
			default:
				return nil
			}
		}
	}
}

func (e *Edges) read(ctx context.Context, edgeID string, stream atraxv1.EdgeService_SyncServer, log *slog.Logger) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		switch m := msg.GetMessage().(type) {
		case *atraxv1.SyncRequest_Report:
			e.Fleet.Report(edgeID, m.Report)
		case *atraxv1.SyncRequest_Audit:
			for _, ev := range m.Audit.GetEvents() {
				ev.EdgeId = edgeID
			}
			if err := e.Store.AppendAudit(context.WithoutCancel(ctx), m.Audit.GetEvents()); err != nil {
				log.Error("audit events from edge not recorded", "count", len(m.Audit.GetEvents()), "err", err)
			}
		case *atraxv1.SyncRequest_Hello:
			return status.Error(codes.InvalidArgument, "a Sync stream takes one hello, first")
		default:
			return status.Error(codes.InvalidArgument, "unknown Sync message")
		}
	}
}
