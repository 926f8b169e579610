package postgres

import (
	"context"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestPrimaryKeyIndexDoesNotTakeATableName: a collection "pkey" under
// "users" gives a table users_pkey, the name PostgreSQL would give the
// users table's primary key index.
func TestPrimaryKeyIndexDoesNotTakeATableName(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("users/u1", nil)
	in.Observe("users/u1/pkey/k1", nil)
	m := in.Mapping()
	if m.TableFor("users/{}/pkey") == nil || m.TableFor("users/{}/pkey").Name != "users_pkey" {
		t.Fatalf("unexpected mapping: %+v", m.Tables)
	}
	if err := ApplySchema(ctx, pool, m); err != nil {
		t.Fatal(err)
	}
	if err := ApplySchema(ctx, pool, m); err != nil {
		t.Fatalf("second ApplySchema: %v", err)
	}
}
