// Command benchserver is the MCP server `make bench` measures Atrax
// against: a go-sdk server with an "echo" tool and 19 more (20 tools), so
// that a call costs the server next to nothing and what is measured is the
// path to it.
//
//	benchserver                       one server on stdio
//	benchserver -http 127.0.0.1:0     streamable HTTP at /s0/mcp and legacy
//	                                  SSE at /s0/sse
//	benchserver -http ADDR -servers N N servers, at /s0 … /s{N-1}
//	benchserver -http ADDR -proxy URL net/http/httputil's reverse proxy
//	                                  in front of URL: the floor any HTTP
//	                                  gateway in Go stands on
//
// With -http it writes one JSON line to stderr once it listens,
// {"msg":"benchserver serving","address":"127.0.0.1:PORT"}, so that the
// benchmark reads the port the operating system chose. It binds only the
// address it is given, and stops on SIGINT, SIGTERM or the end of stdin
// (stdio).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("http", "", "serve streamable HTTP and legacy SSE on this address instead of stdio")
	servers := flag.Int("servers", 1, "with -http: how many servers, at /s0 … /sN-1 (at least 1)")
	tools := flag.Int("tools", 20, "tools per server (the first is echo)")
	proxy := flag.String("proxy", "", "with -http: serve a plain reverse proxy to this URL instead of MCP servers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *addr == "" {
		return newServer(0, *tools).Run(ctx, &mcp.StdioTransport{})
	}
	*servers = max(*servers, 1)
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-http %s: only loopback addresses are allowed", *addr)
	}
	mux := http.NewServeMux()
	if *proxy != "" {
		target, err := url.Parse(*proxy)
		if err != nil {
			return err
		}
		rp := &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.URL.Path = target.Path },
			FlushInterval: -1, // SSE answers pass at once
			Transport:     &http.Transport{MaxIdleConnsPerHost: 512},
		}
		mux.Handle("/", rp)
		*servers = 0
	}
	for i := range *servers {
		s := newServer(i, *tools)
		get := func(*http.Request) *mcp.Server { return s }
		prefix := "/s" + strconv.Itoa(i)
		mux.Handle(prefix+"/mcp", mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{JSONResponse: true}))
		mux.Handle(prefix+"/sse", mcp.NewSSEHandler(get, nil))
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]any{"msg": "benchserver serving", "address": lis.Addr().String(), "servers": *servers})
	fmt.Fprintln(os.Stderr, string(line))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// newServer returns server number n with its tools: echo, then tool_01 …
// All answer at once with their "message" argument as text.
func newServer(n, tools int) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "benchserver-" + strconv.Itoa(n), Version: "1.0.0"}, nil)
	schema := json.RawMessage(`{"type":"object","properties":{"message":{"type":"string","description":"The text to echo back."}}}`)
	for i := range max(tools, 1) {
		name := "echo"
		desc := "Echoes its message back."
		if i > 0 {
			name = fmt.Sprintf("tool_%02d", i)
			desc = fmt.Sprintf("Tool %d of the benchmark server; echoes its message back.", i)
		}
		s.AddTool(&mcp.Tool{Name: name, Description: desc, InputSchema: schema}, echo)
	}
	return s
}

func echo(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Message string `json:"message"`
	}
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Message}}}, nil
}
