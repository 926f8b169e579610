package firestoreemu

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPathKeysOrderAndRanges checks the two properties the indexes rely on,
// over random paths mixing numeric IDs, look-alikes and strings with the
// bytes the encoding uses: comparing keys compares paths as Firestore
// orders names (segment by segment, numeric IDs first by value, the rest by
// bytes, then the shorter path first), and the strict descendants of a
// path are exactly the keys in [childPrefix, childLimit). Keys decode back
// to their paths.
func TestPathKeysOrderAndRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	atoms := []string{
		"__id-9223372036854775808__", "__id-1__", "__id0__", "__id1__", "__id2__", "__id10__",
		"__id9223372036854775807__", "__id007__", "__id-0__", "__id__", "__id9223372036854775808__",
		"", "\x00", "\x00\x01", "\x00\x02", "\x00\x03", "\x01", "\x03", "\xff", "0", "1", "a", "ab", "é", "__", "_",
	}
	segment := func() string {
		switch rng.IntN(4) {
		case 0:
			n := rng.Int64() >> rng.IntN(64) // all magnitudes
			if rng.IntN(2) == 0 {
				n = -n
			}
			return fmt.Sprintf("__id%d__", n)
		default:
			s := atoms[rng.IntN(len(atoms))] + atoms[rng.IntN(len(atoms))]
			if s == "" {
				s = "x"
			}
			return s
		}
	}
	var paths [][]string
	for range 400 {
		p := make([]string, 1+rng.IntN(4))
		for i := range p {
			p[i] = segment()
		}
		// With a child, and its parent, so that prefixes are common.
		paths = append(paths, p, append(slices.Clone(p), segment()))
		if len(p) > 1 {
			paths = append(paths, p[:len(p)-1])
		}
	}
	paths = append(paths, []string{"__id" + strconv.FormatInt(math.MinInt64, 10) + "__", "\x00"})
	for _, a := range paths {
		ka := encodePath(a)
		if got := decodeKey(ka); !slices.Equal(got, a) {
			t.Fatalf("decodeKey(encodePath(%q)) = %q", a, got)
		}
		lo, hi := childPrefix(ka), childLimit(ka)
		for _, b := range paths {
			kb := encodePath(b)
			if got, want := cmp.Compare(ka, kb), comparePathsForTest(a, b); got != want {
				t.Fatalf("keys of %q and %q compare %d, paths %d", a, b, got, want)
			}
			descendant := len(b) > len(a) && slices.Equal(b[:len(a)], a)
			if in := kb >= lo && kb < hi; in != descendant {
				t.Fatalf("%q in the key range of %q: %v, a descendant: %v", b, a, in, descendant)
			}
		}
	}
}

// comparePathsForTest is Firestore's order of names, written out plainly.
func comparePathsForTest(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		na, aNum := numericForTest(a[i])
		nb, bNum := numericForTest(b[i])
		var c int
		switch {
		case aNum && bNum:
			c = cmp.Compare(na, nb)
		case aNum:
			c = -1
		case bNum:
			c = 1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func numericForTest(s string) (int64, bool) {
	if !strings.HasPrefix(s, "__id") || !strings.HasSuffix(s, "__") || len(s) < 7 {
		return 0, false
	}
	d := s[4 : len(s)-2]
	n, err := strconv.ParseInt(d, 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == d
}
