package session_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/session"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// printSink stands in for a transport's streams.
type printSink struct{}

func (printSink) Send(ctx context.Context, msg jsonrpc.Message) error {
	data, _ := jsonrpc.Encode(msg)
	id, ok := session.RelatedTo(ctx)
	fmt.Println(string(data), "related:", ok, id.Raw())
	return nil
}

// A transport makes a session per client and runs each client request
// under Begin, so that whatever the request sends travels with it.
func Example() {
	s := session.New(session.NewID("edge-1"), session.TransportStreamable, authn.Anonymous(), printSink{})
	defer s.Close()

	ctx, done := s.Begin(context.Background(), jsonrpc.IntID(1))
	defer done()
	_ = s.Notify(ctx, protocol.NotificationProgress, json.RawMessage(`{"progress":1,"progressToken":"t"}`))
	// Output: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":"t"}} related: true 1
}

// A store ends abandoned sessions and says so once per session.
func ExampleStore() {
	st := session.NewStore()
	st.OnClose = func(s *session.Session) { fmt.Println("closed", s.Transport) }
	s := session.New("edge-1.x", session.TransportSSE, authn.Anonymous(), printSink{})
	st.Add(s)
	fmt.Println(st.Get("edge-1.x") == s, st.Counts())
	st.Remove(s)
	st.Remove(s)
	// Output:
	// true map[sse:1]
	// closed sse
}
