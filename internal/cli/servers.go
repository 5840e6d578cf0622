package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

const adminTokenHelp = "admin `TOKEN`"

var serversList = &command{
	name:    "servers list",
	summary: "list the servers and their desired state",
	maxArgs: 0,
	setup: oneCall(func(e *env, _ []string) rpc[*atraxv1.ListServersResponse] {
		return rpc[*atraxv1.ListServersResponse]{
			call: func(ctx context.Context, c *client) (*atraxv1.ListServersResponse, error) {
				return c.Servers.ListServers(ctx, &atraxv1.ListServersRequest{})
			},
			text: func(resp *atraxv1.ListServersResponse) error {
				if len(resp.GetServers()) == 0 {
					fmt.Fprintln(e.stdout, "No servers. Add one with `atrax servers add NAME --url URL` (or --command), or under mcpServers in the config file.")
					return nil
				}
				t := newTable(e.stdout, "NAME", "STATE", "TRANSPORT", "SOURCE", "TARGET", "DESCRIPTION")
				for _, s := range resp.GetServers() {
					t.row(s.GetName(), s.GetState(), transportOf(s), s.GetSource(), clip(target(s), 60), clip(s.GetDescription(), 40))
				}
				return t.flush()
			},
		}
	}),
}

// transportOf is the server's transport, inferred as the edge infers it
// when unset.
func transportOf(s *atraxv1.Server) string {
	switch {
	case s.GetTransportType() != "":
		return s.GetTransportType()
	case s.GetCommand() != "":
		return "stdio"
	case s.GetUrl() != "":
		return "http"
	}
	return ""
}

// target is what the server runs or where it is.
func target(s *atraxv1.Server) string {
	if s.GetCommand() != "" {
		return shellJoin(append([]string{s.GetCommand()}, s.GetArgs()...))
	}
	return s.GetUrl()
}

var serversGet = &command{
	name:    "servers get",
	args:    "NAME",
	summary: "show one server's definition and desired state",
	minArgs: 1, maxArgs: 1,
	setup: oneCall(func(e *env, args []string) rpc[*atraxv1.Server] {
		return rpc[*atraxv1.Server]{
			about: about{server: args[0]},
			call: func(ctx context.Context, c *client) (*atraxv1.Server, error) {
				resp, err := c.Servers.GetServer(ctx, &atraxv1.GetServerRequest{Name: args[0]})
				return resp.GetServer(), err
			},
			text: func(s *atraxv1.Server) error { return printServer(e, s) },
		}
	}),
}

func printServer(e *env, s *atraxv1.Server) error {
	f := newFields(e.stdout)
	f.add("name", s.GetName())
	f.add("state", s.GetState())
	f.add("source", s.GetSource())
	f.add("transport", transportOf(s))
	f.add("command", s.GetCommand())
	if len(s.GetArgs()) > 0 {
		f.add("args", shellJoin(s.GetArgs()))
	}
	f.add("env", joinMap(s.GetEnv()))
	f.add("cwd", s.GetCwd())
	f.add("url", s.GetUrl())
	f.add("headers", joinMap(s.GetHeaders()))
	f.add("description", s.GetDescription())
	f.add("tags", strings.Join(s.GetTags(), ", "))
	if s.GetDisabled() {
		f.add("disabled", "true")
	}
	if tf := s.GetTools(); tf != nil {
		var parts []string
		if len(tf.GetAllow()) > 0 {
			parts = append(parts, "allow "+strings.Join(tf.GetAllow(), " "))
		}
		if len(tf.GetDeny()) > 0 {
			parts = append(parts, "deny "+strings.Join(tf.GetDeny(), " "))
		}
		f.add("tools", strings.Join(parts, "; "))
	}
	f.add("prefix", s.GetPrefix())
	f.add("timeout", s.GetTimeout())
	f.add("isolation", s.GetIsolation())
	if n := s.GetMaxSessions(); n > 0 {
		f.add("maxSessions", strconv.Itoa(int(n)))
	}
	if s.GetPinTools() {
		f.add("pinTools", "true")
	}
	f.add("created", when(s.GetCreateTime()))
	f.add("updated", when(s.GetUpdateTime()))
	f.add("restarted", when(s.GetRestartTime()))
	return f.flush()
}

var serversAdd = &command{
	name:    "servers add",
	args:    "NAME [-- COMMAND [ARG...]]",
	summary: "add a server (stdio with --command, remote with --url)",
	detail: `
A stdio server runs a command on every edge; the control plane accepts one
only when the config allows it (controlPlane.allowCommands). A remote server
takes --url and, for its own credentials, --header. Values may hold ${VAR},
stored as written and expanded by each edge from its own environment.

  atrax servers add docs --url https://example.com/mcp --header 'Authorization=Bearer ${DOCS_TOKEN}'
  atrax servers add memory --command npx --args -y,@modelcontextprotocol/server-memory
  atrax servers add memory -- npx -y @modelcontextprotocol/server-memory`,
	minArgs: 1, maxArgs: -1,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		var (
			s             atraxv1.Server
			args, tags    listFlag
			envs, headers kvFlag
		)
		fs.StringVar(&s.Command, "command", "", "`PROGRAM` that a stdio server runs")
		fs.Var(&args, "args", "the program's arguments `A,B` (comma-separated; may be repeated)")
		fs.Var(&envs, "env", "environment variable `KEY=VALUE` of the program (may be repeated)")
		fs.StringVar(&s.Cwd, "cwd", "", "working directory `DIR` of the program")
		fs.StringVar(&s.Url, "url", "", "`URL` of a remote server (streamable HTTP or SSE)")
		fs.Var(&headers, "header", "HTTP header `NAME=VALUE` for a remote server (may be repeated)")
		fs.StringVar(&s.Type, "type", "", "transport `TYPE`: stdio, sse or http (inferred when absent)")
		fs.StringVar(&s.Description, "description", "", "free `TEXT` for operators")
		fs.StringVar(&s.Timeout, "timeout", "", "call timeout `DURATION`, such as 90s (default 5m)")
		fs.StringVar(&s.Prefix, "prefix", "", "`PREFIX` of its tool and prompt names (default the name)")
		fs.StringVar(&s.Isolation, "isolation", "", "isolation `MODE`: shared (default) or session")
		fs.Var(&tags, "tags", "labels `A,B` for operators (comma-separated)")
		fs.BoolVar(&s.Disabled, "disabled", false, "define the server but do not start it")
		fs.BoolVar(&s.PinTools, "pin-tools", false, "hold each new or changed tool until an admin approves it (atrax servers approve)")
		return func(ctx context.Context, pos []string) error {
			s.Name = pos[0]
			if rest := pos[1:]; len(rest) > 0 {
				if s.Command != "" || len(args) > 0 {
					return usagef("give the command either after -- or with --command and --args, not both")
				}
				s.Command, args = rest[0], rest[1:]
			}
			if s.Command == "" && s.Url == "" {
				return usagef("server %q needs --command (stdio) or --url (remote)", s.Name)
			}
			s.Args, s.Tags = args, tags
			s.Env, s.Headers = envs, headers
			return unary(ctx, r, *out, rpc[*atraxv1.Server]{
				about: about{server: s.Name},
				call: func(ctx context.Context, c *client) (*atraxv1.Server, error) {
					resp, err := c.Servers.CreateServer(ctx, &atraxv1.CreateServerRequest{Server: &s})
					return resp.GetServer(), err
				},
				text: func(srv *atraxv1.Server) error {
					fmt.Fprintf(e.stdout, "Added server %s (%s: %s), desired state %s.\n", srv.GetName(), transportOf(srv), clip(target(srv), 60), srv.GetState())
					if srv.GetState() == "running" {
						fmt.Fprintln(e.stdout, "See it start on every edge with `atrax status --wait`.")
					}
					return nil
				},
			})
		}
	},
}

var serversRemove = &command{
	name:    "servers remove",
	args:    "NAME",
	summary: "remove a server; every edge stops it",
	minArgs: 1, maxArgs: 1,
	setup: oneCall(func(e *env, args []string) rpc[*atraxv1.DeleteServerResponse] {
		return rpc[*atraxv1.DeleteServerResponse]{
			about: about{server: args[0]},
			call: func(ctx context.Context, c *client) (*atraxv1.DeleteServerResponse, error) {
				return c.Servers.DeleteServer(ctx, &atraxv1.DeleteServerRequest{Name: args[0]})
			},
			text: func(*atraxv1.DeleteServerResponse) error {
				fmt.Fprintf(e.stdout, "Removed server %s.\n", args[0])
				return nil
			},
		}
	}),
}

// stateCommand is start, stop or restart: call changes the server named,
// done says so.
func stateCommand(verb, summary string, call func(context.Context, *client, string) (*atraxv1.Server, error), done func(io.Writer, *atraxv1.Server)) *command {
	return &command{
		name:    "servers " + verb,
		args:    "NAME",
		summary: summary,
		minArgs: 1, maxArgs: 1,
		setup: oneCall(func(e *env, args []string) rpc[*atraxv1.Server] {
			return rpc[*atraxv1.Server]{
				about: about{server: args[0]},
				call:  func(ctx context.Context, c *client) (*atraxv1.Server, error) { return call(ctx, c, args[0]) },
				text:  func(srv *atraxv1.Server) error { done(e.stdout, srv); return nil },
			}
		}),
	}
}

// desiredState says what start and stop did.
func desiredState(w io.Writer, srv *atraxv1.Server) {
	fmt.Fprintf(w, "Server %s: desired state %s on every edge.\n", srv.GetName(), srv.GetState())
}

var (
	serversStart = stateCommand("start", "set a server's desired state to running",
		func(ctx context.Context, c *client, name string) (*atraxv1.Server, error) {
			resp, err := c.Servers.StartServer(ctx, &atraxv1.StartServerRequest{Name: name})
			return resp.GetServer(), err
		}, desiredState)
	serversStop = stateCommand("stop", "set a server's desired state to stopped",
		func(ctx context.Context, c *client, name string) (*atraxv1.Server, error) {
			resp, err := c.Servers.StopServer(ctx, &atraxv1.StopServerRequest{Name: name})
			return resp.GetServer(), err
		}, desiredState)
	serversRestart = stateCommand("restart", "restart a server's connection on every edge",
		func(ctx context.Context, c *client, name string) (*atraxv1.Server, error) {
			resp, err := c.Servers.RestartServer(ctx, &atraxv1.RestartServerRequest{Name: name})
			return resp.GetServer(), err
		},
		func(w io.Writer, srv *atraxv1.Server) {
			fmt.Fprintf(w, "Asked every edge to restart %s.\n", srv.GetName())
		})
)

var serversApprove = &command{
	name:    "servers approve",
	args:    "NAME",
	summary: "approve the changed tools of a server with pinTools",
	detail: `
A server with "pinTools": true has each changed (or new) tool held back on
every edge until an admin approves its definition as the edges now see it.
Without --tool every tool awaiting approval is approved; --tool names the
server's own tool names (without its prefix). The first approval also
records the definitions the edges trusted until then. ` + "`atrax status`" + `
lists what each edge holds back (pendingTools in -o json).

  atrax servers approve docs
  atrax servers approve docs --tool search --tool fetch`,
	minArgs: 1, maxArgs: 1,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		var tools listFlag
		fs.Var(&tools, "tool", "approve only tool `NAME`, the server's own name (may be repeated, or A,B)")
		return func(ctx context.Context, args []string) error {
			return unary(ctx, r, *out, rpc[*atraxv1.ApproveServerToolsResponse]{
				about: about{server: args[0]},
				call: func(ctx context.Context, c *client) (*atraxv1.ApproveServerToolsResponse, error) {
					return c.Servers.ApproveServerTools(ctx, &atraxv1.ApproveServerToolsRequest{Name: args[0], Tools: tools})
				},
				text: func(resp *atraxv1.ApproveServerToolsResponse) error {
					name := resp.GetServer().GetName()
					if len(resp.GetApproved()) == 0 {
						fmt.Fprintf(e.stdout, "Nothing to approve: every edge serves the approved definitions of %s's tools.\n", name)
						return nil
					}
					fmt.Fprintf(e.stdout, "Approved %s of %s: %s. Every edge serves them as approved.\n",
						plural(len(resp.GetApproved()), "tool definition", "tool definitions"), name, strings.Join(resp.GetApproved(), ", "))
					return nil
				},
			})
		}
	},
}
