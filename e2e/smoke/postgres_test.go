package smoke

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestPostgres connects with pgx as the password-authenticated role, in a
// fresh database, and round-trips rows through a table it creates.
func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.NewDatabase(t))
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)

	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 150000 {
		t.Errorf("server_version_num = %d, want PostgreSQL 15+", version)
	}

	if _, err := conn.Exec(ctx, `CREATE TABLE "Smoke Test" (id text PRIMARY KEY, n bigint, doc jsonb)`); err != nil {
		t.Fatal(err)
	}
	rows := [][]any{{"a", int64(1), `{"k":"v"}`}, {"B", int64(-2), `{"k":[1,2]}`}}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"Smoke Test"}, []string{"id", "n", "doc"}, pgx.CopyFromRows(rows))
	if err != nil || n != 2 {
		t.Fatalf("COPY: n=%d err=%v", n, err)
	}
	var id string
	var got int64
	var doc map[string]any
	if err := conn.QueryRow(ctx, `SELECT id, n, doc FROM "Smoke Test" WHERE id = $1`, "B").Scan(&id, &got, &doc); err != nil {
		t.Fatal(err)
	}
	if id != "B" || got != -2 || len(doc["k"].([]any)) != 2 {
		t.Errorf("read back (%q, %d, %v), want (B, -2, {k:[1 2]})", id, got, doc)
	}
}
