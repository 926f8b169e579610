package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// deferredFixture is a mapping of users with orders under them (a foreign
// key from users_orders to users) over a fresh database.
type deferredFixture struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
	m    *mappings.Mapping
}

func newDeferredFixture(t *testing.T) *deferredFixture {
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("users/u1", map[string]record.Value{"n": record.Int(1)})
	in.Observe("users/u1/orders/o1", map[string]record.Value{"n": record.Int(2)})
	return &deferredFixture{t: t, ctx: context.Background(), pool: testenv.NewPool(t), m: in.Mapping()}
}

func (f *deferredFixture) sink() *Documents {
	f.t.Helper()
	d, err := NewDocuments(f.m)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *deferredFixture) write(d loaders.Sink, paths ...string) {
	f.t.Helper()
	var recs []record.Record
	for _, p := range paths {
		recs = append(recs, record.Record{Kind: record.KindDocument, Key: p, Fields: map[string]record.Value{"n": record.Int(3)}})
	}
	if err := pgx.BeginFunc(f.ctx, f.pool, func(tx pgx.Tx) error {
		out, err := d.Write(f.ctx, tx, recs)
		if err == nil && len(out.Rejects) > 0 {
			f.t.Fatalf("rejects: %v", out.Rejects)
		}
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
}

// foreignKeys counts the foreign keys of users_orders.
func (f *deferredFixture) foreignKeys() int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'users_orders'::regclass AND contype = 'f'`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// recorded counts the deferred foreign keys recorded for the schema.
func (f *deferredFixture) recorded() int {
	f.t.Helper()
	got, err := deferredKeys(f.ctx, f.pool, f.m.Schema)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(got)
}

// TestForeignKeysOfNewTablesAreBuiltAtTheEnd: PrepareToFinish creates the
// child table without its foreign key and records it; rows load (parents
// as placeholders, in any order); a second PrepareToFinish — a resumed
// run, a new process — keeps it waiting; Finish builds it and removes the
// record, once: a second Finish builds nothing.
func TestForeignKeysOfNewTablesAreBuiltAtTheEnd(t *testing.T) {
	f := newDeferredFixture(t)
	d := f.sink()
	if err := d.PrepareToFinish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 0 || r != 1 {
		t.Fatalf("after PrepareToFinish: %d foreign keys, %d recorded; want 0 and 1", n, r)
	}
	f.write(d, "users/u2/orders/o1", "users/u3/orders/o1") // parents missing: placeholders
	resumed := f.sink()
	if err := resumed.PrepareToFinish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 0 || r != 1 {
		t.Fatalf("after a second PrepareToFinish: %d foreign keys, %d recorded; want 0 and 1", n, r)
	}
	f.write(resumed, "users/u1", "users/u2")
	built, err := BuildDeferredForeignKeys(f.ctx, f.pool, f.m)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 1 || built[0] != "users_orders" {
		t.Fatalf("built %v; want [users_orders]", built)
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 1 || r != 0 {
		t.Fatalf("after Finish: %d foreign keys, %d recorded; want 1 and 0", n, r)
	}
	if built, err := BuildDeferredForeignKeys(f.ctx, f.pool, f.m); err != nil || len(built) != 0 {
		t.Fatalf("second build: %v, %v; want nothing", built, err)
	}
	if err := resumed.Finish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if n := f.foreignKeys(); n != 1 {
		t.Fatalf("%d foreign keys after a second Finish; want 1", n)
	}
	if stmts, err := SchemaChanges(f.ctx, f.pool, f.m); err != nil || len(stmts) != 0 {
		t.Fatalf("after Finish, SchemaChanges = %v, %v; want nothing", stmts, err)
	}
	// The key is enforced again: an order under a user with no row is refused.
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO users_orders (users_id, id) VALUES ('nobody', 'o9')`); err == nil {
		t.Fatal("an order without its user was inserted after Finish")
	}
}

// TestPlainPrepareBuildsDeferredForeignKeys: a Prepare without deferral
// (sync, tests, an older binary) finds a recorded key and builds it before
// any row, as Prepare always did; plan (SchemaChanges) says so meanwhile.
func TestPlainPrepareBuildsDeferredForeignKeys(t *testing.T) {
	f := newDeferredFixture(t)
	if err := f.sink().PrepareToFinish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	stmts, err := SchemaChanges(f.ctx, f.pool, f.m)
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 2 || !strings.Contains(stmts[0].SQL, "FOREIGN KEY") || !strings.Contains(stmts[1].SQL, "DELETE FROM baasmigrate.deferred_foreign_keys") {
		t.Fatalf("SchemaChanges with a deferred key = %+v; want it built and its record removed", stmts)
	}
	if err := f.sink().Prepare(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 1 || r != 0 {
		t.Fatalf("after Prepare: %d foreign keys, %d recorded; want 1 and 0", n, r)
	}
}

// TestExistingTablesKeepTheirForeignKeys: PrepareToFinish defers only the
// keys of tables it creates. A table that exists without its key (made by
// hand, or by an earlier version) gets it before the load, as Prepare
// always did.
func TestExistingTablesKeepTheirForeignKeys(t *testing.T) {
	f := newDeferredFixture(t)
	if err := f.sink().Prepare(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(f.ctx, `ALTER TABLE users_orders DROP CONSTRAINT users_orders_parent_fkey`); err != nil {
		t.Fatal(err)
	}
	if err := f.sink().PrepareToFinish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 1 || r != 0 {
		t.Fatalf("after PrepareToFinish over existing tables: %d foreign keys, %d recorded; want 1 and 0", n, r)
	}
}

// TestDeferredForeignKeyOverAnOrphanFails: a row without a parent row
// (which the load never writes: here inserted by hand) makes Finish fail
// with an error naming the table and the key, building nothing and
// keeping the record; once the row is gone, Finish builds the key.
func TestDeferredForeignKeyOverAnOrphanFails(t *testing.T) {
	f := newDeferredFixture(t)
	d := f.sink()
	if err := d.PrepareToFinish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	f.write(d, "users/u1", "users/u1/orders/o1")
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO users_orders (users_id, id) VALUES ('ghost', 'o2')`); err != nil {
		t.Fatal(err)
	}
	err := d.Finish(f.ctx, f.pool)
	if err == nil {
		t.Fatal("Finish built a foreign key over a row without its parent")
	}
	for _, want := range []string{`"users_orders"`, "no parent row", "ghost", "run stays unfinished"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 0 || r != 1 {
		t.Fatalf("after the failed Finish: %d foreign keys, %d recorded; want 0 and 1", n, r)
	}
	if _, err := f.pool.Exec(f.ctx, `DELETE FROM users_orders WHERE users_id = 'ghost'`); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if n, r := f.foreignKeys(), f.recorded(); n != 1 || r != 0 {
		t.Fatalf("after Finish: %d foreign keys, %d recorded; want 1 and 0", n, r)
	}
}

// TestGrowingRunDefersTheKeysOfTablesItCreates: in a run prepared with
// PrepareToFinish, a batch that creates the table of a new subcollection
// records its foreign key instead of building it, a later batch adding a
// column to that table leaves it waiting, and Finish (with the stored,
// grown mapping) builds it; rolled back, the batch leaves no record.
func TestGrowingRunDefersTheKeysOfTablesItCreates(t *testing.T) {
	ctx := context.Background()
	pool, sink := evolveFixture(t, EvolveColumns)
	if err := sink.PrepareToFinish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	keys := func() (fks, recorded int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = to_regclass('items_parts')),
			(SELECT count(*) FROM baasmigrate.deferred_foreign_keys)`).Scan(&fks, &recorded); err != nil {
			t.Fatal(err)
		}
		return fks, recorded
	}
	write(t, pool, sink, false, docRec("items/i1/parts/p1", "b", record.Int(1)))
	if fks, recorded := keys(); fks != 0 || recorded != 0 {
		t.Fatalf("after a rolled-back growing batch: %d foreign keys, %d recorded; want none", fks, recorded)
	}
	write(t, pool, sink, true, docRec("items/i1/parts/p1", "b", record.Int(1)))
	if fks, recorded := keys(); fks != 0 || recorded != 1 {
		t.Fatalf("after the batch that created items_parts: %d foreign keys, %d recorded; want 0 and 1", fks, recorded)
	}
	write(t, pool, sink, true, docRec("items/i2/parts/p2", "c", record.String("x")))
	if fks, recorded := keys(); fks != 0 || recorded != 1 {
		t.Fatalf("after a batch that added a column to items_parts: %d foreign keys, %d recorded; want 0 and 1", fks, recorded)
	}
	if err := sink.Finish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if fks, recorded := keys(); fks != 1 || recorded != 0 {
		t.Fatalf("after Finish: %d foreign keys, %d recorded; want 1 and 0", fks, recorded)
	}
}

// TestDeferredForeignKeysOfHostileNames: a schema and tables whose names
// hold quotes and a backslash are recorded, found and built like any other.
func TestDeferredForeignKeysOfHostileNames(t *testing.T) {
	f := newDeferredFixture(t)
	f.m.Schema = `App "Data" o'k\x`
	for _, tb := range f.m.Tables {
		tb.Name = `it's \ ` + tb.Name
	}
	d := f.sink()
	if err := d.PrepareToFinish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	if r := f.recorded(); r != 1 {
		t.Fatalf("%d recorded; want 1", r)
	}
	f.write(d, `users/u1/orders/o1`)
	if err := d.Finish(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = $1::regnamespace`,
		pgx.Identifier{f.m.Schema}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if r := f.recorded(); n != 1 || r != 0 {
		t.Fatalf("after Finish: %d foreign keys, %d recorded; want 1 and 0", n, r)
	}
}
