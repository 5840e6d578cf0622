package jsonrpc_test

import (
	"fmt"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// Decode reads only the envelope; params stay raw JSON for the router to
// rewrite the one field it needs.
func ExampleDecode() {
	msgs, batch, err := jsonrpc.Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"memory__read_graph","x-unknown":1}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := msgs[0].(*jsonrpc.Request)
	name, _ := jsonrpc.StringField(req.Params, "name")
	params, _ := jsonrpc.WithField(req.Params, "name", "read_graph")
	fmt.Println(batch, req.Method, name)
	fmt.Println(string(params))
	// Output:
	// false tools/call memory__read_graph
	// {"name":"read_graph","x-unknown":1}
}

// Every Decode error carries the JSON-RPC code to answer with.
func ExampleDecode_error() {
	_, _, err := jsonrpc.Decode([]byte(`{"jsonrpc":"1.0","id":1,"method":"ping"}`))
	fmt.Println(err.(*jsonrpc.Error).Code)
	// Output: -32600
}

// WithMeta swaps a progress token and leaves the rest of _meta alone.
func ExampleWithMeta() {
	p, _ := jsonrpc.WithMeta([]byte(`{"_meta":{"progressToken":7,"trace":"t"}}`), "progressToken", []byte(`"atrax-1"`))
	fmt.Println(string(p))
	// Output: {"_meta":{"progressToken":"atrax-1","trace":"t"}}
}
