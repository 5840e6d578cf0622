package authn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/authn"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		{"memory", "memory", true},
		{"memory", "memory2", false},
		{"memory", "Memory", false},
		{"*", "", true},
		{"*", "anything at all", true},
		{"**", "", true},
		{"**", "x", true},
		// Prefix patterns.
		{"mem*", "mem", true},
		{"mem*", "memory", true},
		{"mem*", "me", false},
		{"mem*", "xmemory", false},
		// Suffix patterns.
		{"*__read", "fs__read", true},
		{"*__read", "__read", true},
		{"*__read", "fs__read_all", false},
		{"*__read", "read", false},
		// Infix.
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acbc", true},
		{"a*b*c", "ac", false},
		{"a*b*c", "abcx", false},
		{"a*b*c", "xabc", false},
		{"a*b*c", "acb", false},
		{"*b*", "abc", true},
		{"*b*", "ac", false},
		// The last literal part must end the name, even when it also
		// occurs earlier.
		{"*ab", "abab", true},
		{"*ab", "aba", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		// A "*" in the name is an ordinary character.
		{"a*", "a*", true},
		{"a", "*", false},
		// Other glob syntax means itself.
		{"a?c", "abc", false},
		{"a?c", "a?c", true},
		{"[ab]", "a", false},
	}
	for _, tt := range tests {
		if got := authn.Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// TestMatchLinear guards against backtracking that is exponential in the
// number of stars: a client can ask /auth for a token narrowed to a pattern
// of its choosing (tool:PATTERN) and then send tool names of any length, so
// matching must stay cheap whatever the pattern.
func TestMatchLinear(t *testing.T) {
	pattern := strings.Repeat("*a", 20) + "*b"
	name := strings.Repeat("a", 200)
	done := make(chan bool, 1)
	go func() { done <- authn.Match(pattern, name) }()
	select {
	case got := <-done:
		if got {
			t.Errorf("Match(%q, %q) = true, want false", pattern, name)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Match(%q, 200 × \"a\") did not return within 5s", pattern)
	}
}

func TestMatchAny(t *testing.T) {
	tests := []struct {
		patterns []string
		name     string
		want     bool
	}{
		{nil, "x", false},
		{[]string{}, "", false},
		{[]string{"a", "b"}, "b", true},
		{[]string{"a", "b"}, "c", false},
		{[]string{"x*", "*y"}, "zy", true},
		{authn.AllowAll(), "", true},
	}
	for _, tt := range tests {
		if got := authn.MatchAny(tt.patterns, tt.name); got != tt.want {
			t.Errorf("MatchAny(%q, %q) = %v, want %v", tt.patterns, tt.name, got, tt.want)
		}
	}
}

func TestCovers(t *testing.T) {
	// Covers(patterns, requested) must hold only when every name requested
	// matches is matched by patterns.
	tests := []struct {
		patterns  []string
		requested string
		want      bool
	}{
		{[]string{"*"}, "*", true},
		{[]string{"*"}, "anything", true},
		{[]string{"*"}, "", true},
		{[]string{"mem*"}, "memory", true},
		{[]string{"mem*"}, "mem*", true},
		{[]string{"mem*"}, "memory*", true},
		{[]string{"mem*"}, "me*", false},
		{[]string{"mem*"}, "*", false},
		{[]string{"memory"}, "mem*", false},
		{[]string{"memory"}, "memory", true},
		{[]string{"a*c"}, "a*b*c", true},
		{[]string{"a*b*c"}, "a*c", false},
		{[]string{"*b*"}, "*", false},
		{[]string{"*b*"}, "*b", true},
		{[]string{"x", "fs__*"}, "fs__read*", true},
		{nil, "x", false},
		{[]string{}, "*", false},
	}
	for _, tt := range tests {
		if got := authn.Covers(tt.patterns, tt.requested); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.patterns, tt.requested, got, tt.want)
		}
	}
}

func TestPrincipalChecks(t *testing.T) {
	p := &authn.Principal{
		Subject: "client:ci",
		Kind:    authn.KindJWT,
		Scopes:  []string{authn.ScopeEdge},
		Servers: []string{"memory", "git*"},
		Tools:   []string{"memory__*"},
	}
	empty := &authn.Principal{Subject: "client:none", Kind: authn.KindJWT}
	var none *authn.Principal

	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"edge scope", p.HasScope(authn.ScopeEdge), true},
		{"admin scope", p.HasScope(authn.ScopeAdmin), false},
		{"empty scope", p.HasScope(""), false},
		{"server exact", p.AllowsServer("memory"), true},
		{"server pattern", p.AllowsServer("github"), true},
		{"server other", p.AllowsServer("fs"), false},
		{"tool pattern", p.AllowsTool("memory__read_graph"), true},
		{"tool other server", p.AllowsTool("github__search"), false},
		{"no servers allows no server", empty.AllowsServer("memory"), false},
		{"no tools allows no tool", empty.AllowsTool(""), false},
		{"nil principal scope", none.HasScope(authn.ScopeAdmin), false},
		{"nil principal server", none.AllowsServer("memory"), false},
		{"nil principal tool", none.AllowsTool("x"), false},
		{"anonymous admin", authn.Anonymous().HasScope(authn.ScopeAdmin), true},
		{"anonymous edge", authn.Anonymous().HasScope(authn.ScopeEdge), true},
		{"anonymous server", authn.Anonymous().AllowsServer("anything"), true},
		{"anonymous tool", authn.Anonymous().AllowsTool("any__tool"), true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestSameAs(t *testing.T) {
	jwt1 := &authn.Principal{Subject: "client:ci", Kind: authn.KindJWT, TokenID: "1"}
	tests := []struct {
		name string
		p, q *authn.Principal
		want bool
	}{
		{"itself", jwt1, jwt1, true},
		{"renewed token of the same client", jwt1, &authn.Principal{Subject: "client:ci", Kind: authn.KindJWT, TokenID: "2", Scopes: []string{"admin"}}, true},
		{"other client", jwt1, &authn.Principal{Subject: "client:cd", Kind: authn.KindJWT}, false},
		{"same subject, other kind", &authn.Principal{Subject: "static:x", Kind: authn.KindStatic}, &authn.Principal{Subject: "static:x", Kind: authn.KindJWT}, false},
		{"anonymous", authn.Anonymous(), authn.Anonymous(), true},
		{"nil q", jwt1, nil, false},
		{"nil p", nil, jwt1, false},
		{"both nil", nil, nil, false},
	}
	for _, tt := range tests {
		if got := tt.p.SameAs(tt.q); got != tt.want {
			t.Errorf("%s: SameAs = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAllowAllIsFresh(t *testing.T) {
	a := authn.AllowAll()
	a[0] = "nothing"
	if b := authn.AllowAll(); len(b) != 1 || b[0] != "*" {
		t.Errorf("AllowAll() after a caller changed an earlier result = %q, want [\"*\"]", b)
	}
	p := authn.Anonymous()
	p.Servers[0] = "nothing"
	if !authn.Anonymous().AllowsServer("x") {
		t.Error("changing one anonymous principal changed the next")
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if p := authn.FromContext(ctx); p != nil {
		t.Errorf("FromContext(empty) = %+v, want nil", p)
	}
	p := &authn.Principal{Subject: "static:ops"}
	if got := authn.FromContext(authn.NewContext(ctx, p)); got != p {
		t.Errorf("FromContext(NewContext(p)) = %+v, want %+v", got, p)
	}
}
