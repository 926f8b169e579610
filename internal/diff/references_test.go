package diff

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// postsByAuthor compares groups, users and posts whose author column
// references users.
func postsByAuthor(t *testing.T) *Documents {
	t.Helper()
	m, err := mappings.Parse([]byte(`version: 1
schema: public
tables:
  - {collection: groups, table: groups, id_column: id}
  - collection: posts
    table: posts
    id_column: id
    columns:
      - {field: author, column: author, type: text, source: reference, references: users}
  - {collection: users, table: users, id_column: id}
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDocuments(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReferenceTracking: routed documents are counted once each (a
// recheck routes some again), a reference to a document seen in any order
// is not dangling, and one to an absent document or another collection is.
func TestReferenceTracking(t *testing.T) {
	d := postsByAuthor(t)
	doc := func(path string, fields map[string]record.Value) record.Record {
		return record.Record{Kind: record.KindDocument, Key: path, Fields: fields}
	}
	ref := func(p string) map[string]record.Value { return map[string]record.Value{"author": record.Reference(p)} }
	for _, r := range []record.Record{
		doc("posts/p1", ref("users/u1")), // u1 comes later
		doc("posts/p2", ref("users/ghost")),
		doc("posts/p2", ref("users/ghost")), // routed again
		doc("posts/p3", ref("groups/g1")),
		doc("posts/p4", map[string]record.Value{"author": record.String("users/u1")}), // not a reference
		doc("users/u1", nil),
		doc("groups/g1", nil),
	} {
		if rt := d.Route(r); rt.Reject != "" {
			t.Fatal(rt.Reject)
		}
	}
	checks := d.refs.checks()
	if len(checks) != 1 || checks[0].Dangling != 2 || strings.Join(checks[0].Samples, "; ") != "posts/p2 → users/ghost; posts/p3 → groups/g1" {
		t.Fatalf("checks: %+v", checks)
	}
	var b bytes.Buffer
	doc2 := NewDocument("verify", []KindReport{{Kind: "document", References: []ReferenceCheck{{Table: "posts", Column: "author", Target: "users", ForeignKey: []string{"author_id"}, KeyMismatches: 3}}}})
	if doc2.Identical {
		t.Fatal("key mismatches left the verify report identical")
	}
	if err := doc2.WriteHTML(&b); err != nil || !strings.Contains(b.String(), "3 rows' key columns differ from their path") {
		t.Fatalf("HTML: %v\n%s", err, b.String())
	}
}

// TestExcludedNotReferenced: a document an erasure list excludes is never
// migrated, so it is neither a reference's target (a reference to it is
// dangling) nor a reference's source (its own dangling reference is not
// counted, and its path is in no sample).
func TestExcludedNotReferenced(t *testing.T) {
	d := postsByAuthor(t)
	excluded := map[string]bool{"users/u1": true, "posts/p2": true}
	c := &comparison{a: d, tables: map[string]*tableState{}, opts: Options{Exclude: func(k string) bool { return excluded[k] }}}
	doc := func(path string, fields map[string]record.Value) record.Record {
		return record.Record{Kind: record.KindDocument, Key: path, Fields: fields}
	}
	ref := func(p string) map[string]record.Value { return map[string]record.Value{"author": record.Reference(p)} }
	for _, r := range []record.Record{
		doc("posts/p1", ref("users/u1")),
		doc("posts/p2", ref("users/ghost")),
		doc("users/u1", nil),
	} {
		if excluded[r.Key] {
			if err := c.record(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		} else if rt := d.Route(r); rt.Reject != "" {
			t.Fatal(rt.Reject)
		}
	}
	checks := d.refs.checks()
	if len(checks) != 1 || checks[0].Dangling != 1 || strings.Join(checks[0].Samples, "; ") != "posts/p1 → users/u1" {
		t.Fatalf("checks: %+v", checks)
	}
	if c.tables["users"].rep.Excluded != 1 || c.tables["posts"].rep.Excluded != 1 {
		t.Fatalf("excluded counts: users %+v, posts %+v", c.tables["users"].rep, c.tables["posts"].rep)
	}
}
