package upstream_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/atrax-mcp/atrax/edge/upstream"
)

// A Pool runs the servers it is told to and keeps them running; callers
// reach them by name and pass their own tag, so that replies and
// server-to-client requests come back to them.
func ExamplePool() {
	exe, _ := os.Executable() // this test binary, acting as a fake stdio server
	pool := upstream.NewPool(context.Background(), upstream.PoolOptions{})
	defer pool.Close()
	pool.Apply([]upstream.Desired{{
		Spec: upstream.Spec{
			Name: "fake", Transport: "stdio", Command: exe,
			Env:     map[string]string{helperEnv: "server", "GORACE": "atexit_sleep_ms=0"},
			Timeout: time.Minute,
		},
		Key: "v1",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := pool.ForCaller(ctx, "fake", "session-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := u.Ready(ctx); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := u.Call(ctx, "ping", nil, upstream.CallOptions{Tag: "session-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(resp.Result), len(u.Lists().Tools), pool.Statuses()[0].State)
	// Output: {} 9 running
}
