package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/atrax-mcp/atrax/internal/syncbuf"
)

// TestConcurrentWrites: writers and a reader at once (run with -race); every
// line written is there, whole.
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for w := range 4 {
		for i := range 100 {
			if !strings.Contains(b.String(), fmt.Sprintf("w%d-%d\n", w, i)) {
				t.Fatalf("line w%d-%d missing", w, i)
			}
		}
	}
}
