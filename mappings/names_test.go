package mappings

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"userId":                  "user_id",
		"user_id":                 "user_id",
		"UserID":                  "user_id",
		"HTTPServer":              "http_server",
		"user2Name":               "user2_name",
		"displayName":             "display_name",
		"zip-code":                "zip_code",
		"a  -- b":                 "a_b",
		"__name__":                "name",
		"_private":                "private",
		"2fa":                     "f_2fa",
		"\"; DROP TABLE x; --":    "drop_table_x",
		"O'Brien":                 "o_brien",
		"café":                    "caf",
		"Straße_Nr":               "stra_e_nr",
		strings.Repeat("a", 63):   strings.Repeat("a", 63),
		"select":                  "select",
		"_create_time":            "create_time",
		"ID":                      "id",
		"already_snake_case_2024": "already_snake_case_2024",
	} {
		if got := SanitizeName(in, "f"); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	// Unicode-only and empty names fall back to a hash; long names are cut
	// with a hash; all results are identifiers of at most 63 bytes.
	for _, in := range append(hostileNames(), "名前", "😀", "", strings.Repeat("Ab", 100)) {
		got := SanitizeName(in, "f")
		if !identRE.MatchString(got) || len(got) > 63 {
			t.Errorf("SanitizeName(%q) = %q: not a short identifier", in, got)
		}
		if again := SanitizeName(in, "f"); again != got {
			t.Errorf("SanitizeName(%q) not deterministic: %q then %q", in, got, again)
		}
	}
	if a, b := SanitizeName("名前", "f"), SanitizeName("住所", "f"); a == b || !strings.HasPrefix(a, "f_") {
		t.Errorf("unicode-only names: %q and %q", a, b)
	}
}

func TestAssignNamesCollisions(t *testing.T) {
	reserved := func() map[string]bool {
		return map[string]bool{"id": true, ColCreateTime: true, ColUpdateTime: true, ColOverflow: true, ColMissing: true}
	}
	var originals []string
	originals = append(originals, "userId", "user_id", "UserID", "id", "_id", "ID", "_create_time", "__overflow")
	long := strings.Repeat("L", 70)
	for i := range 100 {
		originals = append(originals, fmt.Sprintf("%s%03d", long, i))
	}
	assign := func(order []string) map[string]string {
		reqs := make([]nameRequest, len(order))
		for i, o := range order {
			reqs[i] = nameRequest{original: o, candidate: SanitizeName(o, "f")}
		}
		out := map[string]string{}
		for i, n := range assignNames(reqs, reserved()) {
			out[order[i]] = n
		}
		return out
	}
	want := assign(originals)
	seen := map[string]string{}
	for o, n := range want {
		if prev, dup := seen[n]; dup {
			t.Errorf("%q and %q both got %q", o, prev, n)
		}
		seen[n] = o
		if reserved()[n] {
			t.Errorf("%q got the reserved name %q", o, n)
		}
		if !identRE.MatchString(n) || len(n) > 63 {
			t.Errorf("%q got %q: not a short identifier", o, n)
		}
	}
	if want["user_id"] != "user_id" {
		t.Errorf("the field already named user_id should keep it, got %q", want["user_id"])
	}
	if !strings.HasPrefix(want["userId"], "user_id_") || !strings.HasPrefix(want["id"], "id_") {
		t.Errorf("collisions not suffixed: userId→%q id→%q", want["userId"], want["id"])
	}
	// Order independence.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := append([]string(nil), originals...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := assign(shuffled)
		for o, n := range want {
			if got[o] != n {
				t.Fatalf("order changed the name of %q: %q vs %q", o, got[o], n)
			}
		}
	}
}
