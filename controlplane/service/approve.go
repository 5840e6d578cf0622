package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/store"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/logctx"
)

// errApprove is an approval the edges' reports cannot back.
var errApprove = errors.New("cannot approve")

// ApproveServerTools approves the tool definitions of a server with
// pinTools as the connected edges report them (see approval): the edges of
// every control plane sharing the store, so that an admin may approve
// through any replica.
func (s *Servers) ApproveServerTools(ctx context.Context, req *atraxv1.ApproveServerToolsRequest) (*atraxv1.ApproveServerToolsResponse, error) {
	if req.GetName() == "" {
		return nil, required("name")
	}
	// Read the reports before the registry's lock is taken: with a shared
	// store that is a read from etcd.
	var (
		reports []fleet.Upstream
		rerr    error
	)
	if s.Fleet != nil {
		rctx, cancel := context.WithTimeout(ctx, listEdgesTimeout)
		reports, rerr = s.Fleet.Upstreams(rctx, req.GetName())
		cancel()
	}
	var names []string
	srv, err := s.Registry.ApproveTools(ctx, req.GetName(), func(cur *atraxv1.Server) (map[string]string, error) {
		if rerr != nil {
			// An approval from this replica's edges alone could miss
			// a definition another replica's edges disagree on.
			return nil, fmt.Errorf("%w: read the tool reports of the edges of the other control planes: %w", store.ErrUnavailable, rerr)
		}
		approved, err := approval(cur, reports, req.GetTools())
		names = slices.Sorted(maps.Keys(approved))
		return approved, err
	})
	s.auditApproval(ctx, req.GetName(), names, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.ApproveServerToolsResponse{Server: srv, Approved: names}, nil
}

// approval returns the digests to approve for server cur from the edges'
// reports: those of the tools named in want (every tool awaiting approval
// when want is empty) and, while the approved set lacks them, those of the
// tools the edges serve (trusted on first sight), so that the approved set
// becomes whole. A tool the edges disagree on is an error.
func approval(cur *atraxv1.Server, reports []fleet.Upstream, want []string) (map[string]string, error) {
	type seen struct {
		digests map[string]bool
		pending bool
	}
	tools := map[string]*seen{}
	for _, u := range reports {
		for _, p := range u.Status.GetToolPins() {
			t := tools[p.GetName()]
			if t == nil {
				t = &seen{digests: map[string]bool{}}
				tools[p.GetName()] = t
			}
			t.digests[p.GetDigest()] = true
			t.pending = t.pending || p.GetPending()
		}
	}
	if len(tools) == 0 {
		return nil, fmt.Errorf("%w: no connected edge reports the tools of %q; approve once an edge runs it", errApprove, cur.GetName())
	}
	wanted := map[string]bool{}
	for _, name := range want {
		if tools[name] == nil {
			return nil, fmt.Errorf("%w: no connected edge reports a tool %q of %q", errApprove, name, cur.GetName())
		}
		wanted[name] = true
	}
	old := cur.GetApprovedTools()
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(tools)) {
		t := tools[name]
		take := old[name] == "" && !t.pending // trusted on first sight
		if t.pending {
			take = len(want) == 0 || wanted[name]
		}
		if !take {
			continue
		}
		if len(t.digests) != 1 {
			return nil, fmt.Errorf("%w: the edges report %d different definitions of tool %q; restart %q so that they agree, then approve", errApprove, len(t.digests), name, cur.GetName())
		}
		for d := range t.digests {
			if old[name] != d {
				out[name] = d
			}
		}
	}
	return out, nil
}

// auditApproval records an approval, with the tools it approved.
func (s *Servers) auditApproval(ctx context.Context, server string, tools []string, err error) {
	a := s.Audit
	if a == nil || a.Store == nil {
		return
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	ev := &atraxv1.AuditEvent{
		Time: timestamppb.New(now()), Actor: actor(ctx), Action: "tool.approve", Server: server, Outcome: "ok",
		Details:   map[string]string{"tools": strings.Join(tools, ",")},
		RequestId: logctx.RequestID(ctx),
	}
	if err != nil {
		ev.Outcome, ev.Error = "error", err.Error()
	}
	if werr := a.Store.AppendAudit(context.WithoutCancel(ctx), []*atraxv1.AuditEvent{ev}); werr != nil && a.Logger != nil {
		a.Logger.Error("audit event not recorded", "action", ev.Action, "server", server, "err", werr)
	}
}
