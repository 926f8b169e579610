package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// UsersColumn is a column of one of the users sink's tables.
type UsersColumn struct {
	Name string
	// Type is the column's PostgreSQL type as the sink creates it.
	Type string
}

// UsersColumns lists the columns of one of the users sink's tables
// (UsersTable, ProvidersTable or MFATable), in the order of a UserLayout's
// values; nil for any other table.
func UsersColumns(table string) []UsersColumn {
	var cols []struct{ name, ddlType string }
	switch table {
	case UsersTable:
		cols = userColumns
	case ProvidersTable:
		cols = providerColumns
	case MFATable:
		cols = mfaColumns
	default:
		return nil
	}
	out := make([]UsersColumn, len(cols))
	for i, c := range cols {
		out[i] = UsersColumn{Name: c.name, Type: c.ddlType}
	}
	return out
}

// UserLayout is one user as the users sink writes it: the values of its
// users row and of its provider_identities and mfa_factors rows, each in
// the order of UsersColumns, as Go values handed to pgx (a nil []byte or a
// nil *time.Time is SQL NULL).
type UserLayout struct {
	UID       string
	User      []any
	Providers [][]any
	MFA       [][]any
	// Position is where an export file holds the user; nil for users from
	// the API.
	Position *record.Position
}

// RepeatedUIDReason is why Write rejects an occurrence of a uid after its
// first in the same run of an export file: repeat repeats first, which was
// migrated unless firstRejected.
func RepeatedUIDReason(uid string, repeat, first record.Position, firstRejected bool) string {
	what := "is the one migrated"
	if firstRejected {
		what = "was rejected too"
	}
	return fmt.Sprintf("uid %q appears more than once in %s: %s repeats %s, which %s; a Firebase uid is unique, "+
		"so one of the two accounts is wrong — compare them and load the right one yourself if it is this one",
		uid, repeat.File, repeat, first, what)
}

// repeatedInBatchReason is why the users sinks reject a uid that record j
// (0-based) of the same batch already holds (Users: when either has no
// source position; see RepeatedUIDReason).
func repeatedInBatchReason(uid string, j int) string {
	return fmt.Sprintf("uid %q appears again in the source (first as record %d of this batch); a Firebase uid is unique", uid, j+1)
}

// Layout lays rec out exactly as Write would store it — the same decoding,
// the same checks, the same hash_config_id — or, with a nil layout, returns
// the reason Write would reject it. Reasons never contain hashes or the
// hash parameters. It writes nothing. Write may still reject a user Layout
// accepts: when PostgreSQL refuses one of its values, or when its uid came
// before in the same source (see Users).
func (s *Users) Layout(rec record.Record) (*UserLayout, string) {
	rows, reason := s.rows(rec)
	if reason != "" {
		return nil, reason
	}
	return &UserLayout{UID: rows.uid, User: rows.user, Providers: rows.providers, MFA: rows.mfa, Position: rows.pos}, ""
}

// Schema is the schema of the sink's tables.
func (s *Users) Schema() string { return s.cfg.Schema }

// PlannedDDL returns what Prepare would change in db, for `plan`: the
// statements creating the schema's tables when any is missing, those
// upgrading tables of an earlier version (see upgradeDDL), and the storing
// of the shared hash parameters when db does not hold them yet (shown
// without their values, which can be secrets). It only reads the catalog,
// hash_configs and the table owners; when another source owns the tables
// (see SetOwner) it returns the refusal Prepare would.
func (s *Users) PlannedDDL(ctx context.Context, db loaders.DB) ([]Statement, error) {
	if s.hashErr != nil {
		return nil, s.hashErr
	}
	if err := CheckTableOwners(ctx, db, s.owner, s.Tables()); err != nil {
		return nil, err
	}
	var schema, complete, stored bool
	err := db.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
			to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL AND to_regclass($4) IS NOT NULL
				AND to_regclass($5) IS NOT NULL AND to_regclass($6) IS NOT NULL
				AND to_regclass($7) IS NOT NULL AND to_regclass($8) IS NOT NULL`,
		s.cfg.Schema, s.table(UsersTable), s.table(ProvidersTable), s.table(MFATable), s.table(HashConfigsTable), s.table("duplicate_emails"),
		s.table(PositionsTable), s.table(DuplicateUIDsView),
	).Scan(&schema, &complete)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	var out []Statement
	if !complete {
		for _, stmt := range s.usersDDL() {
			if schema && strings.HasPrefix(stmt, "CREATE SCHEMA") {
				continue
			}
			out = append(out, Statement{What: describeDDL(stmt), SQL: stmt})
		}
	}
	upgrade, err := s.upgradeDDL(ctx, db)
	if err != nil {
		return nil, err
	}
	out = append(out, upgrade...)
	soft, err := s.soft.changes(ctx, db)
	if err != nil {
		return nil, err
	}
	out = append(out, soft...)
	if s.hashID == "" {
		return out, nil
	}
	if complete {
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.table(HashConfigsTable)+` WHERE id = $1)`, s.hashID).Scan(&stored); err != nil {
			return nil, fmt.Errorf("reading %s: %w", s.table(HashConfigsTable), err)
		}
	}
	if !stored {
		names := slices.Sorted(maps.Keys(s.cfg.SharedHash.Params))
		firebaseShown := "NULL, NULL, NULL, NULL"
		if s.cfg.SharedHash.Algorithm == passwords.FirebaseScrypt {
			firebaseShown = "<signer key>, <salt separator>, <rounds>, <mem cost>"
		}
		var pairs []string
		for _, n := range names {
			pairs = append(pairs, fmt.Sprintf("'%s', <%s>", strings.ReplaceAll(n, "'", "''"), strings.ReplaceAll(n, "_", " ")))
		}
		out = append(out, Statement{
			What: fmt.Sprintf("store the shared password hash parameters as %s (%s: %s; values not shown, some are secrets)",
				s.hashID, s.cfg.SharedHash.Algorithm, strings.Join(names, ", ")),
			SQL: fmt.Sprintf(`INSERT INTO %s (id, algorithm, parameters, signer_key, salt_separator, rounds, mem_cost)
VALUES ('%s', '%s', jsonb_build_object(%s), %s) ON CONFLICT (id) DO NOTHING`,
				s.table(HashConfigsTable), s.hashID, s.cfg.SharedHash.Algorithm, strings.Join(pairs, ", "), firebaseShown),
		})
	}
	return out, nil
}

// describeDDL says in words what one of usersDDL's statements does.
func describeDDL(stmt string) string {
	line := strings.TrimSuffix(strings.TrimSuffix(firstLine(stmt), " ("), " AS")
	for _, p := range []struct{ prefix, what string }{
		{"CREATE SCHEMA IF NOT EXISTS ", "create schema "},
		{"CREATE TABLE IF NOT EXISTS ", "create table "},
		{"CREATE INDEX IF NOT EXISTS ", "create index "},
		{"CREATE OR REPLACE VIEW ", "create view "},
		{"REVOKE ALL ON ", "keep from PUBLIC: "},
	} {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			return p.what + strings.TrimSuffix(rest, " FROM PUBLIC")
		}
	}
	return line
}
