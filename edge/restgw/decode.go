package restgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxBody caps a REST request body.
const maxBody = 1 << 20

// strictJSON is the REST JSON marshaler. It refuses unknown fields, and
// when a body does not fit the message it says which field is wrong and
// what it should be ("args: must be an array of strings"), where protojson
// would only point at a line and column.
type strictJSON struct {
	*runtime.JSONPb
}

func (s *strictJSON) Unmarshal(data []byte, v any) error {
	err := s.JSONPb.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if m := asMessage(v); m != nil {
		if p := fieldProblem(data, m.ProtoReflect(), ""); p != "" {
			return errors.New(p)
		}
	}
	return err
}

// asMessage returns the message v decodes into: v itself, or what it
// points to (the gateway decodes a body field through a pointer to it).
func asMessage(v any) proto.Message {
	if m, ok := v.(proto.Message); ok {
		return m
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Pointer {
		return nil
	}
	if rv.Elem().IsNil() {
		m, _ := reflect.New(rv.Elem().Type().Elem()).Interface().(proto.Message)
		return m
	}
	m, _ := rv.Elem().Interface().(proto.Message)
	return m
}

func (s *strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(io.LimitReader(r, maxBody+1))
		if err != nil {
			return err
		}
		if len(data) > maxBody {
			return fmt.Errorf("request body exceeds %d bytes", maxBody)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF // no body: the gateway leaves the message empty
		}
		return s.Unmarshal(data, v)
	})
}

// fieldProblem finds the first field of the JSON object data whose value
// does not fit m's field, and describes it. It returns "" when it finds none
// (the caller then reports protojson's own error).
func fieldProblem(data []byte, m protoreflect.Message, prefix string) string {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		if prefix == "" {
			return "the body must be a JSON object"
		}
		return ""
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fields := m.Descriptor().Fields()
	for _, key := range keys {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		path := prefix + key
		if fd == nil {
			return fmt.Sprintf("%s: unknown field", path)
		}
		raw := obj[key]
		if string(raw) == "null" {
			continue
		}
		if want, ok := fits(raw, fd); !ok {
			return fmt.Sprintf("%s: must be %s", path, want)
		}
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && !wellKnown(fd.Message()) {
			if p := fieldProblem(raw, m.NewField(fd).Message(), path+"."); p != "" {
				return p
			}
		}
	}
	return ""
}

// wellKnown reports whether md is written as a JSON string (timestamps,
// durations, field masks).
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

// fits reports whether raw has the JSON shape of field fd, and if not, what
// it should be.
func fits(raw json.RawMessage, fd protoreflect.FieldDescriptor) (string, bool) {
	switch {
	case fd.IsMap():
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return "an object of " + plural(fd.MapValue()), false
		}
		for _, v := range m {
			if _, ok := fitsScalar(v, fd.MapValue()); !ok {
				return "an object of " + plural(fd.MapValue()), false
			}
		}
	case fd.IsList():
		var l []json.RawMessage
		if json.Unmarshal(raw, &l) != nil {
			return "an array of " + plural(fd), false
		}
		for _, v := range l {
			if _, ok := fitsScalar(v, fd); !ok {
				return "an array of " + plural(fd), false
			}
		}
	default:
		return fitsScalar(raw, fd)
	}
	return "", true
}

func fitsScalar(raw json.RawMessage, fd protoreflect.FieldDescriptor) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "valid JSON", false
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.EnumKind:
		_, ok := v.(string)
		return "a string", ok
	case protoreflect.BoolKind:
		_, ok := v.(bool)
		return "true or false", ok
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if wellKnown(fd.Message()) {
			_, ok := v.(string)
			return "a string", ok
		}
		_, ok := v.(map[string]any)
		return "an object", ok
	default: // numbers; 64-bit ones may be strings in proto JSON
		switch v.(type) {
		case float64:
			return "", true
		case string:
			return "a number", fd.Kind() == protoreflect.Int64Kind || fd.Kind() == protoreflect.Uint64Kind
		}
		return "a number", false
	}
}

func plural(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.EnumKind:
		return "strings"
	case protoreflect.BoolKind:
		return "booleans"
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "objects"
	}
	return "numbers"
}
