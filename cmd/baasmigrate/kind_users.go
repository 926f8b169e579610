package main

import (
	"context"
	"fmt"

	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/internal/diff"
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
		Compare: compareUsers,
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

// compareUsers prepares plan and verify for users: the same source, schema
// and hash parameters as migrate, so that each user is compared with
// exactly the rows migrate would write for it, the parameters its hash
// references included. Users from the Auth API come in uid order and are
// merged with the table; users from a file are looked up by uid.
func compareUsers(ctx context.Context, env *buildEnv) (*comparer, error) {
	hash, err := firebaseauth.HashParams(env.Config)
	if err != nil {
		return nil, err
	}
	ex, err := firebaseauth.New(ctx, env.Config)
	if err != nil {
		return nil, err
	}
	if hash.IsZero() {
		fmt.Fprintf(env.Stderr, "users: no password hash parameters (--%s, --%s, --%s, --%s): the target's users are expected to reference none, "+
			"so users migrated with parameters show hashConfigId and hashParameters as different; give the project's parameters to compare them\n",
			firebaseauth.HashSignerKeyOption.Name, firebaseauth.HashSaltSeparatorOption.Name,
			firebaseauth.HashRoundsOption.Name, firebaseauth.HashMemCostOption.Name)
	}
	cfg := postgres.UsersConfig{Schema: env.Config.String(usersSchemaOption.Name), Hash: hash}
	sink := postgres.NewUsers(cfg)
	return &comparer{
		Extractor: ex,
		Adapter:   diff.NewUsers(cfg, firebaseauth.ListsInUIDOrder(ex)),
		DDL: func(ctx context.Context) ([]diff.DDL, error) {
			stmts, err := sink.PlannedDDL(ctx, env.Pool)
			out := make([]diff.DDL, len(stmts))
			for i, s := range stmts {
				out[i] = diff.DDL{What: s.What, SQL: s.SQL}
			}
			return out, err
		},
	}, nil
}
