package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

func TestUsersDeleteRemovesIdentitiesAndFactors(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	bob := alice()
	bob.UID = "Bob"
	writeUsers(t, pool, s, alice().Record("Alice"), bob.Record("Bob"))
	out := inTx(t, pool, func(tx pgx.Tx) (loaders.Outcome, error) {
		return s.Delete(ctx, tx, []string{"Alice", "nul\x00uid", "Nobody"}, time.Now(), false)
	})
	if len(out.Rejects) != 1 || !strings.Contains(out.Rejects[1], "NUL") {
		t.Errorf("rejects %v; want the uid with a NUL byte, with the reason", out.Rejects)
	}
	want := map[string]int64{"firebase_auth.users": 1, "firebase_auth.provider_identities": 2, "firebase_auth.mfa_factors": 1}
	for k, v := range want {
		if out.Changed[k] != v {
			t.Errorf("changed %v; want %v", out.Changed, want)
			break
		}
	}
	for _, table := range []string{"users", "provider_identities", "mfa_factors"} {
		if n := count(t, pool, `SELECT count(*) FROM firebase_auth.`+table+` WHERE uid = 'Alice'`); n != 0 {
			t.Errorf("%s keeps %d rows of the deleted user", table, n)
		}
		if n := count(t, pool, `SELECT count(*) FROM firebase_auth.`+table+` WHERE uid = 'Bob'`); n == 0 {
			t.Errorf("%s lost the rows of Bob", table)
		}
	}
}

func TestUsersSoftDeleteIsInvisibleToReaders(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	plain := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	if err := plain.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	bob := alice()
	bob.UID = "Bob"
	writeUsers(t, pool, plain, alice().Record("Alice"), bob.Record("Bob"))

	s := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	s.SetSoftDeletes(true)
	planned, err := s.PlannedDDL(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(planned) != 1 || !strings.Contains(planned[0].SQL, `ADD COLUMN IF NOT EXISTS "_deleted_at"`) {
		t.Fatalf("plan with soft deletes over existing tables: %+v; want the column added", planned)
	}
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if planned, err := s.PlannedDDL(ctx, pool); err != nil || len(planned) != 0 {
		t.Fatalf("prepared, plan still lists %+v (%v)", planned, err)
	}
	at := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	inTx(t, pool, func(tx pgx.Tx) (loaders.Outcome, error) { return s.Delete(ctx, tx, []string{"Alice"}, at, true) })
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.provider_identities WHERE uid = 'Alice'`); n != 2 {
		t.Errorf("soft-deleted, Alice has %d identities left; want them kept", n)
	}
	var nf *postgres.NoUserError
	if _, err := postgres.ReadUser(ctx, pool, "firebase_auth", "Alice"); !errors.As(err, &nf) {
		t.Errorf("ReadUser of a soft-deleted user: %v; want a NoUserError", err)
	}
	var seen []string
	if err := postgres.EachUser(ctx, pool, "firebase_auth", func(u *postgres.StoredUser) error { seen = append(seen, u.UID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != "Bob" {
		t.Errorf("EachUser read %q; want only Bob", seen)
	}
	// A sink without soft deletes writing Alice again brings her back.
	writeUsers(t, pool, postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)}), alice().Record("Alice"))
	if _, err := postgres.ReadUser(ctx, pool, "firebase_auth", "Alice"); err != nil {
		t.Errorf("written again, Alice: %v", err)
	}
}
