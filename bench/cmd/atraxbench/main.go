// Command atraxbench measures what Atrax costs: every figure through an
// `atrax serve` and directly against the same upstream, in the same run,
// in interleaved rounds, reported as absolute values and as ratios.
//
//	go run ./bench/cmd/atraxbench -atrax bin/atrax -server bench/bin/benchserver
//
// `make bench` builds both binaries and runs it. It starts its own
// upstreams (bench/cmd/benchserver) and edges on 127.0.0.1 with ports the
// OS picks, stops everything on its way out (Ctrl-C included), prints a
// table and writes the same figures as JSON (-out). Every load loop is
// bounded in count and in time.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// bench is one benchmark run.
type bench struct {
	atraxBin  string
	serverBin string
	httpBin   string   // the streamable HTTP upstream of the main figures
	atraxEnv  []string // extra environment of atrax (-atrax-env)
	tmp       string
	token     string
	hc        *http.Client // calls
	hcIdle    *http.Client // idle sessions (memory)

	rounds    int
	calls     int           // latency calls per round and side
	warmup    int           // latency calls before the rounds
	roundTime time.Duration // bound of one round, and throughput run length
	maxCalls  int           // bound of one throughput caller per run
	idle      int           // sessions of the memory figure
	levels    []int         // throughput concurrency

	upstreams    string // -latency-upstreams
	noLimits     bool   // -no-limits
	profSessions int    // sessions of the profiled load
	profOnly     *bool  // profiles without throughput

	log func(format string, args ...any)
}

// results is what the JSON file holds.
type results struct {
	Date     string          `json:"date"`
	Command  string          `json:"command"`
	Version  string          `json:"atraxVersion"`
	Machine  machine         `json:"machine"`
	Settings map[string]any  `json:"settings"`
	Latency  []latencyResult `json:"latency"`
	// Floor is what a plain reverse proxy (net/http/httputil) adds in the
	// same run, in front of the same upstream: the part of Atrax's cost
	// that any HTTP gateway in Go pays for its hop.
	Floor *latencyResult `json:"nullProxy,omitempty"`
	// FloorThroughput is the same proxy's throughput at 64 sessions.
	FloorThroughput *throughputResult  `json:"nullProxyThroughput,omitempty"`
	Throughput      []throughputResult `json:"throughput"`
	ToolsList       []toolsListResult  `json:"toolsList"`
	Memory          []memoryResult     `json:"memory"`
	Startup         *startupResult     `json:"startup"`
	Targets         []target           `json:"targets"`
	Profiles        map[string]string  `json:"profiles,omitempty"`
	Elapsed         string             `json:"elapsed"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "atraxbench:", err)
		os.Exit(1)
	}
}

func run() error {
	atraxBin := flag.String("atrax", "bin/atrax", "the atrax binary")
	serverBin := flag.String("server", "bench/bin/benchserver", "the benchserver binary")
	httpBin := flag.String("http-server", "", "the binary of the streamable HTTP upstream of the latency and throughput figures (-server when empty; it must take benchserver's flags and log line)")
	out := flag.String("out", "bench/results/latest.json", "where to write the figures as JSON")
	profiles := flag.String("profiles", "bench/results", "where to write the pprof CPU and allocation profiles of the edge (\"\" for none)")
	quick := flag.Bool("quick", false, "fewer rounds and sessions, for a fast look (not for the record)")
	only := flag.String("only", "", "comma-separated figures to run (latency,throughput,toolslist,memory,startup); all when empty")
	noLimits := flag.Bool("no-limits", false, "leave the limits object out of the configs (for atrax builds from before it existed)")
	upstreams := flag.String("latency-upstreams", "", "with latency: only these upstreams (streamable-http,stdio); all when empty")
	profSessions := flag.Int("profile-sessions", 64, "sessions of the load the profiles are taken under")
	atraxEnv := flag.String("atrax-env", "", "extra environment of the atrax processes, KEY=VALUE[,KEY=VALUE] (for experiments such as GOMAXPROCS=1)")
	profOnly := flag.Bool("profile-only", false, "with throughput: take the profiles but measure no throughput")
	render := flag.String("markdown", "", "print the figures of this results file as Markdown tables, and exit")
	flag.Parse()
	if *render != "" {
		return renderMarkdown(os.Stdout, *render)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer stopAll()

	var err error
	b := &bench{noLimits: *noLimits, upstreams: *upstreams, profSessions: *profSessions, profOnly: profOnly, rounds: 5, calls: 1000, warmup: 200, roundTime: 2 * time.Second, maxCalls: 200000, idle: 5000, levels: []int{1, 8, 64, 256}}
	if *quick {
		b.rounds, b.calls, b.warmup, b.roundTime, b.idle = 3, 300, 100, time.Second, 1000
	}
	b.log = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if b.atraxBin, err = filepath.Abs(*atraxBin); err != nil {
		return err
	}
	if b.serverBin, err = filepath.Abs(*serverBin); err != nil {
		return err
	}
	if *atraxEnv != "" {
		b.atraxEnv = strings.Split(*atraxEnv, ",")
	}
	b.httpBin = b.serverBin
	if *httpBin != "" {
		if b.httpBin, err = filepath.Abs(*httpBin); err != nil {
			return err
		}
	}
	for _, p := range []string{b.atraxBin, b.serverBin} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (make bench builds it)", err)
		}
	}
	if b.tmp, err = os.MkdirTemp("", "atraxbench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	tok := make([]byte, 24)
	rand.Read(tok)
	b.token = "bench-" + base64.RawURLEncoding.EncodeToString(tok)
	b.hc, b.hcIdle = newHTTPClient(), newHTTPClient()
	nofile, err := raiseNoFile()
	if err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if need := uint64(b.idle + 1000); nofile < need {
		b.log("RLIMIT_NOFILE is %d; the memory figure opens %d sessions, so it uses %d", nofile, b.idle, nofile-1000)
		b.idle = int(nofile) - 1000
	}

	want := map[string]bool{}
	for _, f := range strings.Split(*only, ",") {
		if f = strings.TrimSpace(f); f != "" {
			want[f] = true
		}
	}
	doing := func(f string) bool { return len(want) == 0 || want[f] }

	started := time.Now()
	res := &results{
		Date:    started.UTC().Format(time.RFC3339),
		Command: "make bench",
		Version: b.atraxVersion(),
		Machine: describeMachine(),
		Settings: map[string]any{
			"rounds": b.rounds, "latencyCallsPerRound": b.calls, "roundTime": b.roundTime.String(),
			"idleSessions": b.idle, "throughputSessions": b.levels, "quick": *quick,
			"isolation": "shared", "auth": "token (static token and a JWT issued at /auth)",
		},
	}
	if doing("latency") || doing("throughput") {
		if err := b.mainFigures(ctx, res, doing("latency"), doing("throughput"), *profiles); err != nil {
			return err
		}
	}
	if doing("toolslist") {
		if err := b.toolsListFigures(ctx, res); err != nil {
			return err
		}
	}
	if doing("memory") {
		if err := b.memoryFigures(ctx, res); err != nil {
			return err
		}
	}
	if doing("startup") {
		if err := b.startupFigure(ctx, res); err != nil {
			return err
		}
	}
	res.Elapsed = time.Since(started).Round(time.Second).String()
	res.Targets = evaluate(res)
	printTable(os.Stdout, res)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nfigures written to %s\n", *out)
	}
	return nil
}

// atraxVersion is what the measured binary says it is (`atrax version`,
// which make build sets from git describe).
func (b *bench) atraxVersion() string {
	out, err := exec.Command(b.atraxBin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "atrax ")
}

// mainFigures runs the latency, throughput and CPU figures on one edge in
// front of a streamable HTTP upstream ("h") and a stdio upstream ("s").
func (b *bench) mainFigures(ctx context.Context, res *results, latency, throughput bool, profiles string) error {
	b.log("starting benchserver and atrax (streamable HTTP and stdio upstreams)")
	srv, addr, err := startBenchServer(ctx, b.httpBin, 1)
	if err != nil {
		return err
	}
	defer srv.stop()
	upURL := "http://" + addr + "/s0/mcp"
	a, err := b.startAtrax(ctx, []server{httpServer("h", upURL), stdioServer("s", b.serverBin)}, 40, profiles != "")
	if err != nil {
		return err
	}
	defer a.stop()
	jwt, err := b.issueJWT(ctx, a.base)
	if err != nil {
		return err
	}
	tokens := map[string]string{"static": b.token, "jwt": jwt}

	directHTTP := side{name: "direct (streamable HTTP)", tool: "echo", open: func(ctx context.Context) (caller, error) {
		return openStream(ctx, b.hc, upURL, "")
	}}
	directStdio := side{name: "direct (stdio)", tool: "echo", open: func(ctx context.Context) (caller, error) {
		p, err := startStdio(b.serverBin)
		if err != nil {
			return nil, err
		}
		if err := p.initialize(); err != nil {
			p.close()
			return nil, err
		}
		return stdioCaller{p}, nil
	}}
	through := func(downstream, auth, tool string) side {
		tok := tokens[auth]
		return side{name: "atrax " + downstream + " " + auth, tool: tool, open: func(ctx context.Context) (caller, error) {
			switch downstream {
			case "sse":
				c, err := openSSE(ctx, b.hc, a.base, tok, true)
				if err != nil {
					return nil, err
				}
				if err := c.initialize(ctx); err != nil {
					c.close()
					return nil, err
				}
				return c, nil
			case "stateless":
				return newStateless(b.hc, a.base+"/mcp", tok), nil
			}
			return openStream(ctx, b.hc, a.base+"/mcp", tok)
		}}
	}

	// A plain reverse proxy in front of the same upstream: the floor of
	// what a hop costs, whatever the gateway does.
	px, err := startProc("benchserver", b.serverBin, []string{"-http", "127.0.0.1:0", "-proxy", upURL}, baseEnv(), "")
	if err != nil {
		return err
	}
	defer px.stop()
	m, err := px.waitLog(ctx, "benchserver serving", startTimeout)
	if err != nil {
		return err
	}
	pxURL := "http://" + m["address"].(string) + "/mcp"
	nullProxy := side{name: "null proxy", tool: "echo", open: func(ctx context.Context) (caller, error) {
		return openStream(ctx, b.hc, pxURL, "")
	}}
	if latency {
		b.log("latency: tools/call through a plain reverse proxy (the floor of a hop)")
		r, err := b.compareLatency(ctx, directHTTP, nullProxy, "tools/call", echoParams)
		if err != nil {
			return fmt.Errorf("latency through the null proxy: %w", err)
		}
		r.Upstream, r.Downstream, r.Auth = "streamable-http", "streamable", "none"
		res.Floor = &r
		for _, up := range []struct {
			name   string
			direct side
			tool   string
		}{{"streamable-http", directHTTP, "h__echo"}, {"stdio", directStdio, "s__echo"}} {
			if b.upstreams != "" && !strings.Contains(b.upstreams, up.name) {
				continue
			}
			for _, auth := range []string{"static", "jwt"} {
				for _, down := range []string{"sse", "streamable", "stateless"} {
					b.log("latency: tools/call, %s upstream, %s downstream, %s token", up.name, down, auth)
					r, err := b.compareLatency(ctx, up.direct, through(down, auth, up.tool), "tools/call", echoParams)
					if err != nil {
						return fmt.Errorf("latency %s/%s/%s: %w\natrax's last lines:\n%s", up.name, down, auth, err, a.p.stderrTail())
					}
					r.Upstream, r.Downstream, r.Auth = up.name, down, auth
					res.Latency = append(res.Latency, r)
				}
			}
		}
	}
	if throughput && *b.profOnly {
		b.levels = nil
	}
	if throughput && len(b.levels) > 0 {
		runs := []struct {
			n    int
			auth string
		}{}
		for _, n := range b.levels {
			if n < 0 {
				continue
			}
			runs = append(runs, struct {
				n    int
				auth string
			}{n, "static"})
		}
		runs = append(runs, struct {
			n    int
			auth string
		}{64, "jwt"})
		for _, run := range runs {
			b.log("throughput: %d sessions, streamable HTTP both ends, %s token", run.n, run.auth)
			r, err := b.compareThroughput(ctx, run.n, directHTTP, through("streamable", run.auth, "h__echo"), a.p.pid(), srv.pid())
			if err != nil {
				return fmt.Errorf("throughput %d %s: %w", run.n, run.auth, err)
			}
			r.Auth, r.Downstream, r.Upstream = run.auth, "streamable", "streamable-http"
			res.Throughput = append(res.Throughput, r)
		}
	}
	if throughput && len(b.levels) > 0 {
		b.log("throughput: 64 sessions through a plain reverse proxy (the floor of a hop)")
		r, err := b.compareThroughput(ctx, 64, directHTTP, nullProxy, px.pid(), srv.pid())
		if err != nil {
			return fmt.Errorf("throughput through the null proxy: %w", err)
		}
		r.Auth, r.Downstream, r.Upstream = "none", "streamable", "streamable-http"
		res.FloorThroughput = &r
	}
	if throughput {
		if profiles != "" && a.pprof != "" {
			if err := b.profile(ctx, res, a, through("streamable", "jwt", "h__echo"), profiles); err != nil {
				return fmt.Errorf("profiles: %w", err)
			}
		}
	}
	return nil
}

// stdioCaller adapts a stdio child to caller.
type stdioCaller struct{ p *stdioProc }

func (s stdioCaller) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	return s.p.call(ctx, method, params)
}
func (s stdioCaller) close() { s.p.close() }

// profile captures CPU and allocation profiles of the edge under load (64
// sessions), outside the measured rounds.
func (b *bench) profile(ctx context.Context, res *results, a *atrax, s side, dir string) error {
	n := b.profSessions
	b.log("profiles: CPU and allocations of the edge under %d sessions", n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cs := make([]caller, 0, n)
	defer func() { closeAll(cs) }()
	for range n {
		c, err := s.open(ctx)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	const secs = 5
	errc := make(chan error, 2)
	cpuPath, allocPath := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "allocs.pprof")
	go func() {
		errc <- b.fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a.pprof, secs), cpuPath)
	}()
	go func() {
		errc <- b.fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/allocs?seconds=%d", a.pprof, secs), allocPath)
	}()
	l, err := runLoad(ctx, cs, echoParams(s.tool), (secs+1)*time.Second, 10*b.maxCalls)
	if err != nil {
		return err
	}
	for range 2 {
		if err := <-errc; err != nil {
			return err
		}
	}
	res.Profiles = map[string]string{"cpu": cpuPath, "allocs": allocPath, "load": fmt.Sprintf("%d calls in %s, %d streamable sessions, JWT", l.calls, l.elapsed.Round(time.Millisecond), n)}
	return nil
}

// toolsListFigures measures the merged tools/list of 1, 10 and 50
// upstreams of 20 tools each, against tools/list of one upstream.
func (b *bench) toolsListFigures(ctx context.Context, res *results) error {
	b.log("starting benchserver with 50 servers")
	srv, addr, err := startBenchServer(ctx, b.serverBin, 50)
	if err != nil {
		return err
	}
	defer srv.stop()
	for _, n := range []int{1, 10, 50} {
		var servers []server
		for i := range n {
			servers = append(servers, httpServer(fmt.Sprintf("h%d", i), fmt.Sprintf("http://%s/s%d/mcp", addr, i)))
		}
		b.log("tools/list: %d upstreams (%d tools)", n, n*20)
		a, err := b.startAtrax(ctx, servers, n*20, false)
		if err != nil {
			return err
		}
		direct := side{name: "direct", open: func(ctx context.Context) (caller, error) {
			c, err := openStream(ctx, b.hc, "http://"+addr+"/s0/mcp", "")
			return pagedList{c}, err
		}}
		through := side{name: "atrax", open: func(ctx context.Context) (caller, error) {
			c, err := openStream(ctx, b.hc, a.base+"/mcp", b.token)
			return pagedList{c}, err
		}}
		r, err := b.compareLatency(ctx, direct, through, "tools/list", func(string) []byte { return []byte(`{}`) })
		a.stop()
		if err != nil {
			return fmt.Errorf("tools/list over %d upstreams: %w", n, err)
		}
		res.ToolsList = append(res.ToolsList, toolsListResult{
			Upstreams: n, Tools: n * 20,
			DirectP50: r.DirectP50, DirectP99: r.DirectP99, AtraxP50: r.AtraxP50, AtraxP99: r.AtraxP99,
			P50Ratio: r.P50Ratio, P99Ratio: r.P99Ratio,
		})
	}
	return nil
}

// memoryFigures measures resident memory per idle session, each transport
// on a fresh edge and a fresh upstream.
func (b *bench) memoryFigures(ctx context.Context, res *results) error {
	const warm = 100
	for _, tr := range []string{"sse", "streamable", "streamable-no-stream"} {
		b.log("memory: %d idle %s sessions", b.idle, tr)
		srv, addr, err := startBenchServer(ctx, b.serverBin, 1)
		if err != nil {
			return err
		}
		a, err := b.startAtrax(ctx, []server{httpServer("h", "http://"+addr+"/s0/mcp")}, 20, false)
		if err != nil {
			srv.stop()
			return err
		}
		var throughOpen, directOpen func(ctx context.Context) (holder, error)
		switch tr {
		case "sse":
			throughOpen = b.idleSSE(a.base, b.token)
			directOpen = b.idleSSE("http://"+addr+"/s0", "")
		default:
			stream := tr == "streamable"
			throughOpen = b.idleStreamable(a.base+"/mcp", b.token, stream)
			directOpen = b.idleStreamable("http://"+addr+"/s0/mcp", "", stream)
		}
		r := memoryResult{Transport: tr, Sessions: b.idle}
		r.AtraxRSSBefore, r.AtraxRSSAfter, err = measureIdle(ctx, a.p.pid(), warm, b.idle, throughOpen)
		if err == nil {
			r.DirectRSSBefore, r.DirectRSSAfter, err = measureIdle(ctx, srv.pid(), warm, b.idle, directOpen)
		}
		a.stop()
		srv.stop()
		b.hcIdle.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("memory %s: %w", tr, err)
		}
		r.AtraxBytesPerSession = float64(r.AtraxRSSAfter-r.AtraxRSSBefore) / float64(b.idle)
		r.DirectBytesPerSession = float64(r.DirectRSSAfter-r.DirectRSSBefore) / float64(b.idle)
		r.Ratio = ratio(r.AtraxBytesPerSession, r.DirectBytesPerSession)
		res.Memory = append(res.Memory, r)
	}
	return nil
}

// startupFigure measures the time from launching `atrax serve` with 10
// stdio upstreams until it serves their merged tool list, against
// launching the 10 servers directly and listing their tools.
func (b *bench) startupFigure(ctx context.Context, res *results) error {
	const n = 10
	var servers []server
	for i := range n {
		servers = append(servers, stdioServer(fmt.Sprintf("s%d", i), b.serverBin))
	}
	var dv, av []float64
	atraxRound := func() error {
		dir, path, err := b.writeConfig(servers)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		t0 := time.Now()
		p, err := startProc("atrax", b.atraxBin, []string{"serve", "-f", path}, baseEnv(), dir)
		if err != nil {
			return err
		}
		defer p.stop()
		m, err := p.waitLog(ctx, "edge serving", startTimeout)
		if err != nil {
			return err
		}
		if err := b.waitTools(ctx, "http://"+m["address"].(string)+"/mcp", b.token, n*20, startTimeout); err != nil {
			return err
		}
		av = append(av, float64(time.Since(t0))/float64(time.Millisecond))
		return nil
	}
	directRound := func() error {
		t0 := time.Now()
		errc := make(chan error, n)
		ps := make([]*stdioProc, n)
		for i := range n {
			go func() {
				p, err := startStdio(b.serverBin)
				if err != nil {
					errc <- err
					return
				}
				ps[i] = p
				if err := p.initialize(); err != nil {
					errc <- err
					return
				}
				_, err = p.call(ctx, "tools/list", []byte(`{}`))
				errc <- err
			}()
		}
		var first error
		for range n {
			if err := <-errc; err != nil && first == nil {
				first = err
			}
		}
		elapsed := time.Since(t0)
		for _, p := range ps {
			if p != nil {
				p.close()
			}
		}
		if first != nil {
			return first
		}
		dv = append(dv, float64(elapsed)/float64(time.Millisecond))
		return nil
	}
	b.log("start-up: %d stdio upstreams, %d rounds", n, b.rounds)
	for r := range b.rounds {
		first, second := directRound, atraxRound
		if r%2 == 1 {
			first, second = atraxRound, directRound
		}
		if err := first(); err != nil {
			return fmt.Errorf("start-up: %w", err)
		}
		if err := second(); err != nil {
			return fmt.Errorf("start-up: %w", err)
		}
	}
	res.Startup = &startupResult{Upstreams: n, Direct: summarize("ms", dv), Atrax: summarize("ms", av)}
	res.Startup.Ratio = ratio(res.Startup.Atrax.Median, res.Startup.Direct.Median)
	return nil
}
