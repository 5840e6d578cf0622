package cli

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/atrax-mcp/atrax/internal/connect"
)

var connectCmd = &command{
	name:    "connect",
	args:    "URL",
	summary: "serve MCP on stdio, relayed to a remote Atrax (or any MCP endpoint)",
	detail: `
For clients that only launch stdio servers (Claude Desktop and the like):
every message on stdin goes to URL, every message from URL to stdout. When
the remote restarts, connect reconnects and initializes a new session for the
client, which keeps working. Logs go to stderr.

  "mcpServers": {
    "atrax": {
      "command": "atrax",
      "args": ["connect", "http://gateway:4000/mcp"],
      "env": {"ATRAX_TOKEN": "..."}
    }
  }`,
	minArgs: 1, maxArgs: 1,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		var (
			token, transport, logLevel string
			headers                    kvFlag
			wait                       time.Duration
		)
		fs.StringVar(&token, "token", "", "`TOKEN` sent as Authorization: Bearer (default $"+envToken+")")
		fs.StringVar(&transport, "transport", connect.TransportAuto, "`TRANSPORT` to the remote: auto (streamable HTTP, falling back to SSE), http or sse")
		fs.Var(&headers, "header", "another HTTP header `NAME=VALUE` for the remote (may be repeated)")
		fs.StringVar(&logLevel, "log-level", "", "`LEVEL` of the logs on stderr: debug, info, warn or error (default $ATRAX_LOG_LEVEL, else info)")
		fs.DurationVar(&wait, "reconnect-wait", connect.DefaultReconnectWait, "how long (`DURATION`) a request waits for the remote while reconnecting")
		return func(ctx context.Context, args []string) error {
			switch transport {
			case connect.TransportAuto, connect.TransportHTTP, connect.TransportSSE:
			default:
				return usagef("--transport %q: want auto, http or sse", transport)
			}
			if logLevel == "" {
				logLevel = e.getenv("ATRAX_LOG_LEVEL")
			}
			var level slog.Level
			if logLevel != "" {
				if err := level.UnmarshalText([]byte(logLevel)); err != nil {
					return usagef("log level %q: want debug, info, warn or error", logLevel)
				}
			}
			if token == "" {
				token = strings.TrimSpace(e.getenv(envToken))
			}
			var header http.Header
			if len(headers) > 0 {
				header = http.Header{}
				for k, v := range headers {
					header.Set(k, v)
				}
			}
			opts := connect.Options{
				URL:           args[0],
				Token:         token,
				Transport:     transport,
				Header:        header,
				Stdin:         e.stdin,
				Stdout:        e.stdout,
				Logger:        slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})).With("component", "connect"),
				UserAgent:     "atrax-connect/" + e.version,
				ReconnectWait: wait,
			}
			if err := connect.Run(ctx, opts); err != nil {
				if errors.Is(err, connect.ErrOptions) {
					return usagef("%v", err)
				}
				return err
			}
			return nil
		}
	},
}
