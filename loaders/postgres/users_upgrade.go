package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// The named constraints of the users tables. Tables made before per-user
// algorithms had the algorithm check under the name PostgreSQL gave it
// (the same), and the hash check unnamed (users_check).
const (
	algorithmCheckName     = "users_password_algorithm_check"
	passwordHashCheckName  = "users_password_hash_check"
	oldPasswordHashCheck   = "users_check"
	paramsCheckName        = "users_password_parameters_check"
	hashConfigsParamsCheck = "hash_configs_parameters_check"
)

// jsonTextObject is a CHECK that column is a JSON object of text values.
func jsonTextObject(column string) string {
	return fmt.Sprintf(`CHECK (jsonb_typeof(%[1]s) = 'object' AND NOT jsonb_path_exists(%[1]s, '$.* ? (@.type() != "string")'))`, column)
}

var (
	// hashParametersCheck keeps hash_configs.parameters an object of text.
	hashParametersCheck = `CONSTRAINT ` + hashConfigsParamsCheck + ` ` + jsonTextObject("parameters")
	// passwordParametersCheck keeps users.password_parameters an object of
	// text, or NULL.
	passwordParametersCheck = `CONSTRAINT ` + paramsCheckName + ` ` + jsonTextObject("password_parameters")
	// passwordHashCheck: a user has a hash exactly when it has an
	// algorithm other than NONE (no hash exported).
	passwordHashCheck = `CONSTRAINT ` + passwordHashCheckName + ` CHECK ((password_algorithm IS NULL OR password_algorithm = '` +
		passwords.None + `') = (password_hash IS NULL AND password_hash_verbatim IS NULL))`
)

// algorithmCheck allows every algorithm name of passwords.Algorithms.
func (s *Users) algorithmCheck() string {
	names := passwords.Algorithms()
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return `CONSTRAINT ` + algorithmCheckName + ` CHECK (password_algorithm IN (` + strings.Join(quoted, ", ") + `))`
}

// upgradeDDL returns the statements that bring tables made by an earlier
// version to the current layout, reading only the catalog: the per-user
// password_parameters column; the algorithm check widened to every name
// of passwords.Algorithms; the hash check allowing NONE; hash_configs'
// scrypt-only columns (signer_key, salt_separator, rounds, mem_cost, with
// algorithm 'SCRYPT') turned into algorithm FIREBASE_SCRYPT and a
// parameters object (signer_key and salt_separator in padded standard
// base64, rounds and mem_cost in decimal). None when the tables are
// current or missing (usersDDL creates them). Each statement is safe to
// run again.
func (s *Users) upgradeDDL(ctx context.Context, db loaders.DB) ([]Statement, error) {
	users, hc := s.table(UsersTable), s.table(HashConfigsTable)
	var (
		usersExists, hcExists, hasParams, hasHashCheck, hasOldCheck, hcHasParams bool
		algorithmDef                                                             *string
	)
	err := db.QueryRow(ctx, `WITH u AS (SELECT to_regclass($1) AS oid), h AS (SELECT to_regclass($2) AS oid)
		SELECT (SELECT oid FROM u) IS NOT NULL, (SELECT oid FROM h) IS NOT NULL,
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = (SELECT oid FROM u) AND attname = 'password_parameters' AND NOT attisdropped),
			EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = (SELECT oid FROM u) AND conname = $3),
			EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = (SELECT oid FROM u) AND conname = $4),
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = (SELECT oid FROM h) AND attname = 'parameters' AND NOT attisdropped),
			(SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = (SELECT oid FROM u) AND conname = $5)`,
		users, hc, passwordHashCheckName, oldPasswordHashCheck, algorithmCheckName,
	).Scan(&usersExists, &hcExists, &hasParams, &hasHashCheck, &hasOldCheck, &hcHasParams, &algorithmDef)
	if err != nil {
		return nil, fmt.Errorf("reading the layout of the users tables: %w", err)
	}
	var out []Statement
	add := func(what, sql string) { out = append(out, Statement{What: what, SQL: sql}) }
	if usersExists {
		if !hasParams {
			add("upgrade "+users+": add the per-user column password_parameters",
				`ALTER TABLE `+users+` ADD COLUMN IF NOT EXISTS password_parameters jsonb `+passwordParametersCheck)
		}
		allowed := algorithmDef != nil
		for _, n := range passwords.Algorithms() {
			allowed = allowed && strings.Contains(*algorithmDef, "'"+n+"'")
		}
		if !allowed {
			add("upgrade "+users+": allow every password algorithm",
				`ALTER TABLE `+users+` DROP CONSTRAINT IF EXISTS `+algorithmCheckName+`, ADD `+s.algorithmCheck())
		}
		if !hasHashCheck || hasOldCheck {
			add("upgrade "+users+": allow users whose source exports no hash ("+passwords.None+")",
				`ALTER TABLE `+users+` DROP CONSTRAINT IF EXISTS `+oldPasswordHashCheck+
					`, DROP CONSTRAINT IF EXISTS `+passwordHashCheckName+`, ADD `+passwordHashCheck)
		}
	}
	if hcExists && !hcHasParams {
		add("upgrade "+hc+": add the column parameters", `ALTER TABLE `+hc+` ADD COLUMN IF NOT EXISTS parameters jsonb`)
		add("upgrade "+hc+": move the Firebase scrypt parameters into it (values not shown)",
			`UPDATE `+hc+` h SET algorithm = '`+passwords.FirebaseScrypt+`', parameters = `+firstLayoutParameters("h")+` WHERE parameters IS NULL`)
		add("upgrade "+hc+": drop the scrypt-only columns", `ALTER TABLE `+hc+` DROP COLUMN IF EXISTS signer_key, DROP COLUMN IF EXISTS salt_separator,
				DROP COLUMN IF EXISTS rounds, DROP COLUMN IF EXISTS mem_cost, ALTER COLUMN parameters SET NOT NULL,
				DROP CONSTRAINT IF EXISTS `+hashConfigsParamsCheck+`, ADD `+hashParametersCheck)
	}
	return out, nil
}

// ColumnExists reports whether table of schema has column.
func ColumnExists(ctx context.Context, db loaders.DB, schema, table, column string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)`,
		pgx.Identifier{schema, table}.Sanitize(), column).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("reading the columns of %s: %w", pgx.Identifier{schema, table}.Sanitize(), err)
	}
	return ok, nil
}

// HashConfigExprs returns SQL expressions reading the algorithm and the
// parameters (jsonb) of the hash_configs row aliased alias, for readers
// that must not write (plan, verify): in the current layout, or in the
// first layout exactly as upgradeDDL will convert it.
func HashConfigExprs(ctx context.Context, db loaders.DB, schema, alias string) (algorithm, parameters string, err error) {
	current, err := ColumnExists(ctx, db, schema, HashConfigsTable, "parameters")
	if err != nil {
		return "", "", err
	}
	if current {
		return alias + ".algorithm", alias + ".parameters", nil
	}
	return `'` + passwords.FirebaseScrypt + `'::text`, firstLayoutParameters(alias), nil
}

// firstLayoutParameters is the parameters object of a hash_configs row of
// the first layout, aliased alias (passwords' contract for Firebase
// scrypt: the key and separator in padded standard base64 — encode breaks
// lines, which are removed — rounds and mem_cost in decimal).
func firstLayoutParameters(alias string) string {
	b64 := func(col string) string { return `translate(encode(` + alias + `.` + col + `, 'base64'), E'\n', '')` }
	return `jsonb_build_object('signer_key', ` + b64("signer_key") + `, 'salt_separator', ` + b64("salt_separator") +
		`, 'rounds', ` + alias + `.rounds::text, 'mem_cost', ` + alias + `.mem_cost::text)`
}
