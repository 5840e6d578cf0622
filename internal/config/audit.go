package config

import "github.com/tailscale/hujson"

// audit decodes the "audit" object.
func (d *decoder) audit(path string, v *hujson.Value) Audit {
	var a Audit
	members, ok := d.object(path, v)
	if !ok {
		return a
	}
	for _, m := range members {
		switch m.key {
		case "toolArguments":
			a.ToolArguments, _ = d.boolean(m.path, m.val)
		default:
			d.unknown(m)
		}
	}
	return a
}
