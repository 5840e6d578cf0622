package router_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/protocol"
	"github.com/atrax-mcp/atrax/edge/router"
)

func TestPrefixModes(t *testing.T) {
	tests := []struct {
		name    string
		ns      router.Namespacing
		prefixA string // a's configured prefix ("" = its name)
		want    []string
		wantP   []string
	}{
		{"always", always, "", []string{"a__x", "a__y", "b__x", "b__z"}, []string{"a__greet", "b__greet"}},
		{"default mode is always", router.Namespacing{Separator: "__"}, "", []string{"a__x", "a__y", "b__x", "b__z"}, []string{"a__greet", "b__greet"}},
		{"conditional", router.Namespacing{Mode: router.ModeConditional, Separator: "__"}, "", []string{"a__x", "y", "b__x", "z"}, []string{"a__greet", "b__greet"}},
		{"never", router.Namespacing{Mode: router.ModeNever, Separator: "__"}, "", []string{"x", "y", "z"}, []string{"greet"}},
		{"separator", router.Namespacing{Mode: router.ModeAlways, Separator: "."}, "", []string{"a.x", "a.y", "b.x", "b.z"}, []string{"a.greet", "b.greet"}},
		{"custom prefix", always, "alpha", []string{"alpha__x", "alpha__y", "b__x", "b__z"}, []string{"alpha__greet", "b__greet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newServer("a").withTools("x", "y").withPrompts("greet").withResources("file:///a")
			b := newServer("b").withTools("x", "z").withPrompts("greet")
			es := entries(a, b)
			if tt.prefixA != "" {
				es[0].Prefix = tt.prefixA
			}
			r := router.New(router.Options{})
			r.SetServers(es, tt.ns)
			c := newClient(t, "s", nil, `{}`)
			if diff := cmp.Diff(tt.want, names(t, r, c, protocol.MethodToolsList)); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantP, names(t, r, c, protocol.MethodPromptsList)); diff != "" {
				t.Errorf("prompts (-want +got):\n%s", diff)
			}
			// Resource URIs are never rewritten.
			if diff := cmp.Diff([]string{"file:///a"}, names(t, r, c, protocol.MethodResourcesList)); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

// Lists carry each definition as the server wrote it, but for the name.
func TestListKeepsUnknownFields(t *testing.T) {
	r := newRouter(always, nil, newServer("a").withTools("x"))
	c := newClient(t, "s", nil, `{}`)
	resp := do(t, r, c, protocol.MethodToolsList, nil)
	if diff := diffJSON(t, `{"tools":[{"name":"a__x","x-extra":{"kept":1}}]}`, string(resp.Result)); diff != "" {
		t.Errorf("tools/list (-want +got):\n%s", diff)
	}
}

func TestCallByVisibleName(t *testing.T) {
	a := newServer("a").withTools("x", "y").withPrompts("greet")
	b := newServer("b").withTools("x")
	r := newRouter(router.Namespacing{Mode: router.ModeConditional, Separator: "__"}, nil, a, b)
	c := newClient(t, "s", nil, `{}`)

	params := map[string]any{"name": "b__x", "arguments": map[string]any{"q": 1}, "_meta": map[string]any{"progressToken": "p"}, "x-unknown": true}
	srv, got := routedTo(t, r, c, protocol.MethodToolsCall, params)
	want := map[string]any{"name": "x", "arguments": map[string]any{"q": float64(1)}, "_meta": map[string]any{"progressToken": "p"}, "x-unknown": true}
	if srv != "b" {
		t.Errorf("b__x routed to %q, want b", srv)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("params b received (-want +got):\n%s", diff)
	}
	if srv, got := routedTo(t, r, c, protocol.MethodToolsCall, map[string]any{"name": "y"}); srv != "a" || got["name"] != "y" {
		t.Errorf("unprefixed y routed to %q with name %v, want a with y", srv, got["name"])
	}
	if srv, got := routedTo(t, r, c, protocol.MethodPromptsGet, map[string]any{"name": "greet", "arguments": map[string]string{"who": "w"}}); srv != "a" || got["name"] != "greet" {
		t.Errorf("prompt greet routed to %q with name %v, want a with greet", srv, got["name"])
	}
	for _, p := range []any{nil, map[string]any{"name": ""}, map[string]any{"name": 5}, []int{1}} {
		if e := wireErr(t, do(t, r, c, protocol.MethodToolsCall, p)); e.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("tools/call with params %v: code %d, want %d", p, e.Code, jsonrpc.CodeInvalidParams)
		}
	}
}

func TestLongNamesShortened(t *testing.T) {
	long1 := strings.Repeat("t", 70) + "_one"
	long2 := strings.Repeat("t", 70) + "_two"
	exact := strings.Repeat("e", router.MaxNameLength-len("a__"))
	a := newServer("a").withTools(long1, long2, exact)
	r := newRouter(always, nil, a)
	c := newClient(t, "s", nil, `{}`)
	got := names(t, r, c, protocol.MethodToolsList)
	if len(got) != 3 {
		t.Fatalf("tools = %q, want 3", got)
	}
	for _, n := range got {
		if len(n) > router.MaxNameLength {
			t.Errorf("visible name %q is %d characters, over %d", n, len(n), router.MaxNameLength)
		}
	}
	if got[2] != "a__"+exact {
		t.Errorf("a name of exactly %d characters became %q, want it unchanged", router.MaxNameLength, got[2])
	}
	if got[0] == got[1] {
		t.Errorf("two long names shortened to the same %q", got[0])
	}
	for _, n := range got[:2] {
		if !strings.HasPrefix(n, "a__ttt") || len(n) != router.MaxNameLength {
			t.Errorf("shortened name %q does not keep the start of the long one at full length", n)
		}
	}
	// Deterministic: a fresh router gives the same names.
	again := names(t, newRouter(always, nil, newServer("a").withTools(long1, long2, exact)), c, protocol.MethodToolsList)
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("shortening is not deterministic (-first +second):\n%s", diff)
	}
	// The short name reaches the original.
	for i, orig := range []string{long1, long2} {
		srv, p := routedTo(t, r, c, protocol.MethodToolsCall, map[string]any{"name": got[i]})
		if srv != "a" || p["name"] != orig {
			t.Errorf("call %q reached %q with name %v, want a with %q", got[i], srv, p["name"], orig)
		}
	}
}

func TestConflictStrategies(t *testing.T) {
	never := func(conflict string, prefer ...string) router.Namespacing {
		return router.Namespacing{Mode: router.ModeNever, Separator: "__", Conflict: conflict, Prefer: prefer}
	}
	tests := []struct {
		name      string
		ns        router.Namespacing
		servers   func() []*fakeServer
		want      []string          // visible tools
		routes    map[string]string // visible name → server that gets it
		origName  map[string]string // visible name → name the server gets
		conflicts []string          // words every conflict message holds
	}{{
		name: "first-wins",
		ns:   never(router.ConflictFirstWins),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x", "p"), newServer("b").withTools("x")}
		},
		want:   []string{"x", "p"},
		routes: map[string]string{"x": "a"},
	}, {
		name: "empty strategy is first-wins",
		ns:   never(""),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x", "p"), newServer("b").withTools("x")}
		},
		want:   []string{"x", "p"},
		routes: map[string]string{"x": "a"},
	}, {
		name: "last-wins",
		ns:   never(router.ConflictLastWins),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x", "p"), newServer("b").withTools("x")}
		},
		want:   []string{"x", "p"},
		routes: map[string]string{"x": "b", "p": "a"},
	}, {
		name: "prefer-server",
		ns:   never(router.ConflictPreferServer, "c", "b"),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x"), newServer("b").withTools("x"), newServer("c").withTools("y")}
		},
		want:   []string{"x", "y"},
		routes: map[string]string{"x": "b"},
	}, {
		name: "prefer-server keeps the first among unlisted",
		ns:   never(router.ConflictPreferServer, "z"),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x"), newServer("b").withTools("x")}
		},
		want:   []string{"x"},
		routes: map[string]string{"x": "a"},
	}, {
		name: "rename",
		ns:   never(router.ConflictRename),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x"), newServer("b").withTools("x"), newServer("c").withTools("x")}
		},
		want:     []string{"x", "x__b", "x__c"},
		routes:   map[string]string{"x": "a", "x__b": "b", "x__c": "c"},
		origName: map[string]string{"x__b": "x", "x__c": "x"},
	}, {
		name: "rename double collision",
		ns:   never(router.ConflictRename),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x", "x__b"), newServer("b").withTools("x")}
		},
		want:     []string{"x", "x__b", "x__b2"},
		routes:   map[string]string{"x": "a", "x__b": "a", "x__b2": "b"},
		origName: map[string]string{"x__b": "x__b", "x__b2": "x"},
	}, {
		name: "rename with equal prefixes in conditional mode",
		ns:   router.Namespacing{Mode: router.ModeConditional, Separator: "__", Conflict: router.ConflictRename},
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x"), newServer("b").withTools("x")}
		},
		want:     []string{"p__x", "p__x__b"},
		routes:   map[string]string{"p__x": "a", "p__x__b": "b"},
		origName: map[string]string{"p__x": "x", "p__x__b": "x"},
	}, {
		name: "reject",
		ns:   never(router.ConflictReject),
		servers: func() []*fakeServer {
			return []*fakeServer{newServer("a").withTools("x", "p"), newServer("b").withTools("x", "q")}
		},
		want:      []string{"p", "q"},
		routes:    map[string]string{"p": "a", "q": "b"},
		conflicts: []string{`"x"`, `"a"`, `"b"`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := tt.servers()
			es := entries(servers...)
			if strings.Contains(tt.name, "equal prefixes") {
				for _, e := range es {
					e.Prefix = "p"
				}
			}
			r := router.New(router.Options{})
			r.SetServers(es, tt.ns)
			c := newClient(t, "s", nil, `{}`)
			if diff := cmp.Diff(tt.want, names(t, r, c, protocol.MethodToolsList)); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
			for visible, server := range tt.routes {
				srv, p := routedTo(t, r, c, protocol.MethodToolsCall, map[string]any{"name": visible})
				wantName := visible
				if o, ok := tt.origName[visible]; ok {
					wantName = o
				}
				if srv != server || p["name"] != wantName {
					t.Errorf("%s reached %q as %v, want %q as %q", visible, srv, p["name"], server, wantName)
				}
			}
			conflicts := r.Conflicts()
			if len(tt.conflicts) == 0 && len(conflicts) != 0 {
				t.Errorf("Conflicts = %q, want none", conflicts)
			}
			if len(tt.conflicts) > 0 {
				if len(conflicts) != 1 {
					t.Fatalf("Conflicts = %q, want one", conflicts)
				}
				for _, w := range tt.conflicts {
					if !strings.Contains(conflicts[0].String(), w) {
						t.Errorf("conflict %q does not name %s", conflicts[0], w)
					}
				}
				// Neither server answers to the refused name.
				e := wireErr(t, do(t, r, c, protocol.MethodToolsCall, map[string]any{"name": "x"}))
				if e.Code != jsonrpc.CodeInvalidParams {
					t.Errorf("call of a rejected name: code %d, want %d", e.Code, jsonrpc.CodeInvalidParams)
				}
			}
		})
	}
}

func TestResourceConflicts(t *testing.T) {
	tests := []struct {
		conflict  string
		wantList  []string
		wantOwner string // "" for not found
	}{
		{router.ConflictFirstWins, []string{"file:///same", "file:///b"}, "a"},
		{router.ConflictLastWins, []string{"file:///same", "file:///b"}, "b"},
		{router.ConflictRename, []string{"file:///same", "file:///b"}, "a"},
		{router.ConflictReject, []string{"file:///b"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.conflict, func(t *testing.T) {
			a := newServer("a").withResources("file:///same")
			b := newServer("b").withResources("file:///same", "file:///b")
			r := newRouter(router.Namespacing{Mode: router.ModeAlways, Separator: "__", Conflict: tt.conflict}, nil, a, b)
			c := newClient(t, "s", nil, `{}`)
			if diff := cmp.Diff(tt.wantList, names(t, r, c, protocol.MethodResourcesList)); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
			resp := do(t, r, c, protocol.MethodResourcesRead, map[string]string{"uri": "file:///same"})
			if tt.wantOwner == "" {
				if e := wireErr(t, resp); e.Code != jsonrpc.CodeResourceNotFound {
					t.Errorf("read of a rejected URI: code %d, want %d", e.Code, jsonrpc.CodeResourceNotFound)
				}
				if cs := r.Conflicts(); len(cs) != 1 || !strings.Contains(cs[0].String(), `"a"`) || !strings.Contains(cs[0].String(), `"b"`) {
					t.Errorf("Conflicts = %q, want one naming a and b", cs)
				}
				return
			}
			var e echo
			result(t, resp, &e)
			if e.Server != tt.wantOwner {
				t.Errorf("file:///same read from %q, want %q", e.Server, tt.wantOwner)
			}
		})
	}
}

// Two servers offering the same resource template are settled like URIs:
// one template listed (none under reject), reads routed to its owner.
func TestTemplateConflicts(t *testing.T) {
	tests := []struct {
		conflict  string
		wantList  []string
		wantOwner string
	}{
		{router.ConflictFirstWins, []string{"db://{table}/rows"}, "a"},
		{router.ConflictLastWins, []string{"db://{table}/rows"}, "b"},
		{router.ConflictReject, []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.conflict, func(t *testing.T) {
			a := newServer("a").withResources("file:///a").withTemplates("db://{table}/rows")
			b := newServer("b").withResources("file:///b").withTemplates("db://{table}/rows")
			r := newRouter(router.Namespacing{Mode: router.ModeAlways, Separator: "__", Conflict: tt.conflict}, nil, a, b)
			c := newClient(t, "s", nil, `{}`)
			if diff := cmp.Diff(tt.wantList, names(t, r, c, protocol.MethodResourceTemplatesList)); diff != "" {
				t.Errorf("templates (-want +got):\n%s", diff)
			}
			if tt.wantOwner == "" {
				if cs := r.Conflicts(); len(cs) != 1 || cs[0].Name != "db://{table}/rows" {
					t.Errorf("Conflicts = %v, want the template", cs)
				}
				return
			}
			var e echo
			result(t, do(t, r, c, protocol.MethodResourcesRead, map[string]string{"uri": "db://users/rows"}), &e)
			if e.Server != tt.wantOwner {
				t.Errorf("templated read went to %q, want %q", e.Server, tt.wantOwner)
			}
		})
	}
}

func TestServerToolFilters(t *testing.T) {
	a := newServer("a").withTools("get_a", "get_secret", "list", "drop")
	r := router.New(router.Options{})
	r.SetServers([]*router.Entry{{Server: a, Prefix: "a", Allow: []string{"get_*", "list"}, Deny: []string{"*secret*"}}}, always)
	c := newClient(t, "s", nil, `{}`)
	if diff := cmp.Diff([]string{"a__get_a", "a__list"}, names(t, r, c, protocol.MethodToolsList)); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	for _, n := range []string{"a__get_secret", "a__drop"} {
		if e := wireErr(t, do(t, r, c, protocol.MethodToolsCall, map[string]any{"name": n})); e.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("call of filtered %s: code %d, want %d", n, e.Code, jsonrpc.CodeInvalidParams)
		}
	}
	if srv, _ := routedTo(t, r, c, protocol.MethodToolsCall, map[string]any{"name": "a__get_a"}); srv != "a" {
		t.Errorf("allowed tool routed to %q", srv)
	}
	// A denied tool does not count as a duplicate for conditional prefixing.
	b := newServer("b").withTools("drop")
	r.SetServers([]*router.Entry{{Server: a, Prefix: "a", Deny: []string{"drop"}}, {Server: b, Prefix: "b"}},
		router.Namespacing{Mode: router.ModeConditional, Separator: "__"})
	if got := names(t, r, c, protocol.MethodToolsList); !slices.Contains(got, "drop") {
		t.Errorf("tools = %q, want b's drop unprefixed: a's drop is denied", got)
	}
}

func TestPagination(t *testing.T) {
	a := newServer("a").withTools("t1", "t2", "t3", "t4", "t5")
	r := router.New(router.Options{PageSize: 2})
	r.SetServers(entries(a), always)
	c := newClient(t, "s", nil, `{}`)

	type page struct {
		Tools      []map[string]any `json:"tools"`
		NextCursor *string          `json:"nextCursor"`
	}
	var pages [][]string
	cursor := ""
	for i := 0; i < 10; i++ {
		var params any
		if cursor != "" {
			params = map[string]string{"cursor": cursor}
		}
		var p page
		result(t, do(t, r, c, protocol.MethodToolsList, params), &p)
		var ns []string
		for _, tl := range p.Tools {
			ns = append(ns, tl["name"].(string))
		}
		pages = append(pages, ns)
		if p.NextCursor == nil {
			break
		}
		if *p.NextCursor == "" || *p.NextCursor == cursor {
			t.Fatalf("page %d: nextCursor %q does not move on", i, *p.NextCursor)
		}
		cursor = *p.NextCursor
	}
	want := [][]string{{"a__t1", "a__t2"}, {"a__t3", "a__t4"}, {"a__t5"}}
	if diff := cmp.Diff(want, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}

	// A list that fills its last page exactly has no empty page after it.
	a.withTools("t1", "t2", "t3", "t4")
	r.Refresh()
	if got := names(t, r, c, protocol.MethodToolsList); len(got) != 4 {
		t.Errorf("tools = %q, want 4", got)
	}
	var p page
	result(t, do(t, r, c, protocol.MethodToolsList, map[string]string{"cursor": cursor}), &p)
	if len(p.Tools) != 0 || p.NextCursor != nil {
		t.Errorf("page past the end = %d tools, cursor %v; want none", len(p.Tools), p.NextCursor)
	}

	// Pages count what the session may see.
	pc := newClient(t, "p", principal([]string{"*"}, []string{"a__t1", "a__t3", "a__t4"}), `{}`)
	var first page
	result(t, do(t, r, pc, protocol.MethodToolsList, nil), &first)
	if len(first.Tools) != 2 || first.NextCursor == nil {
		t.Fatalf("first filtered page = %v (cursor %v), want 2 tools and a cursor", first.Tools, first.NextCursor)
	}
	if diff := cmp.Diff([]string{"a__t1", "a__t3", "a__t4"}, names(t, r, pc, protocol.MethodToolsList)); diff != "" {
		t.Errorf("filtered pages (-want +got):\n%s", diff)
	}

	for _, bad := range []string{"!!!", "bm9wZQ", "bzotMQ", "bzp4"} { // garbage, "nope", "o:-1", "o:x"
		e := wireErr(t, do(t, r, c, protocol.MethodToolsList, map[string]string{"cursor": bad}))
		if e.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("cursor %q: code %d, want %d", bad, e.Code, jsonrpc.CodeInvalidParams)
		}
	}
}

func TestPrincipalFilters(t *testing.T) {
	a := newServer("a").withTools("x", "y").withPrompts("greet", "secret").withLogging()
	b := newServer("b").withTools("x").withPrompts("bp").withResources("file:///b").withTemplates("db://{table}").withLogging()
	r := newRouter(always, nil, a, b)
	p := principal([]string{"a"}, []string{"a__x", "a__greet"})
	c := newClient(t, "s", p, `{}`)

	lists := map[string][]string{
		protocol.MethodToolsList:             {"a__x"},
		protocol.MethodPromptsList:           {"a__greet"},
		protocol.MethodResourcesList:         {},
		protocol.MethodResourceTemplatesList: {},
	}
	for method, want := range lists {
		if diff := cmp.Diff(want, names(t, r, c, method)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", method, diff)
		}
	}

	// What the session may not use answers exactly like what does not
	// exist, but for the name it repeats.
	same := []struct {
		method             string
		forbidden, unknown any
	}{
		{protocol.MethodToolsCall, map[string]any{"name": "a__y"}, map[string]any{"name": "a__nope"}},
		{protocol.MethodToolsCall, map[string]any{"name": "b__x"}, map[string]any{"name": "c__x"}},
		{protocol.MethodPromptsGet, map[string]any{"name": "a__secret"}, map[string]any{"name": "a__nope"}},
		{protocol.MethodPromptsGet, map[string]any{"name": "b__bp"}, map[string]any{"name": "c__bp"}},
		{protocol.MethodResourcesRead, map[string]any{"uri": "file:///b"}, map[string]any{"uri": "file:///nope"}},
		{protocol.MethodResourcesRead, map[string]any{"uri": "db://users"}, map[string]any{"uri": "zz://users"}},
		{protocol.MethodResourcesSubscribe, map[string]any{"uri": "file:///b"}, map[string]any{"uri": "file:///nope"}},
		{protocol.MethodCompletionComplete, map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "b__bp"}}, map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "c__bp"}}},
		{protocol.MethodCompletionComplete, map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "a__secret"}}, map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "a__nope"}}},
		{protocol.MethodCompletionComplete, map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "db://{table}"}}, map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "zz://{table}"}}},
	}
	norm := func(e *jsonrpc.Error) *jsonrpc.Error {
		for _, s := range []string{"a__y", "a__nope", "b__x", "c__x", "a__secret", "b__bp", "c__bp", "file:///b", "file:///nope", "db://users", "zz://users", "db://{table}", "zz://{table}"} {
			e.Message = strings.ReplaceAll(e.Message, s, "NAME")
			e.Data = []byte(strings.ReplaceAll(string(e.Data), s, "NAME"))
		}
		return e
	}
	for _, tt := range same {
		ef := norm(wireErr(t, do(t, r, c, tt.method, tt.forbidden)))
		eu := norm(wireErr(t, do(t, r, c, tt.method, tt.unknown)))
		if diff := cmp.Diff(eu, ef); diff != "" {
			t.Errorf("%s %v: forbidden and unknown answer differently (-unknown +forbidden):\n%s", tt.method, tt.forbidden, diff)
		}
	}
	if got := b.received(); len(got) != 0 {
		t.Errorf("the forbidden server b received %v", got)
	}

	// What is allowed goes through.
	if srv, _ := routedTo(t, r, c, protocol.MethodToolsCall, map[string]any{"name": "a__x"}); srv != "a" {
		t.Errorf("a__x routed to %q", srv)
	}
	if srv, _ := routedTo(t, r, c, protocol.MethodCompletionComplete, map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "a__greet"}}); srv != "a" {
		t.Errorf("completion of a__greet routed to %q", srv)
	}
	do(t, r, c, protocol.MethodLoggingSetLevel, map[string]string{"level": "debug"})
	if got := b.received(); len(got) != 0 {
		t.Errorf("logging/setLevel reached the forbidden server b: %v", got)
	}
	// One visible server: an unknown method goes to it, never to b.
	if srv, _ := routedTo(t, r, c, "vendor/thing", map[string]int{"k": 1}); srv != "a" {
		t.Errorf("vendor/thing routed to %q, want a", srv)
	}
}

// A session may be allowed nothing at all.
func TestPrincipalNothing(t *testing.T) {
	r := newRouter(always, nil, newServer("a").withTools("x"))
	c := newClient(t, "s", principal(nil, nil), `{}`)
	if got := names(t, r, c, protocol.MethodToolsList); len(got) != 0 {
		t.Errorf("tools = %q, want none", got)
	}
	if e := wireErr(t, do(t, r, c, "vendor/thing", nil)); e.Code != jsonrpc.CodeMethodNotFound {
		t.Errorf("unknown method with no visible server: code %d, want %d", e.Code, jsonrpc.CodeMethodNotFound)
	}
}
