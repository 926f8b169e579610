package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

// Content is the target's content digest.
type Content struct {
	// Method names how the digests were computed (see Digest).
	Method string `json:"method"`
	// SHA256 digests every table's line, in Tables' order.
	SHA256 string `json:"sha256"`
	// Tables are the target's tables, sorted by schema then name (bytes).
	Tables []TableDigest `json:"tables"`
}

// TableDigest is one target table's row count and content digest.
type TableDigest struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Method is Content.Method for Digest's algorithm.
const Method = "baasmigrate-content-v1"

// Digest reads every table of the target (ordinary and partitioned
// tables, partitions counted through their parent, in every schema but
// PostgreSQL's own, baasmigrate's state schema and the token vault's,
// baasmigrate_vault, which holds clear values) in one read-only,
// repeatable-read transaction, and digests it:
//
//   - each row is taken as its columns' values (to_jsonb of the row, each
//     column decoded into the typed values the diff engine compares) and
//     hashed with diff.Checksum, the comparison engine's canonical
//     checksum (SHA-256 of the typed-JSON encoding, keys sorted);
//   - a table's digest is the SHA-256 of its rows' 32-byte checksums
//     concatenated, rows ordered by the text of to_jsonb(row) under
//     collation "C" (bytes), so the order depends on the content alone;
//   - Content.SHA256 is the SHA-256 of one line per table,
//     "schema\x00table\x00rows\x00sha256\n", in Tables' order;
//   - rows are rendered under fixed session settings (digestSettings:
//     TimeZone UTC, PostgreSQL's default styles), not the reader's.
//
// Memory is bounded by one row: rows are streamed, sorted by the server.
func Digest(ctx context.Context, pool *pgxpool.Pool) (Content, error) {
	c := Content{Method: Method, Tables: []TableDigest{}}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return c, fmt.Errorf("reading the target for its digest: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// How to_jsonb renders timestamps, intervals, doubles and bytes
	// follows the session's settings: fixed here (PostgreSQL's defaults,
	// UTC), so the digest depends on the content alone, whatever client
	// reads it.
	if _, err := tx.Exec(ctx, digestSettings); err != nil {
		return c, fmt.Errorf("reading the target for its digest: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
			AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', $1, $2)
			AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
		ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`, postgres.StateSchema, pii.VaultSchema)
	if err != nil {
		return c, fmt.Errorf("listing the target's tables: %w", err)
	}
	for rows.Next() {
		var t TableDigest
		if err := rows.Scan(&t.Schema, &t.Table); err != nil {
			return c, fmt.Errorf("listing the target's tables: %w", err)
		}
		c.Tables = append(c.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("listing the target's tables: %w", err)
	}
	all := sha256.New()
	for i := range c.Tables {
		t := &c.Tables[i]
		if err := digestTable(ctx, tx, t); err != nil {
			return c, err
		}
		fmt.Fprintf(all, "%s\x00%s\x00%d\x00%s\n", t.Schema, t.Table, t.Rows, t.SHA256)
	}
	c.SHA256 = hex.EncodeToString(all.Sum(nil))
	return c, nil
}

// digestSettings are the session settings Digest reads under.
const digestSettings = `SET LOCAL TimeZone = 'UTC'; SET LOCAL IntervalStyle = 'postgres'; ` +
	`SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; SET LOCAL DateStyle = 'ISO, MDY'`

func digestTable(ctx context.Context, tx pgx.Tx, t *TableDigest) error {
	id := pgx.Identifier{t.Schema, t.Table}.Sanitize()
	// x.*, not x: a column named x would be taken for the row.
	rows, err := tx.Query(ctx, `SELECT r FROM (SELECT to_jsonb(x.*)::text AS r FROM `+id+` x) s ORDER BY r COLLATE "C"`)
	if err != nil {
		return fmt.Errorf("digesting table %s: %w", id, err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			return fmt.Errorf("digesting table %s: %w", id, err)
		}
		fields, err := rowFields(text)
		if err != nil {
			return fmt.Errorf("digesting table %s: %w", id, err)
		}
		sum := diff.Checksum(fields)
		h.Write(sum[:])
		t.Rows++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("digesting table %s: %w", id, err)
	}
	t.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}

// rowFields decodes a row's to_jsonb into typed values, column by column:
// a column's JSON as record.FromJSON reads it (exact numbers; typed-JSON
// tags in jsonb columns), or, where that refuses it, its JSON text.
func rowFields(text string) (map[string]record.Value, error) {
	var cols map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &cols); err != nil {
		return nil, fmt.Errorf("decoding a row: %w", err)
	}
	out := make(map[string]record.Value, len(cols))
	for k, raw := range cols {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding column %s: %w", strconv.Quote(k), err)
		}
		val, err := record.FromJSON(v)
		if err != nil {
			val = record.String(string(raw))
		}
		out[k] = val
	}
	return out, nil
}

// Difference is one table whose content differs from a manifest's.
type Difference struct {
	Schema, Table string
	// What says how: "rows 3 → 4", "content differs", "table absent",
	// "table added".
	What string
}

// Compare compares a manifest's content digest with the target's now;
// nil when they match.
func Compare(was, now Content) []Difference {
	var out []Difference
	key := func(t TableDigest) string { return t.Schema + "\x00" + t.Table }
	nowBy := map[string]TableDigest{}
	for _, t := range now.Tables {
		nowBy[key(t)] = t
	}
	seen := map[string]bool{}
	for _, w := range was.Tables {
		seen[key(w)] = true
		n, ok := nowBy[key(w)]
		switch {
		case !ok:
			out = append(out, Difference{w.Schema, w.Table, "table absent from the target"})
		case n.Rows != w.Rows:
			out = append(out, Difference{w.Schema, w.Table, fmt.Sprintf("rows: %d in the manifest, %d now", w.Rows, n.Rows)})
		case n.SHA256 != w.SHA256:
			out = append(out, Difference{w.Schema, w.Table, "content differs (same number of rows)"})
		}
	}
	for _, n := range now.Tables {
		if !seen[key(n)] {
			out = append(out, Difference{n.Schema, n.Table, "table not in the manifest"})
		}
	}
	return out
}
