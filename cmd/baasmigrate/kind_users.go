package main

import (
	"context"
	"fmt"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebase"
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
		Options: append(append([]plugin.Option(nil), firebaseauth.Options...), usersSchemaOption, shareTablesOption),
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
	schema := env.Config.String(usersSchemaOption.Name)
	sink := postgres.NewUsers(postgres.UsersConfig{Schema: schema, Hash: hash, Log: env.Log})
	owner, err := usersOwner(env, ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	sink.SetOwner(owner)
	// Refuse before the run is recorded; Prepare checks again, atomically.
	if err := postgres.CheckTableOwners(ctx, env.Pool, owner, sink.Tables()); err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	if hash.IsZero() {
		fmt.Fprintf(env.Stderr, "users: no password hash parameters (--%s, --%s, --%s, --%s): Firebase scrypt hashes are copied, "+
			"but cannot be verified until a run with them (add them and pass --restart; unchanged rows are not rewritten)\n",
			firebaseauth.HashSignerKeyOption.Name, firebaseauth.HashSaltSeparatorOption.Name,
			firebaseauth.HashRoundsOption.Name, firebaseauth.HashMemCostOption.Name)
	}
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
	owner, err := usersOwner(env, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	sink.SetOwner(owner)
	return &comparer{
		Extractor: ex,
		Adapter:   diff.NewUsers(cfg, firebaseauth.ListsInUIDOrder(ex)),
		DDL: func(ctx context.Context) ([]diff.DDL, error) {
			stmts, err := sink.PlannedDDL(ctx, env.Pool)
			return diff.DDLFrom(stmts), err
		},
	}, nil
}

// usersOwner is the owner the users sink claims its tables for: the
// Firebase project (and tenant) the users belong to, so that the Auth API
// and every export of one project load into the same tables, while the
// users of another project or tenant, whose uids would overwrite these, are
// refused. The Auth API names its project. An export file does not say
// which project it comes from: it counts as an export of the project
// --firebase-project names when the user gave that on the command line or
// in --config — not when it only comes from GCLOUD_PROJECT or
// GOOGLE_CLOUD_PROJECT, which name whatever project the shell works on
// (Cloud Shell sets one) — and is otherwise a source of its own, named by
// its path, with a hint in a refusal.
func usersOwner(env *buildEnv, ex extractors.Extractor) (postgres.Owner, error) {
	o, err := tableOwner(env.Config, ex)
	if err != nil || env.Config.String(firebaseauth.ExportOption.Name) == "" {
		return o, err
	}
	project := env.Config.String(firebase.ProjectOption.Name)
	if project != "" && env.Given != nil && env.Given(firebase.ProjectOption.Name) {
		o.Source = firebaseauth.ProjectSource(project, env.Config.String(firebaseauth.TenantOption.Name))
		return o, nil
	}
	o.Hint = fmt.Sprintf("An export file does not say which project it comes from: it is a source of its own unless --%[1]s names its project "+
		"(on the command line or in --config; GCLOUD_PROJECT and GOOGLE_CLOUD_PROJECT are not taken for it). "+
		"If this file is an export of the project whose users these tables hold, pass --%[1]s with that project's ID.",
		firebase.ProjectOption.Name)
	return o, nil
}
