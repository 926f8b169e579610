package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"maps"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// firstLayoutDDL is the DDL of the users tables as the first version made
// them (Firebase scrypt only), in schema firebase_auth.
var firstLayoutDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS "firebase_auth"`,
	`CREATE TABLE IF NOT EXISTS "firebase_auth"."hash_configs" (
		id             text PRIMARY KEY,
		algorithm      text NOT NULL,
		signer_key     bytea NOT NULL,
		salt_separator bytea NOT NULL,
		rounds         integer NOT NULL,
		mem_cost       integer NOT NULL,
		added_at       timestamptz NOT NULL DEFAULT now()
	)`,
	`REVOKE ALL ON "firebase_auth"."hash_configs" FROM PUBLIC`,
	`CREATE TABLE IF NOT EXISTS "firebase_auth"."users" (
		uid                    text PRIMARY KEY,
		tenant_id              text,
		email                  text,
		email_verified         boolean NOT NULL,
		phone_number           text,
		display_name           text,
		photo_url              text,
		disabled               boolean NOT NULL,
		created_at             timestamptz,
		last_sign_in_at        timestamptz,
		last_refresh_at        timestamptz,
		password_updated_at    timestamptz,
		tokens_valid_after     timestamptz,
		custom_claims          jsonb CHECK (jsonb_typeof(custom_claims) = 'object'),
		password_algorithm     text CHECK (password_algorithm IN ('FIREBASE_SCRYPT', 'EMULATOR_FAKE', 'UNKNOWN')),
		password_hash          bytea,
		password_salt          bytea,
		password_hash_verbatim text,
		password_salt_verbatim text,
		password_version       bigint,
		hash_config_id         text REFERENCES "firebase_auth"."hash_configs",
		extra                  jsonb,
		CHECK ((password_algorithm IS NULL) = (password_hash IS NULL AND password_hash_verbatim IS NULL))
	)`,
	`CREATE INDEX IF NOT EXISTS users_email_lower ON "firebase_auth"."users" (lower(email))`,
	`CREATE INDEX IF NOT EXISTS users_phone_number ON "firebase_auth"."users" (phone_number)`,
	`CREATE TABLE IF NOT EXISTS "firebase_auth"."provider_identities" (
		uid          text NOT NULL REFERENCES "firebase_auth"."users" ON DELETE CASCADE,
		provider_id  text NOT NULL,
		provider_uid text NOT NULL,
		federated_id text,
		email        text,
		display_name text,
		photo_url    text,
		phone_number text,
		screen_name  text,
		extra        jsonb,
		PRIMARY KEY (uid, provider_id, provider_uid)
	)`,
	`CREATE INDEX IF NOT EXISTS provider_identities_by_provider ON "firebase_auth"."provider_identities" (provider_id, provider_uid)`,
	`CREATE TABLE IF NOT EXISTS "firebase_auth"."mfa_factors" (
		uid                       text NOT NULL REFERENCES "firebase_auth"."users" ON DELETE CASCADE,
		enrollment_id             text NOT NULL,
		factor_id                 text NOT NULL,
		display_name              text,
		phone_number              text,
		unobfuscated_phone_number text,
		email                     text,
		enrolled_at               timestamptz,
		extra                     jsonb,
		PRIMARY KEY (uid, enrollment_id)
	)`,
	`CREATE OR REPLACE VIEW "firebase_auth"."duplicate_emails" AS
		SELECT lower(email) AS email, count(*) AS users,
			array_agg(uid ORDER BY created_at NULLS LAST, uid) AS uids
		FROM "firebase_auth"."users" WHERE email IS NOT NULL
		GROUP BY lower(email) HAVING count(*) > 1`,
	`CREATE TABLE IF NOT EXISTS "firebase_auth"."source_positions" (
		file   text NOT NULL,
		read   text NOT NULL,
		record bigint NOT NULL,
		line   bigint NOT NULL,
		uid    text NOT NULL,
		loaded boolean NOT NULL,
		PRIMARY KEY (read, file, record)
	)`,
	`CREATE INDEX IF NOT EXISTS source_positions_uid ON "firebase_auth"."source_positions" (uid)`,
	`CREATE OR REPLACE VIEW "firebase_auth"."duplicate_uids" AS
		SELECT l.uid, l.file, l.record AS migrated_record, l.line AS migrated_line,
			array_agg(r.record ORDER BY r.record) AS rejected_records,
			array_agg(r.line ORDER BY r.record) AS rejected_lines
		FROM "firebase_auth"."source_positions" l
		JOIN "firebase_auth"."source_positions" r ON r.uid = l.uid AND r.read = l.read AND r.file = l.file AND NOT r.loaded
		WHERE l.loaded
		GROUP BY l.uid, l.file, l.record, l.line`,
}

// TestUsersUpgradeTheFirstLayout: tables made by the first version, with
// a user whose Firebase scrypt hash references the project's parameters,
// are upgraded in place by Prepare — shown first by PlannedDDL without the
// secrets — and then hold every algorithm; the old user still verifies and
// a re-run changes nothing; a second Prepare has nothing left to do.
func TestUsersUpgradeTheFirstLayout(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	for _, stmt := range firstLayoutDDL {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	p := testParams(t)
	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	hash, _ := base64.StdEncoding.DecodeString(testHash)
	salt, _ := base64.StdEncoding.DecodeString(testSalt)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO firebase_auth.hash_configs (id, algorithm, signer_key, salt_separator, rounds, mem_cost) VALUES ($1, 'SCRYPT', $2, $3, 8, 14)`,
			[]any{s.HashConfigID(), p.SignerKey(), p.SaltSeparator()}},
		{`INSERT INTO firebase_auth.users (uid, email, email_verified, disabled, password_algorithm, password_hash, password_salt, hash_config_id)
			VALUES ('old', 'old@example.com', true, false, 'FIREBASE_SCRYPT', $1, $2, $3)`, []any{hash, salt, s.HashConfigID()}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	// The tools reading users read the first layout as it is.
	if err := postgres.CheckUsersTables(ctx, pool, postgres.DefaultUsersSchema); err != nil {
		t.Errorf("CheckUsersTables on the first layout: %v", err)
	}
	if u, err := postgres.ReadUser(ctx, pool, postgres.DefaultUsersSchema, "old"); err != nil {
		t.Errorf("ReadUser on the first layout: %v", err)
	} else if ok, err := passwords.Verify(*u.Password, []byte("user1password")); !ok || err != nil || u.HashConfigID != s.HashConfigID() {
		t.Errorf("the old user read from the first layout does not verify: %v, %v", ok, err)
	}
	if err := postgres.EachUser(ctx, pool, postgres.DefaultUsersSchema, func(*postgres.StoredUser) error { return nil }); err != nil {
		t.Errorf("EachUser on the first layout: %v", err)
	}

	plan, err := s.PlannedDDL(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, st := range plan {
		whats = append(whats, st.What)
		if strings.Contains(st.SQL, "CREATE TABLE") || strings.Contains(st.SQL, testSignerKey[:20]) || strings.Contains(st.What, testSignerKey[:20]) {
			t.Errorf("the plan of an upgrade: %s\n%s", st.What, st.SQL)
		}
	}
	for _, want := range []string{"password_parameters", "allow every password algorithm", "NONE", "add the column parameters",
		"copy the Firebase scrypt parameters", "keep signer_key, salt_separator, rounds and mem_cost", "exactly for FIREBASE_SCRYPT rows"} {
		if !strings.Contains(strings.Join(whats, "\n"), want) {
			t.Errorf("the plan does not %q:\n%s", want, strings.Join(whats, "\n"))
		}
	}
	if len(plan) != 6 {
		t.Errorf("%d statements planned, want the 6 of the upgrade (the parameters are stored already):\n%s", len(plan), strings.Join(whats, "\n"))
	}

	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	// Each statement of the upgrade is safe to run again on the upgraded
	// tables.
	for _, st := range plan {
		if _, err := pool.Exec(ctx, st.SQL); err != nil {
			t.Errorf("re-running %q: %v", st.What, err)
		}
	}
	if plan, err := s.PlannedDDL(ctx, pool); err != nil || len(plan) != 0 {
		t.Fatalf("after the upgrade PlannedDDL = %+v, %v; want nothing", plan, err)
	}
	var alg, params string
	var n int
	if err := pool.QueryRow(ctx, `SELECT algorithm, parameters::text, count(*) OVER () FROM firebase_auth.hash_configs`).Scan(&alg, &params, &n); err != nil {
		t.Fatal(err)
	}
	if alg != passwords.FirebaseScrypt || n != 1 {
		t.Errorf("hash_configs holds %d rows, algorithm %s", n, alg)
	}
	var cols []string
	rows, _ := pool.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'firebase_auth' AND table_name = 'hash_configs' ORDER BY 1`)
	cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(cols, ",") != "added_at,algorithm,id,mem_cost,parameters,rounds,salt_separator,signer_key" {
		t.Errorf("hash_configs columns %v, %v", cols, err)
	}
	// Backends of earlier versions read the four columns: they keep their
	// values.
	checkFirebaseColumns(t, pool, postgres.DefaultUsersSchema, s.HashConfigID(), p)
	// And tables made fresh have them too, filled the same way.
	fresh := postgres.NewUsers(postgres.UsersConfig{Schema: "fresh", SharedHash: testShared(t)})
	if err := fresh.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	checkFirebaseColumns(t, pool, "fresh", fresh.HashConfigID(), p)

	old, err := postgres.ReadUser(ctx, pool, postgres.DefaultUsersSchema, "old")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(old.Password.Params, testShared(t).Params) || old.HashConfigID != s.HashConfigID() {
		t.Fatalf("the upgraded parameters differ from the project's (config %q)", old.HashConfigID)
	}
	if ok, err := passwords.Verify(*old.Password, []byte("user1password")); !ok || err != nil {
		t.Fatalf("the old user does not verify after the upgrade: %v, %v", ok, err)
	}
	// The same user from the source changes nothing; new algorithms load.
	same := record.User{UID: "old", Email: strp("old@example.com"), EmailVerified: true,
		Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt}}
	if out := writeUsers(t, pool, s, same.Record("1")); len(out.Changed) != 0 || len(out.Rejects) != 0 {
		t.Errorf("re-writing the old user changed %v (rejects %v)", out.Changed, out.Rejects)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	newer := []record.Record{
		record.User{UID: "bc", Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: string(bc)}}.Record("2"),
		record.User{UID: "none", Password: &passwords.Credential{Algorithm: passwords.None}}.Record("3"),
	}
	if out := writeUsers(t, pool, s, newer...); len(out.Rejects) != 0 || out.Changed["firebase_auth.users"] != 2 {
		t.Fatalf("new algorithms in upgraded tables: changed %v, rejects %v", out.Changed, out.Rejects)
	}
}

// TestUsersStoreEveryAlgorithm: each credential keeps its algorithm, its
// text and its own parameters; only users of the shared parameters'
// algorithm reference them; malformed credentials and unknown algorithms
// are rejected without quoting them.
func TestUsersStoreEveryAlgorithm(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("secret pw"), bcrypt.MinCost)
	pbkdf2 := &passwords.Credential{Algorithm: "PBKDF2_SHA256", Hash: "q83vEjRWeJCrze8SNFZ4kA==", Salt: "c2FsdHNhbHQ=",
		Params: map[string]string{"iterations": "1000"}}
	recs := []record.Record{
		record.User{UID: "fb", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt}}.Record("1"),
		record.User{UID: "bc", Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: string(bc)}}.Record("2"),
		record.User{UID: "pb", Password: pbkdf2}.Record("3"),
		record.User{UID: "none", Password: &passwords.Credential{Algorithm: passwords.None}}.Record("4"),
		record.User{UID: "badbc", Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: "$2b$not-a-bcrypt-hash"}}.Record("5"),
		record.User{UID: "rot13", Password: &passwords.Credential{Algorithm: "ROT13", Hash: "frperg"}}.Record("6"),
	}
	out := writeUsers(t, pool, s, recs...)
	if len(out.Rejects) != 2 || !strings.Contains(out.Rejects[5], `unknown password algorithm mark "ROT13"`) || out.Rejects[4] == "" {
		t.Fatalf("rejects %v; want badbc and rot13", out.Rejects)
	}
	if strings.Contains(out.Rejects[4], "not-a-bcrypt") {
		t.Errorf("the reason quotes the hash: %q", out.Rejects[4])
	}
	type row struct {
		alg, verbatim, params, config string
		hasBytes                      bool
	}
	got := map[string]row{}
	rows, err := pool.Query(ctx, `SELECT uid, password_algorithm, coalesce(password_hash_verbatim, ''), coalesce(password_parameters::text, ''),
		coalesce(hash_config_id, ''), password_hash IS NOT NULL FROM firebase_auth.users`)
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	var r row
	if _, err := pgx.ForEachRow(rows, []any{&uid, &r.alg, &r.verbatim, &r.params, &r.config, &r.hasBytes}, func() error {
		got[uid] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]row{
		"fb":   {alg: passwords.FirebaseScrypt, config: s.HashConfigID(), hasBytes: true},
		"bc":   {alg: "BCRYPT", verbatim: string(bc)},
		"pb":   {alg: "PBKDF2_SHA256", verbatim: pbkdf2.Hash, params: `{"iterations": "1000"}`},
		"none": {alg: passwords.None},
	}
	if !maps.Equal(got, want) {
		t.Fatalf("stored\n %+v\nwant\n %+v", got, want)
	}
	// Read back, each credential is the one the source gave.
	seen := map[string]*passwords.Credential{}
	if err := postgres.EachUser(ctx, pool, postgres.DefaultUsersSchema, func(u *postgres.StoredUser) error {
		seen[u.UID] = u.Password
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c := seen["pb"]; c == nil || c.Hash != pbkdf2.Hash || c.Salt != pbkdf2.Salt || !maps.Equal(c.Params, pbkdf2.Params) {
		t.Errorf("pbkdf2 read back as %+v", c)
	}
	if ok, err := passwords.Verify(*seen["bc"], []byte("secret pw")); !ok || err != nil {
		t.Errorf("bcrypt read back does not verify: %v", err)
	}
	if c := seen["none"]; c == nil || c.Algorithm != passwords.None || c.Hash != "" {
		t.Errorf("NONE read back as %+v", c)
	}
	if _, err := postgres.ReadUser(ctx, pool, postgres.DefaultUsersSchema, "nobody"); err == nil || !strings.Contains(err.Error(), `no user with uid "nobody"`) {
		t.Errorf("ReadUser of a missing uid: %v", err)
	}
}

// TestUsersSharedHashOfAnotherAlgorithm: shared parameters of any
// algorithm are stored and referenced by an id that does not show them.
func TestUsersSharedHashOfAnotherAlgorithm(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	shared := &passwords.Credential{Algorithm: "SHA256", Params: map[string]string{"salt_position": "suffix", "salt_encoding": "text"}}
	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: shared})
	if !strings.HasPrefix(s.HashConfigID(), "sha256-") || strings.Contains(s.HashConfigID(), "suffix") {
		t.Fatalf("id %q", s.HashConfigID())
	}
	// Rows refer to the id: it never changes (SHA-256 over the
	// length-prefixed fields, see postgres.HashParamsDigest).
	if s.HashConfigID() != "sha256-abab70acc4ad5e5b" {
		t.Errorf("id %q changed", s.HashConfigID())
	}
	plan, err := s.PlannedDDL(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range plan {
		if strings.Contains(st.SQL+st.What, "suffix") {
			t.Fatalf("the plan shows a parameter: %s", st.SQL)
		}
	}
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	writeUsers(t, pool, s, record.User{UID: "u", Password: &passwords.Credential{Algorithm: "SHA256", Hash: strings.Repeat("ab", 32), Salt: "ef"}}.Record("1"))
	u, err := postgres.ReadUser(ctx, pool, postgres.DefaultUsersSchema, "u")
	if err != nil || u.HashConfigID != s.HashConfigID() || u.Password.Params["salt_position"] != "suffix" {
		t.Fatalf("read back %+v, %v", u, err)
	}
	bad := postgres.NewUsers(postgres.UsersConfig{SharedHash: &passwords.Credential{Algorithm: passwords.FirebaseScrypt,
		Params: map[string]string{"signer_key": "!!", "salt_separator": "", "rounds": "8", "mem_cost": "14"}}})
	if err := bad.Prepare(ctx, pool); err == nil || !strings.Contains(err.Error(), "hash parameters") {
		t.Fatalf("Prepare with unusable parameters: %v", err)
	}
}

// checkFirebaseColumns fails unless the hash_configs row id of schema
// holds p in signer_key, salt_separator, rounds and mem_cost, as the first
// version stored them.
func checkFirebaseColumns(t *testing.T, pool *pgxpool.Pool, schema, id string, p firebasescrypt.Params) {
	t.Helper()
	var key, sep []byte
	var rounds, memCost *int
	err := pool.QueryRow(context.Background(), `SELECT signer_key, salt_separator, rounds, mem_cost FROM `+
		pgx.Identifier{schema, "hash_configs"}.Sanitize()+` WHERE id = $1`, id).Scan(&key, &sep, &rounds, &memCost)
	if err != nil {
		t.Fatalf("reading the Firebase scrypt columns of %s: %v", schema, err)
	}
	if !bytes.Equal(key, p.SignerKey()) || !bytes.Equal(sep, p.SaltSeparator()) || rounds == nil || *rounds != p.Rounds() ||
		memCost == nil || *memCost != p.MemCost() {
		t.Errorf("%s: signer_key, salt_separator, rounds, mem_cost do not hold the project's parameters", schema)
	}
}

// TestUsersHashConfigsKeepTheFirebaseColumns: new tables have
// signer_key, salt_separator, rounds and mem_cost, filled for Firebase
// scrypt's row as the first version did and null for other algorithms;
// the check refuses a row that breaks this.
func TestUsersHashConfigsKeepTheFirebaseColumns(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	fb := postgres.NewUsers(postgres.UsersConfig{Schema: "fresh_fb", SharedHash: testShared(t)})
	if err := fb.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	checkFirebaseColumns(t, pool, "fresh_fb", fb.HashConfigID(), testParams(t))
	var alg string
	if err := pool.QueryRow(ctx, `SELECT algorithm FROM fresh_fb.hash_configs`).Scan(&alg); err != nil || alg != passwords.FirebaseScrypt {
		t.Errorf("algorithm %q, %v", alg, err)
	}
	sha := postgres.NewUsers(postgres.UsersConfig{Schema: "fresh_sha", SharedHash: &passwords.Credential{Algorithm: "SHA256",
		Params: map[string]string{"salt_position": "suffix"}}})
	if err := sha.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var nulls int
	if err := pool.QueryRow(ctx, `SELECT num_nulls(signer_key, salt_separator, rounds, mem_cost) FROM fresh_sha.hash_configs`).Scan(&nulls); err != nil || nulls != 4 {
		t.Errorf("a SHA256 row has %d of the Firebase columns null (%v); want 4", 4-nulls, err)
	}
	for _, q := range []string{
		`INSERT INTO fresh_fb.hash_configs (id, algorithm, parameters) VALUES ('x', 'FIREBASE_SCRYPT', '{}')`,
		`INSERT INTO fresh_fb.hash_configs (id, algorithm, parameters, rounds) VALUES ('y', 'SHA256', '{}', 8)`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "hash_configs_firebase_scrypt_columns") {
			t.Errorf("%s: %v; want the check to refuse it", q, err)
		}
	}
	// Tables an interim version made without the four columns get them
	// back, filled from parameters, by Upgrade.
	if _, err := pool.Exec(ctx, `ALTER TABLE fresh_fb.hash_configs DROP COLUMN signer_key, DROP COLUMN salt_separator,
		DROP COLUMN rounds, DROP COLUMN mem_cost`); err != nil {
		t.Fatal(err)
	}
	if err := fb.Upgrade(ctx, pool); err != nil {
		t.Fatal(err)
	}
	checkFirebaseColumns(t, pool, "fresh_fb", fb.HashConfigID(), testParams(t))
	if plan, err := fb.PlannedDDL(ctx, pool); err != nil || len(plan) != 0 {
		t.Errorf("after Upgrade PlannedDDL = %+v, %v; want nothing", plan, err)
	}
}

// countingDB counts the statements other than catalog reads that go
// through it: Exec, Begin and everything inside a transaction.
type countingDB struct {
	*pgxpool.Pool
	execs, begins int
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.execs++
	return c.Pool.Exec(ctx, sql, args...)
}

func (c *countingDB) Begin(ctx context.Context) (pgx.Tx, error) {
	c.begins++
	return c.Pool.Begin(ctx)
}

// TestUsersUpgrade: Upgrade brings tables of the first layout to the
// current one and does nothing else; on current tables, or where there
// are none, it issues no statement and creates nothing.
func TestUsersUpgrade(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})

	// Absent: nothing created.
	db := &countingDB{Pool: pool}
	if err := s.Upgrade(ctx, db); err != nil {
		t.Fatal(err)
	}
	var schema bool
	if err := pool.QueryRow(ctx, `SELECT to_regnamespace('firebase_auth') IS NOT NULL`).Scan(&schema); err != nil || schema || db.execs+db.begins != 0 {
		t.Fatalf("Upgrade without tables: schema made %v (%v), %d statements, %d transactions", schema, err, db.execs, db.begins)
	}

	// The first layout: upgraded, the parameters stay where they were.
	for _, stmt := range firstLayoutDDL {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO firebase_auth.hash_configs (id, algorithm, signer_key, salt_separator, rounds, mem_cost)
		VALUES ($1, 'SCRYPT', $2, $3, 8, 14)`, s.HashConfigID(), testParams(t).SignerKey(), testParams(t).SaltSeparator()); err != nil {
		t.Fatal(err)
	}
	if err := s.Upgrade(ctx, db); err != nil {
		t.Fatal(err)
	}
	if plan, err := s.PlannedDDL(ctx, pool); err != nil || len(plan) != 0 {
		t.Fatalf("after Upgrade PlannedDDL = %+v, %v; want nothing", plan, err)
	}
	checkFirebaseColumns(t, pool, postgres.DefaultUsersSchema, s.HashConfigID(), testParams(t))

	// Current: no statement at all.
	db = &countingDB{Pool: pool}
	if err := s.Upgrade(ctx, db); err != nil {
		t.Fatal(err)
	}
	if db.execs+db.begins != 0 {
		t.Errorf("Upgrade of current tables issued %d statements and %d transactions", db.execs, db.begins)
	}
}

// TestUsersStoreEncodedFirebaseHashes: Firebase scrypt hashes in the
// self-describing $fbscrypt$ and $firescrypt$ forms are checked, stored
// verbatim without a reference to the shared parameters (they carry their
// own) and read back ready to verify; a malformed one is rejected without
// quoting it. EMULATOR_FAKE credentials are stored verbatim as earlier
// versions did, even with a salt their fakeHash does not repeat.
func TestUsersStoreEncodedFirebaseHashes(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	p := testParams(t)
	hash, _ := base64.StdEncoding.DecodeString(testHash)
	salt, _ := base64.StdEncoding.DecodeString(testSalt)
	supa, err := p.SupabaseHash(salt, hash)
	if err != nil {
		t.Fatal(err)
	}
	kratos, err := p.KratosHash(salt, hash)
	if err != nil {
		t.Fatal(err)
	}
	fake := &passwords.Credential{Algorithm: passwords.EmulatorFake, Hash: "fakeHash:salt=a:password=pw", Salt: "b"}
	out := writeUsers(t, pool, s,
		record.User{UID: "supa", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: supa}}.Record("1"),
		record.User{UID: "kratos", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: kratos}}.Record("2"),
		record.User{UID: "bad", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: "$fbscrypt$v=1,n=14,r=8,p=1,zz=secretvalue$c2FsdA==$aGFzaA=="}}.Record("3"),
		record.User{UID: "emu", Password: fake}.Record("4"),
	)
	if len(out.Rejects) != 1 || out.Rejects[2] == "" {
		t.Fatalf("rejects %v; want bad only", out.Rejects)
	}
	if strings.Contains(out.Rejects[2], "secretvalue") || strings.Contains(out.Rejects[2], "zz") {
		t.Errorf("the reason quotes the hash: %q", out.Rejects[2])
	}
	for uid, stored := range map[string]string{"supa": supa, "kratos": kratos} {
		var verbatim string
		var config *string
		var bytes bool
		if err := pool.QueryRow(ctx, `SELECT password_hash_verbatim, hash_config_id, password_hash IS NOT NULL FROM firebase_auth.users WHERE uid = $1`,
			uid).Scan(&verbatim, &config, &bytes); err != nil {
			t.Fatal(err)
		}
		if verbatim != stored || config != nil || bytes {
			t.Errorf("%s: stored verbatim %v, config %v, bytes %v", uid, verbatim == stored, config, bytes)
		}
		u, err := postgres.ReadUser(ctx, pool, postgres.DefaultUsersSchema, uid)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := passwords.Verify(*u.Password, []byte("user1password")); !ok || err != nil {
			t.Errorf("%s read back does not verify: %v, %v", uid, ok, err)
		}
	}
	u, err := postgres.ReadUser(ctx, pool, postgres.DefaultUsersSchema, "emu")
	if err != nil {
		t.Fatal(err)
	}
	if u.Password.Hash != fake.Hash || u.Password.Salt != fake.Salt {
		t.Errorf("EMULATOR_FAKE read back differs")
	}
}
