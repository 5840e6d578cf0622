package router

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// Tool pinning: a guard against tool poisoning. The router keeps, for each
// server, a digest of every tool's definition (name, title, description,
// schemas, annotations: the whole object but _meta) as this edge first saw
// it. A definition that changes under a running server is reported
// (Options.OnToolChange: the edge logs and audits it). When the server
// pins its tools (Entry.PinTools) the changed tool is also hidden, from
// lists and calls alike, until an admin approves it: Entry.Approved holds
// the approved digests, kept by the control plane so that every edge
// agrees. A server with approved digests shows only the tools whose
// definition matches one; before the first approval, the definitions this
// edge first saw stand in for them (trust on first use), and a tool that
// appears later is new, hence hidden too.

// Changes of a tool.
const (
	ToolChanged = "changed" // its definition differs from the one trusted
	ToolAdded   = "added"   // it appeared after the server's first list
)

// ToolChange is a tool whose definition changed under a running server.
type ToolChange struct {
	Server string
	Tool   string // the server's own name of the tool
	Change string // ToolChanged or ToolAdded
	// Digest is the new definition's, Previous the one it replaced ("" for
	// an added tool).
	Digest, Previous string
	// Hidden is set when the server pins its tools: the tool is not served
	// until an admin approves it.
	Hidden bool
}

// PinStatus is one tool of a server that pins its tools.
type PinStatus struct {
	Tool   string `json:"tool"`
	Digest string `json:"digest"`
	// Pending is set for a tool hidden until an admin approves it.
	Pending bool `json:"pending,omitempty"`
}

// ToolDigest returns the digest a tool definition is pinned by: the
// hex SHA-256 of its JSON with keys sorted and _meta left out. It is the
// same on every edge for the same definition.
func ToolDigest(tool json.RawMessage) string {
	var v map[string]any
	data := []byte(tool)
	if json.Unmarshal(tool, &v) == nil {
		delete(v, "_meta")
		if b, err := json.Marshal(v); err == nil {
			data = b
		}
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// pinBook is what the router remembers of each server's tools. Its zero
// value is ready; apply runs with the router's mu held, Pins takes mu.
type pinBook struct {
	mu      sync.Mutex
	servers map[string]*pinServer
}

type pinServer struct {
	seeded   bool              // the first list has been seen
	first    map[string]string // tool → digest first seen (trust on first use)
	reported map[string]string // tool → digest last reported as a change
	// src, names and digests cache one catalogue's tool names and their
	// digests, in list order ("" for an entry without a name).
	src     *Catalog
	names   []string
	digests map[string]string
	// status is the server's tools, for Pins, when it pins them.
	status []PinStatus
}

// pinnedServer serves a catalogue whose changed tools are hidden.
type pinnedServer struct {
	Server
	src *Catalog // the catalogue filtered
	cat *Catalog
}

func (p pinnedServer) Catalog() *Catalog {
	switch c := p.Server.Catalog(); c {
	case p.src:
		return p.cat
	case nil:
		return nil
	default:
		// Lists newer than the table: the next Refresh filters them.
		// Meanwhile only the initialize result is read from here.
		cp := *c
		cp.Tools = nil
		return &cp
	}
}

// apply checks every server's tools against what is trusted and returns
// the entries to build a table of (servers with hidden tools wrapped) and
// the changes seen for the first time.
func (b *pinBook) apply(entries []*Entry) ([]*Entry, []ToolChange) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.servers == nil {
		b.servers = map[string]*pinServer{}
	}
	var changes []ToolChange
	out, cloned := entries, false
	live := map[string]bool{}
	for i, e := range entries {
		name := e.Server.Name()
		live[name] = true
		ps := b.servers[name]
		if ps == nil {
			ps = &pinServer{first: map[string]string{}, reported: map[string]string{}}
			b.servers[name] = ps
		}
		c := e.Server.Catalog()
		if c == nil {
			ps.status = nil
			continue // not running: nothing to check, nothing served
		}
		if c != ps.src {
			ps.src, ps.names, ps.digests = c, make([]string, len(c.Tools)), make(map[string]string, len(c.Tools))
			for i, raw := range c.Tools {
				if tool, ok := jsonrpc.StringField(raw, "name"); ok && tool != "" {
					ps.names[i] = tool
					ps.digests[tool] = ToolDigest(raw)
				}
			}
		}
		var hidden map[string]bool
		ps.status = ps.status[:0]
		for _, tool := range ps.names {
			if tool == "" {
				continue
			}
			digest := ps.digests[tool]
			if !ps.seeded {
				ps.first[tool] = digest
			}
			trusted, known := ps.first[tool]
			if e.PinTools && len(e.Approved) > 0 {
				trusted, known = e.Approved[tool]
			}
			ok := known && trusted == digest
			if e.PinTools {
				ps.status = append(ps.status, PinStatus{Tool: tool, Digest: digest, Pending: !ok})
				if !ok {
					if hidden == nil {
						hidden = map[string]bool{}
					}
					hidden[tool] = true
				}
			}
			if ok {
				delete(ps.reported, tool)
				continue
			}
			if ps.reported[tool] == digest {
				continue // reported already
			}
			ps.reported[tool] = digest
			ch := ToolChange{Server: name, Tool: tool, Change: ToolChanged, Digest: digest, Previous: trusted, Hidden: e.PinTools}
			if !known {
				ch.Change, ch.Previous = ToolAdded, ""
			}
			changes = append(changes, ch)
			if !e.PinTools {
				// Reported once; the new definition is trusted from now on.
				ps.first[tool] = digest
				delete(ps.reported, tool)
			}
		}
		ps.seeded = true
		if !e.PinTools {
			ps.status = nil
		}
		if len(hidden) == 0 {
			continue
		}
		filtered := *c
		filtered.Tools = nil
		for i, raw := range c.Tools {
			if !hidden[ps.names[i]] {
				filtered.Tools = append(filtered.Tools, raw)
			}
		}
		if !cloned {
			out, cloned = slices.Clone(entries), true
		}
		wrapped := *e
		wrapped.Server = pinnedServer{Server: e.Server, src: c, cat: &filtered}
		out[i] = &wrapped
	}
	// A server removed from the registry is forgotten: if it comes back,
	// its first list is trusted anew (unless it has approved digests).
	for name := range b.servers {
		if !live[name] {
			delete(b.servers, name)
		}
	}
	return out, changes
}

// Pins returns, for every running server that pins its tools, each tool
// with its digest, those awaiting approval marked Pending.
func (b *pinBook) pins() map[string][]PinStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]PinStatus{}
	for name, ps := range b.servers {
		if len(ps.status) > 0 {
			out[name] = slices.Clone(ps.status)
		}
	}
	return out
}
