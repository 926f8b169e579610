package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/e2e/syncwriter"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// syncTable returns the table of collection (a pattern such as
// "sw_accounts") in m, its document-ID column and the column of field.
func syncTable(t *testing.T, m *mappings.Mapping, collection, field string) (table, idColumn, fieldColumn string) {
	t.Helper()
	for _, tb := range m.Tables {
		if tb.Collection != collection {
			continue
		}
		keys := tb.KeyColumns()
		for _, c := range tb.Columns {
			if c.Field == field {
				return tb.Name, keys[len(keys)-1], c.Name
			}
		}
		t.Fatalf("table %s has no column for field %s", tb.Name, field)
	}
	t.Fatalf("no table for collection %s", collection)
	return "", "", ""
}

// TestCutoverNamesADifference leaves differences in the target behind
// sync's back, with sync stopped: the row of a document changed since the
// last `cutover --prepare` altered (cutover exits 1 and names it, in text
// and in JSON), then also a row deleted (exit 1, and the table named).
func TestCutoverNamesADifference(t *testing.T) {
	seed := syncSeed(t)
	s := newSyncDocs(t, syncEmulatorHost(t), 200, syncwriter.Options{Seed: seed + 4, NewCollections: -1})
	ctx := context.Background()
	m := s.targetMapping()
	accounts, accountsID, titleColumn := syncTable(t, m, "sw_accounts", "title")
	catalog, catalogID, _ := syncTable(t, m, "sw_catalog", "title")

	p := s.startSync()
	s.cutover(p, 0, "--prepare")
	// A change after the bulk verify: cutover re-checks this key.
	changed := "sw_accounts/a00003"
	if _, err := s.client.Doc(changed).Set(ctx, map[string]any{"title": "changed after prepare", "n": int64(7)}); err != nil {
		t.Fatal(err)
	}
	s.waitRow(m.Schema, accounts, accountsID, "a00003", titleColumn, "changed after prepare")
	stopSync(t, p)
	s.cutover(nil, 0)

	// Behind sync's back: alter the changed document's row, delete another.
	q := func(sql string, args ...any) {
		t.Helper()
		tag, err := s.pool.Exec(ctx, sql, args...)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v, %d rows", sql, err, tag.RowsAffected())
		}
	}
	q(`UPDATE `+pgx.Identifier{m.Schema, accounts}.Sanitize()+` SET `+pgx.Identifier{titleColumn}.Sanitize()+` = 'tampered' WHERE `+
		pgx.Identifier{accountsID}.Sanitize()+` = $1`, "a00003")
	res := s.cutover(nil, 1)
	if !strings.Contains(res.Stdout, changed) {
		t.Errorf("cutover does not name %s:\nstdout:\n%s\nstderr:\n%s", changed, res.Stdout, res.Stderr)
	}
	res = s.cutover(nil, 1, "--json")
	if !strings.Contains(res.Stdout, changed) {
		t.Errorf("cutover --json does not name %s:\n%s", changed, res.Stdout)
	}

	// A row missing from the target (counts disagree): still a difference
	// cutover must report, not repair.
	q(`DELETE FROM `+pgx.Identifier{m.Schema, catalog}.Sanitize()+` WHERE `+pgx.Identifier{catalogID}.Sanitize()+` = $1`, "c00004")
	res = s.cutover(nil, 1)
	for _, want := range []string{changed, catalog} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("cutover with a row deleted behind sync's back does not name %s:\nstdout:\n%s\nstderr:\n%s", want, res.Stdout, res.Stderr)
		}
	}
}

// waitRow waits until the row of table with idColumn = id has column =
// want (sync applied a change), polling the target.
func (s *syncDocs) waitRow(schema, table, idColumn, id, column, want string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	sql := `SELECT coalesce((SELECT ` + pgx.Identifier{column}.Sanitize() + `::text FROM ` + pgx.Identifier{schema, table}.Sanitize() +
		` WHERE ` + pgx.Identifier{idColumn}.Sanitize() + ` = $1), '')`
	for {
		var got string
		if err := s.pool.QueryRow(context.Background(), sql, id).Scan(&got); err != nil {
			s.t.Fatal(err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s %s: %s is %q after a minute, want %q", table, id, column, got, want)
		}
		time.Sleep(20 * time.Millisecond) // polling the target for sync's change
	}
}
