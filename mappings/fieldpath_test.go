package mappings

import (
	"slices"
	"strings"
	"testing"
)

func hostileNames() []string {
	return []string{
		"a", "_", "__name__", "A1_b", "1abc", "", " ", "a b", "a.b", "a`b", "`", "``", "\\", "a\\`b",
		"ends\\", "`a.b`", "名前", "ünïcödé.😀", "\x00nul", "tab\t", "\"; DROP TABLE x; --", "'quote'",
		strings.Repeat("x", 1500), strings.Repeat("é", 750), strings.Repeat("`.\\", 500),
	}
}

func TestFieldPathRoundTrip(t *testing.T) {
	names := hostileNames()
	var cases [][]string
	for _, n := range names {
		cases = append(cases, []string{n})
	}
	for i := range names {
		cases = append(cases, []string{names[i], names[(i+1)%len(names)], names[(i+7)%len(names)]})
	}
	for _, segs := range cases {
		text := FormatFieldPath(segs)
		got, err := ParseFieldPath(text)
		if err != nil {
			t.Fatalf("ParseFieldPath(%q) (formatted from %q): %v", text, segs, err)
		}
		if !slices.Equal(got, segs) {
			t.Fatalf("round trip of %q via %q gave %q", segs, text, got)
		}
	}
}

func TestFieldPathSyntax(t *testing.T) {
	for in, want := range map[string][]string{
		"a":             {"a"},
		"a.b.c":         {"a", "b", "c"},
		"__name__":      {"__name__"},
		"`a.b`.c":       {"a.b", "c"},
		"`x`":           {"x"},
		"``":            {""},
		"`a\\`b`":       {"a`b"},
		"`a\\\\b`":      {"a\\b"},
		"a.`1`.`名前`":    {"a", "1", "名前"},
		"`zip-code`.x_": {"zip-code", "x_"},
	} {
		got, err := ParseFieldPath(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseFieldPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", "zip-code", "1a", "a b", "`open", "`a`b", "`a\\x`", "`a`.", "名前"} {
		if got, err := ParseFieldPath(bad); err == nil {
			t.Errorf("ParseFieldPath(%q) = %q, want an error", bad, got)
		}
	}
	if got := FormatFieldPath([]string{"address", "zip-code", "a`b"}); got != "address.`zip-code`.`a\\`b`" {
		t.Errorf("FormatFieldPath = %s", got)
	}
}

func FuzzFieldPath(f *testing.F) {
	for _, n := range hostileNames() {
		f.Add(n, "b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		segs := []string{a, b}
		text := FormatFieldPath(segs)
		got, err := ParseFieldPath(text)
		if err != nil || !slices.Equal(got, segs) {
			t.Fatalf("round trip of %q via %q: %q, %v", segs, text, got, err)
		}
		// Parsing arbitrary text never panics, and what parses formats to a
		// spelling that parses to the same segments.
		if p, err := ParseFieldPath(a); err == nil {
			again, err := ParseFieldPath(FormatFieldPath(p))
			if err != nil || !slices.Equal(again, p) {
				t.Fatalf("canonical form of %q does not round-trip: %q, %v", a, again, err)
			}
		}
	})
}
