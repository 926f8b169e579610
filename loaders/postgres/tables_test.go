package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestTablesPrepare checks that the tables sink creates the source's
// schema once (a second Prepare runs nothing, and plan then lists only
// what is created after the rows), and refuses, before writing anything,
// a target whose table or enum of the same name differs, or whose tables
// another source claimed.
func TestTablesPrepare(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	src.SeedTables(t, 10)
	cat, err := pgcatalog.Load(ctx, src.Pool, []string{"public"})
	if err != nil {
		t.Fatal(err)
	}
	sink := NewTables(TablesConfig{Catalog: cat, Owner: Owner{Source: "supabase-tables:src"}})
	// readings (built-in types, a domain, an enum) moves in binary; tasks
	// (an array of an enum, whose binary form carries the enum's OID) in
	// text.
	if r, k := cat.Find(supabasetest.ReadingsTable), cat.Find(supabasetest.TasksTable); r == nil || k == nil || !r.Binary() || k.Binary() {
		t.Errorf("COPY formats: readings binary %v, tasks binary %v; want true, false", r != nil && r.Binary(), k != nil && k.Binary())
	}

	target := testenv.NewPool(t)
	stmts, err := sink.PlannedDDL(ctx, target)
	if err != nil {
		t.Fatalf("plan on an empty target: %v", err)
	}
	if len(stmts) != len(cat.Before())-1+len(cat.After()) { // public exists
		t.Errorf("plan on an empty target lists %d statements, want %d", len(stmts), len(cat.Before())-1+len(cat.After()))
	}
	for i := 0; i < 2; i++ {
		if err := sink.Prepare(ctx, target); err != nil {
			t.Fatalf("Prepare %d: %v", i+1, err)
		}
	}
	if stmts, err = sink.PlannedDDL(ctx, target); err != nil || len(stmts) != len(cat.After()) {
		t.Errorf("plan after Prepare: %d statements, %v; want the %d created after the rows", len(stmts), err, len(cat.After()))
	}
	var hostile bool
	if err := target.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, supabasetest.WeirdTable).Scan(&hostile); err != nil || !hostile {
		t.Errorf("the table with a hostile name was not created: %v", err)
	}

	for _, c := range []struct{ name, ddl, want string }{
		{"table", `CREATE TABLE public.orgs (id integer PRIMARY KEY)`, `the target already has a table "public"."orgs" that differs`},
		{"enum", `CREATE TYPE public.mood AS ENUM ('sad', 'ok')`, `the target's type "public"."mood" is not the enum`},
	} {
		t.Run(c.name, func(t *testing.T) {
			other := testenv.NewPool(t)
			if _, err := other.Exec(ctx, c.ddl); err != nil {
				t.Fatal(err)
			}
			_, perr := sink.PlannedDDL(ctx, other)
			err := sink.Prepare(ctx, other)
			if err == nil || !strings.Contains(err.Error(), c.want) || perr == nil || !strings.Contains(perr.Error(), c.want) {
				t.Fatalf("Prepare: %v\nplan: %v\nwant %q", err, perr, c.want)
			}
			var created bool
			if err := other.QueryRow(ctx, `SELECT to_regclass('public.tasks') IS NOT NULL`).Scan(&created); err != nil || created {
				t.Errorf("a refused Prepare created tables: %v", err)
			}
		})
	}

	// Another source's tables.
	err = NewTables(TablesConfig{Catalog: cat, Owner: Owner{Source: "supabase-tables:other"}}).Prepare(ctx, target)
	if err == nil || !strings.Contains(err.Error(), "another source's migration wrote") {
		t.Errorf("Prepare for another source: %v", err)
	}
}

// TestTablesIndexes checks the two records written after the rows: a
// record of the index stream creates its own table's keys and indexes and
// nothing else (no foreign key, no other table's index), and the finish
// record creates the foreign keys and whatever is still missing, so that
// nothing is left for plan to list.
func TestTablesIndexes(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	src.SeedTables(t, 10)
	cat, err := pgcatalog.Load(ctx, src.Pool, []string{"public"})
	if err != nil {
		t.Fatal(err)
	}
	sink := NewTables(TablesConfig{Catalog: cat, Owner: Owner{Source: "supabase-tables:src"}})
	target := testenv.NewPool(t)
	if err := sink.Prepare(ctx, target); err != nil {
		t.Fatal(err)
	}
	projects := cat.Find(supabasetest.ProjectsTable)
	if projects == nil || len(projects.Keys) == 0 || len(projects.ForeignKeys) == 0 {
		t.Fatalf("the fixture's projects table has no keys or no foreign keys: %+v", projects)
	}
	write := func(rec record.Record) {
		t.Helper()
		tx, err := target.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := sink.Write(ctx, tx, []record.Record{rec}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	constraints := func(table string) map[string]bool {
		t.Helper()
		rows, err := target.Query(ctx, `SELECT conname::text FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u', 'x', 'f')`, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[n] = true
		}
		return out
	}

	write(record.Record{Kind: record.KindTable, Key: pgcatalog.IndexStream + " " + projects.QName(),
		Fields: map[string]record.Value{pgcatalog.FieldIndexes: record.String(projects.QName())}})
	have := constraints(projects.QName())
	for _, k := range projects.Keys {
		if !have[k[0]] {
			t.Errorf("after the index record of %s: constraint %s missing", projects.QName(), k[0])
		}
	}
	for _, fk := range projects.ForeignKeys {
		if have[fk[0]] {
			t.Errorf("the index record of %s created foreign key %s", projects.QName(), fk[0])
		}
	}
	for _, other := range cat.Tables {
		if other != projects && len(constraints(other.QName())) > 0 {
			t.Errorf("the index record of %s created constraints of %s", projects.QName(), other.QName())
		}
	}

	write(record.Record{Kind: record.KindTable, Key: pgcatalog.FinishStream,
		Fields: map[string]record.Value{pgcatalog.FieldSequences: record.String("[]")}})
	have = constraints(projects.QName())
	for _, fk := range projects.ForeignKeys {
		if !have[fk[0]] {
			t.Errorf("after the finish record: foreign key %s of %s missing", fk[0], projects.QName())
		}
	}
	if stmts, err := sink.PlannedDDL(ctx, target); err != nil || len(stmts) != 0 {
		t.Errorf("plan after the finish record: %v, %v; want nothing left", stmts, err)
	}
}
