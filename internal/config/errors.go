package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// FieldError is one problem with a config value, located by its key path:
// "mcpServers.github.command", "auth.options.clients[0].secret", or "port".
// A problem with the file as a whole (a JSON syntax error) has an empty Path
// and names the line and column in Msg.
//
// Msg never holds a secret: it names the variable or key at fault, not the
// value, so an error can be logged or shown as it is.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// problems collects every FieldError of one load or validation, so that a
// user fixes a file in one pass instead of one error at a time.
type problems struct {
	errs []*FieldError
}

func (p *problems) add(path, msg string) {
	p.errs = append(p.errs, &FieldError{Path: path, Msg: msg})
}

func (p *problems) addf(path, format string, args ...any) {
	p.add(path, fmt.Sprintf(format, args...))
}

// err returns the problems sorted by path (stable, so that several problems
// with one key keep the order they were found in) as one errors.Join, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *FieldError) int { return cmp.Compare(a.Path, b.Path) })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// join appends an object key to a key path. A key that is not plain (empty,
// or holding a dot, a space or a bracket) is shown quoted in brackets so that
// the path stays unambiguous: mcpServers["my.server"].command.
func join(path, key string) string {
	if !plainKey(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// index appends an array index to a key path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// plainKey reports whether key is non-empty and made of ASCII letters,
// digits, "_", "-" and "$" only.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !isAlnum(c) && c != '_' && c != '-' && c != '$' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
