package migration_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// stoppingDocuments is the documents sink (a loaders.Finisher) closing a
// channel after its nth batch.
type stoppingDocuments struct {
	*postgres.Documents
	stopAt int64
	stop   chan struct{}
	calls  atomic.Int64
}

func (s *stoppingDocuments) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out, err := s.Documents.Write(ctx, tx, recs)
	if s.calls.Add(1) == s.stopAt {
		close(s.stop)
	}
	return out, err
}

// keys counts the foreign keys of the target's public tables and the
// foreign keys recorded as deferred.
func (f *fixture) keys(t *testing.T) (built, deferred int) {
	t.Helper()
	if err := f.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace),
		(SELECT count(*) FROM baasmigrate.deferred_foreign_keys)`).Scan(&built, &deferred); err != nil {
		t.Fatal(err)
	}
	return built, deferred
}

// TestForeignKeysAreBuiltWhenTheRunEnds: a run into tables it creates
// loads them without foreign keys and builds them at its end, also when it
// was interrupted and resumed: after the interruption no key is built and
// every one is recorded; after the resumed run every child table has its
// key, built once, and nothing is left recorded. A row without a parent
// row (written by hand meanwhile) makes the end fail with a clear error
// and leaves the run unfinished; once it is gone, the next Execute
// finishes the run.
func TestForeignKeysAreBuiltWhenTheRunEnds(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	children := 0
	for _, tb := range f.mapping.Tables {
		if f.mapping.Parent(tb) != nil {
			children++
		}
	}
	if children < 2 {
		t.Fatalf("the fixture's mapping has %d child tables; the test needs some", children)
	}
	docs, err := postgres.NewDocuments(f.mapping)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	sink := &stoppingDocuments{Documents: docs, stopAt: 5, stop: stop}
	if _, err := migration.Execute(ctx, f.pool, f.state, f.job(t, sink), migration.Options{Workers: 2, BatchSize: 30, Stop: stop}); !errors.Is(err, migration.ErrInterrupted) {
		t.Fatalf("Execute = %v, want ErrInterrupted", err)
	}
	if built, deferred := f.keys(t); built != 0 || deferred != children {
		t.Fatalf("after the interruption: %d foreign keys, %d deferred; want 0 and %d", built, deferred, children)
	}

	// A child row whose parent has no row, as the loader never writes.
	var orphanTable string
	for _, tb := range f.mapping.Tables {
		if f.mapping.Parent(tb) != nil && len(tb.ParentColumns) == 1 {
			orphanTable = tb.Name
			cols := append([]string{tb.ParentColumns[0]}, tb.KeyColumns()[1])
			if _, err := f.pool.Exec(ctx, "INSERT INTO "+pgx.Identifier{f.mapping.Schema, tb.Name}.Sanitize()+
				" ("+pgx.Identifier{cols[0]}.Sanitize()+", "+pgx.Identifier{cols[1]}.Sanitize()+") VALUES ('no such parent', 'orphan')"); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if orphanTable == "" {
		t.Fatal("no child table directly under a root table")
	}
	resumed, err := postgres.NewDocuments(f.mapping)
	if err != nil {
		t.Fatal(err)
	}
	_, err = migration.Execute(ctx, f.pool, f.state, f.job(t, resumed), migration.Options{Workers: 4, BatchSize: 30})
	if err == nil || !strings.Contains(err.Error(), "no parent row") || !strings.Contains(err.Error(), orphanTable) {
		t.Fatalf("Execute over an orphan row = %v; want an error naming %s and the missing parent row", err, orphanTable)
	}
	if run, err := f.state.RunningRun(ctx, postgres.Job(record.KindDocument, "memory:demoapp")); err != nil || run == nil {
		t.Fatalf("after the failed end the run is not running any more (%v, %v)", run, err)
	}
	if _, deferred := f.keys(t); deferred != children {
		t.Fatalf("after the failed end: %d deferred; want all %d still", deferred, children)
	}
	if _, err := f.pool.Exec(ctx, "DELETE FROM "+pgx.Identifier{f.mapping.Schema, orphanTable}.Sanitize()+" WHERE id = 'orphan'"); err != nil {
		t.Fatal(err)
	}

	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, resumed), migration.Options{Workers: 4, BatchSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Run.Resumed || f.rows(t) != int64(f.docs) || f.committed(t) != int64(f.docs) {
		t.Fatalf("resumed=%v, %d rows, %d committed; want %d", res.Run.Resumed, f.rows(t), f.committed(t), f.docs)
	}
	if built, deferred := f.keys(t); built != children || deferred != 0 {
		t.Fatalf("after the run: %d foreign keys, %d deferred; want %d and 0", built, deferred, children)
	}
	if stmts, err := postgres.SchemaChanges(ctx, f.pool, f.mapping); err != nil || len(stmts) != 0 {
		t.Fatalf("after the run, SchemaChanges = %v, %v; want nothing", stmts, err)
	}
}
