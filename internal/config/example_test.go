package config_test

import (
	"fmt"

	"github.com/atrax-mcp/atrax/internal/config"
)

func ExampleParse() {
	data := []byte(`{
	  // The seed's format, with comments and trailing commas.
	  "port": 4000,
	  "host": "localhost",
	  "auth": {"type": "token", "options": {"token": "${MCP_TOKEN}"}},
	  "mcpServers": {
	    "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
	    "github": {
	      "url": "https://api.githubcopilot.com/mcp/",
	      "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
	    },
	  },
	}`)
	env := map[string]string{"MCP_TOKEN": "your-secret-token", "GITHUB_TOKEN": "ghp_example"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	c, err := config.Parse(data, config.Options{LookupEnv: lookup})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("listen on", c.Host, c.Port, "with", c.Auth.Type, "auth")
	for _, s := range c.Servers {
		// Server strings are kept as written; the edge expands them.
		fmt.Printf("%s: %s %s%s\n", s.Name, s.Transport(), s.Command, s.Headers["Authorization"])
	}

	// Every problem comes back at once, each with its key path.
	_, err = config.Parse([]byte(`{"port": 70000, "auth": {"type": "token"}, "mcpServers": {"x": {"type": "grpc"}}}`), config.Options{LookupEnv: lookup})
	fmt.Println(err)

	// Output:
	// listen on localhost 4000 with token auth
	// memory: stdio npx
	// github: http Bearer ${GITHUB_TOKEN}
	// auth.options.token: required when auth.type is "token" (or set auth.options.tokens)
	// mcpServers.x: needs "command" (stdio) or "url" (sse, http)
	// mcpServers.x.type: unknown value "grpc" (want stdio, sse or http)
	// port: must be a number between 0 and 65535
}
