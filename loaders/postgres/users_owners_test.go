package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// TestUsersTablesBelongToTheirProject: a second project's users sink is
// refused the users schema the first project's job created, by Prepare
// (which then stores nothing, not even its hash parameters) and by
// PlannedDDL, naming the tables and both sources; the first project keeps
// its tables, another schema is free, and with Share the second goes ahead.
func TestUsersTablesBelongToTheirProject(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	a := postgres.Owner{Source: "firebaseauth:projects/a"}
	b := postgres.Owner{Source: "firebaseauth:projects/b", Hint: "a hint for b"}
	sinkA := postgres.NewUsers(postgres.UsersConfig{})
	sinkA.SetOwner(a)
	if err := sinkA.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	sinkB := postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
	sinkB.SetOwner(b)
	err := sinkB.Prepare(ctx, pool)
	for _, want := range []string{a.Source, b.Source, `"firebase_auth"."users"`, `"firebase_auth"."provider_identities"`, "--share-target", b.Hint} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second project's Prepare: %v; want a refusal naming %s", err, want)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.hash_configs`); n != 0 {
		t.Fatalf("the refused job stored %d hash configurations", n)
	}
	if _, err := sinkB.PlannedDDL(ctx, pool); err == nil || !strings.Contains(err.Error(), a.Source) {
		t.Fatalf("PlannedDDL: %v; want the refusal", err)
	}
	if err := sinkA.Prepare(ctx, pool); err != nil {
		t.Fatalf("the owner's second Prepare: %v", err)
	}
	other := postgres.NewUsers(postgres.UsersConfig{Schema: "tenant_b"})
	other.SetOwner(b)
	if err := other.Prepare(ctx, pool); err != nil {
		t.Fatalf("another schema: %v", err)
	}
	sinkB.SetOwner(postgres.Owner{Source: b.Source, Share: true})
	if _, err := sinkB.PlannedDDL(ctx, pool); err != nil {
		t.Fatalf("PlannedDDL with Share: %v", err)
	}
	if err := sinkB.Prepare(ctx, pool); err != nil {
		t.Fatalf("Prepare with Share: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM baasmigrate.table_owners WHERE schema_name = 'firebase_auth' AND table_name = 'users'`); n != 2 {
		t.Fatalf("firebase_auth.users has %d owners; want both projects", n)
	}
}
