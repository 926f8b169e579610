package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestTablesBelongToTheirSource: a second source whose mapping names a
// table the first source's job created is refused before anything is
// written, with both sources and the table named, by Prepare and by the
// read-only check plan uses; tables of its own are not claimed either.
// With Share it goes ahead; the first source keeps writing its tables.
func TestTablesBelongToTheirSource(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("users/u1", map[string]record.Value{"n": record.Int(1)})
	first := in.Mapping()
	in.Observe("extra/e1", nil)
	second := in.Mapping()

	a, b := Owner{Source: "firestore:projects/a/databases/(default)"}, Owner{Source: "firestore:projects/b/databases/(default)"}
	sinkA, err := NewDocuments(first)
	if err != nil {
		t.Fatal(err)
	}
	sinkA.SetOwner(a)
	if err := sinkA.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	sinkB, err := NewDocuments(second)
	if err != nil {
		t.Fatal(err)
	}
	sinkB.SetOwner(b)
	err = sinkB.Prepare(ctx, pool)
	for _, want := range []string{a.Source, b.Source, `"public"."users"`, "--share-target"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second source's Prepare: %v; want a refusal naming %s", err, want)
		}
	}
	if ok, _ := TableExists(ctx, pool, "public", "extra"); ok {
		t.Fatal("the refused job created a table")
	}
	if err := CheckTableOwners(ctx, pool, b, MappingTables(second)); err == nil || !strings.Contains(err.Error(), a.Source) {
		t.Fatalf("CheckTableOwners: %v; want the refusal", err)
	}
	if err := CheckTableOwners(ctx, pool, a, MappingTables(second)); err != nil {
		t.Fatalf("the owner is refused its own tables: %v", err)
	}
	if err := sinkA.Prepare(ctx, pool); err != nil {
		t.Fatalf("the owner's second Prepare: %v", err)
	}

	sinkB.SetOwner(Owner{Source: b.Source, Share: true})
	if err := sinkB.Prepare(ctx, pool); err != nil {
		t.Fatalf("Prepare with Share: %v", err)
	}
	var owners []string
	rows, _ := pool.Query(ctx, `SELECT table_name || ' ' || source FROM baasmigrate.table_owners ORDER BY 1`)
	if owners, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(owners) != 3 {
		t.Fatalf("owners %q, %v; want users owned by both, extra by b", owners, err)
	}

	// The files table too.
	store, err := objectstore.Open("file://"+t.TempDir(), objectstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := NewFiles(store, "", "")
	files.SetTableOwner(Owner{Source: "gcs:gs://a"})
	if err := files.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	files.SetTableOwner(Owner{Source: "gcs:gs://b"})
	if err := files.Prepare(ctx, pool); err == nil || !strings.Contains(err.Error(), "gcs:gs://a") {
		t.Fatalf("second bucket's Prepare: %v; want a refusal", err)
	}
	if _, err := files.PlannedDDL(ctx, pool); err == nil || !strings.Contains(err.Error(), `"public"."files"`) {
		t.Fatalf("PlannedDDL: %v; want the refusal", err)
	}
}
