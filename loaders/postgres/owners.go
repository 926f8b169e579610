package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/loaders"
)

// Owner is the source a job writes target tables for. Every table a sink
// writes is claimed by the source of the first job that prepares it
// (baasmigrate.table_owners); a job of another source refuses to write it,
// so that two sources migrated into one database never overwrite or mix
// each other's rows, unless Share says the user wants exactly that.
type Owner struct {
	// Source identifies the source database, bucket or project, the same
	// for every job reading it (extractors.WholeSource).
	// "" claims and checks nothing (tests, tools).
	Source string
	// Share lets the job write tables other sources claimed; its source is
	// then recorded as one more owner (--share-target).
	Share bool
	// Hint, when set, ends a refusal: how the user could say that this job
	// reads the same source as the tables' owner (an export file of users
	// is its own source unless an option names its project).
	Hint string
}

// ownersDDL creates the table of table owners; it is part of the state
// schema (stateDDL) and also run by ClaimTables for sinks prepared
// without OpenState.
const ownersDDL = `CREATE TABLE IF NOT EXISTS baasmigrate.table_owners (
		schema_name text        NOT NULL,
		table_name  text        NOT NULL,
		source      text        NOT NULL,
		claimed_at  timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (schema_name, table_name, source)
	)`

// CheckTableOwners returns an error naming every table of tables (schema,
// name) that a source other than o.Source owns, with its owner, unless
// o.Share. It only reads, so `plan` calls it to say that migrate would
// refuse; tables nobody owns yet are fine.
func CheckTableOwners(ctx context.Context, db loaders.DB, o Owner, tables []pgx.Identifier) error {
	if o.Source == "" || o.Share || len(tables) == 0 {
		return nil
	}
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass('baasmigrate.table_owners') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("looking for the table owners: %w", err)
	}
	if !exists {
		return nil
	}
	schemas, names := splitTables(tables)
	rows, err := db.Query(ctx, `SELECT o.schema_name, o.table_name, string_agg(o.source, ', ' ORDER BY o.claimed_at, o.source)
		FROM baasmigrate.table_owners o JOIN unnest($1::text[], $2::text[]) AS t(s, n) ON o.schema_name = t.s AND o.table_name = t.n
		GROUP BY o.schema_name, o.table_name
		HAVING NOT bool_or(o.source = $3)`, schemas, names, o.Source)
	if err != nil {
		return fmt.Errorf("reading the owners of the target tables: %w", err)
	}
	var conflicts []string
	for rows.Next() {
		var schema, table, owners string
		if err := rows.Scan(&schema, &table, &owners); err != nil {
			return fmt.Errorf("reading the owners of the target tables: %w", err)
		}
		conflicts = append(conflicts, fmt.Sprintf("%s holds the rows of %s", pgx.Identifier{schema, table}.Sanitize(), owners))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the owners of the target tables: %w", err)
	}
	if len(conflicts) == 0 {
		return nil
	}
	sort.Strings(conflicts)
	hint := ""
	if o.Hint != "" {
		hint = "\n" + o.Hint
	}
	return fmt.Errorf("this job migrates %s into tables another source's migration wrote; it would overwrite or mix that source's rows:\n  %s\n"+
		"write this source to other tables (another schema in the mapping, another --users-schema, another --files-table), "+
		"or pass --share-target if both sources belong in the same tables%s",
		o.Source, strings.Join(conflicts, "\n  "), hint)
}

// ClaimTables checks tables like CheckTableOwners and records o.Source as
// an owner of each, inside tx: a sink's Prepare calls it in the
// transaction of its DDL, before creating anything, so that a refused job
// writes nothing. Concurrent claims serialise on the DDL lock.
func ClaimTables(ctx context.Context, tx pgx.Tx, o Owner, tables []pgx.Identifier) error {
	if o.Source == "" || len(tables) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
		return fmt.Errorf("claiming the target tables: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate state schema'))`); err != nil {
		return fmt.Errorf("claiming the target tables: %w", err)
	}
	for _, stmt := range []string{`CREATE SCHEMA IF NOT EXISTS baasmigrate`, ownersDDL} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("creating the table of table owners: %w", err)
		}
	}
	if err := CheckTableOwners(ctx, tx, o, tables); err != nil {
		return err
	}
	schemas, names := splitTables(tables)
	if _, err := tx.Exec(ctx, `INSERT INTO baasmigrate.table_owners (schema_name, table_name, source)
		SELECT s, n, $3 FROM unnest($1::text[], $2::text[]) AS t(s, n) ON CONFLICT DO NOTHING`, schemas, names, o.Source); err != nil {
		return fmt.Errorf("claiming the target tables: %w", err)
	}
	return nil
}

// splitTables returns the schemas and the names of tables (schema, name),
// as the parallel arrays the owner queries unnest.
func splitTables(tables []pgx.Identifier) (schemas, names []string) {
	schemas, names = make([]string, len(tables)), make([]string, len(tables))
	for i, t := range tables {
		schemas[i], names[i] = t[0], t[1]
	}
	return schemas, names
}
