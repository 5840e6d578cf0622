package cli

import (
	"flag"
	"fmt"
	"strings"
)

// listFlag collects comma-separated values; it may be given more than once
// (--args -y,@scope/pkg --args --verbose).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, strings.Split(s, ",")...)
	return nil
}

// kvFlag collects KEY=VALUE pairs, one per use of the flag.
type kvFlag map[string]string

func (m *kvFlag) String() string {
	if m == nil || *m == nil {
		return ""
	}
	var parts []string
	for k, v := range *m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (m *kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", s)
	}
	if *m == nil {
		*m = kvFlag{}
	}
	if _, dup := (*m)[k]; dup {
		return fmt.Errorf("%q given twice", k)
	}
	(*m)[k] = v
	return nil
}

// outputFlag is -o: table (for people) or json (for scripts).
type outputFlag string

func (o *outputFlag) String() string { return string(*o) }

func (o *outputFlag) Set(s string) error {
	switch s {
	case "table", "json":
		*o = outputFlag(s)
		return nil
	case "text", "wide":
		*o = "table"
		return nil
	}
	return fmt.Errorf("%q: want table or json", s)
}

func (o outputFlag) json() bool { return o == "json" }

func addOutputFlag(fs *flag.FlagSet) *outputFlag {
	o := outputFlag("table")
	fs.Var(&o, "o", "output `FORMAT`: table or json")
	return &o
}

// Defaults of the control plane connection.
const (
	DefaultAddr = "127.0.0.1:4001"
	envAddr     = "ATRAX_ADDR"
	envToken    = "ATRAX_TOKEN"
)

// remoteFlags are --addr, --token and the TLS flags of the commands that
// call the control plane.
type remoteFlags struct {
	e        *env
	addr     string
	token    string
	tls      tlsFlags
	resolved bool
}

func (e *env) addRemoteFlags(fs *flag.FlagSet, tokenHelp string) *remoteFlags {
	r := &remoteFlags{e: e}
	fs.StringVar(&r.addr, "addr", "", "gRPC address `HOST:PORT` of the control plane (default $"+envAddr+", else "+DefaultAddr+")")
	fs.StringVar(&r.token, "token", "", tokenHelp+" (default $"+envToken+")")
	r.tls.add(fs)
	return r
}

// resolve fills in the environment's values and defaults, once.
func (r *remoteFlags) resolve() error {
	if r.resolved {
		return nil
	}
	r.resolved = true
	if r.addr == "" {
		r.addr = strings.TrimSpace(r.e.getenv(envAddr))
	}
	if r.addr == "" {
		r.addr = DefaultAddr
	}
	if i := strings.Index(r.addr, "://"); i >= 0 {
		return usagef("--addr %q: want HOST:PORT of the control plane's gRPC listener (controlPlane.address), not a URL", r.addr)
	}
	if r.token == "" {
		r.token = strings.TrimSpace(r.e.getenv(envToken))
	}
	return r.tls.resolve(r.e)
}
