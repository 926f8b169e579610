package erasure

import (
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

func TestParseAndMatch(t *testing.T) {
	l, err := Parse([]byte("# comment\n\nuser:u1\r\ndoc:/users/alice/\nfile:a b.png\nrow:\"public\".\"t\" [\"1\"]\nuser:u1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 4 {
		t.Fatalf("Len = %d, want 4 (a duplicate counts once)", l.Len())
	}
	cases := []struct {
		kind record.Kind
		key  string
		want bool
	}{
		{record.KindUser, "u1", true},
		{record.KindUser, "u10", false},
		{record.KindDocument, "u1", false},
		{record.KindDocument, "users/alice", true},
		{record.KindDocument, "users/alice/orders/o1", true},
		{record.KindDocument, "users/alice/orders/o1/items/i", true},
		{record.KindDocument, "users/alicex", false},
		{record.KindDocument, "users/bob/friends/alice", false},
		{record.KindFile, "a b.png", true},
		{record.KindFile, "a b.png/x", false},
		{record.KindTable, `"public"."t" ["1"]`, true},
	}
	for _, c := range cases {
		if got := l.Excludes(c.kind, c.key); got != c.want {
			t.Errorf("Excludes(%s, %q) = %v, want %v", c.kind, c.key, got, c.want)
		}
	}
	if l.For(record.KindUser) == nil || (&List{}).For(record.KindUser) != nil {
		t.Error("For: a kind with entries needs a test, one without none")
	}
	var nilList *List
	if nilList.Excludes(record.KindUser, "u1") || nilList.Len() != 0 || nilList.Digest() != "" {
		t.Error("a nil list excludes nothing")
	}
}

func TestParseErrorHidesTheEntry(t *testing.T) {
	_, err := Parse([]byte("user:ok\nalice@example.com\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "alice") {
		t.Fatalf("err = %v; want line 2 named and the entry not shown", err)
	}
}

func TestDigestIsOfTheBytes(t *testing.T) {
	a, _ := Parse([]byte("user:u1\n"))
	b, _ := Parse([]byte("user:u1\n\n"))
	if a.Digest() == b.Digest() || len(a.Digest()) != 64 {
		t.Fatalf("digests %q %q", a.Digest(), b.Digest())
	}
}

// TestNestedDocumentAncestors: a listed subcollection document excludes
// the documents under it, not its siblings or its collection's prefix.
func TestNestedDocumentAncestors(t *testing.T) {
	l, err := Parse([]byte("doc:groups/g/members/m1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{
		"groups/g/members/m1":         true,
		"groups/g/members/m1/notes/n": true,
		"groups/g/members/m1x":        false,
		"groups/g/members/m2/notes/n": false,
		"groups/g":                    false,
	} {
		if got := l.Excludes(record.KindDocument, key); got != want {
			t.Errorf("Excludes(document, %q) = %v, want %v", key, got, want)
		}
	}
}
