package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestPrimaryKeyIndexDoesNotTakeATableName: a collection "pkey" under
// "users" gives a table users_pkey, the name PostgreSQL would give the
// users table's primary key index.
func TestPrimaryKeyIndexDoesNotTakeATableName(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("users/u1", nil)
	in.Observe("users/u1/pkey/k1", nil)
	m := in.Mapping()
	if m.TableFor("users/{}/pkey") == nil || m.TableFor("users/{}/pkey").Name != "users_pkey" {
		t.Fatalf("unexpected mapping: %+v", m.Tables)
	}
	if err := ApplySchema(ctx, pool, m, Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := ApplySchema(ctx, pool, m, Owner{}); err != nil {
		t.Fatalf("second ApplySchema: %v", err)
	}
}

// TestRenamedParentTableMovesTheForeignKey: after the parent table is
// renamed in the mapping, the child's foreign key still points at the old
// table. SchemaChanges (what plan shows) says it moves the key, ApplySchema
// moves it keeping the existing children's parents, and new child
// documents under new parents load.
func TestRenamedParentTableMovesTheForeignKey(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("users/u1", map[string]record.Value{"n": record.Int(1)})
	in.Observe("users/u1/orders/o1", map[string]record.Value{"n": record.Int(2)})
	m := in.Mapping()
	write := func(m *mappings.Mapping, recs ...record.Record) loaders.Outcome {
		t.Helper()
		sink, err := NewDocuments(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Prepare(ctx, pool); err != nil {
			t.Fatal(err)
		}
		var out loaders.Outcome
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			out, err = sink.Write(ctx, tx, recs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	doc := func(path string) record.Record {
		return record.Record{Kind: record.KindDocument, Key: path, Fields: map[string]record.Value{"n": record.Int(3)}}
	}
	write(m, doc("users/u1"), doc("users/u1/orders/o1"))

	m.TableFor("users").Name = "members"
	stmts, err := SchemaChanges(ctx, pool, m)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, s := range stmts {
		said = append(said, s.What)
	}
	if !slices.ContainsFunc(said, func(s string) bool {
		return strings.Contains(s, "users_orders") && strings.Contains(s, "users") && strings.Contains(s, "members")
	}) {
		t.Fatalf("SchemaChanges does not say the foreign key moves from users to members: %q", said)
	}
	if out := write(m, doc("users/u2/orders/o2"), doc("users/u1/orders/o3")); len(out.Rejects) != 0 {
		t.Fatalf("child documents rejected after the parent table was renamed: %v", out.Rejects)
	}
	var target string
	if err := pool.QueryRow(ctx, `SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = 'users_orders'::regclass AND contype = 'f'`).Scan(&target); err != nil || target != "members" {
		t.Fatalf("users_orders references %q (%v); want members", target, err)
	}
	var parents int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM members`).Scan(&parents); err != nil || parents != 2 {
		t.Fatalf("members has %d rows (%v); want u1 (for the existing order) and u2", parents, err)
	}
	if stmts, err := SchemaChanges(ctx, pool, m); err != nil || len(stmts) != 0 {
		t.Fatalf("after ApplySchema, SchemaChanges = %v, %v; want nothing", stmts, err)
	}
}
