package workpool_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/workpool"
)

func TestGoRunsEverything(t *testing.T) {
	p := workpool.New(4, time.Minute)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			n.Add(1)
		})
	}
	wg.Wait()
	if got := n.Load(); got != 1000 {
		t.Fatalf("ran %d functions, want 1000", got)
	}
}

func TestIdleIsBoundedAndTimesOut(t *testing.T) {
	p := workpool.New(2, 50*time.Millisecond)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 5 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			<-release
		})
	}
	close(release)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("Idle = %d, want at most 2", p.Idle())
		}
		time.Sleep(time.Millisecond)
	}
	for p.Idle() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Idle = %d after the idle timeout, want 0", p.Idle())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReuse(t *testing.T) {
	p := workpool.New(1, time.Minute)
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the goroutine did not wait for more work")
		}
		time.Sleep(time.Millisecond)
	}
	ran := make(chan struct{})
	p.Go(func() { close(ran) })
	<-ran
}

func BenchmarkGo(b *testing.B) {
	p := workpool.New(0, 0)
	done := make(chan struct{})
	b.ReportAllocs()
	for b.Loop() {
		p.Go(func() { done <- struct{}{} })
		<-done
	}
}
