package edge

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"time"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/edge/upstream"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// /debug/* (net/http/pprof and /debug/state, a JSON dump of the sessions
// and upstreams) is for a developer on the machine: it is served only in
// development mode (Options.Development, which atrax sets from
// ATRAX_ENV=development or NODE_ENV=development) and, even then, only when
// the public listener is a loopback address. It needs a token with the
// admin scope, like every path but /health. Otherwise /debug/ is one more
// unknown path: 404 after auth.

// debugAllowed reports whether /debug/* is served on lis.
func debugAllowed(development bool, lis net.Addr) bool {
	if !development {
		return false
	}
	tcp, ok := lis.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// registerDebug adds /debug/* to mux.
func (e *edgeServer) registerDebug(mux *http.ServeMux) {
	dbg := http.NewServeMux()
	dbg.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile
	dbg.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	dbg.HandleFunc("/debug/pprof/profile", pprof.Profile)
	dbg.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	dbg.HandleFunc("/debug/pprof/trace", pprof.Trace)
	dbg.HandleFunc("GET /debug/state", e.debugState)
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := authn.FromContext(r.Context()); p == nil || !p.HasScope(authn.ScopeAdmin) {
			httpauth.DenyScope(w, r, authn.ScopeAdmin, "/debug needs the admin scope")
			return
		}
		dbg.ServeHTTP(w, r)
	})
	mux.Handle("/debug/", httpauth.Require(e.counted, admin))
}

// debugSession is one session in /debug/state. Ids are cut short: they
// are bearer handles of their sessions.
type debugSession struct {
	ID        string `json:"id,omitempty"`
	Transport string `json:"transport"`
	Principal string `json:"principal"`
	Version   string `json:"protocolVersion,omitempty"`
	Age       string `json:"age"`
	Idle      string `json:"idle"`
}

type debugState struct {
	EdgeID      string                        `json:"edgeId"`
	Version     string                        `json:"version"`
	Goroutines  int                           `json:"goroutines"`
	Sessions    []debugSession                `json:"sessions"`
	Upstreams   []upstream.Status             `json:"upstreams"`
	Conflicts   []router.Conflict             `json:"conflicts,omitempty"`
	PinnedTools map[string][]router.PinStatus `json:"pinnedTools,omitempty"`
	Limits      limits.Usage                  `json:"limits"`
}

func (e *edgeServer) debugState(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	st := debugState{
		EdgeID: e.id, Version: e.version, Goroutines: runtime.NumGoroutine(),
		Sessions:  []debugSession{},
		Upstreams: e.pool.Statuses(),
		Conflicts: e.router.Conflicts(),
		Limits:    e.limits.Usage(),
	}
	if pins := e.router.Pins(); len(pins) > 0 {
		st.PinnedTools = pins
	}
	e.sessions.Each(func(s *session.Session) {
		id := s.ID
		if i := strings.IndexByte(id, '.'); i >= 0 && len(id) > i+7 {
			id = id[:i+7] + "…"
		}
		st.Sessions = append(st.Sessions, debugSession{
			ID: id, Transport: s.Transport, Principal: s.Principal.Subject, Version: s.Version(),
			Age: now.Sub(s.Created).Round(time.Second).String(), Idle: s.Idle(now).Round(time.Second).String(),
		})
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
