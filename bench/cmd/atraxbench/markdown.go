package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// renderMarkdown prints the figures of a results file as the Markdown
// tables of docs/performance.md.
func renderMarkdown(w io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m := res.Machine
	fmt.Fprintf(w, "Run of %s, Atrax %s, %s; %d CPUs (%s), %s RAM, Linux %s, %s, RLIMIT_NOFILE %d. "+
		"Each cell: median of %v rounds [lowest–highest round].\n\n",
		res.Date, res.Version, res.Elapsed, m.NProc, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.NoFileSoft, res.Settings["rounds"])
	if len(res.Latency) > 0 {
		fmt.Fprintf(w, "### tools/call latency, concurrency 1 (µs)\n\n")
		fmt.Fprintf(w, "| upstream | downstream | token | direct p50 | Atrax p50 | added p50 | direct p99 | Atrax p99 | p50 × | p99 × |\n")
		fmt.Fprintf(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		if f := res.Floor; f != nil {
			fmt.Fprintf(w, "| streamable-http | *null proxy* | none | %s | %s | %s | %s | %s | %.2f | %.2f |\n",
				f.DirectP50, f.AtraxP50, f.AddedP50, f.DirectP99, f.AtraxP99, f.P50Ratio, f.P99Ratio)
		}
		for _, l := range res.Latency {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f |\n", l.Upstream, l.Downstream, l.Auth,
				l.DirectP50, l.AtraxP50, l.AddedP50, l.DirectP99, l.AtraxP99, l.P50Ratio, l.P99Ratio)
		}
		fmt.Fprintln(w)
	}
	if len(res.Throughput) > 0 {
		fmt.Fprintf(w, "### tools/call throughput (calls/s) and CPU per call (µs)\n\n")
		fmt.Fprintf(w, "| sessions | token | direct | Atrax | × | Atrax p50 (µs) | Atrax p99 (µs) | edge CPU/call | upstream CPU/call, direct | upstream CPU/call, via Atrax |\n")
		fmt.Fprintf(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, t := range res.Throughput {
			fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %s | %s | %s | %s | %s |\n", t.Sessions, t.Auth, t.Direct, t.Atrax, t.Ratio,
				t.AtraxP50, t.AtraxP99, t.EdgeCPU, t.UpstreamCPUDirect, t.UpstreamCPUAtrax)
		}
		if f := res.FloorThroughput; f != nil {
			fmt.Fprintf(w, "| %d | *null proxy* | %s | %s | %.2f | %s | %s | %s (proxy) | %s | %s |\n", f.Sessions, f.Direct, f.Atrax, f.Ratio,
				f.AtraxP50, f.AtraxP99, f.EdgeCPU, f.UpstreamCPUDirect, f.UpstreamCPUAtrax)
		}
		fmt.Fprintln(w)
	}
	if len(res.ToolsList) > 0 {
		fmt.Fprintf(w, "### tools/list latency, concurrency 1 (µs)\n\n")
		fmt.Fprintf(w, "| upstreams | tools | direct p50 (one upstream) | Atrax p50 (merged, every page) | direct p99 | Atrax p99 | p50 × | p99 × |\n")
		fmt.Fprintf(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range res.ToolsList {
			fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %.2f | %.2f |\n", l.Upstreams, l.Tools, l.DirectP50, l.AtraxP50, l.DirectP99, l.AtraxP99, l.P50Ratio, l.P99Ratio)
		}
		fmt.Fprintln(w)
	}
	if len(res.Memory) > 0 {
		fmt.Fprintf(w, "### Resident memory per idle session (KiB)\n\n")
		fmt.Fprintf(w, "| transport | sessions | Atrax | direct (go-sdk) | × | Atrax RSS before → after (MiB) |\n")
		fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range res.Memory {
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.2f | %.1f → %.1f |\n", r.Transport, r.Sessions, r.AtraxBytesPerSession/1024,
				r.DirectBytesPerSession/1024, r.Ratio, float64(r.AtraxRSSBefore)/(1<<20), float64(r.AtraxRSSAfter)/(1<<20))
		}
		fmt.Fprintln(w)
	}
	if s := res.Startup; s != nil {
		fmt.Fprintf(w, "### Start-up until the merged tool list of %d stdio upstreams is served (ms)\n\n", s.Upstreams)
		fmt.Fprintf(w, "| direct (10 children, initialize, tools/list) | Atrax (`atrax serve` launched → 200 tools listed) | × |\n| ---: | ---: | ---: |\n")
		fmt.Fprintf(w, "| %s | %s | %.2f |\n\n", s.Direct, s.Atrax, s.Ratio)
	}
	if len(res.Targets) > 0 {
		fmt.Fprintf(w, "### Targets\n\n| target | want | this run | |\n| --- | --- | ---: | --- |\n")
		for _, t := range res.Targets {
			mark := "met"
			if !t.Met {
				mark = "**missed**"
			}
			fmt.Fprintf(w, "| %s | %s | %.2f %s | %s |\n", t.Name, t.Want, t.Got, t.Unit, mark)
		}
		fmt.Fprintln(w)
	}
	return nil
}
