package router

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Namespacing modes and conflict strategies (the config's namespacing).
const (
	ModeAlways      = "always"
	ModeConditional = "conditional"
	ModeNever       = "never"

	ConflictFirstWins    = "first-wins"
	ConflictLastWins     = "last-wins"
	ConflictPreferServer = "prefer-server"
	ConflictRename       = "rename"
	ConflictReject       = "reject"
)

// MaxNameLength is the longest tool or prompt name the edge gives out, as
// MCP clients commonly require.
const MaxNameLength = 64

// Namespacing says how server names become part of visible names.
type Namespacing struct {
	Mode      string
	Separator string
	Conflict  string
	Prefer    []string
}

// Entry is one server as the table sees it.
type Entry struct {
	Server Server
	// Prefix is the server's prefix (its name unless configured).
	Prefix string
	// Allow and Deny filter the server's tools by their own names.
	Allow []string
	Deny  []string
	// PinTools hides a tool whose definition changed until an admin
	// approves it; Approved are the approved digests (ToolDigest) by the
	// server's own tool names (see pins.go).
	PinTools bool
	Approved map[string]string
}

// item is one tool, prompt, resource or template in the table.
type item struct {
	server string // the server's name
	entry  *Entry
	name   string          // the name clients see (the URI for resources)
	orig   string          // the name the server knows
	raw    json.RawMessage // the definition as clients see it
	uri    *uriTemplate    // templates only
}

// table is an immutable routing table, swapped whole.
type table struct {
	servers   []*Entry // running servers, in config order
	byServer  map[string]*Entry
	tools     []*item
	toolBy    map[string]*item
	prompts   []*item
	promptBy  map[string]*item
	resources []*item
	resBy     map[string]*item
	templates []*item
	// hashes detect which lists changed between tables.
	toolsHash, promptsHash, resourcesHash uint64
	// conflicts are the collisions the reject strategy refused.
	conflicts []Conflict
	// pages are the list results of tokens that see everything, by kind
	// and offset, made on first use (json.RawMessage, never changed).
	pages [kindTemplates + 1]sync.Map
}

// kind selects a list of a catalogue.
type kind int

const (
	kindTools kind = iota
	kindPrompts
	kindResources
	kindTemplates
)

func (k kind) items(c *Catalog) []json.RawMessage {
	switch k {
	case kindTools:
		return c.Tools
	case kindPrompts:
		return c.Prompts
	case kindResources:
		return c.Resources
	}
	return c.ResourceTemplates
}

// build makes a table of the servers, in order.
func build(entries []*Entry, ns Namespacing, log *slog.Logger) *table {
	t := &table{
		byServer: map[string]*Entry{},
		toolBy:   map[string]*item{},
		promptBy: map[string]*item{},
		resBy:    map[string]*item{},
	}
	cats := map[string]*Catalog{}
	for _, e := range entries {
		c := e.Server.Catalog()
		if c == nil {
			continue
		}
		t.servers = append(t.servers, e)
		t.byServer[e.Server.Name()] = e
		cats[e.Server.Name()] = c
	}
	t.tools, t.toolBy = t.named(kindTools, cats, ns, log)
	t.prompts, t.promptBy = t.named(kindPrompts, cats, ns, log)
	t.resources, t.resBy = t.uris(kindResources, "uri", cats, ns, log)
	t.templates, _ = t.uris(kindTemplates, "uriTemplate", cats, ns, log)
	for _, it := range t.templates {
		ut, err := parseURITemplate(it.name)
		if err != nil {
			log.Warn("resource template not understood; reads will not be routed by it", "server", it.server, "template", it.name, "err", err)
		}
		it.uri = ut
	}
	t.toolsHash = hashItems(t.tools)
	t.promptsHash = hashItems(t.prompts)
	t.resourcesHash = hashItems(t.resources) ^ hashItems(t.templates)
	return t
}

func hashItems(items []*item) uint64 {
	h := fnv.New64a()
	for _, it := range items {
		h.Write([]byte(it.server))
		h.Write([]byte{0})
		h.Write(it.raw)
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// named builds the tools or prompts: filtered, named by the namespacing
// mode, collisions settled by the conflict strategy.
func (t *table) named(k kind, cats map[string]*Catalog, ns Namespacing, log *slog.Logger) ([]*item, map[string]*item) {
	type cand struct {
		e    *Entry
		orig string
		raw  json.RawMessage
	}
	var cands []cand
	count := map[string]int{} // original name → servers offering it
	for _, e := range t.servers {
		seen := map[string]bool{}
		for _, raw := range k.items(cats[e.Server.Name()]) {
			name, ok := jsonrpc.StringField(raw, "name")
			if !ok || name == "" {
				continue
			}
			if k == kindTools && !e.allows(name) {
				continue
			}
			cands = append(cands, cand{e, name, raw})
			if !seen[name] {
				seen[name] = true
				count[name]++
			}
		}
	}
	var out []*item
	by := map[string]*item{}
	for _, c := range cands {
		visible := c.orig
		switch ns.Mode {
		case ModeAlways, "":
			visible = c.e.Prefix + ns.Separator + c.orig
		case ModeConditional:
			if count[c.orig] > 1 {
				visible = c.e.Prefix + ns.Separator + c.orig
			}
		}
		visible = shorten(visible)
		it := &item{server: c.e.Server.Name(), entry: c.e, name: visible, orig: c.orig, raw: c.raw}
		if prev, clash := by[visible]; clash {
			switch ns.Conflict {
			case ConflictLastWins:
				replace(out, prev, it)
				by[visible] = it
			case ConflictPreferServer:
				if rank(ns.Prefer, it.server) < rank(ns.Prefer, prev.server) {
					replace(out, prev, it)
					by[visible] = it
				}
			case ConflictRename:
				renamed := shorten(visible + ns.Separator + it.server)
				for n := 2; by[renamed] != nil; n++ {
					renamed = shorten(fmt.Sprintf("%s%s%s%d", visible, ns.Separator, it.server, n))
				}
				it.name = renamed
				out = append(out, it)
				by[renamed] = it
			case ConflictReject:
				t.reject(log, visible, prev.server, it.server)
				prev.name = "" // mark refused
			default: // first-wins
			}
			continue
		}
		out = append(out, it)
		by[visible] = it
	}
	// Drop what reject refused, and give each kept item its visible name in
	// its definition.
	out = slices.DeleteFunc(out, func(it *item) bool { return it.name == "" })
	for v, it := range by {
		if it.name == "" {
			delete(by, v)
		}
	}
	// One buffer for every renamed definition: the name is replaced in
	// place, nothing else is decoded.
	size := 0
	for _, it := range out {
		if it.name != it.orig {
			size += len(it.raw) + len(it.name) + 16
		}
	}
	buf := make([]byte, 0, size)
	for _, it := range out {
		if it.name != it.orig {
			start := len(buf)
			if b, ok := jsonrpc.AppendWithString(buf, it.raw, "name", it.name); ok {
				buf = b
				it.raw = json.RawMessage(buf[start:len(buf):len(buf)])
			}
		}
	}
	return out, by
}

func replace(list []*item, old, new *item) {
	for i, it := range list {
		if it == old {
			list[i] = new
			return
		}
	}
}

// rank is a server's place in the prefer list; unlisted servers rank last.
func rank(prefer []string, server string) int {
	if i := slices.Index(prefer, server); i >= 0 {
		return i
	}
	return len(prefer)
}

// uris builds the resources (field "uri") or the resource templates
// (field "uriTemplate"). URIs are never rewritten; two servers offering
// one URI or template are settled by the conflict strategy (rename keeps
// the first).
func (t *table) uris(k kind, field string, cats map[string]*Catalog, ns Namespacing, log *slog.Logger) ([]*item, map[string]*item) {
	var out []*item
	by := map[string]*item{}
	for _, e := range t.servers {
		for _, raw := range k.items(cats[e.Server.Name()]) {
			uri, ok := jsonrpc.StringField(raw, field)
			if !ok || uri == "" {
				continue
			}
			it := &item{server: e.Server.Name(), entry: e, name: uri, orig: uri, raw: raw}
			prev, clash := by[uri]
			if !clash {
				out = append(out, it)
				by[uri] = it
				continue
			}
			if prev.server == it.server {
				continue
			}
			switch ns.Conflict {
			case ConflictLastWins:
				replace(out, prev, it)
				by[uri] = it
			case ConflictPreferServer:
				if rank(ns.Prefer, it.server) < rank(ns.Prefer, prev.server) {
					replace(out, prev, it)
					by[uri] = it
				}
			case ConflictReject:
				t.reject(log, uri, prev.server, it.server)
				prev.name = ""
			}
		}
	}
	out = slices.DeleteFunc(out, func(it *item) bool { return it.name == "" })
	for u, it := range by {
		if it.name == "" {
			delete(by, u)
		}
	}
	return out, by
}

// Conflict is a collision the reject strategy refused: neither server's
// item is served.
type Conflict struct {
	Name    string
	Servers []string
}

func (c Conflict) String() string {
	return fmt.Sprintf("%q is offered by both %q and %q; the reject strategy serves neither", c.Name, c.Servers[0], c.Servers[1])
}

func (t *table) reject(log *slog.Logger, name, first, second string) {
	log.Error("name conflict", "name", name, "servers", []string{first, second})
	t.conflicts = append(t.conflicts, Conflict{Name: name, Servers: []string{first, second}})
}

// allows applies the server's tool filter to one of its own tool names.
func (e *Entry) allows(name string) bool {
	if len(e.Allow) > 0 && !authn.MatchAny(e.Allow, name) {
		return false
	}
	return !authn.MatchAny(e.Deny, name)
}

// shorten keeps names within MaxNameLength: a longer name keeps its first
// 55 characters and ends with "_" and 8 hex digits of its SHA-256, so the
// same name always shortens the same way and different names stay apart.
func shorten(name string) string {
	if len(name) <= MaxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:MaxNameLength-9] + "_" + hex.EncodeToString(sum[:4])
}
