package firestoreemu

import (
	"fmt"
	"maps"
	"regexp"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
)

// Field paths. The API writes a field path as dot-separated segments; a
// segment that is not a simple identifier ([A-Za-z_][A-Za-z0-9_]*) is quoted
// with backticks, with "\`" and "\\" escaping inside the quotes.

var simpleSegment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// nameField is the pseudo-field holding a document's name.
const nameField = "__name__"

// parseFieldPath splits a field path string into its segments.
func parseFieldPath(s string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("empty field path")
	}
	var segs []string
	for i := 0; i < len(s); {
		var seg string
		if s[i] == '`' {
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(s) {
				c := s[j]
				if c == '\\' && j+1 < len(s) {
					b.WriteByte(s[j+1])
					j += 2
					continue
				}
				if c == '`' {
					closed = true
					j++
					break
				}
				b.WriteByte(c)
				j++
			}
			if !closed {
				return nil, fmt.Errorf("field path %q has an unterminated backtick", s)
			}
			seg = b.String()
			if seg == "" {
				return nil, fmt.Errorf("field path %q has an empty segment", s)
			}
			i = j
		} else {
			j := strings.IndexByte(s[i:], '.')
			if j < 0 {
				j = len(s) - i
			}
			seg = s[i : i+j]
			if !simpleSegment.MatchString(seg) {
				return nil, fmt.Errorf("field path %q: segment %q must be quoted with backticks", s, seg)
			}
			i += j
		}
		segs = append(segs, seg)
		if i < len(s) {
			if s[i] != '.' || i == len(s)-1 {
				return nil, fmt.Errorf("invalid field path %q", s)
			}
			i++
		}
	}
	return segs, nil
}

// formatFieldPath is the inverse of parseFieldPath.
func formatFieldPath(segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		if simpleSegment.MatchString(s) {
			out[i] = s
			continue
		}
		s = strings.ReplaceAll(s, `\`, `\\`)
		s = strings.ReplaceAll(s, "`", "\\`")
		out[i] = "`" + s + "`"
	}
	return strings.Join(out, ".")
}

// getField returns the value at path in fields.
func getField(fields map[string]*pb.Value, path []string) (*pb.Value, bool) {
	var v *pb.Value
	for i, seg := range path {
		var ok bool
		v, ok = fields[seg]
		if !ok {
			return nil, false
		}
		if i < len(path)-1 {
			m, isMap := v.ValueType.(*pb.Value_MapValue)
			if !isMap {
				return nil, false
			}
			fields = m.MapValue.GetFields()
		}
	}
	return v, v != nil
}

// setField returns a copy of fields with path set to v. Maps along the path
// are copied (stored maps are never mutated); a non-map value in the way is
// replaced by a map.
func setField(fields map[string]*pb.Value, path []string, v *pb.Value) map[string]*pb.Value {
	out := maps.Clone(fields)
	if out == nil {
		out = map[string]*pb.Value{}
	}
	if len(path) == 1 {
		out[path[0]] = v
		return out
	}
	var inner map[string]*pb.Value
	if cur, ok := out[path[0]]; ok {
		if m, isMap := cur.ValueType.(*pb.Value_MapValue); isMap {
			inner = m.MapValue.GetFields()
		}
	}
	out[path[0]] = &pb.Value{ValueType: &pb.Value_MapValue{MapValue: &pb.MapValue{Fields: setField(inner, path[1:], v)}}}
	return out
}

// deleteField returns a copy of fields without path, and whether the path
// was present (fields itself is returned when it was not).
func deleteField(fields map[string]*pb.Value, path []string) (map[string]*pb.Value, bool) {
	cur, ok := fields[path[0]]
	if !ok {
		return fields, false
	}
	if len(path) == 1 {
		out := maps.Clone(fields)
		delete(out, path[0])
		return out, true
	}
	m, isMap := cur.ValueType.(*pb.Value_MapValue)
	if !isMap {
		return fields, false
	}
	newInner, changed := deleteField(m.MapValue.GetFields(), path[1:])
	if !changed {
		return fields, false
	}
	out := maps.Clone(fields)
	out[path[0]] = &pb.Value{ValueType: &pb.Value_MapValue{MapValue: &pb.MapValue{Fields: newInner}}}
	return out, true
}

// pathHasPrefix reports whether p starts with prefix.
func pathHasPrefix(p, prefix []string) bool {
	if len(prefix) > len(p) {
		return false
	}
	for i := range prefix {
		if p[i] != prefix[i] {
			return false
		}
	}
	return true
}

// projectFields returns only the given field paths of fields.
func projectFields(fields map[string]*pb.Value, paths [][]string) map[string]*pb.Value {
	out := map[string]*pb.Value{}
	for _, p := range paths {
		if len(p) == 1 && p[0] == nameField {
			continue
		}
		if v, ok := getField(fields, p); ok {
			out = setField(out, p, v)
		}
	}
	return out
}
