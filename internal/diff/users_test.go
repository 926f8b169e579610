package diff

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

const (
	usersTestKey  = scrypttest.SignerKey
	usersTestHash = scrypttest.Hash
	usersTestSalt = scrypttest.Salt
)

// recordsExtractor serves records from memory as one stream of users.
type recordsExtractor struct{ recs []record.Record }

func (e *recordsExtractor) Source() string { return "memory" }
func (e *recordsExtractor) Close() error   { return nil }
func (e *recordsExtractor) Plan(context.Context, int, time.Time) ([]extractors.Stream, error) {
	return []extractors.Stream{{Name: "users", Kind: record.KindUser, Partitions: []extractors.Partition{{Stream: "users", ID: "p0"}}}}, nil
}

func (e *recordsExtractor) Read(_ context.Context, _ extractors.Partition, _ time.Time, _ string, emit func(record.Record) error) error {
	for _, r := range e.recs {
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

func usersTestParams(t *testing.T, rounds int) firebasescrypt.Params {
	t.Helper()
	p, err := firebasescrypt.ParseParams(usersTestKey, "Bw==", rounds, 14)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sp(s string) *string { return &s }

// fullUser has a value in every column and child table the sink writes.
func fullUser(uid string) record.User {
	v := int64(0)
	return record.User{
		UID: uid, TenantID: "tenant-1", Email: sp(uid + "@example.test"), PhoneNumber: sp("+15555550100"),
		DisplayName: sp("Name " + uid), PhotoURL: sp("https://example.test/" + uid), EmailVerified: true,
		CreatedAt: time.UnixMilli(1600000000123), LastSignInAt: time.UnixMilli(1700000000456), LastRefreshAt: time.UnixMicro(1700000000456789),
		PasswordUpdatedAt: time.UnixMilli(1650000000000), ValidSince: time.Unix(1660000000, 0),
		CustomClaims: sp(`{"role": "admin", "n": 1.0, "big": 12345678901234567890, "nested": {"b": [1, 2e2], "a": null}}`),
		Password:     &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: usersTestHash, Salt: usersTestSalt, Version: &v},
		Providers: []record.Provider{
			{ProviderID: "google.com", RawID: "g-" + uid, FederatedID: sp("fed"), Email: sp("g@gmail.test"), DisplayName: sp("G"),
				PhotoURL: sp("https://g.test/p"), PhoneNumber: sp("+1"), Name: sp("screen"), Extra: map[string]record.Value{"x": record.Int(1)}},
			{ProviderID: "apple.com", RawID: "a-" + uid},
		},
		MFA: []record.MFAFactor{
			{EnrollmentID: "e2", FactorID: "phone", DisplayName: sp("phone"), PhoneNumber: sp("+1***"), UnobfuscatedPhoneNumber: sp("+15555550100"),
				EnrolledAt: time.UnixMicro(1700000000123456), Extra: map[string]record.Value{"y": record.String("z")}},
			{EnrollmentID: "e1", FactorID: "email", EmailAddr: sp("mfa@example.test")},
		},
		Extra: map[string]record.Value{"screenName": record.String("s"), "language": record.String("fr"), "n": record.Double(1.5)},
	}
}

// usersDB is a fresh database with the users sink's tables.
func usersDB(t *testing.T, hash firebasescrypt.Params) (*pgxpool.Pool, *postgres.Users) {
	t.Helper()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	sink := postgres.NewUsers(postgres.UsersConfig{SharedHash: sharedOf(hash)})
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool, sink
}

func writeUserRecords(t *testing.T, pool *pgxpool.Pool, sink *postgres.Users, recs []record.Record) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		out, err := sink.Write(context.Background(), tx, recs)
		if err == nil && len(out.Rejects) > 0 {
			err = fmt.Errorf("rejects: %v", out.Rejects)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sharedOf is p as the sink's shared credential; nil for the zero Params.
func sharedOf(p firebasescrypt.Params) *passwords.Credential {
	if p.IsZero() {
		return nil
	}
	return firebaseauth.HashCredential(p)
}

func compareUsers(t *testing.T, pool *pgxpool.Pool, hash firebasescrypt.Params, ordered bool, recs []record.Record) *TableReport {
	t.Helper()
	if !ordered {
		recs = slices.Clone(recs)
		rand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	}
	var order record.KeyOrder
	if ordered {
		order = firebaseauth.UIDOrder
	}
	rep, err := Compare(context.Background(), &recordsExtractor{recs}, pool, NewUsers(postgres.UsersConfig{SharedHash: sharedOf(hash)}, order), Options{Samples: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tables) != 1 || rep.Tables[0].Table != "firebase_auth.users" {
		t.Fatalf("tables %+v", rep.Tables)
	}
	return rep.Tables[0]
}

// mismatches maps each mismatched user to its differing fields.
func mismatches(tr *TableReport) map[string]string {
	out := map[string]string{}
	for _, s := range tr.Samples {
		if s.Outcome == Mismatched {
			out[s.Key] = strings.Join(s.Fields, ",")
		}
	}
	return out
}

// tamperSQL changes a column's value to a different one of its type.
func tamperSQL(column, typ string) string {
	switch {
	case column == "hash_config_id":
		return "NULL"
	case column == "password_algorithm":
		return "'UNKNOWN'"
	case typ == "boolean":
		return "NOT " + column
	case typ == "timestamptz":
		return fmt.Sprintf("coalesce(%s, now()) + interval '1 microsecond'", column)
	case column == "password_parameters":
		return `'{"iterations": "2"}'`
	case typ == "jsonb" && column == "custom_claims":
		return `'{"role": "admin", "n": 1.5}'`
	case typ == "jsonb":
		return `'{"tampered": {"s": "x"}}'`
	case typ == "bytea":
		return fmt.Sprintf(`coalesce(%s, '\x00') || '\x01'`, column)
	case typ == "bigint":
		return fmt.Sprintf("coalesce(%s, 0) + 1", column)
	}
	return fmt.Sprintf("coalesce(%s, '') || 'x'", column)
}

// TestUsersEveryColumnIsCompared writes users with the sink, then changes
// one column of one user per column of the three tables (and deletes a
// provider and a factor row): each change must show as a mismatch of that
// user naming exactly the field, in merge and in lookup mode, and nothing
// else may differ.
func TestUsersEveryColumnIsCompared(t *testing.T) {
	ctx := context.Background()
	params := usersTestParams(t, 8)
	pool, sink := usersDB(t, params)
	var recs []record.Record
	type change struct{ uid, sql, want string }
	var changes []change
	add := func(uid, sql, want string) {
		recs = append(recs, fullUser(uid).Record("c"))
		changes = append(changes, change{uid, sql, want})
	}
	for _, c := range postgres.UsersColumns(postgres.UsersTable) {
		if c.Name == "uid" {
			continue
		}
		uid := "u-" + c.Name
		want := fieldName(postgres.UsersTable, c.Name)
		if c.Name == "hash_config_id" {
			want = "hashConfigId,hashParameters"
		}
		add(uid, fmt.Sprintf(`UPDATE firebase_auth.users SET %s = %s WHERE uid = '%s'`, c.Name, tamperSQL(c.Name, c.Type), uid), want)
	}
	for _, child := range []struct{ table, field, where string }{
		{postgres.ProvidersTable, fieldProviders, "provider_id = 'google.com'"},
		{postgres.MFATable, fieldMFA, "enrollment_id = 'e2'"},
	} {
		for _, c := range postgres.UsersColumns(child.table) {
			if c.Name == "uid" {
				continue
			}
			uid := "c-" + child.table + "-" + c.Name
			add(uid, fmt.Sprintf(`UPDATE firebase_auth.%s SET %s = %s WHERE uid = '%s' AND %s`, child.table, c.Name, tamperSQL(c.Name, c.Type), uid, child.where), child.field)
		}
		uid := "d-" + child.table
		add(uid, fmt.Sprintf(`DELETE FROM firebase_auth.%s WHERE uid = '%s' AND %s`, child.table, uid, child.where), child.field)
	}
	untouched := []string{"plain-a", "plain-b", "phone-only"}
	recs = append(recs, fullUser("plain-a").Record("c"), fullUser("plain-b").Record("c"),
		record.User{UID: "phone-only", PhoneNumber: sp("+15555550199")}.Record("c"))
	slices.SortFunc(recs, func(a, b record.Record) int { return firebaseauth.CompareUIDs(a.Key, b.Key) })
	writeUserRecords(t, pool, sink, recs)

	for _, ordered := range []bool{true, false} {
		if tr := compareUsers(t, pool, params, ordered, recs); !tr.Identical() || tr.Matching != int64(len(recs)) {
			t.Fatalf("ordered=%v: right after writing, %+v", ordered, tr)
		}
	}
	for _, c := range changes {
		if tag, err := pool.Exec(ctx, c.sql); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v (%d rows)", c.sql, err, tag.RowsAffected())
		}
	}
	for _, ordered := range []bool{true, false} {
		tr := compareUsers(t, pool, params, ordered, recs)
		got := mismatches(tr)
		for _, c := range changes {
			if got[c.uid] != c.want {
				t.Errorf("ordered=%v: after %s: mismatched fields %q, want %q", ordered, c.sql, got[c.uid], c.want)
			}
		}
		if tr.Mismatched != int64(len(changes)) || tr.Matching != int64(len(untouched)) || tr.MissingInTarget+tr.ExtraInTarget+tr.Rejected != 0 {
			t.Errorf("ordered=%v: %+v; want %d mismatched, %d matching", ordered, tr, len(changes), len(untouched))
		}
	}
}

// TestUsersHashParameters: users are compared with the parameters of this
// comparison; other parameters, none, or a tampered hash_configs row show
// as differences of the fields naming them, and the report holds no
// secret, hash or salt.
func TestUsersHashParameters(t *testing.T) {
	ctx := context.Background()
	params := usersTestParams(t, 8)
	pool, sink := usersDB(t, params)
	recs := []record.Record{fullUser("a").Record("c"), record.User{UID: "b", Email: sp("b@example.test")}.Record("c")}
	writeUserRecords(t, pool, sink, recs)
	both := "hashConfigId,hashParameters"
	for name, c := range map[string]struct {
		params firebasescrypt.Params
		want   string
	}{
		"same":            {params, ""},
		"other rounds":    {usersTestParams(t, 7), both},
		"none given":      {firebasescrypt.Params{}, both},
		"other separator": {mustParams(t, usersTestKey, "Bg==", 8, 14), both},
	} {
		tr := compareUsers(t, pool, c.params, true, recs)
		if got := mismatches(tr); got["a"] != c.want || got["b"] != "" {
			t.Errorf("%s: mismatches %v; want a: %q", name, got, c.want)
		}
		checkNoSecrets(t, name, tr)
	}
	if _, err := pool.Exec(ctx, `UPDATE firebase_auth.hash_configs SET parameters = parameters || jsonb_build_object('signer_key', (parameters->>'signer_key') || 'AA==')`); err != nil {
		t.Fatal(err)
	}
	tr := compareUsers(t, pool, params, false, recs)
	if got := mismatches(tr); got["a"] != "hashParameters" || len(got) != 1 {
		t.Errorf("tampered hash_configs row: mismatches %v; want a: hashParameters", got)
	}
	checkNoSecrets(t, "tampered", tr)
	// A user migrated without parameters, compared with them: missing.
	pool2, sink2 := usersDB(t, firebasescrypt.Params{})
	writeUserRecords(t, pool2, sink2, recs[:1])
	if got := mismatches(compareUsers(t, pool2, params, true, recs[:1])); got["a"] != both {
		t.Errorf("migrated without parameters: %v", got)
	}
}

func mustParams(t *testing.T, key, sep string, rounds, memCost int) firebasescrypt.Params {
	t.Helper()
	p, err := firebasescrypt.ParseParams(key, sep, rounds, memCost)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkNoSecrets(t *testing.T, where string, tr *TableReport) {
	t.Helper()
	var b bytes.Buffer
	doc := NewDocument("verify", []KindReport{{Kind: "user", Report: &Report{Tables: []*TableReport{tr}}}})
	for _, w := range []func() error{func() error { return doc.WriteJSON(&b) }, func() error { return doc.WriteText(&b) }, func() error { return doc.WriteHTML(&b) }} {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := base64.StdEncoding.DecodeString(usersTestKey)
	hash, _ := base64.StdEncoding.DecodeString(usersTestHash)
	for _, s := range []string{usersTestKey, usersTestKey[:20], hex.EncodeToString(key)[:20], usersTestHash[:20], hex.EncodeToString(hash)[:20], usersTestSalt[:10], "Bw=="} {
		if strings.Contains(b.String(), s) {
			t.Errorf("%s: the report contains a secret or a hash (%.6s…)", where, s)
		}
	}
}

// TestUsersRejectsAsTheSinkDoes: a record the sink refuses is reported
// rejected with the sink's own reason, not compared.
func TestUsersRejectsAsTheSinkDoes(t *testing.T) {
	params := usersTestParams(t, 8)
	pool, sink := usersDB(t, params)
	bad := []record.Record{
		record.User{UID: "bad-hash", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: "no!base64", Salt: ""}}.Record("c"),
		record.User{UID: "bad-claims", CustomClaims: sp(`[1, 2]`)}.Record("c"),
		record.User{UID: "invalid", Invalid: "line 3 has 7 columns"}.Record("c"),
	}
	good := record.User{UID: "good"}.Record("c")
	var want []string
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		out, err := sink.Write(context.Background(), tx, bad)
		for i := range bad {
			want = append(want, bad[i].Key+": "+out.Rejects[i])
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	writeUserRecords(t, pool, sink, []record.Record{good})
	tr := compareUsers(t, pool, params, false, append(bad, good))
	var got []string
	for _, s := range tr.Samples {
		if s.Outcome == Rejected {
			got = append(got, s.Key+": "+s.Reason)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || tr.Rejected != 3 || tr.Matching != 1 || tr.Source != 1 {
		t.Fatalf("rejects %q (%+v); the sink's: %q", got, tr, want)
	}
}

// TestUsersListingOrderMerge merges a source in the Auth API's order (UTF-16
// code units) with a table holding uids whose byte order differs; extra
// and missing users are named.
func TestUsersListingOrderMerge(t *testing.T) {
	ctx := context.Background()
	pool, sink := usersDB(t, firebasescrypt.Params{})
	uids := []string{"ｚ-fullwidth", "😀-emoji", "z", "é", "\ue000", "a\U0010ffff", "Z"}
	var recs []record.Record
	for _, uid := range uids {
		recs = append(recs, record.User{UID: uid, DisplayName: sp(uid)}.Record("c"))
	}
	slices.SortFunc(recs, func(a, b record.Record) int { return firebaseauth.CompareUIDs(a.Key, b.Key) })
	writeUserRecords(t, pool, sink, recs)
	if tr := compareUsers(t, pool, firebasescrypt.Params{}, true, recs); !tr.Identical() || tr.Matching != int64(len(recs)) {
		t.Fatalf("%+v", tr)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM firebase_auth.users WHERE uid = '😀-emoji';
		INSERT INTO firebase_auth.users (uid, email_verified, disabled) VALUES ('𝄞-extra', false, false), ('ｙ-extra', false, false)`); err != nil {
		t.Fatal(err)
	}
	tr := compareUsers(t, pool, firebasescrypt.Params{}, true, recs)
	var got []string
	for _, s := range tr.Samples {
		got = append(got, s.Outcome+" "+s.Key)
	}
	slices.Sort(got)
	want := []string{"extra_in_target 𝄞-extra", "extra_in_target ｙ-extra", "missing_in_target 😀-emoji"}
	slices.Sort(want)
	if !slices.Equal(got, want) || tr.Matching != int64(len(recs)-1) {
		t.Fatalf("samples %q (%+v), want %q", got, tr, want)
	}
}

func TestCanonicalJSON(t *testing.T) {
	for _, c := range [][2]string{
		{`{"b":1,"a":[1.0,10e-1,0.1e1,100,1e2]}`, `{"a": [1, 1, 1, 100.0, 1E+2], "b": 1}`},
		{`{"n":-0.0,"m":0}`, `{"m":-0,"n":0e5}`},
		{`{"k":"\u00e9\"<"}`, `{"k":"é\"\u003c"}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"x":12345678901234567890123}`, `{"x":1.2345678901234567890123e22}`},
	} {
		a, okA := canonicalJSON([]byte(c[0]))
		b, okB := canonicalJSON([]byte(c[1]))
		if !okA || !okB || a != b {
			t.Errorf("%s → %q, %s → %q; want equal", c[0], a, c[1], b)
		}
	}
	for _, c := range [][2]string{{`{"n":1}`, `{"n":1.5}`}, {`{"n":1}`, `{"n":"1"}`}, {`{"n":10}`, `{"n":1}`}, {`{"a":[1,2]}`, `{"a":[2,1]}`}} {
		a, _ := canonicalJSON([]byte(c[0]))
		b, _ := canonicalJSON([]byte(c[1]))
		if a == b {
			t.Errorf("%s and %s both → %q", c[0], c[1], a)
		}
	}
	if _, ok := canonicalJSON([]byte(`{"a":1} x`)); ok {
		t.Error("trailing garbage accepted")
	}
}

// TestUsersOfEveryAlgorithmAndTheFirstLayout: users of other algorithms,
// with their own parameters or none, compare equal to what the sink wrote;
// and users in tables still of the first layout (before migrate upgrades
// them) compare equal too, their parameters read as the upgrade will
// convert them.
func TestUsersOfEveryAlgorithmAndTheFirstLayout(t *testing.T) {
	ctx := context.Background()
	params := usersTestParams(t, 8)
	pool, sink := usersDB(t, params)
	recs := []record.Record{
		fullUser("fb").Record("c"),
		record.User{UID: "pb", Password: &passwords.Credential{Algorithm: "PBKDF2_SHA256", Hash: "q83vEjRWeJCrze8SNFZ4kA==", Salt: "c2FsdA==",
			Params: map[string]string{"iterations": "1000", "key_length": "16"}}}.Record("c"),
		record.User{UID: "none", Password: &passwords.Credential{Algorithm: passwords.None}}.Record("c"),
	}
	slices.SortFunc(recs, func(a, b record.Record) int { return firebaseauth.UIDOrder.Compare(a.Key, b.Key) })
	writeUserRecords(t, pool, sink, recs)
	for _, ordered := range []bool{true, false} {
		if tr := compareUsers(t, pool, params, ordered, recs); !tr.Identical() || tr.Matching != 3 {
			t.Fatalf("ordered=%v: %+v %q", ordered, tr, tr.SampleLines())
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE firebase_auth.users SET password_parameters = '{"iterations": "1001", "key_length": "16"}' WHERE uid = 'pb'`); err != nil {
		t.Fatal(err)
	}
	if got := mismatches(compareUsers(t, pool, params, false, recs)); got["pb"] != "passwordParameters" || len(got) != 1 {
		t.Fatalf("other iterations: %v", got)
	}

	// Back to the first layout, with the Firebase user only.
	for _, q := range []string{
		`DELETE FROM firebase_auth.users WHERE uid <> 'fb'`,
		`ALTER TABLE firebase_auth.users DROP COLUMN password_parameters`,
		// The Firebase scrypt columns are there (the current layout keeps
		// them); the first layout had no check on them.
		`ALTER TABLE firebase_auth.hash_configs DROP CONSTRAINT hash_configs_firebase_scrypt_columns,
			ADD COLUMN IF NOT EXISTS signer_key bytea, ADD COLUMN IF NOT EXISTS salt_separator bytea,
			ADD COLUMN IF NOT EXISTS rounds integer, ADD COLUMN IF NOT EXISTS mem_cost integer`,
		`UPDATE firebase_auth.hash_configs SET algorithm = 'SCRYPT', signer_key = decode(parameters->>'signer_key', 'base64'),
			salt_separator = decode(parameters->>'salt_separator', 'base64'), rounds = (parameters->>'rounds')::integer, mem_cost = (parameters->>'mem_cost')::integer`,
		`ALTER TABLE firebase_auth.hash_configs DROP COLUMN parameters`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	fb := recs[slices.IndexFunc(recs, func(r record.Record) bool { return r.Key == "fb" })]
	for _, ordered := range []bool{true, false} {
		if tr := compareUsers(t, pool, params, ordered, []record.Record{fb}); !tr.Identical() || tr.Matching != 1 {
			t.Fatalf("first layout, ordered=%v: %+v %q", ordered, tr, tr.SampleLines())
		}
	}
	if got := mismatches(compareUsers(t, pool, usersTestParams(t, 7), true, []record.Record{fb})); got["fb"] != "hashConfigId,hashParameters" {
		t.Fatalf("first layout, other parameters: %v", got)
	}
}
