package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress shows a spinner and a line of text on a terminal while
// something takes long; on anything else it writes nothing, so that piped
// output stays clean.
type progress struct {
	w  io.Writer
	on bool

	mu    sync.Mutex
	text  string
	frame int
	shown bool
	stop  chan struct{}
	done  chan struct{}
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spinnerEvery is how often the spinner turns.
const spinnerEvery = 100 * time.Millisecond

func newProgress(w io.Writer, on bool) *progress {
	p := &progress{w: w, on: on, stop: make(chan struct{}), done: make(chan struct{})}
	if !on {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(spinnerEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw()
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

// set changes the text next to the spinner.
func (p *progress) set(text string) {
	if !p.on {
		return
	}
	p.mu.Lock()
	p.text = text
	p.mu.Unlock()
	p.draw()
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.text == "" {
		return
	}
	p.frame = (p.frame + 1) % len(spinnerFrames)
	// \r and "erase line" redraw in place.
	fmt.Fprintf(p.w, "\r\x1b[K%s %s", spinnerFrames[p.frame], p.text)
	p.shown = true
}

// end stops the spinner and clears its line.
func (p *progress) end() {
	if !p.on {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}
