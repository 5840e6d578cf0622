package snapshot_test

import (
	"fmt"

	"github.com/atrax-mcp/atrax/controlplane/snapshot"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

func ExamplePublisher() {
	version := int64(1)
	p, _ := snapshot.NewPublisher(func() (*atraxv1.Snapshot, error) {
		return &atraxv1.Snapshot{Version: version}, nil
	})

	// A Sync stream sends the current snapshot, then waits for a signal.
	wake, stop := p.Subscribe()
	defer stop()
	fmt.Println("send", p.Current().GetVersion())

	// Two changes before the stream wakes: it sends only the latest.
	version = 2
	p.Rebuild()
	version = 3
	p.Rebuild()
	<-wake
	fmt.Println("send", p.Current().GetVersion())
	// Output:
	// send 1
	// send 3
}
