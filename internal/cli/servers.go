package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

const adminTokenHelp = "admin `TOKEN`"

var serversList = &command{
	name:    "servers list",
	summary: "list the servers and their desired state",
	maxArgs: 0,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		return func(ctx context.Context, _ []string) error {
			c, err := r.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			cctx, cancel := c.call(ctx)
			defer cancel()
			resp, err := c.Servers.ListServers(cctx, &atraxv1.ListServersRequest{})
			if err != nil {
				return c.explain(err, about{})
			}
			if out.json() {
				return writeJSON(e.stdout, resp)
			}
			if len(resp.GetServers()) == 0 {
				fmt.Fprintln(e.stdout, "No servers. Add one with `atrax servers add NAME --url URL` (or --command), or under mcpServers in the config file.")
				return nil
			}
			t := newTable(e.stdout, "NAME", "STATE", "TRANSPORT", "SOURCE", "TARGET", "DESCRIPTION")
			for _, s := range resp.GetServers() {
				t.row(s.GetName(), s.GetState(), transportOf(s), s.GetSource(), clip(target(s), 60), clip(s.GetDescription(), 40))
			}
			return t.flush()
		}
	},
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
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		return func(ctx context.Context, args []string) error {
			c, err := r.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			cctx, cancel := c.call(ctx)
			defer cancel()
			resp, err := c.Servers.GetServer(cctx, &atraxv1.GetServerRequest{Name: args[0]})
			if err != nil {
				return c.explain(err, about{server: args[0]})
			}
			if out.json() {
				return writeJSON(e.stdout, resp.GetServer())
			}
			return printServer(e, resp.GetServer())
		}
	},
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
			c, err := r.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			cctx, cancel := c.call(ctx)
			defer cancel()
			resp, err := c.Servers.CreateServer(cctx, &atraxv1.CreateServerRequest{Server: &s})
			if err != nil {
				return c.explain(err, about{server: s.Name})
			}
			if out.json() {
				return writeJSON(e.stdout, resp.GetServer())
			}
			srv := resp.GetServer()
			fmt.Fprintf(e.stdout, "Added server %s (%s: %s), desired state %s.\n", srv.GetName(), transportOf(srv), clip(target(srv), 60), srv.GetState())
			if srv.GetState() == "running" {
				fmt.Fprintln(e.stdout, "See it start on every edge with `atrax status --wait`.")
			}
			return nil
		}
	},
}

var serversRemove = &command{
	name:    "servers remove",
	args:    "NAME",
	summary: "remove a server; every edge stops it",
	minArgs: 1, maxArgs: 1,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		return func(ctx context.Context, args []string) error {
			c, err := r.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			cctx, cancel := c.call(ctx)
			defer cancel()
			resp, err := c.Servers.DeleteServer(cctx, &atraxv1.DeleteServerRequest{Name: args[0]})
			if err != nil {
				return c.explain(err, about{server: args[0]})
			}
			if out.json() {
				return writeJSON(e.stdout, resp)
			}
			fmt.Fprintf(e.stdout, "Removed server %s.\n", args[0])
			return nil
		}
	},
}

// stateCommand is start, stop or restart.
func stateCommand(verb, summary string) *command {
	return &command{
		name:    "servers " + verb,
		args:    "NAME",
		summary: summary,
		minArgs: 1, maxArgs: 1,
		setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
			r := e.addRemoteFlags(fs, adminTokenHelp)
			out := addOutputFlag(fs)
			return func(ctx context.Context, args []string) error {
				c, err := r.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				cctx, cancel := c.call(ctx)
				defer cancel()
				var srv *atraxv1.Server
				switch verb {
				case "start":
					var resp *atraxv1.StartServerResponse
					resp, err = c.Servers.StartServer(cctx, &atraxv1.StartServerRequest{Name: args[0]})
					srv = resp.GetServer()
				case "stop":
					var resp *atraxv1.StopServerResponse
					resp, err = c.Servers.StopServer(cctx, &atraxv1.StopServerRequest{Name: args[0]})
					srv = resp.GetServer()
				default:
					var resp *atraxv1.RestartServerResponse
					resp, err = c.Servers.RestartServer(cctx, &atraxv1.RestartServerRequest{Name: args[0]})
					srv = resp.GetServer()
				}
				if err != nil {
					return c.explain(err, about{server: args[0]})
				}
				if out.json() {
					return writeJSON(e.stdout, srv)
				}
				switch verb {
				case "restart":
					fmt.Fprintf(e.stdout, "Asked every edge to restart %s.\n", srv.GetName())
				default:
					fmt.Fprintf(e.stdout, "Server %s: desired state %s on every edge.\n", srv.GetName(), srv.GetState())
				}
				return nil
			}
		},
	}
}

var (
	serversStart   = stateCommand("start", "set a server's desired state to running")
	serversStop    = stateCommand("stop", "set a server's desired state to stopped")
	serversRestart = stateCommand("restart", "restart a server's connection on every edge")
)
