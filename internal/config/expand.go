package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// LookupFunc returns the value of an environment variable and whether it is
// set, as os.LookupEnv does. Tests and embedders pass their own so that
// loading a config never depends on the process environment by accident.
type LookupFunc func(name string) (string, bool)

// Malformed references. They say what is wrong, never what the string holds:
// the string may be a secret with a stray "${" in it.
var (
	errUnterminated = errors.New(`malformed variable reference: "${" without a closing "}" (write "$${" for a literal "${")`)
	errEmptyName    = errors.New(`malformed variable reference: empty name in "${}"`)
	errBadName      = errors.New(`malformed variable reference: a name is letters, digits and "_", not starting with a digit (write "$${" for a literal "${")`)
)

// Expand replaces each ${VAR} and ${VAR:-default} in s with the value lookup
// gives, and each "$${" with a literal "${". A nil lookup means os.LookupEnv.
//
// The rules are the shell's, cut down to what a config file needs:
//
//   - ${VAR} is an error when VAR is not set ("variable VAR is not set"), and
//     the empty string when VAR is set but empty.
//   - ${VAR:-default} is default when VAR is unset or empty. The default is
//     taken literally, up to the first "}": it is not expanded again.
//   - A "$" not followed by "{" is literal, so "$HOME" and "cost: $5" are left
//     alone; only the braced form expands.
//   - A name is [A-Za-z_][A-Za-z0-9_]*. "${", "${}" and "${1X}" are errors.
//
// Errors name the variable at fault, never a value.
func Expand(s string, lookup LookupFunc) (string, error) {
	out, _, err := expand(s, lookup)
	return out, err
}

// expand is Expand that also counts the references it replaced, so that a
// caller can tell a value that depends on the environment from a literal one.
func expand(s string, lookup LookupFunc) (string, int, error) {
	if !strings.Contains(s, "$") {
		return s, 0, nil
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var b strings.Builder
	refs := 0
	for len(s) > 0 {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[len("$${"):]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", refs, errUnterminated
			}
			name, def, hasDef := strings.Cut(s[len("${"):end], ":-")
			switch {
			case name == "":
				return "", refs, errEmptyName
			case !validVarName(name):
				return "", refs, errBadName
			}
			refs++
			v, ok := lookup(name)
			switch {
			case hasDef && v == "":
				v = def
			case !ok:
				return "", refs, fmt.Errorf("variable %s is not set", name)
			}
			b.WriteString(v)
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
	return b.String(), refs, nil
}

// validVarName reports whether name can be used as ${name} and as an "env"
// key: [A-Za-z_][A-Za-z0-9_]*.
func validVarName(name string) bool {
	if name == "" || '0' <= name[0] && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// syntaxOnly is the lookup of a check that must not depend on an environment
// (an API body is expanded later, by the edge, from its own): every variable
// counts as set, so only malformed references are errors.
func syntaxOnly(string) (string, bool) { return "", true }
