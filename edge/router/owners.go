package router

import "github.com/atrax-mcp/atrax/internal/authn"

// Owners says which server serves each item a principal may see, by list:
// "tools" and "prompts" by the names clients see, "resources" by URI,
// "resourceTemplates" by URI template. The merged lists carry no trace of
// their servers (a client sees one server); the web console groups them by
// server with this.
func (r *Router) Owners(p *authn.Principal) map[string]map[string]string {
	t := r.table.Load()
	out := make(map[string]map[string]string, 4)
	add := func(key string, items []*item, byName bool) {
		m := make(map[string]string, len(items))
		for _, it := range items {
			if !p.AllowsServer(it.server) || byName && !p.AllowsTool(it.name) {
				continue
			}
			m[it.name] = it.server
		}
		out[key] = m
	}
	add("tools", t.tools, true)
	add("prompts", t.prompts, true)
	add("resources", t.resources, false)
	add("resourceTemplates", t.templates, false)
	return out
}
