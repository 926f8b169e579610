package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		code            string
		data, transient bool
	}{
		{"22P02", true, false},  // invalid text representation
		{"23505", true, false},  // unique violation
		{"54000", true, false},  // index row too large
		{"55P03", false, true},  // lock timeout: the target, not the record
		{"57014", false, true},  // statement timeout
		{"40P01", false, true},  // deadlock
		{"42501", false, false}, // permission denied: fail the batch, reject nothing
		{"42P01", false, false}, // table dropped
	} {
		err := &pgconn.PgError{Code: tc.code, Message: "m"}
		if isDataError(err) != tc.data || (failure.Classify(err) == failure.Transient) != tc.transient {
			t.Errorf("%s: data %v transient %v; want %v %v", tc.code, isDataError(err), (failure.Classify(err) == failure.Transient), tc.data, tc.transient)
		}
	}
}

// TestEncodeErrorsAreRejectsWithoutTheValue: pgx's encode failure inside
// COPY rejects the row, and the reason does not quote the value.
func TestEncodeErrorsAreRejectsWithoutTheValue(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE enc (id text PRIMARY KEY, n bigint)`); err != nil {
		t.Fatal(err)
	}
	def := newTableDef(pgx.Identifier{"public", "enc"}, []string{"id", "n"}, []string{"text", "bigint"}, []string{"id"})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	n, rejects, err := def.upsert(ctx, tx, [][]any{{"a", int64(1)}, {"b", "s3cr3t-value"}})
	if err != nil || n != 1 || len(rejects) != 1 {
		t.Fatalf("upsert = %d, %v, %v; want 1 row and 1 reject", n, rejects, err)
	}
	if strings.Contains(rejects[1], "s3cr3t") {
		t.Fatalf("the reason quotes the value: %s", rejects[1])
	}
}
