package config

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

// Options control how a config is loaded. The zero value loads from the
// process environment.
type Options struct {
	// LookupEnv resolves ${VAR} references; nil means os.LookupEnv.
	LookupEnv LookupFunc
}

// Load reads and parses the config file at path. Config.Path is path as
// given, so that relative paths in the file (dataDir) resolve beside it.
//
// Problems with the content are returned as Parse returns them; a file that
// cannot be read is an ordinary *fs.PathError.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data, opts)
	if err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// Parse parses a config file's content. The content is JWCC (JSON with
// comments and trailing commas) and is read strictly: an unknown key, a
// value of the wrong type or an unset variable is an error, never a silent
// default.
//
// On failure the error is an errors.Join of *FieldError, one per problem and
// sorted by key path, so a caller can print them all or pick them out with
// errors.As. The returned Config is then nil.
//
// Strings outside mcpServers are expanded (${VAR}) here; strings inside
// mcpServers are kept as written and only checked (see Server.Validate).
func Parse(data []byte, opts Options) (*Config, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	// A byte order mark is what some Windows editors put first; it is not
	// JSON, but it is no reason to refuse a file either.
	root, err := hujson.Parse(bytes.TrimPrefix(data, []byte("\ufeff")))
	if err != nil {
		return nil, errors.Join(syntaxError(err))
	}
	d := &decoder{lookup: lookup}
	c := d.config(&root)
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// syntaxError turns a hujson error into a FieldError that says where the
// file is broken. hujson's messages quote an invalid string literal whole;
// that literal may be a token, so such messages are cut to their first words.
func syntaxError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "hujson: ")
	if i := strings.Index(msg, "invalid literal"); i >= 0 {
		msg = msg[:i] + "invalid literal (a string with a control character or a bad escape, or a misspelt true, false or null)"
	}
	return &FieldError{Msg: "syntax error at " + msg}
}

// config decodes the top-level object. Sections that depend on each other
// (auth on host and controlPlane; namespacing.prefer on mcpServers) are
// decoded first and checked against each other at the end.
func (d *decoder) config(root *hujson.Value) *Config {
	c := &Config{
		Port: DefaultPort,
		Host: DefaultHost,
		ControlPlane: ControlPlane{
			Address: DefaultControlPlaneAddress,
		},
		Namespacing: Namespacing{
			Mode:      NamespaceAlways,
			Separator: DefaultSeparator,
			Conflict:  ConflictFirstWins,
		},
		HTTP:   defaultHTTP(),
		Limits: defaultLimits(),
	}
	if root.Value.Kind() != '{' {
		d.add("", "a config file must hold a JSON object")
		return c
	}
	members, _ := d.object("", root)
	var (
		auth        authState
		hostOK      = true
		cpAddressOK = true
		cpTokenSet  bool
		preferPaths []string
	)
	for _, m := range members {
		switch m.key {
		case "$schema":
			d.raw(m.path, m.val)
		case "port":
			c.Port, _ = d.port(m.path, m.val)
		case "host":
			c.Host, hostOK = d.host(m.path, m.val)
		case "auth":
			auth = d.auth(m.path, m.val)
			c.Auth = auth.Auth
		case "controlPlane":
			c.ControlPlane, cpAddressOK, cpTokenSet = d.controlPlane(m.path, m.val)
		case "dataDir":
			c.DataDir, _ = d.nonEmpty(m.path, m.val)
		case "store":
			c.Store = d.store(m.path, m.val)
		case "namespacing":
			c.Namespacing, preferPaths = d.namespacing(m.path, m.val, c.Namespacing)
		case "mcpServers":
			c.Servers = d.servers(m.path, m.val)
		case "http":
			c.HTTP = d.http(m.path, m.val, c.HTTP)
		case "audit":
			c.Audit = d.audit(m.path, m.val)
		case "limits":
			c.Limits = d.limits(m.path, m.val, c.Limits)
		case "tls":
			c.TLS = d.tls(m.path, m.val, false)
		case "ui":
			c.UI = d.ui(m.path, m.val)
		default:
			d.unknown(m)
		}
	}

	if !auth.present {
		d.add("auth", `required: set "type" to "token", "jwt" or "oauth" (or, for a gateway listening only on loopback, "auth": {"type": "none"})`)
	}
	if auth.Type == AuthNone && hostOK && cpAddressOK {
		var notLoopback []string
		if !isLoopbackHost(c.Host) {
			notLoopback = append(notLoopback, "host")
		}
		if !isLoopbackAddress(c.ControlPlane.Address) {
			notLoopback = append(notLoopback, "controlPlane.address")
		}
		if slices.ContainsFunc(c.ControlPlane.Addresses, func(a string) bool { return !isLoopbackAddress(a) }) {
			notLoopback = append(notLoopback, "controlPlane.addresses")
		}
		if a := c.ControlPlane.MetricsAddress; a != "" && !isLoopbackAddress(a) {
			notLoopback = append(notLoopback, "controlPlane.metricsAddress")
		}
		if len(notLoopback) > 0 {
			d.addf(auth.typePath, `"none" is only allowed on a loopback address (127.0.0.1, ::1 or localhost), and %s is not: use "token" or "jwt"`, strings.Join(notLoopback, " and "))
		}
	}
	if c.Store.Etcd != nil && hasMember(members, "dataDir") {
		d.add("store.etcd", "cannot be set together with dataDir: the control plane keeps its state either in etcd or in the embedded store under dataDir; remove store.etcd or dataDir")
	}
	if c.ControlPlane.MetricsAddress != "" && c.HTTP.Metrics == MetricsOff {
		d.addf("controlPlane.metricsAddress", `must be empty while http.metrics is %q`, MetricsOff)
	}
	if (auth.Type == AuthToken || auth.Type == AuthOAuth) && !cpTokenSet && len(c.Auth.Tokens) > 0 {
		c.ControlPlane.Token = c.Auth.Tokens[0].Token
	}

	names := make(map[string]bool, len(c.Servers))
	for _, s := range c.Servers {
		names[s.Name] = true
	}
	for i, name := range c.Namespacing.Prefer {
		if !names[name] {
			d.addf(preferPaths[i], "no mcpServers entry is named %q", name)
		}
	}
	return c
}

// port accepts a JSON number or a string (expanded, so "${PORT}" works).
func (d *decoder) port(path string, v *hujson.Value) (int, bool) {
	const msg = "must be a number between 0 and 65535"
	lit, ok := v.Value.(hujson.Literal)
	if !ok {
		d.add(path, msg)
		return DefaultPort, false
	}
	var s string
	switch lit.Kind() {
	case '0':
		s = string(lit)
	case '"':
		if s, ok = d.expand(path, lit.String()); !ok {
			return DefaultPort, false
		}
	default:
		d.add(path, msg)
		return DefaultPort, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		d.add(path, msg)
		return DefaultPort, false
	}
	return n, true
}

// host accepts an IP address or a host name, expanded.
func (d *decoder) host(path string, v *hujson.Value) (string, bool) {
	s, ok := d.str(path, v)
	if !ok {
		return DefaultHost, false
	}
	if err := checkHost(s); err != nil {
		d.add(path, err.Error())
		return DefaultHost, false
	}
	return s, true
}
