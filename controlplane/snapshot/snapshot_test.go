package snapshot_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/controlplane/snapshot"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// source is a build function whose next result the test sets.
type source struct {
	mu      sync.Mutex
	version int64
	err     error
	builds  int
}

func (s *source) set(version int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.err = version, err
}

func (s *source) build() (*atraxv1.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.builds++
	if s.err != nil {
		return nil, s.err
	}
	return &atraxv1.Snapshot{Version: s.version}, nil
}

func newPublisher(t *testing.T, version int64) (*snapshot.Publisher, *source) {
	t.Helper()
	src := &source{version: version}
	p, err := snapshot.NewPublisher(src.build)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p, src
}

func rebuild(t *testing.T, p *snapshot.Publisher, src *source, version int64) {
	t.Helper()
	src.set(version, nil)
	if err := p.Rebuild(); err != nil {
		t.Fatalf("Rebuild(%d): %v", version, err)
	}
}

func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNewPublisher(t *testing.T) {
	p, _ := newPublisher(t, 3)
	if v := p.Current().GetVersion(); v != 3 {
		t.Errorf("Current version = %d, want 3", v)
	}

	boom := errors.New("boom")
	src := &source{err: boom}
	if _, err := snapshot.NewPublisher(src.build); !errors.Is(err, boom) {
		t.Errorf("NewPublisher with a failing build = %v, want %v", err, boom)
	}
}

func TestRebuildCoalesces(t *testing.T) {
	p, src := newPublisher(t, 1)
	slow, stopSlow := p.Subscribe()
	defer stopSlow()
	if signalled(slow) {
		t.Fatal("a new subscriber was signalled before any rebuild")
	}

	// Three rebuilds while the subscriber is busy: one signal waits, and
	// the snapshot it leads to is the latest.
	for v := int64(2); v <= 4; v++ {
		rebuild(t, p, src, v)
	}
	if !signalled(slow) {
		t.Fatal("subscriber not signalled after rebuilds")
	}
	if signalled(slow) {
		t.Error("subscriber signalled more than once for rebuilds it had not yet seen")
	}
	if v := p.Current().GetVersion(); v != 4 {
		t.Errorf("Current version = %d, want 4", v)
	}

	// Rebuild never blocks on a subscriber that does not read.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := int64(5); v < 105; v++ {
			src.set(v, nil)
			p.Rebuild()
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Rebuild blocked on a subscriber that does not read")
	}
	if v := p.Current().GetVersion(); v != 104 {
		t.Errorf("Current version = %d, want 104", v)
	}
}

func TestRebuildSignalsEverySubscriber(t *testing.T) {
	p, src := newPublisher(t, 1)
	a, stopA := p.Subscribe()
	defer stopA()
	b, stopB := p.Subscribe()
	rebuild(t, p, src, 2)
	if !signalled(a) || !signalled(b) {
		t.Fatal("not every subscriber was signalled")
	}

	// An ended subscription is not signalled again.
	stopB()
	stopB() // twice is fine
	rebuild(t, p, src, 3)
	if !signalled(a) {
		t.Error("remaining subscriber not signalled")
	}
	if signalled(b) {
		t.Error("ended subscription signalled")
	}
}

func TestRebuildIgnoresOlderVersions(t *testing.T) {
	p, src := newPublisher(t, 5)
	ch, stop := p.Subscribe()
	defer stop()
	cur := p.Current()

	// A concurrent rebuild already went further: nothing changes.
	rebuild(t, p, src, 4)
	if p.Current() != cur {
		t.Errorf("Current after an older build = version %d, want the version 5 snapshot kept", p.Current().GetVersion())
	}
	if signalled(ch) {
		t.Error("subscriber signalled for an older build")
	}

	rebuild(t, p, src, 6)
	if v := p.Current().GetVersion(); v != 6 || !signalled(ch) {
		t.Errorf("after a newer build: version %d, want 6 and a signal", v)
	}
}

func TestRebuildErrorKeepsCurrent(t *testing.T) {
	p, src := newPublisher(t, 5)
	ch, stop := p.Subscribe()
	defer stop()
	cur := p.Current()

	boom := errors.New("store unavailable")
	src.set(9, boom)
	if err := p.Rebuild(); !errors.Is(err, boom) {
		t.Fatalf("Rebuild = %v, want %v", err, boom)
	}
	if p.Current() != cur {
		t.Errorf("Current after a failed build changed to %v", p.Current())
	}
	if signalled(ch) {
		t.Error("subscriber signalled for a failed build")
	}

	// The next good build carries everything.
	rebuild(t, p, src, 9)
	if v := p.Current().GetVersion(); v != 9 || !signalled(ch) {
		t.Errorf("after recovery: version %d, want 9 and a signal", v)
	}
}

func TestConcurrentRebuilds(t *testing.T) {
	// Rebuilds racing with readers and subscribers, for the race detector;
	// the version never goes back.
	var mu sync.Mutex
	next := int64(0)
	p, err := snapshot.NewPublisher(func() (*atraxv1.Snapshot, error) {
		mu.Lock()
		defer mu.Unlock()
		next++
		return &atraxv1.Snapshot{Version: next}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				p.Rebuild()
			}
		})
	}
	wg.Go(func() {
		ch, stop := p.Subscribe()
		defer stop()
		last := int64(0)
		for range 100 {
			select {
			case <-ch:
			default:
			}
			v := p.Current().GetVersion()
			if v < last {
				t.Errorf("version went back from %d to %d", last, v)
			}
			last = v
		}
	})
	wg.Wait()
	if v := p.Current().GetVersion(); v != 201 {
		t.Errorf("final version = %d, want 201", v)
	}
}
