package mappings

import (
	"errors"
	"fmt"
	"strings"
)

// ParseFieldPath splits a field path written in the field-path syntax
// into its segments (map keys, outermost first).
//
// Segments are joined by ".". A segment matching [A-Za-z_][A-Za-z0-9_]* may be
// written as is; any other segment (including the empty one) must be quoted
// with backticks, inside which "\`" stands for a backtick and "\\" for a
// backslash. ParseFieldPath is the inverse of FormatFieldPath: for every
// non-empty slice s, ParseFieldPath(FormatFieldPath(s)) returns s.
func ParseFieldPath(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("empty field path")
	}
	var segs []string
	i := 0
	for {
		if i >= len(path) {
			return nil, fmt.Errorf("field path %q ends with a dot", path)
		}
		if path[i] == '`' {
			var b strings.Builder
			i++
			closed := false
			for i < len(path) {
				c := path[i]
				if c == '\\' {
					if i+1 >= len(path) || (path[i+1] != '`' && path[i+1] != '\\') {
						return nil, fmt.Errorf("field path %q: a backslash inside backticks must escape ` or \\", path)
					}
					b.WriteByte(path[i+1])
					i += 2
					continue
				}
				if c == '`' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("field path %q has an unterminated backtick-quoted segment", path)
			}
			segs = append(segs, b.String())
		} else {
			j := i
			for j < len(path) && path[j] != '.' {
				j++
			}
			seg := path[i:j]
			if seg == "" {
				return nil, fmt.Errorf("field path %q has an empty segment; quote it as ``", path)
			}
			if !isSimpleSegment(seg) {
				return nil, fmt.Errorf("field path %q: segment %q must be quoted with backticks: %s", path, seg, quoteSegment(seg))
			}
			segs = append(segs, seg)
			i = j
		}
		if i == len(path) {
			return segs, nil
		}
		if path[i] != '.' {
			return nil, fmt.Errorf("field path %q: expected a dot after the quoted segment at byte %d", path, i)
		}
		i++
	}
}

// FormatFieldPath writes segments in the field-path syntax, quoting
// only the segments that need it (see ParseFieldPath). The result is the one
// canonical spelling of the path; mappings store field paths in this form.
func FormatFieldPath(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('.')
		}
		if isSimpleSegment(s) {
			b.WriteString(s)
		} else {
			b.WriteString(quoteSegment(s))
		}
	}
	return b.String()
}

// isSimpleSegment reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func isSimpleSegment(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func quoteSegment(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('`')
	for i := 0; i < len(s); i++ {
		if s[i] == '`' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('`')
	return b.String()
}

// canonicalFieldPath parses path and formats it again, so two spellings of
// one path compare equal. It returns the parse error unchanged.
func canonicalFieldPath(path string) (string, []string, error) {
	segs, err := ParseFieldPath(path)
	if err != nil {
		return "", nil, err
	}
	return FormatFieldPath(segs), segs, nil
}
