package edge

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/upstream"
)

// readiness is the body of /ready.
type readiness struct {
	// Status is "ready" or "not ready".
	Status string `json:"status"`
	// Reason says why the edge is not ready.
	Reason string `json:"reason,omitempty"`
	// SnapshotVersion is the version of the snapshot applied, 0 for none.
	SnapshotVersion int64 `json:"snapshotVersion"`
	// ControlPlane is "connected" or "disconnected". An edge that has
	// applied a snapshot serves on while the control plane is away, so
	// this alone does not make it unready.
	ControlPlane string `json:"controlPlane"`
	// Servers is the state of every server the edge should run.
	Servers map[string]string `json:"servers"`
	// NotRunning are the servers that should run and do not, with their
	// last error.
	NotRunning []notRunning `json:"notRunning,omitempty"`
}

type notRunning struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// ready answers /ready: 200 once the edge has applied a snapshot from the
// control plane and every server that should run is running, 503 until
// then, with a JSON body that says why. It is public, like /health (which
// stays liveness: the process answers).
func (e *edgeServer) ready(w http.ResponseWriter, _ *http.Request) {
	body := readiness{Status: "ready", SnapshotVersion: e.watcher.Version(), ControlPlane: "disconnected", Servers: map[string]string{}}
	if e.watcher.Connected() {
		body.ControlPlane = "connected"
	}
	statuses := e.pool.Statuses()
	for _, st := range statuses {
		body.Servers[st.Name] = st.State
		if st.State != upstream.StateRunning {
			body.NotRunning = append(body.NotRunning, notRunning{Name: st.Name, State: st.State, Error: st.LastError})
		}
	}
	switch {
	case !e.applied.Load():
		body.Reason = "no snapshot applied yet: the control plane has not been reached"
	case len(body.NotRunning) > 0:
		body.Reason = fmt.Sprintf("%d of %d servers are not running", len(body.NotRunning), len(statuses))
	}
	code := http.StatusOK
	if body.Reason != "" {
		body.Status = "not ready"
		code = http.StatusServiceUnavailable
	}
	data, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

// forgetRemoved drops what the edge kept of servers no longer routed to:
// their references and their metric series.
func (e *edgeServer) forgetRemoved(entries []*router.Entry) {
	live := make(map[string]bool, len(entries))
	for _, en := range entries {
		live[en.Server.Name()] = true
	}
	for name := range e.refs {
		if !live[name] {
			delete(e.refs, name)
			e.metrics.forgetServer(name)
		}
	}
}
