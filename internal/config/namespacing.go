package config

import "github.com/tailscale/hujson"

// Namespacing modes: which names the edge prefixes with their server's
// prefix.
const (
	// NamespaceAlways prefixes every tool and prompt name (the default).
	NamespaceAlways = "always"
	// NamespaceConditional prefixes only names that more than one server
	// has.
	NamespaceConditional = "conditional"
	// NamespaceNever prefixes nothing; conflicts are then more likely.
	NamespaceNever = "never"
)

// Conflict strategies: what the edge does when two servers give the same
// name after prefixing.
const (
	ConflictFirstWins    = "first-wins"    // the earlier server in the file (the default)
	ConflictLastWins     = "last-wins"     // the later server in the file
	ConflictPreferServer = "prefer-server" // the server earliest in namespacing.prefer
	ConflictRename       = "rename"        // the later one gets separator+server name appended
	ConflictReject       = "reject"        // a startup error naming both servers
)

// namespacing decodes the "namespacing" object over the defaults in ns. It
// also returns the key path of each prefer entry, which is checked against
// the server names once they are known.
func (d *decoder) namespacing(path string, v *hujson.Value, ns Namespacing) (Namespacing, []string) {
	members, ok := d.object(path, v)
	if !ok {
		return ns, nil
	}
	var (
		preferPaths []string
		preferOK    = true
	)
	for _, m := range members {
		switch m.key {
		case "mode":
			if s, ok := d.oneOf(m.path, m.val, NamespaceAlways, NamespaceConditional, NamespaceNever); ok {
				ns.Mode = s
			}
		case "separator":
			if s, ok := d.str(m.path, m.val); ok {
				if checkSeparator(s) {
					ns.Separator = s
				} else {
					d.add(m.path, `must be 1 to 4 characters from A-Z, a-z, 0-9, "_", "." and "-"`)
				}
			}
		case "prefer":
			ns.Prefer, preferOK = d.strings(m.path, m.val, true, func(p, _ string) bool {
				preferPaths = append(preferPaths, p)
				return true
			})
		case "conflict":
			if s, ok := d.oneOf(m.path, m.val, ConflictFirstWins, ConflictLastWins, ConflictPreferServer, ConflictRename, ConflictReject); ok {
				ns.Conflict = s
			}
		default:
			d.unknown(m)
		}
	}
	if ns.Conflict == ConflictPreferServer && len(ns.Prefer) == 0 && preferOK {
		d.add(join(path, "prefer"), `must name at least one server when conflict is "prefer-server"`)
	}
	return ns, preferPaths
}

// checkSeparator reports whether s is 1 to 4 characters of [A-Za-z0-9_.-].
func checkSeparator(s string) bool {
	if len(s) < 1 || len(s) > 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}
