// Package workpool runs functions on goroutines kept for reuse.
//
// A new goroutine starts with a small stack and grows it, copying it each
// time, as its calls go deeper. The edge starts one or two goroutines per
// request whose calls go deep (JSON-RPC dispatch, an HTTP client round
// trip), so that much of a fresh goroutine's work on a request was copying
// its stack. A goroutine of a Pool keeps the stack it grew, and runs the
// next function handed to it while it waits idle.
package workpool

import (
	"sync/atomic"
	"time"
)

// Defaults.
const (
	DefaultMaxIdle     = 128
	DefaultIdleTimeout = 30 * time.Second
)

// Pool hands functions to idle goroutines. The zero value is not usable;
// use New. A Pool needs no closing: idle goroutines end after the idle
// timeout.
type Pool struct {
	work        chan func()
	idle        atomic.Int32
	maxIdle     int32
	idleTimeout time.Duration
}

// New returns a pool that keeps at most maxIdle goroutines waiting, each
// for at most idleTimeout (DefaultMaxIdle and DefaultIdleTimeout when 0).
func New(maxIdle int, idleTimeout time.Duration) *Pool {
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdle
	}
	if idleTimeout <= 0 {
		idleTimeout = DefaultIdleTimeout
	}
	return &Pool{work: make(chan func()), maxIdle: int32(maxIdle), idleTimeout: idleTimeout}
}

// Go runs f on an idle goroutine of the pool, or on a new one when none is
// idle. It never waits.
func (p *Pool) Go(f func()) {
	select {
	case p.work <- f: // an idle goroutine took it
		return
	default:
	}
	go p.run(f)
}

// Idle returns how many goroutines wait for work.
func (p *Pool) Idle() int { return int(p.idle.Load()) }

func (p *Pool) run(f func()) {
	f()
	var t *time.Timer
	for {
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(p.idleTimeout)
		} else {
			t.Reset(p.idleTimeout)
		}
		select {
		case f = <-p.work:
			p.idle.Add(-1)
			f()
		case <-t.C:
			p.idle.Add(-1)
			return
		}
	}
}
