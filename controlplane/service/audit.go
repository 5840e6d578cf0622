package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/logctx"
)

// Auditor records control-plane changes in the store's audit log.
type Auditor struct {
	Store  store.Store
	Logger *slog.Logger
	Now    func() time.Time
}

// Change records an attempted change by the caller in ctx; err is its
// outcome. A failure to record is logged, never returned: the change itself
// has already happened or failed.
func (a *Auditor) Change(ctx context.Context, action, server string, err error) {
	a.ChangeWith(ctx, action, server, nil, err)
}

// ChangeWith is Change with details (such as the jti a revocation names).
func (a *Auditor) ChangeWith(ctx context.Context, action, server string, details map[string]string, err error) {
	if a == nil || a.Store == nil {
		return
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	ev := &atraxv1.AuditEvent{
		Time:    timestamppb.New(now()),
		Actor:   actor(ctx),
		Action:  action,
		Server:  server,
		Outcome: "ok",
		// The id of the request that asked, in the logs too.
		RequestId: logctx.RequestID(ctx),
		Details:   details,
	}
	if err != nil {
		ev.Outcome = "error"
		ev.Error = err.Error()
	}
	// The change is done; its record must not be lost to the caller's
	// cancellation.
	if werr := a.Store.AppendAudit(context.WithoutCancel(ctx), []*atraxv1.AuditEvent{ev}); werr != nil && a.Logger != nil {
		a.Logger.Error("audit event not recorded", "action", action, "server", server, "err", werr)
	}
}

// Token records a token request: who asked (the client, the static
// token's name, or the caller) and the jti issued, never the token.
func (a *Auditor) Token(ctx context.Context, r issuer.Request, jti string, err error) {
	if a == nil || a.Store == nil {
		return
	}
	who := actor(ctx)
	switch {
	case r.ClientID != "":
		who = "client:" + r.ClientID
	case r.StaticToken != "":
		who = "static token"
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	ev := &atraxv1.AuditEvent{
		Time: timestamppb.New(now()), Actor: who, Action: "token.issue", Outcome: "ok",
		Details:   map[string]string{"jti": jti, "scope": r.Scope},
		RequestId: logctx.RequestID(ctx),
	}
	if err != nil {
		ev.Outcome, ev.Error = "error", err.Error()
		delete(ev.Details, "jti")
	}
	if werr := a.Store.AppendAudit(context.WithoutCancel(ctx), []*atraxv1.AuditEvent{ev}); werr != nil && a.Logger != nil {
		a.Logger.Error("audit event not recorded", "action", ev.Action, "err", werr)
	}
}

func actor(ctx context.Context) string {
	if p := authn.FromContext(ctx); p != nil {
		return p.Subject
	}
	return "unknown"
}

// AuditLog implements atraxv1.AuditServiceServer.
type AuditLog struct {
	atraxv1.UnimplementedAuditServiceServer
	Store store.Store
}

var _ atraxv1.AuditServiceServer = (*AuditLog)(nil)

func (a *AuditLog) ListAuditEvents(ctx context.Context, req *atraxv1.ListAuditEventsRequest) (*atraxv1.ListAuditEventsResponse, error) {
	if req.GetPageSize() < 0 || req.GetPageSize() > 1000 {
		return nil, badField("page_size", "must be between 0 and 1000")
	}
	q := store.AuditQuery{
		Limit:   int(req.GetPageSize()),
		Cursor:  req.GetPageToken(),
		Actor:   req.GetActor(),
		Action:  req.GetAction(),
		Server:  req.GetServer(),
		Tool:    req.GetTool(),
		Outcome: req.GetOutcome(),
	}
	if req.GetStartTime() != nil {
		q.Since = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		q.Until = req.GetEndTime().AsTime()
	}
	events, next, err := a.Store.ListAudit(ctx, q)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, badField("page_token", "not a page token from a previous response")
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.ListAuditEventsResponse{Events: events, NextPageToken: next}, nil
}
