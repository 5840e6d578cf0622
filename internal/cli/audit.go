package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// maxPage is the largest page ListAuditEvents serves.
const maxPage = 1000

var auditCmd = &command{
	name:    "audit",
	summary: "read the audit log, newest first",
	detail: `
Every change through the control plane and every tool call is recorded: who,
what, which server and tool, the outcome. Filters combine; --since and
--until take a duration back from now (90m, 24h) or a time (2026-05-01,
2026-05-01T10:00:00Z).

  atrax audit --action server.create --since 24h
  atrax audit --actor static:ci --outcome error -o json`,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		var req atraxv1.ListAuditEventsRequest
		var since, until string
		var limit int
		fs.StringVar(&req.Actor, "actor", "", "only events by `ACTOR` (client:ID, static:NAME, ...)")
		fs.StringVar(&req.Action, "action", "", "only events of `ACTION` (server.create, token.issue, tool.call, ...)")
		fs.StringVar(&req.Server, "server", "", "only events about server `NAME`")
		fs.StringVar(&req.Tool, "tool", "", "only calls of tool `NAME`")
		fs.StringVar(&req.Outcome, "outcome", "", "only events with `OUTCOME`: ok, error or denied")
		fs.StringVar(&since, "since", "", "only events from `WHEN` on: a duration back from now, or a time")
		fs.StringVar(&until, "until", "", "only events before `WHEN`")
		fs.IntVar(&limit, "limit", 50, "show at most `N` events (0: all)")
		return func(ctx context.Context, _ []string) error {
			now := time.Now()
			if since != "" {
				t, err := parseWhen(since, now)
				if err != nil {
					return usagef("--since %q: %v", since, err)
				}
				req.StartTime = timestamppb.New(t)
			}
			if until != "" {
				t, err := parseWhen(until, now)
				if err != nil {
					return usagef("--until %q: %v", until, err)
				}
				req.EndTime = timestamppb.New(t)
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			c, err := r.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			all := &atraxv1.ListAuditEventsResponse{}
			for {
				page := maxPage
				if limit > 0 {
					page = min(maxPage, limit-len(all.Events))
				}
				req.PageSize = int32(page)
				cctx, cancel := c.call(ctx)
				resp, err := c.Audit.ListAuditEvents(cctx, &req)
				cancel()
				if err != nil {
					return c.explain(err, about{})
				}
				all.Events = append(all.Events, resp.GetEvents()...)
				all.NextPageToken = resp.GetNextPageToken()
				if all.NextPageToken == "" || (limit > 0 && len(all.Events) >= limit) {
					break
				}
				req.PageToken = all.NextPageToken
			}
			if out.json() {
				return writeJSON(e.stdout, all)
			}
			if len(all.Events) == 0 {
				fmt.Fprintln(e.stdout, "No audit events match.")
				return nil
			}
			t := newTable(e.stdout, "TIME", "ACTOR", "ACTION", "SERVER", "TOOL", "OUTCOME", "DURATION", "ERROR")
			for _, ev := range all.Events {
				t.row(when(ev.GetTime()), ev.GetActor(), ev.GetAction(), ev.GetServer(), ev.GetTool(), ev.GetOutcome(), duration(ev.GetDuration()), clip(ev.GetError(), 60))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if all.NextPageToken != "" {
				fmt.Fprintf(e.stderr, "(the %d newest shown; --limit N or --limit 0 shows more)\n", len(all.Events))
			}
			return nil
		}
	},
}

// parseWhen reads a duration back from now ("90m", "24h", "7d") or a time
// (RFC 3339, or a date).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if n := len(s); n > 1 && s[n-1] == 'd' {
		var days int
		if _, err := fmt.Sscanf(s, "%dd", &days); err == nil && days > 0 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want a duration back from now (90m, 24h, 7d) or a time (2026-05-01, 2026-05-01T10:00:00Z)")
}
