package fleet_test

import (
	"fmt"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

func ExampleFleet() {
	f := fleet.New(fleet.Options{})

	// What a Sync stream does with an edge's hello and reports.
	disconnect := f.Connect(&atraxv1.EdgeHello{EdgeId: "edge-1", Address: "10.0.0.5:4000"})
	f.Report("edge-1", &atraxv1.EdgeReport{SnapshotVersion: 12})
	for _, e := range f.Edges() {
		fmt.Println(e.GetEdgeId(), e.GetConnected(), e.GetSnapshotVersion())
	}

	disconnect()
	for _, e := range f.Edges() {
		fmt.Println(e.GetEdgeId(), e.GetConnected())
	}
	// Output:
	// edge-1 true 12
	// edge-1 false
}
