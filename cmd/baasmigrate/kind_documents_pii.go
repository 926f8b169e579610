package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

// vaultOption is --vault: where the mapping's tokenize transforms keep
// their tokens (docs/compliance.md, "Field transforms").
var vaultOption = plugin.Option{
	Name: "vault",
	Help: "PostgreSQL connection string of the database holding the token vault of tokenize transforms (table baasmigrate_vault.tokens); " +
		"default: the target database, tokens written in the same transaction as the rows.",
	Secret: true,
}

var (
	vaultsMu sync.Mutex
	vaults   = map[string]*pii.Vault{}
)

// documentsVault returns the vault --vault names (one pool per connection
// string for the process), or the target database's.
func documentsVault(ctx context.Context, env *buildEnv) (*pii.Vault, error) {
	dsn := env.Config.String(vaultOption.Name)
	if dsn == "" {
		return &pii.Vault{}, nil
	}
	vaultsMu.Lock()
	defer vaultsMu.Unlock()
	if v := vaults[dsn]; v != nil {
		return v, nil
	}
	// Read as the target's string is (an error quotes nothing of it); the
	// pool connects when a token is first looked up or written.
	cfg, err := postgres.ParseConnString(dsn)
	if err != nil {
		return nil, fmt.Errorf("--vault: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--vault: %w", err)
	}
	v := &pii.Vault{DB: pool}
	vaults[dsn] = v
	return v, nil
}

// useVault gives a documents sink and adapter the vault of tokenize
// transforms: the sink writes tokens, the adapter (verify, plan, sync's
// comparisons) only looks them up.
func useVault(ctx context.Context, env *buildEnv, sink any, a *diff.Documents) error {
	v, err := documentsVault(ctx, env)
	if err != nil {
		return err
	}
	if s, ok := sink.(interface{ SetVault(*pii.Vault) }); ok {
		s.SetVault(v)
	}
	if a != nil {
		a.SetTokens(ctx, v.Reader(env.Pool))
	}
	return nil
}
