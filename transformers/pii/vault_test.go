package pii

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestVault tokenizes through a real vault: the same value gets the same
// token whichever writer asks first (concurrent ones included), a token
// gives its value back, a rolled-back batch leaves no token, and a reader
// gives NoToken for a value never tokenized.
func TestVault(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	v := &Vault{}
	s := compile(t, testMapping, map[string]string{"K": "key"})
	doc := func(ssn string) []record.Record {
		return []record.Record{{Kind: record.KindDocument, Key: "people/x", Fields: map[string]record.Value{"ssn": record.String(ssn)}}}
	}
	// Before the vault exists, a reader finds nothing (and fails nothing).
	out, errs := s.Apply(ctx, doc("111"), v.Reader(pool))
	if errs[0] != nil || out[0].Fields["ssn"].StringValue() != NoToken {
		t.Fatalf("reader before the vault exists: %v, %v", out[0].Fields["ssn"], errs[0])
	}
	if err := v.Ensure(ctx, pool); err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, 8)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				out, errs := s.Apply(ctx, doc("123-45-6789"), v.Writer(tx))
				if errs[0] != nil {
					return errs[0]
				}
				tokens[i] = out[0].Fields["ssn"].StringValue()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		if tok != tokens[0] || len(tok) != 36 {
			t.Fatalf("tokens differ or are malformed: %q", tokens)
		}
	}
	value, ok, err := Detokenize(ctx, pool, tokens[0])
	if err != nil || !ok || value != "123-45-6789" {
		t.Errorf("Detokenize = %q, %v, %v", value, ok, err)
	}
	// A batch rolled back takes its new tokens with it.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = s.Apply(ctx, doc("999"), v.Writer(tx))
	rolled := out[0].Fields["ssn"].StringValue()
	tx.Rollback(ctx)
	if _, ok, _ := Detokenize(ctx, pool, rolled); ok {
		t.Error("a rolled-back token stayed in the vault")
	}
	out, errs = s.Apply(ctx, doc("123-45-6789"), v.Reader(pool))
	if errs[0] != nil || out[0].Fields["ssn"].StringValue() != tokens[0] {
		t.Errorf("reader: %v, %v", out[0].Fields["ssn"], errs[0])
	}
	out, _ = s.Apply(ctx, doc("never"), v.Reader(pool))
	if out[0].Fields["ssn"].StringValue() != NoToken {
		t.Errorf("reader of an unknown value: %v", out[0].Fields["ssn"])
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM baasmigrate_vault.tokens").Scan(&n); err != nil || n != 1 {
		t.Errorf("vault rows: %d, %v", n, err)
	}
}

// TestVaultElsewhere: a vault in its own database is created on first use
// and written outside the batch's transaction (token first, idempotent).
func TestVaultElsewhere(t *testing.T) {
	ctx := context.Background()
	target, vaultDB := testenv.NewPool(t), testenv.NewPool(t)
	v := &Vault{DB: vaultDB}
	s := compile(t, testMapping, map[string]string{"K": "key"})
	rec := []record.Record{{Kind: record.KindDocument, Key: "people/x", Fields: map[string]record.Value{"ssn": record.String("abc")}}}
	tx, err := target.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, errs := s.Apply(ctx, rec, v.Writer(tx))
	tx.Rollback(ctx)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	tok := out[0].Fields["ssn"].StringValue()
	if value, ok, err := Detokenize(ctx, vaultDB, tok); err != nil || !ok || value != "abc" {
		t.Errorf("vault database: %q, %v, %v", value, ok, err)
	}
	var exists bool
	if err := target.QueryRow(ctx, "SELECT to_regclass('baasmigrate_vault.tokens') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Errorf("the target database has a vault: %v, %v", exists, err)
	}
	again, _ := s.Apply(ctx, rec, v.Writer(target))
	if again[0].Fields["ssn"].StringValue() != tok {
		t.Error("the retried batch got another token")
	}
}
