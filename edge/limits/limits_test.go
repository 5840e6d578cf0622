package limits_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

func newClock() *fakeclock.Clock { return fakeclock.New(time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)) }

// refusedBy checks that err is an *Error naming limit.
func refusedBy(t *testing.T, err error, limit string) *limits.Error {
	t.Helper()
	var le *limits.Error
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *limits.Error for %s", err, limit)
	}
	if le.Limit != limit {
		t.Fatalf("refused by %s, want %s", le.Limit, limit)
	}
	if !errors.Is(err, limits.ErrLimited) {
		t.Errorf("%v is not ErrLimited", err)
	}
	if !strings.Contains(err.Error(), limit) {
		t.Errorf("message %q does not name %s", err, limit)
	}
	if le.RetryAfterSeconds() < 1 {
		t.Errorf("RetryAfterSeconds = %d, want at least 1", le.RetryAfterSeconds())
	}
	return le
}

func TestRateIsPerToken(t *testing.T) {
	c := newClock()
	l := limits.New(limits.Options{RequestsPerSecond: 2, Burst: 3, Now: c.Now})
	for i := range 3 {
		if err := l.Allow("static:a", 1); err != nil {
			t.Fatalf("request %d within the burst refused: %v", i, err)
		}
	}
	le := refusedBy(t, l.Allow("static:a", 1), limits.LimitRate)
	// Half a second refills one request at 2/s; Retry-After rounds up.
	if le.RetryAfter != time.Second || le.RetryAfterSeconds() != 1 {
		t.Errorf("RetryAfter = %v, want 1s (the floor)", le.RetryAfter)
	}
	// Another token has its own bucket.
	if err := l.Allow("static:b", 1); err != nil {
		t.Errorf("another token refused: %v", err)
	}
	c.Advance(500 * time.Millisecond)
	if err := l.Allow("static:a", 1); err != nil {
		t.Errorf("refilled request refused: %v", err)
	}
	refusedBy(t, l.Allow("static:a", 1), limits.LimitRate)
	// The bucket never holds more than the burst.
	c.Advance(time.Hour)
	for range 3 {
		if err := l.Allow("static:a", 1); err != nil {
			t.Fatalf("after a rest: %v", err)
		}
	}
	refusedBy(t, l.Allow("static:a", 1), limits.LimitRate)
}

func TestRateRetryAfter(t *testing.T) {
	c := newClock()
	l := limits.New(limits.Options{RequestsPerSecond: 0.25, Now: c.Now}) // burst 1
	if err := l.Allow("t", 1); err != nil {
		t.Fatal(err)
	}
	le := refusedBy(t, l.Allow("t", 1), limits.LimitRate)
	if le.RetryAfterSeconds() != 4 {
		t.Errorf("RetryAfterSeconds = %d, want 4 (one request at 0.25/s)", le.RetryAfterSeconds())
	}
	// A batch larger than the bucket can never pass.
	le = refusedBy(t, l.Allow("u", 2), limits.LimitRate)
	if le.RetryAfter < time.Minute {
		t.Errorf("RetryAfter = %v for a batch over the burst, want long", le.RetryAfter)
	}
}

func TestInFlight(t *testing.T) {
	l := limits.New(limits.Options{MaxInFlightPerToken: 2, MaxInFlight: 3})
	r1, err := l.Begin("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Begin("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Begin("a", 1)
	refusedBy(t, err, limits.LimitInFlightPerToken)
	r3, err := l.Begin("b", 1)
	if err != nil {
		t.Fatalf("another token refused: %v", err)
	}
	_, err = l.Begin("c", 1)
	refusedBy(t, err, limits.LimitInFlight)
	if u := l.Usage(); u.InFlight != 3 || u.Tokens["a"] != 2 {
		t.Errorf("Usage = %+v, want 3 in flight, 2 of a", u)
	}
	r1()
	r1() // idempotent
	if _, err := l.Begin("c", 1); err != nil {
		t.Errorf("after a release: %v", err)
	}
	r2()
	r3()
	// A batch takes one place per call, all or nothing.
	_, err = l.Begin("d", 3)
	refusedBy(t, err, limits.LimitInFlightPerToken)
	if u := l.Usage(); u.InFlight != 1 {
		t.Errorf("a refused batch took places: %+v", u)
	}
}

func TestInFlightRefusalTakesNoRate(t *testing.T) {
	c := newClock()
	l := limits.New(limits.Options{RequestsPerSecond: 1, Burst: 1, MaxInFlightPerToken: 1, Now: c.Now})
	release, err := l.Begin("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	_, err = l.Begin("a", 1)
	refusedBy(t, err, limits.LimitInFlightPerToken)
	release()
	// The refused request did not spend the refilled token.
	if _, err := l.Begin("a", 1); err != nil {
		t.Errorf("refilled request refused: %v", err)
	}
}

func TestSessions(t *testing.T) {
	l := limits.New(limits.Options{MaxSessionsPerToken: 1, MaxSessions: 2})
	ra, err := l.OpenSession("a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.OpenSession("a")
	refusedBy(t, err, limits.LimitSessionsPerToken)
	if _, err := l.OpenSession("b"); err != nil {
		t.Fatal(err)
	}
	_, err = l.OpenSession("c")
	refusedBy(t, err, limits.LimitSessions)
	ra()
	ra()
	if _, err := l.OpenSession("a"); err != nil {
		t.Errorf("after closing a session: %v", err)
	}
}

func TestZeroMeansNoLimit(t *testing.T) {
	l := limits.New(limits.Options{})
	for i := range 10000 {
		if _, err := l.Begin("a", 1); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := l.OpenSession("a"); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if err := l.Allow("a", 1); err != nil {
			t.Fatalf("allow %d: %v", i, err)
		}
	}
	var nl *limits.Limiter
	if _, err := nl.Begin("a", 1); err != nil {
		t.Errorf("nil limiter: %v", err)
	}
}

func TestTokensAreForgotten(t *testing.T) {
	c := newClock()
	l := limits.New(limits.Options{RequestsPerSecond: 100, Now: c.Now})
	for i := range 5000 {
		release, err := l.Begin(strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), 1)
		if err != nil {
			t.Fatal(err)
		}
		release()
		c.Advance(100 * time.Millisecond)
	}
	// Every bucket refills within 10ms: sweeps keep the state small.
	if u := l.Usage(); u.Tracked > 2048 || len(u.Tokens) != 0 {
		t.Errorf("Usage = %d tracked, %d in flight; want sweeps to forget idle tokens", u.Tracked, len(u.Tokens))
	}
}

func TestGate(t *testing.T) {
	g := limits.NewGate(2)
	l1, err := g.Enter()
	if err != nil {
		t.Fatal(err)
	}
	l2, err := g.Enter()
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Enter()
	refusedBy(t, err, limits.LimitInFlightUpstream)
	if g.InFlight() != 2 {
		t.Errorf("InFlight = %d, want 2", g.InFlight())
	}
	l1()
	if _, err := g.Enter(); err != nil {
		t.Errorf("after a call left: %v", err)
	}
	l2()
	var nilGate *limits.Gate
	if _, err := nilGate.Enter(); err != nil {
		t.Errorf("nil gate: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	l := limits.New(limits.Options{MaxInFlightPerToken: 4, MaxInFlight: 6, MaxSessions: 5})
	g := limits.NewGate(3)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subject := string(rune('a' + i%3))
			for range 200 {
				if release, err := l.Begin(subject, 1); err == nil {
					if leave, err := g.Enter(); err == nil {
						leave()
					}
					release()
				}
				if release, err := l.OpenSession(subject); err == nil {
					release()
				}
			}
		}()
	}
	wg.Wait()
	if u := l.Usage(); u.InFlight != 0 || u.Sessions != 0 {
		t.Errorf("Usage after every release = %+v", u)
	}
	if g.InFlight() != 0 {
		t.Errorf("gate holds %d", g.InFlight())
	}
}
