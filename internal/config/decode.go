package config

import (
	"strconv"
	"time"

	"github.com/tailscale/hujson"
)

// decoder walks the parsed file with small typed accessors. Each accessor
// checks one value, records a FieldError at the value's key path when it is
// wrong, and reports whether the value is usable, so that decoding goes on
// past a bad value and one load reports every problem in the file.
type decoder struct {
	problems
	lookup LookupFunc
}

// member is one key of an object, with the key path of its value.
type member struct {
	key  string
	path string
	val  *hujson.Value
}

// kindName is what a value of each JSON kind is called in an error message.
func kindName(k hujson.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "invalid"
}

// typeError records that the value at path is not of the wanted type.
func (d *decoder) typeError(path, want string, v *hujson.Value) {
	d.addf(path, "must be %s, not %s", want, kindName(v.Value.Kind()))
}

// object returns the members of an object in file order. A key that occurs
// twice is an error at its second occurrence, which is left out: JSON
// parsers disagree about which one wins, so the file must not rely on either.
func (d *decoder) object(path string, v *hujson.Value) ([]member, bool) {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		d.typeError(path, "an object", v)
		return nil, false
	}
	members := make([]member, 0, len(obj.Members))
	seen := make(map[string]bool, len(obj.Members))
	for i := range obj.Members {
		m := &obj.Members[i]
		key := m.Name.Value.(hujson.Literal).String()
		p := join(path, key)
		if seen[key] {
			d.add(p, "duplicate key")
			continue
		}
		seen[key] = true
		members = append(members, member{key: key, path: p, val: &m.Value})
	}
	return members, true
}

// array returns the elements of an array.
func (d *decoder) array(path string, v *hujson.Value) ([]hujson.Value, bool) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		d.typeError(path, "an array", v)
		return nil, false
	}
	return arr.Elements, true
}

// unknown records a key the decoder does not know. Strictness is the point:
// a misspelt key ("comand") would otherwise be ignored without a word.
func (d *decoder) unknown(m member) {
	d.add(m.path, "unknown key")
}

// raw returns a string as written, ${VAR} kept.
func (d *decoder) raw(path string, v *hujson.Value) (string, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '"' {
		d.typeError(path, "a string", v)
		return "", false
	}
	return lit.String(), true
}

// rawNonEmpty is raw for a value that must not be empty.
func (d *decoder) rawNonEmpty(path string, v *hujson.Value) (string, bool) {
	s, ok := d.raw(path, v)
	if ok && s == "" {
		d.add(path, "must not be empty")
		return "", false
	}
	return s, ok
}

// str returns a string with ${VAR} expanded.
func (d *decoder) str(path string, v *hujson.Value) (string, bool) {
	s, ok := d.raw(path, v)
	if !ok {
		return "", false
	}
	return d.expand(path, s)
}

// expand expands s, recording an error at path when it cannot be.
func (d *decoder) expand(path, s string) (string, bool) {
	out, err := Expand(s, d.lookup)
	if err != nil {
		d.add(path, err.Error())
		return "", false
	}
	return out, true
}

// nonEmpty is str for a value that must not be empty after expansion.
func (d *decoder) nonEmpty(path string, v *hujson.Value) (string, bool) {
	s, ok := d.str(path, v)
	if ok && s == "" {
		d.add(path, "must not be empty")
		return "", false
	}
	return s, ok
}

// boolean returns a JSON true or false.
func (d *decoder) boolean(path string, v *hujson.Value) (bool, bool) {
	switch k := v.Value.Kind(); k {
	case 't', 'f':
		return k == 't', true
	}
	d.typeError(path, "a boolean", v)
	return false, false
}

// strings returns an array of strings, each expanded (or kept as written
// when expanded is false) and checked by valid when it is not nil. The
// result is never nil for an array that is present, so that callers can
// tell "[]" (none) from an absent key (the default).
func (d *decoder) strings(path string, v *hujson.Value, expanded bool, valid func(path, s string) bool) ([]string, bool) {
	elems, ok := d.array(path, v)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(elems))
	for i := range elems {
		p := index(path, i)
		var s string
		if expanded {
			s, ok = d.str(p, &elems[i])
		} else {
			s, ok = d.raw(p, &elems[i])
		}
		if ok && (valid == nil || valid(p, s)) {
			out = append(out, s)
		}
	}
	return out, len(out) == len(elems)
}

// patterns returns a list of name patterns ("*" wildcards), expanded, each
// non-empty.
func (d *decoder) patterns(path string, v *hujson.Value) ([]string, bool) {
	return d.strings(path, v, true, func(p, s string) bool {
		if s == "" {
			d.add(p, "must not be empty")
			return false
		}
		return true
	})
}

// stringMap returns an object of strings as written. Keys are checked by
// the caller, which knows what they name.
func (d *decoder) stringMap(path string, v *hujson.Value) (map[string]string, bool) {
	members, ok := d.object(path, v)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(members))
	for _, m := range members {
		if s, sok := d.raw(m.path, m.val); sok {
			out[m.key] = s
		} else {
			ok = false
		}
	}
	return out, ok
}

// oneOf returns a string that must be one of want, expanded. The error quotes
// the value as written: expanded, it could be anything, a secret included.
func (d *decoder) oneOf(path string, v *hujson.Value, want ...string) (string, bool) {
	written, ok := d.raw(path, v)
	if !ok {
		return "", false
	}
	s, ok := d.expand(path, written)
	if !ok {
		return "", false
	}
	for _, w := range want {
		if s == w {
			return s, true
		}
	}
	d.add(path, unknownValue(written, want...))
	return "", false
}

// unknownValue is the message for a value outside an enumeration:
// unknown value "grpc" (want stdio, sse or http).
func unknownValue(written string, want ...string) string {
	return "unknown value " + strconv.Quote(written) + " (want " + orList(want) + ")"
}

// orList renders "a", "a or b", "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	s := words[0]
	for _, w := range words[1 : len(words)-1] {
		s += ", " + w
	}
	return s + " or " + words[len(words)-1]
}

// duration returns a positive duration written as a string ("90s", "1h").
func (d *decoder) duration(path string, v *hujson.Value) (time.Duration, bool) {
	s, ok := d.str(path, v)
	if !ok {
		return 0, false
	}
	dur, err := parsePositiveDuration(s)
	if err != nil {
		d.add(path, err.Error())
		return 0, false
	}
	return dur, true
}
