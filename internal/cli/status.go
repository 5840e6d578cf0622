package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// pollEvery is how often status --wait asks again.
const pollEvery = 500 * time.Millisecond

var statusCmd = &command{
	name:    "status",
	summary: "show each server's state on each edge",
	detail: `
One table per edge: each server's state there (starting, running,
restarting, failed, stopped), its transport, how many tools it offers, how
often it restarted, and its last error. Status is public: no token needed.

With --wait, status waits until every server whose desired state is running
runs on every connected edge (and at least one edge is connected), showing
progress on a terminal; it fails at once if a server failed, and after
--wait-timeout if they are not all up by then.`,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, "`TOKEN` (status needs none)")
		out := addOutputFlag(fs)
		var wait bool
		var timeout time.Duration
		fs.BoolVar(&wait, "wait", false, "wait until every server runs on every edge")
		fs.DurationVar(&timeout, "wait-timeout", 2*time.Minute, "give up waiting after `DURATION`")
		text := func(st *atraxv1.GetStatusResponse) error { return printStatus(e.stdout, st, time.Now()) }
		return func(ctx context.Context, _ []string) error {
			if !wait {
				return unary(ctx, r, *out, rpc[*atraxv1.GetStatusResponse]{
					call: func(ctx context.Context, c *client) (*atraxv1.GetStatusResponse, error) {
						return c.Status.GetStatus(ctx, &atraxv1.GetStatusRequest{})
					},
					text: text,
				})
			}
			c, err := r.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			st, waitErr := e.waitRunning(ctx, c, timeout)
			if st == nil {
				return waitErr
			}
			if out.json() {
				err = writeJSON(e.stdout, st)
			} else {
				err = text(st)
			}
			return errors.Join(waitErr, err)
		}
	},
}

// waitRunning polls GetStatus until every server that should run runs on
// every connected edge. It returns the last status it got (nil if none) and
// why it stopped waiting, if not because all run.
func (e *env) waitRunning(ctx context.Context, c *client, timeout time.Duration) (*atraxv1.GetStatusResponse, error) {
	p := newProgress(e.stderr, e.interactive)
	defer p.end()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *atraxv1.GetStatusResponse
	var lastErr error
	for {
		cctx, ccancel := c.call(ctx)
		st, err := c.Status.GetStatus(cctx, &atraxv1.GetStatusRequest{})
		ccancel()
		switch {
		case err == nil:
			last, lastErr = st, nil
			ready, total, waiting, failed := readiness(st)
			if len(failed) > 0 {
				return st, fmt.Errorf("stopped waiting: %s", strings.Join(failed, "; "))
			}
			if len(waiting) == 0 {
				return st, nil
			}
			p.set(fmt.Sprintf("waiting for servers: %d/%d running (%s)", ready, total, clip(strings.Join(waiting, ", "), 70)))
		case status.Code(err) == codes.Unavailable && ctx.Err() == nil:
			// The control plane may still be starting; TLS that does not
			// fit will not start to.
			lastErr = c.explain(err, about{})
			var te *tlsError
			if errors.As(lastErr, &te) {
				return last, lastErr
			}
			p.set("waiting for the control plane at " + c.addr)
		default:
			if ctx.Err() == nil {
				return last, c.explain(err, about{})
			}
		}
		select {
		case <-time.After(pollEvery):
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("gave up after %v: %w", timeout, lastErr)
			}
			if last == nil {
				return nil, fmt.Errorf("gave up after %v: %w", timeout, ctx.Err())
			}
			_, _, waiting, _ := readiness(last)
			return last, fmt.Errorf("not every server runs after %v: %s (see the table above, or `atrax servers get NAME`)", timeout, strings.Join(waiting, ", "))
		}
	}
}

// readiness counts the (edge, server) pairs that run out of those that
// should, and lists those that wait and those that failed.
func readiness(st *atraxv1.GetStatusResponse) (ready, total int, waiting, failed []string) {
	var edges []*atraxv1.EdgeStatus
	for _, ed := range st.GetEdges() {
		if ed.GetConnected() {
			edges = append(edges, ed)
		}
	}
	if len(edges) == 0 {
		return 0, 0, []string{"no edge is connected"}, nil
	}
	for _, ed := range edges {
		ups := map[string]*atraxv1.UpstreamStatus{}
		for _, u := range ed.GetUpstreams() {
			ups[u.GetName()] = u
		}
		for _, s := range st.GetServers() {
			if s.GetState() != "running" {
				continue
			}
			total++
			u := ups[s.GetName()]
			switch {
			case u == nil:
				waiting = append(waiting, fmt.Sprintf("%s (not reported) on edge %s", s.GetName(), ed.GetEdgeId()))
			case u.GetState() == "running":
				ready++
			case u.GetState() == "failed":
				msg := fmt.Sprintf("server %s failed on edge %s", s.GetName(), ed.GetEdgeId())
				if u.GetLastError() != "" {
					msg += ": " + clip(u.GetLastError(), 200)
				}
				failed = append(failed, msg)
			default:
				waiting = append(waiting, fmt.Sprintf("%s (%s) on edge %s", s.GetName(), u.GetState(), ed.GetEdgeId()))
			}
		}
	}
	return ready, total, waiting, failed
}

// printStatus writes the status tables.
func printStatus(w io.Writer, st *atraxv1.GetStatusResponse, now time.Time) error {
	connected := 0
	for _, ed := range st.GetEdges() {
		if ed.GetConnected() {
			connected++
		}
	}
	fmt.Fprintf(w, "Atrax %s, registry version %d: %s, %s connected\n",
		st.GetVersion(), st.GetRegistryVersion(), plural(len(st.GetServers()), "server", "servers"), plural(connected, "edge", "edges"))
	if st.GetStatus() == "degraded" {
		fmt.Fprintf(w, "Degraded: %s\n", st.GetReason())
	}
	if len(st.GetEdges()) == 0 {
		fmt.Fprintln(w, "\nNo edge has reported to the control plane. Desired states:")
		t := newTable(w, "SERVER", "DESIRED", "TRANSPORT", "SOURCE")
		for _, s := range st.GetServers() {
			t.row(s.GetName(), s.GetState(), s.GetTransportType(), s.GetSource())
		}
		return t.flush()
	}
	for _, ed := range st.GetEdges() {
		// With the control plane that holds (or held) its Sync stream.
		state := "connected"
		if ed.GetReplica() != "" {
			state += " to " + ed.GetReplica()
		}
		if !ed.GetConnected() {
			state = "disconnected"
			if ed.GetReplica() != "" {
				state += " from " + ed.GetReplica()
			}
			state += ", last seen " + ago(ed.GetLastSeenTime(), now)
		}
		var sessions []string
		for _, sc := range ed.GetSessions() {
			sessions = append(sessions, fmt.Sprintf("%s %d", sc.GetTransport(), sc.GetCount()))
		}
		line := fmt.Sprintf("\nEdge %s at %s (%s, snapshot %d", ed.GetEdgeId(), cell(ed.GetAddress()), state, ed.GetSnapshotVersion())
		if len(sessions) > 0 {
			line += ", sessions: " + strings.Join(sessions, ", ")
		}
		fmt.Fprintln(w, line+")")
		t := newTable(w, "SERVER", "STATE", "TRANSPORT", "TOOLS", "RESTARTS", "LAST ERROR")
		ups := map[string]*atraxv1.UpstreamStatus{}
		for _, u := range ed.GetUpstreams() {
			ups[u.GetName()] = u
		}
		seen := map[string]bool{}
		for _, s := range st.GetServers() {
			seen[s.GetName()] = true
			u := ups[s.GetName()]
			switch {
			case u == nil && s.GetState() == "stopped":
				// Edges report only the servers they run.
				t.row(s.GetName(), "stopped", s.GetTransportType(), "-", "-", "-")
				continue
			case u == nil:
				t.row(s.GetName(), "-", s.GetTransportType(), "-", "-", "not reported by this edge yet")
				continue
			}
			t.row(upstreamRow(u, s.GetTransportType())...)
		}
		for _, u := range ed.GetUpstreams() {
			if !seen[u.GetName()] {
				t.row(upstreamRow(u, "")...)
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	printHeld(w, st)
	return nil
}

// printHeld says which tools edges hold back for servers with pinTools, and
// how to let them through.
func printHeld(w io.Writer, st *atraxv1.GetStatusResponse) {
	held := map[string][]string{}
	var servers []string
	for _, ed := range st.GetEdges() {
		for _, u := range ed.GetUpstreams() {
			for _, tool := range u.GetPendingTools() {
				if !slices.Contains(held[u.GetName()], tool) {
					if held[u.GetName()] == nil {
						servers = append(servers, u.GetName())
					}
					held[u.GetName()] = append(held[u.GetName()], tool)
				}
			}
		}
	}
	if len(servers) == 0 {
		return
	}
	slices.Sort(servers)
	fmt.Fprintln(w, "\nHeld back until an admin approves them (pinTools):")
	for _, s := range servers {
		tools := held[s]
		slices.Sort(tools)
		fmt.Fprintf(w, "  %s: %s (approve with `atrax servers approve %s`)\n", s, strings.Join(tools, ", "), s)
	}
}

func upstreamRow(u *atraxv1.UpstreamStatus, transport string) []string {
	if u.GetTransportType() != "" {
		transport = u.GetTransportType()
	}
	tools := fmt.Sprint(u.GetToolCount())
	if n := len(u.GetPendingTools()); n > 0 {
		tools += fmt.Sprintf(" (+%d held)", n)
	}
	return []string{u.GetName(), u.GetState(), transport, tools, fmt.Sprint(u.GetRestarts()), clip(u.GetLastError(), 70)}
}
