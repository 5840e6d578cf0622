// Package limits keeps one client from starving the others on an edge: a
// rate per token (a token bucket), caps on the requests in flight and the
// sessions open, per token and per edge, and a bound on the calls waiting
// on each upstream server. A limit never makes anyone wait: what is over
// it is refused at once with an *Error that names the limit, so that the
// client can back off (HTTP 429 with Retry-After, or a JSON-RPC error).
//
// Tokens are told apart by the principal's subject, which is safe to keep
// and log; the package never sees a token.
package limits

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limit names: the config keys, so that a refusal says what to change.
const (
	LimitRate              = "limits.requestsPerSecond"
	LimitInFlightPerToken  = "limits.maxInFlightPerToken"
	LimitSessionsPerToken  = "limits.maxSessionsPerToken"
	LimitInFlight          = "limits.maxInFlight"
	LimitSessions          = "limits.maxSessions"
	LimitInFlightUpstream  = "limits.maxInFlightPerUpstream"
	defaultRetryAfter      = time.Second
	sweepAtLeast           = 1024
	maxRetryAfterForBucket = time.Hour
)

// ErrLimited is what every *Error unwraps to.
var ErrLimited = errors.New("limit reached")

// Error is a refusal: which limit was reached, and when trying again may
// succeed.
type Error struct {
	// Limit is the config key of the limit (LimitRate, ...).
	Limit string
	// Max is the limit's value (requests per second for LimitRate).
	Max float64
	// RetryAfter is how long the client should wait; at least a second.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	switch e.Limit {
	case LimitRate:
		return fmt.Sprintf("rate limit reached (%s: %g requests per second for this token); retry after %s", e.Limit, e.Max, e.RetryAfter)
	case LimitInFlightPerToken:
		return fmt.Sprintf("too many requests in flight for this token (%s: %g); retry after %s", e.Limit, e.Max, e.RetryAfter)
	case LimitSessionsPerToken:
		return fmt.Sprintf("too many open sessions for this token (%s: %g); close one first", e.Limit, e.Max)
	case LimitInFlight:
		return fmt.Sprintf("the gateway has too many requests in flight (%s: %g); retry after %s", e.Limit, e.Max, e.RetryAfter)
	case LimitSessions:
		return fmt.Sprintf("the gateway has too many open sessions (%s: %g); retry later", e.Limit, e.Max)
	case LimitInFlightUpstream:
		return fmt.Sprintf("too many calls waiting on this server (%s: %g); retry after %s", e.Limit, e.Max, e.RetryAfter)
	}
	return fmt.Sprintf("%s reached", e.Limit)
}

// Unwrap makes every Error an ErrLimited.
func (e *Error) Unwrap() error { return ErrLimited }

// RetryAfterSeconds is the Retry-After header value: whole seconds, at
// least 1.
func (e *Error) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// Options configure a Limiter. A limit of 0 means none, so the zero value
// limits nothing.
type Options struct {
	// RequestsPerSecond is each token's sustained rate; 0 means no rate
	// limit.
	RequestsPerSecond float64
	// Burst is the bucket's size: how many requests a token may make at
	// once. 0 means RequestsPerSecond rounded up, at least 1.
	Burst int
	// MaxInFlightPerToken and MaxInFlight cap the requests being answered
	// at once, per token and in all.
	MaxInFlightPerToken int
	MaxInFlight         int
	// MaxSessionsPerToken and MaxSessions cap the open sessions, per token
	// and in all.
	MaxSessionsPerToken int
	MaxSessions         int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Limiter enforces the per-token and per-edge limits. It is safe for
// concurrent use; a nil *Limiter allows everything.
type Limiter struct {
	opts  Options
	burst float64

	mu       sync.Mutex
	tokens   map[string]*tokenState
	inFlight int
	sessions int
	sweepAt  int
}

// tokenState is what the limiter keeps for one token; it is dropped once
// the token has nothing open and a full bucket (a new state is the same).
type tokenState struct {
	avail    float64 // requests available in the bucket
	at       time.Time
	inFlight int
	sessions int
}

// New returns a Limiter.
func New(opts Options) *Limiter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Limiter{opts: opts, tokens: map[string]*tokenState{}, sweepAt: sweepAtLeast}
	l.burst = float64(opts.Burst)
	if opts.Burst <= 0 {
		l.burst = max(1, math.Ceil(opts.RequestsPerSecond))
	}
	return l
}

// stateLocked returns subject's state, made if need be, its bucket
// refilled up to now.
func (l *Limiter) stateLocked(subject string, now time.Time) *tokenState {
	st := l.tokens[subject]
	if st == nil {
		if len(l.tokens) >= l.sweepAt {
			l.sweepLocked(now)
		}
		st = &tokenState{avail: l.burst, at: now}
		l.tokens[subject] = st
		return st
	}
	if l.opts.RequestsPerSecond > 0 && now.After(st.at) {
		st.avail = min(l.burst, st.avail+now.Sub(st.at).Seconds()*l.opts.RequestsPerSecond)
		st.at = now
	}
	return st
}

// sweepLocked forgets the tokens that hold nothing and whose bucket has
// refilled.
func (l *Limiter) sweepLocked(now time.Time) {
	for subject, st := range l.tokens {
		if st.inFlight == 0 && st.sessions == 0 && l.fullLocked(st, now) {
			delete(l.tokens, subject)
		}
	}
	l.sweepAt = max(sweepAtLeast, 2*len(l.tokens))
}

func (l *Limiter) fullLocked(st *tokenState, now time.Time) bool {
	if l.opts.RequestsPerSecond <= 0 {
		return true
	}
	return st.avail+now.Sub(st.at).Seconds()*l.opts.RequestsPerSecond >= l.burst
}

// forgetLocked drops subject's state when it holds nothing.
func (l *Limiter) forgetLocked(subject string, st *tokenState) {
	if st.inFlight == 0 && st.sessions == 0 && l.opts.RequestsPerSecond <= 0 {
		delete(l.tokens, subject)
	}
}

// Begin admits n requests of subject (the calls of one HTTP request; 0
// when it carries only notifications or responses): it takes n from the
// token's rate and reserves n in-flight places. release gives the places
// back; it may be called more than once. On refusal nothing is taken.
func (l *Limiter) Begin(subject string, n int) (release func(), err error) {
	if l == nil || n <= 0 {
		return func() {}, nil
	}
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stateLocked(subject, now)
	if m := l.opts.MaxInFlightPerToken; m > 0 && st.inFlight+n > m {
		l.forgetLocked(subject, st)
		return nil, &Error{Limit: LimitInFlightPerToken, Max: float64(m), RetryAfter: defaultRetryAfter}
	}
	if m := l.opts.MaxInFlight; m > 0 && l.inFlight+n > m {
		l.forgetLocked(subject, st)
		return nil, &Error{Limit: LimitInFlight, Max: float64(m), RetryAfter: defaultRetryAfter}
	}
	if err := l.takeLocked(st, float64(n)); err != nil {
		l.forgetLocked(subject, st)
		return nil, err
	}
	st.inFlight += n
	l.inFlight += n
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			st.inFlight -= n
			l.inFlight -= n
			l.forgetLocked(subject, st)
		})
	}, nil
}

// Allow takes n requests from subject's rate without holding a place: for
// what is not answered (opening a stream).
func (l *Limiter) Allow(subject string, n int) error {
	if l == nil || n <= 0 || l.opts.RequestsPerSecond <= 0 {
		return nil
	}
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.takeLocked(l.stateLocked(subject, now), float64(n))
}

// takeLocked takes n from st's bucket, or says when it will hold n.
func (l *Limiter) takeLocked(st *tokenState, n float64) error {
	rps := l.opts.RequestsPerSecond
	if rps <= 0 {
		return nil
	}
	if st.avail >= n {
		st.avail -= n
		return nil
	}
	wait := time.Duration((min(n, l.burst) - st.avail) / rps * float64(time.Second))
	if n > l.burst {
		// More at once than the bucket holds: never, as one request.
		wait = maxRetryAfterForBucket
	}
	return &Error{Limit: LimitRate, Max: rps, RetryAfter: max(defaultRetryAfter, wait)}
}

// OpenSession reserves a session of subject; release gives it back and may
// be called more than once.
func (l *Limiter) OpenSession(subject string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stateLocked(subject, now)
	if m := l.opts.MaxSessionsPerToken; m > 0 && st.sessions >= m {
		l.forgetLocked(subject, st)
		return nil, &Error{Limit: LimitSessionsPerToken, Max: float64(m), RetryAfter: defaultRetryAfter}
	}
	if m := l.opts.MaxSessions; m > 0 && l.sessions >= m {
		l.forgetLocked(subject, st)
		return nil, &Error{Limit: LimitSessions, Max: float64(m), RetryAfter: defaultRetryAfter}
	}
	st.sessions++
	l.sessions++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			st.sessions--
			l.sessions--
			l.forgetLocked(subject, st)
		})
	}, nil
}

// Usage is what a limiter holds, for /debug and tests.
type Usage struct {
	InFlight int            `json:"inFlight"`
	Sessions int            `json:"sessions"`
	Tokens   map[string]int `json:"tokensInFlight,omitempty"` // in flight per subject
	// Tracked is how many tokens the limiter keeps state for.
	Tracked int `json:"tokensTracked"`
}

// Usage returns the limiter's counts.
func (l *Limiter) Usage() Usage {
	if l == nil {
		return Usage{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := Usage{InFlight: l.inFlight, Sessions: l.sessions, Tokens: map[string]int{}, Tracked: len(l.tokens)}
	for subject, st := range l.tokens {
		if st.inFlight > 0 {
			u.Tokens[subject] = st.inFlight
		}
	}
	return u
}

// Gate bounds the calls in flight toward one upstream server. Calls beyond
// it fail at once rather than queue behind a server that is not keeping
// up. A nil *Gate, or one of size 0, admits everything.
type Gate struct {
	max int64
	n   atomic.Int64
}

// NewGate returns a gate admitting max calls at once; 0 means no bound.
func NewGate(max int) *Gate { return &Gate{max: int64(max)} }

// Enter admits one call, or refuses it with an *Error; leave ends it and
// must be called exactly once.
func (g *Gate) Enter() (leave func(), err error) {
	if g == nil || g.max <= 0 {
		return func() {}, nil
	}
	if g.n.Add(1) > g.max {
		g.n.Add(-1)
		return nil, &Error{Limit: LimitInFlightUpstream, Max: float64(g.max), RetryAfter: defaultRetryAfter}
	}
	return func() { g.n.Add(-1) }, nil
}

// InFlight returns the calls inside the gate.
func (g *Gate) InFlight() int {
	if g == nil {
		return 0
	}
	return int(g.n.Load())
}
