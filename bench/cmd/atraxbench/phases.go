package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// echoParams is the tools/call of every latency and throughput figure.
func echoParams(tool string) []byte {
	return []byte(`{"name":"` + tool + `","arguments":{"message":"hello, atrax"}}`)
}

// side is one of the two things a figure compares.
type side struct {
	name string
	open func(ctx context.Context) (caller, error)
	tool string
}

// timeCalls makes n calls on c, one at a time, and returns each one's
// duration, sorted.
func timeCalls(ctx context.Context, c caller, method string, params []byte, n int, deadline time.Time) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			break // the time bound of one round
		}
		t0 := time.Now()
		if _, err := c.call(ctx, method, params); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	slices.Sort(out)
	return out, nil
}

// latencyResult is one latency row.
type latencyResult struct {
	Upstream   string  `json:"upstream"`
	Downstream string  `json:"downstream"`
	Auth       string  `json:"auth"`
	Method     string  `json:"method"`
	Calls      int     `json:"callsPerRound"`
	DirectP50  summary `json:"directP50"`
	DirectP99  summary `json:"directP99"`
	AtraxP50   summary `json:"atraxP50"`
	AtraxP99   summary `json:"atraxP99"`
	AddedP50   summary `json:"addedP50"` // per round: atrax p50 - direct p50
	P50Ratio   float64 `json:"p50Ratio"`
	P99Ratio   float64 `json:"p99Ratio"`
}

// compareLatency measures method at concurrency 1 through both sides, in
// rounds that alternate which side goes first.
func (b *bench) compareLatency(ctx context.Context, direct, through side, method string, params func(tool string) []byte) (latencyResult, error) {
	dc, err := direct.open(ctx)
	if err != nil {
		return latencyResult{}, fmt.Errorf("direct: %w", err)
	}
	defer dc.close()
	ac, err := through.open(ctx)
	if err != nil {
		return latencyResult{}, fmt.Errorf("through atrax: %w", err)
	}
	defer ac.close()
	dp, ap := params(direct.tool), params(through.tool)
	warm := time.Now().Add(b.roundTime)
	if _, err := timeCalls(ctx, dc, method, dp, b.warmup, warm); err != nil {
		return latencyResult{}, fmt.Errorf("direct: %w", err)
	}
	if _, err := timeCalls(ctx, ac, method, ap, b.warmup, warm); err != nil {
		return latencyResult{}, fmt.Errorf("through atrax: %w", err)
	}
	var d50, d99, a50, a99, added []float64
	for r := range b.rounds {
		var ds, as []time.Duration
		runDirect := func() error {
			ds, err = timeCalls(ctx, dc, method, dp, b.calls, time.Now().Add(b.roundTime))
			return err
		}
		runAtrax := func() error {
			as, err = timeCalls(ctx, ac, method, ap, b.calls, time.Now().Add(b.roundTime))
			return err
		}
		first, second := runDirect, runAtrax
		if r%2 == 1 {
			first, second = runAtrax, runDirect
		}
		if err := first(); err != nil {
			return latencyResult{}, err
		}
		if err := second(); err != nil {
			return latencyResult{}, err
		}
		d50 = append(d50, us(percentile(ds, 50)))
		d99 = append(d99, us(percentile(ds, 99)))
		a50 = append(a50, us(percentile(as, 50)))
		a99 = append(a99, us(percentile(as, 99)))
		added = append(added, us(percentile(as, 50))-us(percentile(ds, 50)))
	}
	res := latencyResult{
		Method: method, Calls: b.calls,
		DirectP50: summarize("µs", d50), DirectP99: summarize("µs", d99),
		AtraxP50: summarize("µs", a50), AtraxP99: summarize("µs", a99),
		AddedP50: summarize("µs", added),
	}
	res.P50Ratio = ratio(res.AtraxP50.Median, res.DirectP50.Median)
	res.P99Ratio = ratio(res.AtraxP99.Median, res.DirectP99.Median)
	return res, nil
}

// load is the outcome of one throughput run.
type load struct {
	calls   int64
	elapsed time.Duration
	p50     time.Duration
	p99     time.Duration
	cpu     map[int]time.Duration // CPU time of each watched process
}

// runLoad has every caller call as fast as it can until d has passed (or
// maxCalls calls each), and reads the CPU time of pids around it.
func runLoad(ctx context.Context, callers []caller, params []byte, d time.Duration, maxCalls int, pids ...int) (load, error) {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		total atomic.Int64
		errMu sync.Mutex
		first error
		lats  = make([][]time.Duration, len(callers))
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	for i, c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l := make([]time.Duration, 0, 1024)
			for n := 0; n < maxCalls && !stop.Load(); n++ {
				t0 := time.Now()
				if _, err := c.call(ctx, "tools/call", params); err != nil {
					if ctx.Err() == nil {
						errMu.Lock()
						if first == nil {
							first = err
						}
						errMu.Unlock()
						cancel()
					}
					break
				}
				l = append(l, time.Since(t0))
				total.Add(1)
			}
			lats[i] = l
		}()
	}
	cpu0 := map[int]time.Duration{}
	for _, pid := range pids {
		cpu0[pid], _ = cpuTime(pid)
	}
	t0 := time.Now()
	close(start)
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	out := load{calls: total.Load(), elapsed: elapsed, cpu: map[int]time.Duration{}}
	for _, pid := range pids {
		c1, _ := cpuTime(pid)
		out.cpu[pid] = c1 - cpu0[pid]
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	out.p50, out.p99 = percentile(all, 50), percentile(all, 99)
	if first != nil {
		return out, first
	}
	return out, ctx.Err()
}

// throughputResult is one throughput row.
type throughputResult struct {
	Sessions   int     `json:"sessions"`
	Auth       string  `json:"auth"`
	Downstream string  `json:"downstream"`
	Upstream   string  `json:"upstream"`
	Direct     summary `json:"directCallsPerSec"`
	Atrax      summary `json:"atraxCallsPerSec"`
	Ratio      float64 `json:"ratio"`
	DirectP50  summary `json:"directP50"`
	DirectP99  summary `json:"directP99"`
	AtraxP50   summary `json:"atraxP50"`
	AtraxP99   summary `json:"atraxP99"`
	// CPU per call: the edge process through Atrax; the upstream process
	// when called directly and when called through Atrax.
	EdgeCPU           summary `json:"edgeCPUPerCall"`
	UpstreamCPUDirect summary `json:"upstreamCPUPerCallDirect"`
	UpstreamCPUAtrax  summary `json:"upstreamCPUPerCallThroughAtrax"`
}

// compareThroughput runs n sessions against both sides.
func (b *bench) compareThroughput(ctx context.Context, n int, direct, through side, edgePID, upPID int) (throughputResult, error) {
	res := throughputResult{Sessions: n}
	openAll := func(s side) ([]caller, error) {
		out := make([]caller, 0, n)
		for range n {
			c, err := s.open(ctx)
			if err != nil {
				for _, c := range out {
					c.close()
				}
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			out = append(out, c)
		}
		return out, nil
	}
	dcs, err := openAll(direct)
	if err != nil {
		return res, err
	}
	defer closeAll(dcs)
	acs, err := openAll(through)
	if err != nil {
		return res, err
	}
	defer closeAll(acs)
	dp, ap := echoParams(direct.tool), echoParams(through.tool)
	// Warm up: connections open, buffers grown, upstream connections made.
	if _, err := runLoad(ctx, dcs, dp, b.roundTime/4, b.maxCalls); err != nil {
		return res, fmt.Errorf("direct: %w", err)
	}
	if _, err := runLoad(ctx, acs, ap, b.roundTime/4, b.maxCalls); err != nil {
		return res, fmt.Errorf("through atrax: %w", err)
	}
	var dv, av, d50, d99, a50, a99, ecpu, ucpuD, ucpuA []float64
	for r := range b.rounds {
		var dl, al load
		runDirect := func() (err error) {
			dl, err = runLoad(ctx, dcs, dp, b.roundTime, b.maxCalls, upPID)
			return err
		}
		runAtrax := func() (err error) {
			al, err = runLoad(ctx, acs, ap, b.roundTime, b.maxCalls, edgePID, upPID)
			return err
		}
		first, second := runDirect, runAtrax
		if r%2 == 1 {
			first, second = runAtrax, runDirect
		}
		if err := first(); err != nil {
			return res, err
		}
		if err := second(); err != nil {
			return res, err
		}
		dv = append(dv, float64(dl.calls)/dl.elapsed.Seconds())
		av = append(av, float64(al.calls)/al.elapsed.Seconds())
		d50, d99 = append(d50, us(dl.p50)), append(d99, us(dl.p99))
		a50, a99 = append(a50, us(al.p50)), append(a99, us(al.p99))
		ecpu = append(ecpu, perCall(al.cpu[edgePID], al.calls))
		ucpuD = append(ucpuD, perCall(dl.cpu[upPID], dl.calls))
		ucpuA = append(ucpuA, perCall(al.cpu[upPID], al.calls))
	}
	res.Direct, res.Atrax = summarize("calls/s", dv), summarize("calls/s", av)
	res.Ratio = ratio(res.Atrax.Median, res.Direct.Median)
	res.DirectP50, res.DirectP99 = summarize("µs", d50), summarize("µs", d99)
	res.AtraxP50, res.AtraxP99 = summarize("µs", a50), summarize("µs", a99)
	res.EdgeCPU = summarize("µs/call", ecpu)
	res.UpstreamCPUDirect = summarize("µs/call", ucpuD)
	res.UpstreamCPUAtrax = summarize("µs/call", ucpuA)
	return res, nil
}

func perCall(cpu time.Duration, calls int64) float64 {
	if calls == 0 {
		return 0
	}
	return us(cpu) / float64(calls)
}

func closeAll(cs []caller) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
}

// memoryResult is one memory row.
type memoryResult struct {
	Transport string `json:"transport"`
	Sessions  int    `json:"sessions"`
	// Bytes of resident memory per idle session: (RSS with warm+N sessions
	// − RSS with warm sessions) / N.
	AtraxBytesPerSession  float64 `json:"atraxBytesPerSession"`
	DirectBytesPerSession float64 `json:"directBytesPerSession"`
	Ratio                 float64 `json:"ratio"`
	AtraxRSSBefore        int64   `json:"atraxRSSBefore"`
	AtraxRSSAfter         int64   `json:"atraxRSSAfter"`
	DirectRSSBefore       int64   `json:"directRSSBefore"`
	DirectRSSAfter        int64   `json:"directRSSAfter"`
}

// holder is an open idle session: closing it ends the session.
type holder interface{ close() }

type closers []func()

func (c closers) close() {
	for _, f := range c {
		f()
	}
}

// openIdle opens n idle sessions with open, 8 at a time.
func openIdle(ctx context.Context, n int, open func(ctx context.Context) (holder, error)) ([]holder, error) {
	out := make([]holder, n)
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				errMu.Lock()
				failed := first != nil
				errMu.Unlock()
				if failed {
					return
				}
				h, err := open(ctx)
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = fmt.Errorf("session %d: %w", i, err)
					}
					errMu.Unlock()
					return
				}
				out[i] = h
			}
		}()
	}
	wg.Wait()
	if first != nil || ctx.Err() != nil {
		closeHolders(out)
		if first == nil {
			first = ctx.Err()
		}
		return nil, first
	}
	return out, nil
}

func closeHolders(hs []holder) {
	for _, h := range hs {
		if h != nil {
			h.close()
		}
	}
}

// measureIdle returns the RSS of pid with warm sessions, then with warm+n.
func measureIdle(ctx context.Context, pid, warm, n int, open func(ctx context.Context) (holder, error)) (before, after int64, err error) {
	w, err := openIdle(ctx, warm, open)
	if err != nil {
		return 0, 0, err
	}
	defer closeHolders(w)
	time.Sleep(time.Second)
	if before, err = rssBytes(pid); err != nil {
		return 0, 0, err
	}
	hs, err := openIdle(ctx, n, open)
	if err != nil {
		return 0, 0, err
	}
	defer closeHolders(hs)
	time.Sleep(2 * time.Second)
	after, err = rssBytes(pid)
	return before, after, err
}

// drain reads and discards r until it ends (the keep-alives of an idle
// stream), so that the TCP window never fills.
func drain(r io.Reader) {
	var buf [512]byte
	for {
		if _, err := r.Read(buf[:]); err != nil {
			return
		}
	}
}

// idleSSE opens an idle legacy SSE session.
func (b *bench) idleSSE(base, token string) func(ctx context.Context) (holder, error) {
	return func(ctx context.Context) (holder, error) {
		c, err := openSSE(ctx, b.hcIdle, base, token, false)
		if err != nil {
			return nil, err
		}
		go drain(c.body)
		return c, nil
	}
}

// idleStreamable opens an idle streamable HTTP session, with its
// standalone GET stream open when stream is set.
func (b *bench) idleStreamable(url, token string, stream bool) func(ctx context.Context) (holder, error) {
	return func(ctx context.Context) (holder, error) {
		c, err := openStream(ctx, b.hcIdle, url, token)
		if err != nil {
			return nil, err
		}
		if !stream {
			return closers{c.close}, nil
		}
		body, err := c.stream(context.Background())
		if err != nil {
			c.close()
			return nil, err
		}
		go drain(body)
		return closers{func() { body.Close() }, c.close}, nil
	}
}

// toolsListResult is one tools/list row.
type toolsListResult struct {
	Upstreams int     `json:"upstreams"`
	Tools     int     `json:"tools"`
	DirectP50 summary `json:"directP50"`
	DirectP99 summary `json:"directP99"`
	AtraxP50  summary `json:"atraxP50"`
	AtraxP99  summary `json:"atraxP99"`
	P50Ratio  float64 `json:"p50Ratio"`
	P99Ratio  float64 `json:"p99Ratio"`
}

// pagedList is a caller whose "tools/list" fetches every page.
type pagedList struct{ c caller }

func (p pagedList) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	var cur []byte
	for range 100 {
		if cur != nil {
			params = append(append([]byte(`{"cursor":"`), cur...), `"}`...)
		}
		msg, err := p.c.call(ctx, method, params)
		if err != nil {
			return nil, err
		}
		i := bytes.Index(msg, []byte(`"nextCursor":"`))
		if i < 0 {
			return msg, nil
		}
		rest := msg[i+len(`"nextCursor":"`):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return nil, errors.New("malformed nextCursor")
		}
		cur = append(cur[:0], rest[:j]...)
	}
	return nil, errors.New("too many pages")
}

func (p pagedList) close() { p.c.close() }

// startupResult is the start-up row.
type startupResult struct {
	Upstreams int     `json:"upstreams"`
	Direct    summary `json:"directMs"`
	Atrax     summary `json:"atraxMs"`
	Ratio     float64 `json:"ratio"`
}
