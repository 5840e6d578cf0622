package router_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/router"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func TestOwners(t *testing.T) {
	a := newServer("a").withTools("x", "y").withPrompts("greet").withResources("file:///a")
	b := newServer("b").withTools("x").withResources("file:///b").withTemplates("db://{table}")
	r := newRouter(router.Namespacing{Mode: router.ModeConditional, Separator: "__"}, nil, a, b)

	all := &authn.Principal{Subject: "static:ops", Servers: authn.AllowAll(), Tools: authn.AllowAll()}
	want := map[string]map[string]string{
		"tools":             {"a__x": "a", "y": "a", "b__x": "b"},
		"prompts":           {"greet": "a"},
		"resources":         {"file:///a": "a", "file:///b": "b"},
		"resourceTemplates": {"db://{table}": "b"},
	}
	if diff := cmp.Diff(want, r.Owners(all)); diff != "" {
		t.Errorf("owners for every server (-want +got):\n%s", diff)
	}

	// A narrowed principal learns only of what it may see.
	narrow := principal([]string{"a"}, []string{"a__x"})
	want = map[string]map[string]string{
		"tools":             {"a__x": "a"},
		"prompts":           {},
		"resources":         {"file:///a": "a"},
		"resourceTemplates": {},
	}
	if diff := cmp.Diff(want, r.Owners(narrow)); diff != "" {
		t.Errorf("owners for a narrowed principal (-want +got):\n%s", diff)
	}
	if got := r.Owners(nil); len(got["tools"]) != 0 || len(got["resources"]) != 0 {
		t.Errorf("owners for no principal: %v, want none", got)
	}
}
