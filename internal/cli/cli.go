// Package cli is the part of the atrax command line that is not a server:
// the commands that manage a running control plane over its gRPC API
// (servers, token, status, audit), the ones that write and check config
// files (init, config validate), store migrate (which runs the function
// cmd/atrax gives it: the CLI sees the control plane through its API only),
// and connect, the stdio relay to a remote MCP endpoint. cmd/atrax hands
// Run the arguments and exits with what it returns:
//
//	os.Exit(cli.Run(ctx, os.Args[1:], cli.Options{Version: version}))
//
// Output is an aligned table for people and, with -o json, the API's
// messages in their JSON form (protojson, the API's field names) for
// scripts. Errors go to stderr and say what to do next. Exit codes: 0 when
// the command did what was asked, 1 when it failed, 2 for a usage error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes of Run.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Options are what Run needs of its process. The zero value works.
type Options struct {
	// Stdin, Stdout and Stderr; nil means the process's own.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads ATRAX_ADDR, ATRAX_TOKEN and the like, and the
	// ${VAR} of config files; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Interactive says stderr is a terminal: long waits show progress there.
	Interactive bool
	// Version is the binary's version.
	Version string
	// MigrateStore runs `atrax store migrate`; nil: the command fails,
	// saying this binary cannot.
	MigrateStore MigrateStore
}

// env is one run of the CLI.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	interactive    bool
	version        string
	migrateStore   MigrateStore
}

func (e *env) getenv(key string) string {
	v, _ := e.lookupEnv(key)
	return v
}

// command is one leaf of the command tree.
type command struct {
	name    string // "servers add"
	args    string // positional arguments, for the usage line
	summary string // one line
	detail  string // more, for -h; may be empty
	minArgs int
	maxArgs int // -1: any number
	// setup defines the command's flags on fs and returns its run.
	setup func(e *env, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

// commands is the command tree, in the order help lists it.
func commands() []*command {
	return []*command{
		serversList, serversGet, serversAdd, serversRemove, serversStart, serversStop, serversRestart, serversApprove,
		tokenIssue, tokenRevoke,
		statusCmd, auditCmd,
		initCmd, configValidate,
		storeMigrate,
		connectCmd,
		versionCmd,
	}
}

// groups are the first words of two-word commands.
var groups = map[string]string{
	"servers": "manage the MCP servers behind Atrax",
	"token":   "issue and revoke tokens",
	"config":  "check config files",
	"store":   "move the control plane's state",
}

const usageHead = `atrax — one MCP endpoint in front of many MCP servers

Usage: atrax COMMAND [ARGS] [flags]
`

// serverCommands are run by cmd/atrax itself; help lists them first.
var serverCommands = []struct{ left, summary string }{
	{"serve -f CONFIG", "run the control plane and one edge"},
	{"controlplane -f CONFIG", "run the control plane alone (gRPC API)"},
	{"edge -f CONFIG", "run an edge alone (public HTTP port)"},
}

func leftColumn(c *command) string {
	if c.args == "" {
		return c.name
	}
	return c.name + " " + c.args
}

const usageTail = `
Commands that talk to the control plane take --addr (or ATRAX_ADDR; default
127.0.0.1:4001) and --token (or ATRAX_TOKEN, an admin token), and print a
table, or JSON with -o json. To a control plane with controlPlane.tls they
speak TLS with --ca (or ATRAX_CA), the CA of its certificate, or --tls for
the system's CAs; and with --cert and --key (or ATRAX_CERT and ATRAX_KEY)
where it requires a client certificate.

Run "atrax COMMAND -h" for a command's flags.
`

// usageSections lists the other commands under their headings.
var usageSections = []struct {
	title string
	names []string
}{
	{"Manage a running gateway", []string{"servers list", "servers get", "servers add", "servers remove", "servers start", "servers stop", "servers restart", "servers approve", "status", "audit", "token issue", "token revoke"}},
	{"Files", []string{"init", "config validate"}},
	{"Move to a fleet", []string{"store migrate"}},
	{"Clients", []string{"connect"}},
	{"", []string{"version"}},
}

// Usage is the text of `atrax help`.
func Usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	byName := map[string]*command{}
	for _, c := range commands() {
		byName[c.name] = c
	}
	width := 0
	for _, c := range byName {
		width = max(width, len(leftColumn(c)))
	}
	b.WriteString("\nRun a gateway:\n")
	for _, sc := range serverCommands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, sc.left, sc.summary)
	}
	for _, s := range usageSections {
		b.WriteString("\n")
		if s.title != "" {
			b.WriteString(s.title + ":\n")
		}
		for _, n := range s.names {
			c := byName[n]
			fmt.Fprintf(&b, "  %-*s  %s\n", width, leftColumn(c), c.summary)
		}
	}
	b.WriteString(usageTail)
	return b.String()
}

// Run runs the command that args (without the program name) name and
// returns the exit code.
func Run(ctx context.Context, args []string, opts Options) int {
	e := &env{
		stdin:        opts.Stdin,
		stdout:       opts.Stdout,
		stderr:       opts.Stderr,
		lookupEnv:    opts.LookupEnv,
		interactive:  opts.Interactive,
		version:      opts.Version,
		migrateStore: opts.MigrateStore,
	}
	if e.stdin == nil {
		e.stdin = os.Stdin
	}
	if e.stdout == nil {
		e.stdout = os.Stdout
	}
	if e.stderr == nil {
		e.stderr = os.Stderr
	}
	if e.lookupEnv == nil {
		e.lookupEnv = os.LookupEnv
	}
	if e.version == "" {
		e.version = "dev"
	}
	if len(args) == 0 {
		fmt.Fprint(e.stderr, Usage())
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return e.help(args[1:])
	case "-version", "--version":
		args = []string{"version"}
	}
	c, rest, err := find(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, groupUsage(args[0]))
			return ExitOK
		}
		fmt.Fprintf(e.stderr, "atrax: %v\n", err)
		return ExitUsage
	}
	return e.run(ctx, c, rest)
}

// find returns the command args name and the arguments after its name.
func find(args []string) (*command, []string, error) {
	all := commands()
	if len(args) >= 2 {
		for _, c := range all {
			if c.name == args[0]+" "+args[1] {
				return c, args[2:], nil
			}
		}
	}
	for _, c := range all {
		if c.name == args[0] {
			return c, args[1:], nil
		}
	}
	if _, ok := groups[args[0]]; ok {
		if len(args) >= 2 && isHelpFlag(args[1]) {
			return nil, nil, flag.ErrHelp
		}
		subs := subcommands(args[0])
		if len(args) < 2 {
			return nil, nil, fmt.Errorf("%q needs a subcommand: %s (see \"atrax %s -h\")", args[0], strings.Join(subs, ", "), args[0])
		}
		return nil, nil, fmt.Errorf("unknown command %q; %q has %s (see \"atrax %s -h\")", args[0]+" "+args[1], args[0], strings.Join(subs, ", "), args[0])
	}
	if args[0] == "serve" || args[0] == "controlplane" || args[0] == "edge" {
		return nil, nil, fmt.Errorf("%q is run by the atrax binary itself, not here", args[0])
	}
	return nil, nil, fmt.Errorf("unknown command %q (see \"atrax help\")", args[0])
}

func isHelpFlag(s string) bool {
	return s == "-h" || s == "-help" || s == "--help"
}

func subcommands(group string) []string {
	var subs []string
	for _, c := range commands() {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	return subs
}

func groupUsage(group string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "atrax %s — %s\n\nUsage:\n", group, groups[group])
	var cs []*command
	width := 0
	for _, c := range commands() {
		if g, _, _ := strings.Cut(c.name, " "); g == group {
			cs = append(cs, c)
			width = max(width, len(leftColumn(c)))
		}
	}
	for _, c := range cs {
		fmt.Fprintf(&b, "  atrax %-*s  %s\n", width, leftColumn(c), c.summary)
	}
	fmt.Fprintf(&b, "\nRun \"atrax %s COMMAND -h\" for a command's flags.\n", group)
	return b.String()
}

// help prints the usage of everything, of a group or of one command.
func (e *env) help(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, Usage())
		return ExitOK
	}
	if _, ok := groups[args[0]]; ok && len(args) == 1 {
		fmt.Fprint(e.stdout, groupUsage(args[0]))
		return ExitOK
	}
	c, rest, err := find(args)
	if err != nil || len(rest) > 0 {
		fmt.Fprintf(e.stderr, "atrax help: unknown command %q (see \"atrax help\")\n", strings.Join(args, " "))
		return ExitUsage
	}
	fs := flag.NewFlagSet("atrax "+c.name, flag.ContinueOnError)
	c.setup(e, fs)
	fmt.Fprint(e.stdout, commandUsage(c, fs))
	return ExitOK
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run parses the command's flags and runs it.
func (e *env) run(ctx context.Context, c *command, args []string) int {
	fs := flag.NewFlagSet("atrax "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	run := c.setup(e, fs)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, commandUsage(c, fs))
		return ExitOK
	}
	if err == nil {
		switch {
		case len(pos) < c.minArgs:
			err = fmt.Errorf("missing %s", missingArgs(c, len(pos)))
		case c.maxArgs >= 0 && len(pos) > c.maxArgs:
			err = fmt.Errorf("unexpected argument %q", pos[c.maxArgs])
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "atrax %s: %v\nUsage: atrax %s\nRun \"atrax %s -h\" for its flags.\n", c.name, err, usageLine(c), c.name)
		return ExitUsage
	}
	err = run(ctx, pos)
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "atrax %s: %v\nRun \"atrax %s -h\" for its flags.\n", c.name, ue, c.name)
		return ExitUsage
	}
	fmt.Fprintf(e.stderr, "atrax %s: %v\n", c.name, err)
	return ExitError
}

func missingArgs(c *command, have int) string {
	words := strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(c.args))
	var req []string
	for _, w := range words {
		if w == strings.ToUpper(w) && !strings.HasPrefix(w, "-") && w != "..." && !strings.HasSuffix(w, "...") {
			req = append(req, w)
		}
	}
	if have < len(req) {
		return req[have]
	}
	return "arguments"
}

func usageLine(c *command) string {
	s := c.name
	if c.args != "" {
		s += " " + c.args
	}
	return s + " [flags]"
}

// commandUsage is the -h text of a command.
func commandUsage(c *command, fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: atrax %s\n\n%s\n", usageLine(c), capitalize(c.summary)+".")
	if c.detail != "" {
		b.WriteString("\n" + strings.TrimSpace(c.detail) + "\n")
	}
	type row struct{ left, right string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if !strings.Contains(f.Usage, "`") && name != "" {
			name = strings.ToUpper(f.Name)
		}
		left := "--" + f.Name
		if len(f.Name) == 1 {
			left = "-" + f.Name
		}
		if name != "" {
			left += " " + name
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			usage += " (default " + def + ")"
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	if len(rows) > 0 {
		sort.SliceStable(rows, func(i, j int) bool {
			return strings.TrimLeft(rows[i].left, "-") < strings.TrimLeft(rows[j].left, "-")
		})
		b.WriteString("\nFlags:\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, r.left, r.right)
		}
	}
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseInterleaved parses flags that may come before, between and after
// positional arguments ("servers add NAME --url U"); everything after "--"
// is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

var versionCmd = &command{
	name:    "version",
	summary: "print the version",
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		return func(context.Context, []string) error {
			fmt.Fprintln(e.stdout, "atrax", e.version)
			return nil
		}
	},
}
