package edge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/edge/upstream"
	"github.com/atrax-mcp/atrax/internal/metrics"
)

// The edge's Prometheus metrics (docs/operations.md lists them). They live
// on a registry of the edge's own. What a scrape can read from the edge's
// state (sessions, upstream states and restarts) is read then, by
// edgeCollector, and costs the data path nothing; what happens per request
// is counted through label children resolved once and kept.

// Methods counted by name in atrax_mcp_requests_total; any other is
// "other", so that a client cannot make up label values.
var requestMethods = [...]string{
	protocol.MethodInitialize, protocol.MethodPing,
	protocol.MethodToolsList, protocol.MethodToolsCall,
	protocol.MethodPromptsList, protocol.MethodPromptsGet,
	protocol.MethodResourcesList, protocol.MethodResourceTemplatesList, protocol.MethodResourcesRead,
	protocol.MethodResourcesSubscribe, protocol.MethodResourcesUnsubscribe,
	protocol.MethodCompletionComplete, protocol.MethodLoggingSetLevel,
	protocol.MethodServerDiscover, protocol.MethodSubscriptionsListen,
	"tasks/get", "tasks/result", "tasks/list", "tasks/cancel",
	"other",
}

var methodIndex = func() map[string]int {
	m := make(map[string]int, len(requestMethods))
	for i, name := range requestMethods {
		m[name] = i
	}
	return m
}()

// methodOf returns the index of method in requestMethods.
func methodOf(method string) int {
	if i, ok := methodIndex[method]; ok {
		return i
	}
	return len(requestMethods) - 1
}

// outcome is how a request ended, the outcome label.
type outcome int

const (
	outcomeOK        outcome = iota
	outcomeError             // a JSON-RPC error
	outcomeToolError         // a tools/call result with isError
	outcomeCancelled         // cancelled by the client (or the edge stopping)
	outcomeTimeout           // the server did not answer in time
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "error", "tool_error", "cancelled", "timeout"}

func (o outcome) String() string { return outcomeNames[o] }

// upstreamStates are the values of atrax_upstream_state's state label.
var upstreamStates = [...]string{
	upstream.StateStarting, upstream.StateRunning, upstream.StateRestarting, upstream.StateFailed, upstream.StateStopped,
}

// callBuckets are the bounds of the upstream call histogram, in seconds:
// tools run from milliseconds to the five minutes of the default timeout.
var callBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// edgeMetrics are the metrics an edge updates as it works.
type edgeMetrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	callDuration  *prometheus.HistogramVec
	inflight      *prometheus.GaugeVec
	verifications *metrics.Verifications
	// local counts the requests the edge answers itself (server "").
	local *requestCounters
}

func newEdgeMetrics(e *edgeServer) *edgeMetrics {
	reg := metrics.NewRegistry()
	m := &edgeMetrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrax_mcp_requests_total",
			Help: "MCP requests from clients, by method, the server that answered (empty when the edge answered itself) and outcome (ok, error, tool_error, cancelled, timeout).",
		}, []string{"method", "server", "outcome"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrax_upstream_call_duration_seconds",
			Help:    "Duration of the requests the edge sends to each upstream server, until its answer.",
			Buckets: callBuckets,
		}, []string{"server"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrax_upstream_inflight_calls",
			Help: "Requests sent to each upstream server and not answered yet (its queue depth).",
		}, []string{"server"}),
		verifications: metrics.NewVerifications(reg),
	}
	m.local = &requestCounters{vec: m.requests}
	reg.MustRegister(m.requests, m.callDuration, m.inflight, edgeCollector{e})
	return m
}

// serverMetrics are the label children of one server, resolved once.
type serverMetrics struct {
	requests *requestCounters
	duration prometheus.Observer
	inflight prometheus.Gauge
}

func (m *edgeMetrics) forServer(name string) serverMetrics {
	return serverMetrics{
		requests: &requestCounters{vec: m.requests, server: name},
		duration: m.callDuration.WithLabelValues(name),
		inflight: m.inflight.WithLabelValues(name),
	}
}

// forgetServer drops the series of a server that is gone.
func (m *edgeMetrics) forgetServer(name string) {
	m.requests.DeletePartialMatch(prometheus.Labels{"server": name})
	m.callDuration.DeleteLabelValues(name)
	m.inflight.DeleteLabelValues(name)
}

// requestCounters are the counters of one server's requests by method and
// outcome, each resolved on first use and then kept.
type requestCounters struct {
	vec    *prometheus.CounterVec
	server string
	c      [len(requestMethods) * int(numOutcomes)]atomic.Pointer[prometheus.Counter]
}

func (r *requestCounters) inc(method int, o outcome) {
	slot := &r.c[method*int(numOutcomes)+int(o)]
	c := slot.Load()
	if c == nil {
		// Racing first uses resolve the same child.
		child := r.vec.WithLabelValues(requestMethods[method], r.server, o.String())
		c = &child
		slot.Store(c)
	}
	(*c).Inc()
}

// edgeCollector reads, at scrape time, what the edge's state says.
type edgeCollector struct{ e *edgeServer }

var (
	sessionsDesc = prometheus.NewDesc("atrax_mcp_sessions",
		"Open client sessions, by transport (sse, streamable, and stateless: 2026-07-28 requests in flight) and era (the MCP revision; \"none\" before initialize).",
		[]string{"transport", "era"}, nil)
	upstreamStateDesc = prometheus.NewDesc("atrax_upstream_state",
		"1 for the state each upstream server is in (starting, running, restarting, failed, stopped), 0 for the others.",
		[]string{"server", "state"}, nil)
	upstreamRestartsDesc = prometheus.NewDesc("atrax_upstream_restarts_total",
		"Times each upstream server's connection went down and was started again, since its definition last changed.",
		[]string{"server"}, nil)
	snapshotDesc = prometheus.NewDesc("atrax_edge_snapshot_version",
		"Version of the last snapshot the edge applied; 0 before the first.", nil, nil)
	controlPlaneDesc = prometheus.NewDesc("atrax_edge_control_plane_connected",
		"1 while the edge's Sync stream to the control plane is up.", nil, nil)
)

func (c edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- upstreamStateDesc
	ch <- upstreamRestartsDesc
	ch <- snapshotDesc
	ch <- controlPlaneDesc
}

func (c edgeCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	type key struct{ transport, era string }
	sessions := map[key]int{}
	e.sessions.Each(func(s *session.Session) {
		era := s.Version()
		if era == "" {
			era = "none"
		}
		sessions[key{s.Transport, era}]++
	})
	for k, n := range sessions {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), k.transport, k.era)
	}
	for _, st := range e.pool.Statuses() {
		for _, state := range upstreamStates {
			v := 0.0
			if st.State == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(upstreamStateDesc, prometheus.GaugeValue, v, st.Name, state)
		}
		ch <- prometheus.MustNewConstMetric(upstreamRestartsDesc, prometheus.CounterValue, float64(st.Restarts), st.Name)
	}
	ch <- prometheus.MustNewConstMetric(snapshotDesc, prometheus.GaugeValue, float64(e.watcher.Version()))
	connected := 0.0
	if e.watcher.Connected() {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(controlPlaneDesc, prometheus.GaugeValue, connected)
}
