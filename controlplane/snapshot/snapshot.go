// Package snapshot keeps the current edge snapshot and tells every Sync
// stream when a new one is ready. Snapshots are immutable: a new one is
// built whole and swapped in, and subscribers always read the latest, so a
// slow edge skips intermediate versions instead of holding anyone up.
package snapshot

import (
	"sync"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Publisher holds the current snapshot and its subscribers.
type Publisher struct {
	build func() (*atraxv1.Snapshot, error)

	mu   sync.Mutex
	cur  *atraxv1.Snapshot
	subs map[chan struct{}]struct{}
}

// NewPublisher returns a publisher whose snapshots come from build. build
// must return a new message each time; the publisher never modifies it.
func NewPublisher(build func() (*atraxv1.Snapshot, error)) (*Publisher, error) {
	p := &Publisher{build: build, subs: map[chan struct{}]struct{}{}}
	s, err := build()
	if err != nil {
		return nil, err
	}
	p.cur = s
	return p, nil
}

// Rebuild builds a new snapshot and wakes every subscriber. It is called
// after every change to what snapshots hold. On error the current snapshot
// stays; the next successful rebuild carries every change since.
func (p *Publisher) Rebuild() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, err := p.build()
	if err != nil {
		return err
	}
	if s.GetVersion() < p.cur.GetVersion() {
		// Sources are read after their writes complete, so an older
		// version only means a concurrent rebuild already went further.
		return nil
	}
	p.cur = s
	for ch := range p.subs {
		select {
		case ch <- struct{}{}:
		default: // already signalled; the subscriber will read the latest
		}
	}
	return nil
}

// Current returns the current snapshot. Callers must not modify it.
func (p *Publisher) Current() *atraxv1.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// Subscribe returns a channel that receives a signal whenever a new snapshot
// is current, and a function that ends the subscription.
func (p *Publisher) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.subs, ch)
		p.mu.Unlock()
	}
}
