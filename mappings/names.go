package mappings

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"unicode/utf8"
)

// maxIdentifierBytes is PostgreSQL's identifier limit (NAMEDATALEN - 1);
// longer names are silently truncated by the server, so mappings never hold
// one.
const maxIdentifierBytes = 63

// SanitizeName turns a source name (collection ID or field name) into a
// PostgreSQL identifier deterministically: camelCase becomes snake_case,
// ASCII letters are lower-cased, every run of other characters becomes one
// "_", leading and trailing "_" are dropped, a name that would start with a
// digit gets the prefix fallback+"_", a name left empty becomes
// fallback+"_"+hash of the original, and a name longer than 63 bytes is cut
// and given a hash of the original as suffix. The result matches
// [a-z_][a-z0-9_]* and is at most 63 bytes. fallback must be a short
// lower-case ASCII word ("f" for fields, "t" for tables).
func SanitizeName(name, fallback string) string {
	var b strings.Builder
	rs := []rune(name)
	pendingSep := false
	for i, r := range rs {
		switch {
		case r >= 'A' && r <= 'Z':
			// A word boundary: fooBar, foo2Bar, or the last capital of an
			// acronym followed by a lower-case letter (HTTPServer).
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
				if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') ||
					(prev >= 'A' && prev <= 'Z' && nextLower) {
					pendingSep = true
				}
			}
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			b.WriteRune(r + ('a' - 'A'))
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			b.WriteRune(r)
		default:
			pendingSep = true
		}
	}
	s := b.String()
	switch {
	case s == "":
		return fallback + "_" + shortHash(name)
	case s[0] >= '0' && s[0] <= '9':
		s = fallback + "_" + s
	}
	if len(s) > maxIdentifierBytes {
		s = withSuffix(s, shortHash(name))
	}
	return s
}

// withSuffix appends "_"+suffix to base, cutting base so the result fits in
// 63 bytes. base must be ASCII.
func withSuffix(base, suffix string) string {
	keep := maxIdentifierBytes - 1 - len(suffix)
	if len(base) > keep {
		base = strings.TrimRight(base[:keep], "_")
	}
	return base + "_" + suffix
}

// shortHash is 8 hex digits of FNV-1a over s: stable across runs and
// platforms, so generated names never depend on anything but the input.
func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

// nameRequest asks for an identifier for one original name.
type nameRequest struct {
	original  string // the source name or path it stands for
	candidate string // the sanitized name wanted
}

// assignNames gives every request a distinct identifier not in taken, and
// adds them to taken. The result depends only on the set of requests, never
// on their order: requests are sorted by candidate, then those whose
// original already equals the candidate first, then by original; the first
// of each candidate gets it if free, every other one gets the candidate with
// a hash of its original as suffix (rehashed with a counter if that is taken
// too). Results are returned in the order of reqs.
func assignNames(reqs []nameRequest, taken map[string]bool) []string {
	idx := make([]int, len(reqs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ra, rb := reqs[idx[a]], reqs[idx[b]]
		if ra.candidate != rb.candidate {
			return ra.candidate < rb.candidate
		}
		ea, eb := ra.original == ra.candidate, rb.original == rb.candidate
		if ea != eb {
			return ea
		}
		return ra.original < rb.original
	})
	out := make([]string, len(reqs))
	var losers []int
	for k, i := range idx {
		c := reqs[i].candidate
		if (k == 0 || reqs[idx[k-1]].candidate != c) && !taken[c] {
			out[i] = c
			taken[c] = true
			continue
		}
		losers = append(losers, i)
	}
	for _, i := range losers {
		r := reqs[i]
		for n := 0; ; n++ {
			h := r.original
			if n > 0 {
				h = fmt.Sprintf("%s\x00%d", r.original, n)
			}
			name := withSuffix(r.candidate, shortHash(h))
			if !taken[name] {
				out[i] = name
				taken[name] = true
				break
			}
		}
	}
	return out
}

// checkIdentifier reports why name cannot be a PostgreSQL identifier in a
// mapping; nil when it can. Names are always quoted by the loader, so any
// text is allowed as long as the server keeps it intact.
func checkIdentifier(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q contains a NUL byte", name)
	case len(name) > maxIdentifierBytes:
		return fmt.Errorf("name %q is %d bytes; PostgreSQL keeps only %d", name, len(name), maxIdentifierBytes)
	}
	return nil
}
