package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
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
