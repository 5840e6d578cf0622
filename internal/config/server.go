package config

import (
	"errors"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Isolation modes of a server.
const (
	IsolationShared  = "shared"
	IsolationSession = "session"
	// DefaultMaxSessions is the cap on a session-isolated server's upstream
	// sessions on one edge when maxSessions is not set.
	DefaultMaxSessions = 100
	// MaxSessionsLimit is the largest maxSessions.
	MaxSessionsLimit = 10000
)

// maxNameLen is the longest server name or prefix. Tool names clients see
// are limited to 64 characters; a 48-character prefix leaves room for a
// separator and a short tool name.
const maxNameLen = 48

// nameRule says what a server name (and a prefix) may hold.
const nameRule = `1 to 48 letters, digits, "_", "." or "-", starting with a letter or digit`

// ValidName reports whether name can name a server: 1 to 48 characters from
// [A-Za-z0-9_.-], starting with a letter or digit. Names appear in tool
// names, key paths, URLs and logs, so they are kept to characters that need
// no quoting in any of them.
func ValidName(name string) error {
	if name == "" {
		return errors.New("a server name is required")
	}
	if !validName(name) {
		return errors.New("invalid server name: use " + nameRule)
	}
	return nil
}

func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || !isAlnum(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// CanonicalTransport maps a transport type as written to TransportStdio,
// TransportSSE or TransportHTTP. "streamable-http" and "streamableHttp" are
// what VS Code and some SDKs write for streamable HTTP.
func CanonicalTransport(t string) (string, bool) {
	return canonicalTransport(t)
}

func canonicalTransport(t string) (string, bool) {
	switch t {
	case TransportStdio, TransportSSE, TransportHTTP:
		return t, true
	case "streamable-http", "streamableHttp":
		return TransportHTTP, true
	}
	return "", false
}

// Transport returns how the edge reaches the server: the transport type
// written (aliases mapped to TransportHTTP), else TransportStdio when
// Command is set, else TransportHTTP when URL is set (the edge falls back to
// legacy SSE when the server does not speak streamable HTTP). It returns ""
// for a server with neither, which Validate rejects.
func (s Server) Transport() string {
	if s.TransportType != "" {
		if t, ok := canonicalTransport(s.TransportType); ok {
			return t
		}
		return s.TransportType
	}
	switch {
	case s.Command != "":
		return TransportStdio
	case s.URL != "":
		return TransportHTTP
	}
	return ""
}

// Validate checks one server definition by the rules of an mcpServers entry
// and returns an errors.Join of *FieldError, or nil. The config loader and
// the REST API both call it, so a server is valid or not whichever way it
// arrives.
//
// path is the key-path prefix of the errors: "mcpServers.github" for a
// config entry (a bad name is then reported at path itself), or "" for an
// API body, whose errors are then "command", "env.TOKEN" and so on, and a
// bad name "name".
//
// Strings are checked, not changed: each must expand (see Expand). With a
// nil lookup only malformed references are errors and unset variables are
// not, because an API body is stored as written and expanded later by the
// edge, from an environment this process cannot see. Unset variables of a
// disabled server are never errors: it does not start, so it needs none.
func (s Server) Validate(path string, lookup LookupFunc) error {
	var p problems
	validateServer(&p, path, s, lookup, s.has, "transportType")
	return p.err()
}

// has reports whether a key is set in a server that came without a record
// of its keys (an API body): a key counts as present when its value is not
// empty.
func (s Server) has(key string) bool {
	switch key {
	case "command":
		return s.Command != ""
	case "args":
		return len(s.Args) > 0
	case "env":
		return len(s.Env) > 0
	case "cwd":
		return s.Cwd != ""
	case "url":
		return s.URL != ""
	case "headers":
		return len(s.Headers) > 0
	}
	return false
}

// validateServer is Validate with the presence of keys given apart from
// their values. A config entry may hold a key whose value was wrong (and
// already reported); counting it as present spares the user a second,
// misleading error ("needs command") about the same key.
func validateServer(p *problems, path string, s Server, lookup LookupFunc, present func(key string) bool, transportKey string) {
	at := func(key string) string { return join(path, key) }
	namePath := path
	if namePath == "" {
		namePath = "name"
	}
	if err := ValidName(s.Name); err != nil {
		p.add(namePath, err.Error())
	}
	if s.Disabled {
		lookup = nil
	}
	// check reports whether v expands, and the expanded value when lookup
	// can tell it (no reference, or a lookup to resolve them).
	check := func(path, v string) (string, bool) {
		lk := lookup
		if lk == nil {
			lk = syntaxOnly
		}
		out, refs, err := expand(v, lk)
		if err != nil {
			p.add(path, err.Error())
			return "", false
		}
		return out, refs == 0 || lookup != nil
	}

	transport, transportOK := "", true
	if s.TransportType != "" {
		if t, ok := canonicalTransport(s.TransportType); ok {
			transport = t
		} else {
			p.add(at(transportKey), unknownValue(s.TransportType, TransportStdio, TransportSSE, TransportHTTP))
			transportOK = false
		}
	}
	hasCmd, hasURL := present("command"), present("url")
	switch {
	case !hasCmd && !hasURL:
		p.add(path, `needs "command" (stdio) or "url" (sse, http)`)
	case transport == "" && hasCmd && hasURL:
		p.add(path, `has both "command" and "url": a server is either a command to run (stdio) or a remote URL (sse, http)`)
	case transport == "" && transportOK && hasCmd:
		transport = TransportStdio
	case transport == "" && transportOK:
		transport = TransportHTTP
	}
	switch transport {
	case TransportStdio:
		if !hasCmd && hasURL {
			p.add(at("command"), "required")
		}
		for _, k := range []string{"url", "headers"} {
			if present(k) {
				p.add(at(k), "not allowed for a stdio server")
			}
		}
	case TransportSSE, TransportHTTP:
		if !hasURL && hasCmd {
			p.add(at("url"), "required")
		}
		for _, k := range []string{"command", "args", "env", "cwd"} {
			if present(k) {
				p.addf(at(k), "not allowed for an %s server", transport)
			}
		}
	}

	check(at("command"), s.Command)
	for i, a := range s.Args {
		check(index(at("args"), i), a)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		kp := join(at("env"), k)
		if !validVarName(k) {
			p.add(kp, `invalid variable name: use letters, digits and "_", not starting with a digit`)
		}
		check(kp, s.Env[k])
	}
	check(at("cwd"), s.Cwd)
	if u, known := check(at("url"), s.URL); known && s.URL != "" && !validURL(u) {
		p.add(at("url"), "must be an absolute http or https URL")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		kp := join(at("headers"), k)
		if !validHeaderName(k) {
			p.add(kp, "invalid header name")
		}
		if v, known := check(kp, s.Headers[k]); known && strings.ContainsAny(v, "\r\n\x00") {
			p.add(kp, "must not contain a line break or NUL")
		}
	}
	for i, t := range s.Tags {
		if t == "" {
			p.add(index(at("tags"), i), "must not be empty")
		}
	}
	for i, pat := range s.Tools.Allow {
		if pat == "" {
			p.add(index(join(at("tools"), "allow"), i), "must not be empty")
		}
	}
	for i, pat := range s.Tools.Deny {
		if pat == "" {
			p.add(index(join(at("tools"), "deny"), i), "must not be empty")
		}
	}
	if s.Prefix != "" && !validName(s.Prefix) {
		p.add(at("prefix"), "must be "+nameRule+", or empty for the server's name")
	}
	if s.Timeout != "" {
		if v, known := check(at("timeout"), s.Timeout); known {
			if _, err := parsePositiveDuration(v); err != nil {
				p.add(at("timeout"), err.Error())
			}
		}
	}
	switch s.Isolation {
	case "", IsolationShared, IsolationSession:
	default:
		p.add(at("isolation"), unknownValue(s.Isolation, IsolationShared, IsolationSession))
	}
	switch {
	case s.MaxSessions < 0 || s.MaxSessions > MaxSessionsLimit:
		p.add(at("maxSessions"), "must be a whole number from 1 to "+strconv.Itoa(MaxSessionsLimit))
	case s.MaxSessions > 0 && s.Isolation != IsolationSession:
		p.add(at("maxSessions"), `applies only with "isolation": "session"`)
	}
}

// validURL reports whether s is an absolute http or https URL with a host.
func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// Expanded returns a copy of s with ${VAR} expanded in the strings the edge
// uses to start or reach the server: command, args, env values, cwd, url,
// header values and timeout. Names, tool patterns, prefix, tags and the
// description are labels, not values, and are left as they are. A nil lookup
// means os.LookupEnv.
//
// The edge calls it when it starts a server, from its own environment, so
// secrets live only in that process. The error is an errors.Join of
// *FieldError with paths relative to the server ("env.GITHUB_TOKEN").
func (s Server) Expanded(lookup LookupFunc) (Server, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var p problems
	x := func(path, v string) string {
		out, err := Expand(v, lookup)
		if err != nil {
			p.add(path, err.Error())
		}
		return out
	}
	out := s
	out.Command = x("command", s.Command)
	out.Args = nil
	if s.Args != nil {
		out.Args = make([]string, len(s.Args))
		for i, a := range s.Args {
			out.Args[i] = x(index("args", i), a)
		}
	}
	out.Env = expandMap(s.Env, "env", x)
	out.Cwd = x("cwd", s.Cwd)
	out.URL = x("url", s.URL)
	out.Headers = expandMap(s.Headers, "headers", x)
	out.Timeout = x("timeout", s.Timeout)
	out.Tags = slices.Clone(s.Tags)
	out.Tools = ToolFilter{Allow: slices.Clone(s.Tools.Allow), Deny: slices.Clone(s.Tools.Deny)}
	if err := p.err(); err != nil {
		return Server{}, err
	}
	return out, nil
}

// expandMap expands the values of m into a new map.
func expandMap(m map[string]string, path string, x func(path, v string) string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = x(join(path, k), v)
	}
	return out
}

// CallTimeout returns how long a call to the server may go without
// progress: DefaultCallTimeout when Timeout is empty. Call it on the server
// Expanded returned, as Timeout may be "${VAR}".
func (s Server) CallTimeout() (time.Duration, error) {
	if s.Timeout == "" {
		return DefaultCallTimeout, nil
	}
	d, err := parsePositiveDuration(s.Timeout)
	if err != nil {
		return 0, &FieldError{Path: "timeout", Msg: err.Error()}
	}
	return d, nil
}

// servers decodes the "mcpServers" object, in file order.
func (d *decoder) servers(path string, v *hujson.Value) []Server {
	members, ok := d.object(path, v)
	if !ok || len(members) == 0 {
		return nil
	}
	servers := make([]Server, 0, len(members))
	for _, m := range members {
		servers = append(servers, d.server(m))
	}
	return servers
}

// server decodes one mcpServers entry. Decoding checks types only; the
// rules live in validateServer, which the REST API shares.
func (d *decoder) server(m member) Server {
	s := Server{Name: m.key}
	members, ok := d.object(m.path, m.val)
	if !ok {
		if err := ValidName(s.Name); err != nil {
			d.add(m.path, err.Error())
		}
		return s
	}
	present := make(map[string]bool, len(members))
	var transportType, typ *member
	for _, f := range members {
		present[f.key] = true
		switch f.key {
		case "command":
			s.Command, _ = d.rawNonEmpty(f.path, f.val)
		case "args":
			s.Args, _ = d.strings(f.path, f.val, false, nil)
		case "env":
			s.Env, _ = d.stringMap(f.path, f.val)
		case "cwd":
			s.Cwd, _ = d.rawNonEmpty(f.path, f.val)
		case "url":
			s.URL, _ = d.rawNonEmpty(f.path, f.val)
		case "headers":
			s.Headers, _ = d.stringMap(f.path, f.val)
		case "transportType":
			transportType = &f
		case "type":
			typ = &f
		case "description":
			s.Description, _ = d.raw(f.path, f.val)
		case "tags":
			s.Tags, _ = d.strings(f.path, f.val, false, nil)
		case "disabled":
			s.Disabled, _ = d.boolean(f.path, f.val)
		case "tools":
			s.Tools = d.toolFilter(f.path, f.val)
		case "prefix":
			s.Prefix, _ = d.raw(f.path, f.val)
		case "timeout":
			s.Timeout, _ = d.raw(f.path, f.val)
		case "isolation":
			s.Isolation, _ = d.raw(f.path, f.val)
		case "pinTools":
			s.PinTools, _ = d.boolean(f.path, f.val)
		case "maxSessions":
			s.MaxSessions, _ = d.positiveInt(f.path, f.val, MaxSessionsLimit)
		default:
			d.unknown(f)
		}
	}

	// "type" is what VS Code and Claude Code write; "transportType" is the
	// seed's. Either will do; both must agree.
	transportKey := "transportType"
	switch {
	case transportType != nil:
		s.TransportType, _ = d.rawNonEmpty(transportType.path, transportType.val)
		if typ == nil {
			break
		}
		t, ok := d.rawNonEmpty(typ.path, typ.val)
		if !ok {
			break
		}
		a, aok := canonicalTransport(s.TransportType)
		b, bok := canonicalTransport(t)
		switch {
		case !bok:
			d.add(typ.path, unknownValue(t, TransportStdio, TransportSSE, TransportHTTP))
		case aok && a != b:
			d.add(typ.path, `conflicts with "transportType": set one of them`)
		}
	case typ != nil:
		s.TransportType, _ = d.rawNonEmpty(typ.path, typ.val)
		transportKey = "type"
	}

	validateServer(&d.problems, m.path, s, d.lookup, func(key string) bool { return present[key] }, transportKey)
	if t, ok := canonicalTransport(s.TransportType); ok {
		s.TransportType = t
	}
	return s
}

// toolFilter decodes a server's "tools" object.
func (d *decoder) toolFilter(path string, v *hujson.Value) ToolFilter {
	var f ToolFilter
	members, ok := d.object(path, v)
	if !ok {
		return f
	}
	for _, m := range members {
		switch m.key {
		case "allow":
			f.Allow, _ = d.strings(m.path, m.val, false, nil)
		case "deny":
			f.Deny, _ = d.strings(m.path, m.val, false, nil)
		default:
			d.unknown(m)
		}
	}
	return f
}
