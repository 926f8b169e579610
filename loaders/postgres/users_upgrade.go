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
	// hashConfigsFirebaseCheck: hash_configs' Firebase scrypt columns are
	// set exactly in FIREBASE_SCRYPT rows.
	hashConfigsFirebaseCheck = "hash_configs_firebase_scrypt_columns"
)

// jsonTextObject is a CHECK that column is a JSON object of text values.
func jsonTextObject(column string) string {
	return fmt.Sprintf(`CHECK (jsonb_typeof(%[1]s) = 'object' AND NOT jsonb_path_exists(%[1]s, '$.* ? (@.type() != "string")'))`, column)
}

var (
	// hashParametersCheck keeps hash_configs.parameters an object of text.
	hashParametersCheck = `CONSTRAINT ` + hashConfigsParamsCheck + ` ` + jsonTextObject("parameters")
	// hashConfigsFirebaseColumns keeps signer_key, salt_separator, rounds
	// and mem_cost set in FIREBASE_SCRYPT rows (the values of parameters,
	// as earlier versions stored them, for the backends that read them)
	// and null in every other row.
	hashConfigsFirebaseColumns = `CONSTRAINT ` + hashConfigsFirebaseCheck + ` CHECK (num_nulls(signer_key, salt_separator, rounds, mem_cost) =
		CASE WHEN algorithm = '` + passwords.FirebaseScrypt + `' THEN 0 ELSE 4 END)`
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
// parameters column, filled for the rows of the first layout (algorithm
// 'SCRYPT', Firebase scrypt's parameters in signer_key, salt_separator,
// rounds and mem_cost) with those parameters (signer_key and
// salt_separator in padded standard base64, rounds and mem_cost in
// decimal) and their algorithm renamed FIREBASE_SCRYPT. The four columns
// stay, as backends of earlier versions read them: nullable, set exactly
// for FIREBASE_SCRYPT rows (hashConfigsFirebaseColumns), and filled back
// from parameters in tables an interim version made without them. None
// when the tables are current or missing (usersDDL creates them). Each
// statement is safe to run again, alone or in order, on every layout.
func (s *Users) upgradeDDL(ctx context.Context, db loaders.DB) ([]Statement, error) {
	users, hc := s.table(UsersTable), s.table(HashConfigsTable)
	var (
		usersExists, hcExists, hasParams, hasHashCheck, hasOldCheck, hcHasParams, hcHasKey, hcHasCheck bool
		algorithmDef                                                                                   *string
	)
	err := db.QueryRow(ctx, `WITH u AS (SELECT to_regclass($1) AS oid), h AS (SELECT to_regclass($2) AS oid)
		SELECT (SELECT oid FROM u) IS NOT NULL, (SELECT oid FROM h) IS NOT NULL,
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = (SELECT oid FROM u) AND attname = 'password_parameters' AND NOT attisdropped),
			EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = (SELECT oid FROM u) AND conname = $3),
			EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = (SELECT oid FROM u) AND conname = $4),
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = (SELECT oid FROM h) AND attname = 'parameters' AND NOT attisdropped),
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = (SELECT oid FROM h) AND attname = 'signer_key' AND NOT attisdropped),
			EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = (SELECT oid FROM h) AND conname = $6),
			(SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = (SELECT oid FROM u) AND conname = $5)`,
		users, hc, passwordHashCheckName, oldPasswordHashCheck, algorithmCheckName, hashConfigsFirebaseCheck,
	).Scan(&usersExists, &hcExists, &hasParams, &hasHashCheck, &hasOldCheck, &hcHasParams, &hcHasKey, &hcHasCheck, &algorithmDef)
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
	if hcExists && (!hcHasParams || !hcHasKey || !hcHasCheck) {
		// Adding every column first makes each later statement valid
		// whatever the table held; PostgreSQL cannot alter a column the
		// same statement adds, and those it adds are nullable.
		keep := `ADD COLUMN IF NOT EXISTS signer_key bytea, ADD COLUMN IF NOT EXISTS salt_separator bytea,
				ADD COLUMN IF NOT EXISTS rounds integer, ADD COLUMN IF NOT EXISTS mem_cost integer`
		if hcHasKey {
			keep = `ALTER COLUMN signer_key DROP NOT NULL, ALTER COLUMN salt_separator DROP NOT NULL,
				ALTER COLUMN rounds DROP NOT NULL, ALTER COLUMN mem_cost DROP NOT NULL`
		}
		add("upgrade "+hc+": add the column parameters; keep signer_key, salt_separator, rounds and mem_cost for Firebase scrypt rows (null for other algorithms)",
			`ALTER TABLE `+hc+` ADD COLUMN IF NOT EXISTS parameters jsonb, `+keep)
		if !hcHasParams {
			add("upgrade "+hc+": copy the Firebase scrypt parameters into it, algorithm "+passwords.FirebaseScrypt+" (values not shown)",
				`UPDATE `+hc+` h SET algorithm = '`+passwords.FirebaseScrypt+`', parameters = `+firstLayoutParameters("h")+
					` WHERE parameters IS NULL AND signer_key IS NOT NULL`)
		}
		if !hcHasKey {
			add("upgrade "+hc+": fill signer_key, salt_separator, rounds and mem_cost of the Firebase scrypt rows from parameters (values not shown)",
				`UPDATE `+hc+` SET signer_key = decode(parameters->>'signer_key', 'base64'),
					salt_separator = decode(coalesce(parameters->>'salt_separator', ''), 'base64'),
					rounds = (parameters->>'rounds')::integer, mem_cost = (parameters->>'mem_cost')::integer
				WHERE algorithm = '`+passwords.FirebaseScrypt+`' AND parameters IS NOT NULL
					AND num_nulls(signer_key, salt_separator, rounds, mem_cost) > 0`)
		}
		add("upgrade "+hc+": require parameters, and the Firebase scrypt columns exactly for "+passwords.FirebaseScrypt+" rows",
			`ALTER TABLE `+hc+` ALTER COLUMN parameters SET NOT NULL,
				DROP CONSTRAINT IF EXISTS `+hashConfigsParamsCheck+`, ADD `+hashParametersCheck+`,
				DROP CONSTRAINT IF EXISTS `+hashConfigsFirebaseCheck+`, ADD `+hashConfigsFirebaseColumns)
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
// that must not write (plan, verify, and ReadUser and EachUser behind auth
// verify-password and auth export): in the current layout, or in the first
// layout exactly as upgradeDDL will convert it.
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
