package config

import "github.com/tailscale/hujson"

// UI is the "ui" object: the web console the edge serves under /ui/.
type UI struct {
	// Enabled serves the console. Off by default: a gateway shows no pages
	// until its config asks for them.
	Enabled bool
}

// ui decodes the "ui" object.
func (d *decoder) ui(path string, v *hujson.Value) UI {
	var u UI
	members, ok := d.object(path, v)
	if !ok {
		return u
	}
	for _, m := range members {
		switch m.key {
		case "enabled":
			u.Enabled, _ = d.boolean(m.path, m.val)
		default:
			d.unknown(m)
		}
	}
	return u
}
