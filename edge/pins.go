package edge

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/edge/router"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// actionToolChanged is the audit action of a tool definition that changed
// under a running server.
const actionToolChanged = "tool.changed"

// toolChanged logs and audits a tool whose definition changed under a
// running server (the router tells, once per new definition), and reports
// the server's tools awaiting approval to the control plane.
func (e *edgeServer) toolChanged(c router.ToolChange) {
	outcome, msg := "ok", "tool definition changed under a running server"
	if c.Hidden {
		outcome, msg = "denied", "tool definition changed under a running server; hidden until an admin approves it"
	}
	e.log.Warn(msg, "server", c.Server, "tool", c.Tool, "change", c.Change, "digest", c.Digest, "previous", c.Previous, "pinned", c.Hidden)
	details := map[string]string{"change": c.Change, "digest": c.Digest}
	if c.Previous != "" {
		details["previous"] = c.Previous
	}
	if c.Hidden {
		details["pinned"] = "true"
	}
	if e.watcher != nil {
		e.watcher.Audit(&atraxv1.AuditEvent{
			Time: timestamppb.New(time.Now()), Actor: "edge:" + e.id, Action: actionToolChanged,
			Server: c.Server, Tool: c.Tool, Outcome: outcome, Details: details,
		})
	}
	e.queueReport()
}

// withPins adds, to the reported state of each server that pins its
// tools, its tools' digests and those awaiting approval.
func withPins(upstreams []*atraxv1.UpstreamStatus, pins map[string][]router.PinStatus) {
	for _, u := range upstreams {
		for _, p := range pins[u.GetName()] {
			u.ToolPins = append(u.ToolPins, &atraxv1.ToolPin{Name: p.Tool, Digest: p.Digest, Pending: p.Pending})
			if p.Pending {
				u.PendingTools = append(u.PendingTools, p.Tool)
			}
		}
	}
}
