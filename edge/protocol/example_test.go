package protocol_test

import (
	"fmt"

	"github.com/atrax-mcp/atrax/edge/protocol"
)

// A client asking for a revision the edge speaks gets it; any other gets
// the latest, and decides itself whether it can go on.
func ExampleNegotiate() {
	fmt.Println(protocol.Negotiate("2025-03-26"))
	fmt.Println(protocol.Negotiate("2099-01-01"))
	// Output:
	// 2025-03-26
	// 2025-11-25
}

// A server-to-client request reaches a client only if it declared the
// capability the request needs.
func ExampleClientCapabilities_Allows() {
	var caps protocol.ClientCapabilities // declared nothing
	fmt.Println(caps.Allows(protocol.MethodSamplingCreateMessage), caps.Allows(protocol.MethodPing))
	// Output: false true
}
