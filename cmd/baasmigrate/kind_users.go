package main

import (
	"context"
	"fmt"

	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// usersSchemaOption is where Auth users go.
var usersSchemaOption = plugin.Option{
	Name:    "users-schema",
	Help:    "PostgreSQL schema of the Auth users tables (users, provider_identities, mfa_factors, hash_configs); one per tenant.",
	Default: postgres.DefaultUsersSchema,
}

func init() {
	registerKind(&kindSpec{
		Kind:    record.KindUser,
		Options: append(append([]plugin.Option(nil), firebaseauth.Options...), usersSchemaOption),
		Build:   buildUsers,
	})
}

// buildUsers assembles the Firebase Auth → PostgreSQL job. The schema, the
// tenant and the hash configuration (by fingerprint, never its value) are
// the run's settings: an interrupted run resumes only with the same ones.
func buildUsers(ctx context.Context, env *buildEnv) (migration.Job, error) {
	hash, err := firebaseauth.HashParams(env.Config)
	if err != nil {
		return migration.Job{}, err
	}
	ex, err := firebaseauth.New(ctx, env.Config)
	if err != nil {
		return migration.Job{}, err
	}
	if hash.IsZero() {
		fmt.Fprintf(env.Stderr, "users: no password hash parameters (--%s, --%s, --%s, --%s): Firebase scrypt hashes are copied, "+
			"but cannot be verified until a run with them (add them and pass --restart; unchanged rows are not rewritten)\n",
			firebaseauth.HashSignerKeyOption.Name, firebaseauth.HashSaltSeparatorOption.Name,
			firebaseauth.HashRoundsOption.Name, firebaseauth.HashMemCostOption.Name)
	}
	schema := env.Config.String(usersSchemaOption.Name)
	sink := postgres.NewUsers(postgres.UsersConfig{Schema: schema, Hash: hash, Log: env.Log})
	return migration.Job{
		Kind: record.KindUser, Extractor: ex, Sink: sink,
		Config: map[string]string{
			"users-schema": schema,
			"auth-tenant":  env.Config.String(firebaseauth.TenantOption.Name),
			"hash-config":  sink.HashConfigID(),
		},
	}, nil
}
