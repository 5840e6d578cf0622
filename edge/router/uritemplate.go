package router

import (
	"errors"
	"regexp"
	"strings"
)

// uriTemplate matches URIs against an RFC 6570 template, for routing
// resources/read of a templated resource to the server that offers the
// template. Only matching is needed, never expansion.
type uriTemplate struct {
	re *regexp.Regexp
}

// parseURITemplate understands the operators MCP servers use: {var} and
// {+var}, {#var}, {/var}, {.var}, {;var}, {?var,...} and {&var,...}.
func parseURITemplate(t string) (*uriTemplate, error) {
	if t == "" {
		return nil, errors.New("empty template")
	}
	var b strings.Builder
	b.WriteString("^")
	for len(t) > 0 {
		open := strings.IndexByte(t, '{')
		if open < 0 {
			b.WriteString(regexp.QuoteMeta(t))
			break
		}
		b.WriteString(regexp.QuoteMeta(t[:open]))
		close := strings.IndexByte(t[open:], '}')
		if close < 0 {
			return nil, errors.New("unclosed {")
		}
		expr := t[open+1 : open+close]
		t = t[open+close+1:]
		if expr == "" {
			return nil, errors.New("empty expression")
		}
		switch expr[0] {
		case '+':
			b.WriteString(`.*`)
		case '#':
			// An undefined or empty fragment expands to nothing, "#" included.
			b.WriteString(`(?:#.*)?`)
		case '/':
			b.WriteString(`(?:/[^/?#]*)*`)
		case '.':
			b.WriteString(`(?:\.[^/?#.]*)*`)
		case ';':
			b.WriteString(`(?:;[^/?#;]*)*`)
		case '?', '&':
			b.WriteString(`(?:[?&][^#]*)?`)
		default:
			b.WriteString(`[^/?#]*`)
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	return &uriTemplate{re: re}, nil
}

// Match reports whether uri fits the template.
func (u *uriTemplate) Match(uri string) bool {
	return u != nil && u.re.MatchString(uri)
}
