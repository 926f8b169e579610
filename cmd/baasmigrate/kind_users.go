package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
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
		Options: []plugin.Option{usersSchemaOption, shareTablesOption},
		Build:   buildUsers,
		Compare: compareUsers,
	})
}

// buildUsers assembles the users → PostgreSQL job. The schema, the tenant
// and the shared hash parameters (by fingerprint, never their value) are
// the run's settings: an interrupted run resumes only with the same ones.
func buildUsers(ctx context.Context, env *buildEnv) (migration.Job, error) {
	_, ex, err := env.Extractor(ctx, record.KindUser)
	if err != nil {
		return migration.Job{}, err
	}
	shared, err := sharedHash(ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	schema := env.Config.String(usersSchemaOption.Name)
	sink := postgres.NewUsers(postgres.UsersConfig{Schema: schema, SharedHash: shared, Log: env.Log})
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
	if shared == nil {
		warnNoSharedHash(env.Stderr, ex, func(hashes string) string {
			return hashes + " are copied, but cannot be verified until a run with them " +
				"(add them and pass --restart; unchanged rows are not rewritten)"
		})
	}
	return migration.Job{
		Kind: record.KindUser, Extractor: ex, Sink: sink,
		Config: runConfig(ex, map[string]string{"users-schema": schema, "hash-config": sink.HashConfigID()}),
	}, nil
}

// compareUsers prepares plan and verify for users: the same source, schema
// and shared hash parameters as migrate, so that each user is compared
// with exactly the rows migrate would write for it, the parameters its
// hash references included. Users of a source with a key order
// (extractors.KeyOrderer) are merged with the table read in that order;
// others are looked up by uid.
func compareUsers(ctx context.Context, env *buildEnv) (*comparer, error) {
	_, ex, err := env.Extractor(ctx, record.KindUser)
	if err != nil {
		return nil, err
	}
	shared, err := sharedHash(ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	if shared == nil {
		warnNoSharedHash(env.Stderr, ex, func(string) string {
			return "the target's users are expected to reference none, so users migrated with parameters " +
				"show hashConfigId and hashParameters as different; give the project's parameters to compare them"
		})
	}
	cfg := postgres.UsersConfig{Schema: env.Config.String(usersSchemaOption.Name), SharedHash: shared}
	sink := postgres.NewUsers(cfg)
	owner, err := usersOwner(env, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	sink.SetOwner(owner)
	var order record.KeyOrder
	if ko, ok := ex.(extractors.KeyOrderer); ok {
		order = ko.KeyOrder()
	}
	return &comparer{
		Extractor: ex,
		Adapter:   diff.NewUsers(cfg, order),
		DDL: func(ctx context.Context) ([]diff.DDL, error) {
			stmts, err := sink.PlannedDDL(ctx, env.Pool)
			return diff.DDLFrom(stmts), err
		},
	}, nil
}

// sharedHash returns the shared hash parameters ex offers
// (extractors.SharedHasher); nil when it offers none.
func sharedHash(ex extractors.Extractor) (*passwords.Credential, error) {
	sh, ok := ex.(extractors.SharedHasher)
	if !ok {
		return nil, nil
	}
	return sh.SharedHash()
}

// warnNoSharedHash tells, for an extractor that takes shared hash
// parameters but was given none, what follows: consequence of the hashes
// concerned ("Firebase scrypt hashes").
func warnNoSharedHash(w io.Writer, ex extractors.Extractor, consequence func(hashes string) string) {
	sh, ok := ex.(extractors.SharedHasher)
	if !ok {
		return
	}
	hashes, options := sh.SharedHashMissing()
	fmt.Fprintf(w, "users: no password hash parameters (%s): %s\n", strings.Join(options, ", "), consequence(hashes))
}

// usersOwner is the owner the users sink claims its tables for: the
// source the users belong to (a Firebase project and tenant), so that the
// users of another, whose uids would overwrite these, are refused. An
// extractor whose claim depends on what the user named explicitly (an
// export file counts as its project's only when the project was named)
// says so through extractors.TargetOwner, with a hint for the refusal.
func usersOwner(env *buildEnv, ex extractors.Extractor) (postgres.Owner, error) {
	o, err := tableOwner(env.Config, ex)
	if err != nil {
		return o, err
	}
	if to, ok := ex.(extractors.TargetOwner); ok {
		source, hint := to.TargetOwner(env.Given)
		if source != "" {
			o.Source = source
		}
		o.Hint = hint
	}
	return o, nil
}
