package router

import "testing"

func TestURITemplateMatch(t *testing.T) {
	tests := []struct {
		tmpl string
		yes  []string
		no   []string
	}{
		{"file:///{path}", []string{"file:///a.txt", "file:///"}, []string{"file:///a/b", "file:///a?x", "http:///a"}},
		{"file:///{+path}", []string{"file:///a/b/c", "file:///a?x#y"}, []string{"files:///a"}},
		{"db://{table}/rows{?limit,offset}", []string{"db://t/rows", "db://t/rows?limit=1&offset=2"}, []string{"db://t/cols", "db://t/u/rows"}},
		{"api://x{/seg}", []string{"api://x", "api://x/a", "api://x/a/b"}, []string{"api://xa"}},
		{"doc://x{.fmt}", []string{"doc://x", "doc://x.json"}, []string{"doc://x/json"}},
		{"m://x{;p}", []string{"m://x", "m://x;a=1"}, []string{"m://x/a"}},
		{"page://x{#frag}", []string{"page://x#top", "page://x"}, []string{"page://y#top"}},
		{"a.b://{x}", []string{"a.b://1"}, []string{"aXb://1"}}, // literals are quoted
	}
	for _, tt := range tests {
		u, err := parseURITemplate(tt.tmpl)
		if err != nil {
			t.Errorf("parseURITemplate(%q): %v", tt.tmpl, err)
			continue
		}
		for _, s := range tt.yes {
			if !u.Match(s) {
				t.Errorf("%q does not match %q, want a match", tt.tmpl, s)
			}
		}
		for _, s := range tt.no {
			if u.Match(s) {
				t.Errorf("%q matches %q, want none", tt.tmpl, s)
			}
		}
	}
	for _, bad := range []string{"", "file:///{path", "x://{}"} {
		if _, err := parseURITemplate(bad); err == nil {
			t.Errorf("parseURITemplate(%q): no error, want one", bad)
		}
	}
	var none *uriTemplate
	if none.Match("x") {
		t.Error("a nil template matches")
	}
}
