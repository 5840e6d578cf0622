package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// target is one of the performance issue's targets, judged on this run.
type target struct {
	Name  string  `json:"name"`
	Want  string  `json:"want"`
	Got   float64 `json:"got"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
	Basis string  `json:"basis"`
}

// evaluate judges the targets on the figures that were measured.
func evaluate(res *results) []target {
	var out []target
	for _, l := range res.Latency {
		if l.Upstream != "streamable-http" || l.Downstream != "streamable" {
			continue
		}
		out = append(out,
			target{Name: "added p50 per tools/call (" + l.Auth + " token)", Want: "≤ 100 µs", Got: l.AddedP50.Median, Unit: "µs",
				Met: l.AddedP50.Median <= 100, Basis: "streamable HTTP upstream and downstream, concurrency 1, median over rounds of (atrax p50 − direct p50)"},
			target{Name: "p99 through Atrax / direct p99 (" + l.Auth + " token)", Want: "≤ 2", Got: l.P99Ratio, Unit: "×",
				Met: l.P99Ratio <= 2, Basis: "streamable HTTP upstream and downstream, concurrency 1"})
	}
	for _, t := range res.Throughput {
		if t.Sessions == 64 {
			out = append(out, target{Name: "throughput at 64 sessions, through / direct (" + t.Auth + " token)", Want: "≥ 0.70", Got: t.Ratio, Unit: "×",
				Met: t.Ratio >= 0.7, Basis: "streamable HTTP, medians of rounds"})
		}
	}
	for _, m := range res.Memory {
		kib := m.AtraxBytesPerSession / 1024
		out = append(out, target{Name: "edge memory per idle " + m.Transport + " session", Want: "≤ 32 KiB", Got: kib, Unit: "KiB",
			Met: kib <= 32, Basis: fmt.Sprintf("VmRSS growth over %d sessions", m.Sessions)})
	}
	for _, l := range res.ToolsList {
		if l.Upstreams == 50 {
			out = append(out, target{Name: "merged tools/list over 50 upstreams, p99", Want: "≤ 1000 µs", Got: l.AtraxP99.Median, Unit: "µs",
				Met: l.AtraxP99.Median <= 1000, Basis: "every page of 1000 tools, concurrency 1"})
		}
	}
	return out
}

func printTable(w io.Writer, res *results) {
	m := res.Machine
	fmt.Fprintf(w, "\nAtrax %s — %d CPUs (%s), %s RAM, %s, %s\n", res.Version, m.NProc, m.CPUModel, m.MemTotal, m.Kernel, m.Go)
	fmt.Fprintf(w, "median of %v rounds [lowest–highest round]; ratio = through Atrax / direct\n", res.Settings["rounds"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(res.Latency) > 0 {
		fmt.Fprintf(w, "\ntools/call latency, concurrency 1 (µs)\n")
		fmt.Fprintln(tw, "upstream\tdownstream\tauth\tdirect p50\tatrax p50\tadded p50\tdirect p99\tatrax p99\tp50 ×\tp99 ×\t")
		for _, l := range res.Latency {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", l.Upstream, l.Downstream, l.Auth,
				l.DirectP50, l.AtraxP50, l.AddedP50, l.DirectP99, l.AtraxP99, l.P50Ratio, l.P99Ratio)
		}
		tw.Flush()
		if f := res.Floor; f != nil {
			fmt.Fprintf(w, "floor: net/http/httputil.ReverseProxy in front of the same upstream, same run: direct p50 %s, proxied p50 %s, added %s; p99 %s → %s\n",
				f.DirectP50, f.AtraxP50, f.AddedP50, f.DirectP99, f.AtraxP99)
		}
	}
	if len(res.Throughput) > 0 {
		fmt.Fprintf(w, "\ntools/call throughput (calls/s) and CPU per call (µs), streamable HTTP upstream and downstream\n")
		fmt.Fprintln(tw, "sessions\tauth\tdirect\tatrax\t×\tatrax p50\tatrax p99\tedge CPU/call\tupstream CPU/call direct\tupstream CPU/call via atrax\t")
		for _, t := range res.Throughput {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n", t.Sessions, t.Auth, t.Direct, t.Atrax, t.Ratio,
				t.AtraxP50, t.AtraxP99, t.EdgeCPU, t.UpstreamCPUDirect, t.UpstreamCPUAtrax)
		}
		tw.Flush()
		if f := res.FloorThroughput; f != nil {
			fmt.Fprintf(w, "floor: the reverse proxy at %d sessions, same run: direct %s, proxied %s calls/s (%.2f×); proxy CPU/call %s µs\n",
				f.Sessions, f.Direct, f.Atrax, f.Ratio, f.EdgeCPU)
		}
	}
	if len(res.ToolsList) > 0 {
		fmt.Fprintf(w, "\ntools/list latency, concurrency 1 (µs): merged list through Atrax vs one upstream's 20 tools direct\n")
		fmt.Fprintln(tw, "upstreams\ttools\tdirect p50\tatrax p50\tdirect p99\tatrax p99\tp50 ×\tp99 ×\t")
		for _, l := range res.ToolsList {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", l.Upstreams, l.Tools, l.DirectP50, l.AtraxP50, l.DirectP99, l.AtraxP99, l.P50Ratio, l.P99Ratio)
		}
		tw.Flush()
	}
	if len(res.Memory) > 0 {
		fmt.Fprintf(w, "\nresident memory per idle session (KiB)\n")
		fmt.Fprintln(tw, "transport\tsessions\tatrax\tdirect\t×\tatrax RSS before→after (MiB)\t")
		for _, mr := range res.Memory {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.2f\t%.1f → %.1f\t\n", mr.Transport, mr.Sessions, mr.AtraxBytesPerSession/1024, mr.DirectBytesPerSession/1024, mr.Ratio,
				float64(mr.AtraxRSSBefore)/(1<<20), float64(mr.AtraxRSSAfter)/(1<<20))
		}
		tw.Flush()
	}
	if s := res.Startup; s != nil {
		fmt.Fprintf(w, "\nstart-up until the merged tool list of %d stdio upstreams is served (ms)\n", s.Upstreams)
		fmt.Fprintln(tw, "direct\tatrax\t×\t")
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t\n", s.Direct, s.Atrax, s.Ratio)
		tw.Flush()
	}
	if len(res.Targets) > 0 {
		fmt.Fprintf(w, "\ntargets\n")
		for _, t := range res.Targets {
			mark := "met   "
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(w, "  %s %-62s %s, want %s\n", mark, t.Name, strings.TrimSpace(fmt.Sprintf("%.2f %s", t.Got, t.Unit)), t.Want)
		}
	}
	if len(res.Profiles) > 0 {
		fmt.Fprintf(w, "\nprofiles of the edge: %s, %s (%s); go tool pprof -top bin/atrax %s\n", res.Profiles["cpu"], res.Profiles["allocs"], res.Profiles["load"], res.Profiles["cpu"])
	}
	fmt.Fprintf(w, "\nelapsed %s\n", res.Elapsed)
}
