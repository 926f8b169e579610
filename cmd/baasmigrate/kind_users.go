package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// usersSchemaOption is where Auth users go.
var usersSchemaOption = plugin.Option{
	Name: "users-schema",
	Help: "PostgreSQL schema of the Auth users tables (users, provider_identities, mfa_factors, hash_configs); one per tenant. " +
		"Default: the source's own (see docs/sources.md), else this; auth commands take the one schema the target's migrations wrote users to.",
	Default: postgres.DefaultUsersSchema,
}

// Users targets: baasmigrate's own users tables, or Supabase Auth's.
const (
	usersTargetBaasmigrate = "baasmigrate"
	usersTargetSupabase    = "supabase"
)

// usersTargetOption chooses where Auth users go.
var usersTargetOption = plugin.Option{
	Name: "users-target",
	Help: "Where Auth users go: baasmigrate (its own users tables, in --users-schema) or supabase " +
		"(Supabase Auth's auth.users and auth.identities in the --postgres database, which must hold them; see docs/auth.md).",
	Default: usersTargetBaasmigrate,
}

// usersEmailConfirmOption is auth export's --email-confirm, for the
// Supabase target.
var usersEmailConfirmOption = plugin.Option{
	Name: "email-confirm",
	Help: "With --users-target supabase, which e-mail addresses get an email_confirmed_at: all (users sign in as on Firebase, " +
		"where unverified addresses sign in too; Supabase Auth refuses password sign-in to an unconfirmed address) or verified (Firebase's emailVerified).",
	Default: authexport.ConfirmAll,
}

func init() {
	registerKind(&kindSpec{
		Kind:    record.KindUser,
		Options: []plugin.Option{usersSchemaOption, shareTablesOption, usersTargetOption, usersEmailConfirmOption},
		Build:   buildUsers,
		Compare: compareUsers,
	})
}

// buildUsers assembles the users → PostgreSQL job. The schema, the tenant
// and the shared hash parameters (by fingerprint, never their value) are
// the run's settings: an interrupted run resumes only with the same ones.
func buildUsers(ctx context.Context, env *buildEnv) (migration.Job, error) {
	target, err := usersTarget(env)
	if err != nil {
		return migration.Job{}, err
	}
	ex, shared, err := usersExtractor(ctx, env)
	if err != nil {
		return migration.Job{}, err
	}
	if err := checkUsersSystem(ex, target); err != nil {
		return migration.Job{}, err
	}
	if target == usersTargetSupabase {
		return buildSupabaseUsers(env, ex, shared)
	}
	schema := usersSchema(env, ex)
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
	target, err := usersTarget(env)
	if err != nil {
		return nil, err
	}
	if target == usersTargetSupabase && env.Command != "verify" {
		return nil, fmt.Errorf("%s cannot compare users with Supabase Auth's tables (--users-target supabase): verify can, after migrate; "+
			"plan does not (see docs/auth.md, Loading Supabase Auth directly)", env.Command)
	}
	ex, shared, err := usersExtractor(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := checkUsersSystem(ex, target); err != nil {
		return nil, err
	}
	if target == usersTargetSupabase {
		return compareSupabaseUsers(env, ex, shared)
	}
	if shared == nil {
		warnNoSharedHash(env.Stderr, ex, func(string) string {
			return "the target's users are expected to reference none, so users migrated with parameters " +
				"show hashConfigId and hashParameters as different; give the project's parameters to compare them"
		})
	}
	cfg := postgres.UsersConfig{Schema: usersSchema(env, ex), SharedHash: shared}
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

// compareSupabaseUsers prepares verify for users loaded into Supabase
// Auth: the same e-mail confirmation rule and shared hash parameters as
// migrate, so that each user is compared with exactly the rows migrate
// would write for it (diff.SupabaseUsers).
func compareSupabaseUsers(env *buildEnv, ex extractors.Extractor, shared *passwords.Credential) (*comparer, error) {
	if shared == nil {
		warnNoSharedHash(env.Stderr, ex, func(hashes string) string {
			return "users with " + hashes + " show as rejected: migrate loads them only with the project's parameters"
		})
	}
	a, err := diff.NewSupabaseUsers(postgres.SupabaseUsersConfig{EmailConfirm: env.Config.String(usersEmailConfirmOption.Name), SharedHash: shared})
	if err != nil {
		ex.Close()
		return nil, fmt.Errorf("--email-confirm: %w", err)
	}
	return &comparer{Extractor: ex, Adapter: a}, nil
}

// usersSchema is the schema of ex's users: --users-schema when the user
// gave it, else the one ex's source keeps its users in
// (extractors.UsersSchemaDefaulter), else --users-schema's default.
func usersSchema(env *buildEnv, ex extractors.Extractor) string {
	if d, ok := ex.(extractors.UsersSchemaDefaulter); ok && (env.Given == nil || !env.Given(usersSchemaOption.Name)) {
		return d.DefaultUsersSchema()
	}
	return env.Config.String(usersSchemaOption.Name)
}

// migratedUsersSchema is the schema of the users commands that read
// migrated users (auth verify-password, auth export) work on:
// --users-schema when given; else the schema the target's recorded users
// runs wrote to when there is exactly one; else, when there are none or
// one of them is --users-schema's default, that default (as before
// sources had schemas of their own). Several others: an error naming
// them.
func migratedUsersSchema(ctx context.Context, f *pflag.FlagSet, pool *pgxpool.Pool, cfg plugin.Config) (string, error) {
	schema := cfg.String(usersSchemaOption.Name)
	if optionGiven(f)(usersSchemaOption.Name) {
		return schema, nil
	}
	schemas, err := postgres.UsersSchemas(ctx, pool)
	if err != nil {
		return "", err
	}
	switch {
	case len(schemas) == 1:
		return schemas[0], nil
	case len(schemas) == 0 || slices.Contains(schemas, schema):
		return schema, nil
	}
	return "", fmt.Errorf("users were migrated into several schemas (%s): name one with --users-schema", strings.Join(schemas, ", "))
}

// connectUsersTarget connects to the target of cfg's --postgres-url and
// finds the schema of its migrated users (migratedUsersSchema). The
// caller closes the pool; on an error there is none to close.
func connectUsersTarget(ctx context.Context, f *pflag.FlagSet, cfg plugin.Config) (*pgxpool.Pool, string, error) {
	pool, err := connectTarget(ctx, cfg.String(postgresOption.Name), 1, 0)
	if err != nil {
		return nil, "", err
	}
	schema, err := migratedUsersSchema(ctx, f, pool, cfg)
	if err != nil {
		pool.Close()
		return nil, "", err
	}
	return pool, schema, nil
}

// checkUsersSystem refuses to load users read from an auth system's own
// tables into that system (extractors.UsersSystemer), and closes ex then.
func checkUsersSystem(ex extractors.Extractor, target string) error {
	us, ok := ex.(extractors.UsersSystemer)
	if !ok || us.UsersSystem() != target {
		return nil
	}
	ex.Close()
	return fmt.Errorf("--users-target %s: these users are %s's own already, and this target is built for users of other platforms "+
		"(it gives each user a new id and maps providers), so they would not arrive as they are; not supported: "+
		"use --users-target %s (their own tables, hashes verifiable) or copy the auth tables with your database's tools",
		target, us.UsersSystem(), usersTargetBaasmigrate)
}

// usersTarget returns --users-target, checked.
func usersTarget(env *buildEnv) (string, error) {
	target := env.Config.String(usersTargetOption.Name)
	switch target {
	case usersTargetBaasmigrate, "":
		return usersTargetBaasmigrate, nil
	case usersTargetSupabase:
		if env.Given != nil && env.Given(usersSchemaOption.Name) {
			return "", fmt.Errorf("--users-schema names baasmigrate's users tables; with --users-target supabase users go to Supabase Auth's auth schema")
		}
		return target, nil
	}
	return "", fmt.Errorf("--users-target %q: want %s or %s", target, usersTargetBaasmigrate, usersTargetSupabase)
}

// buildSupabaseUsers assembles the users → Supabase Auth job. The target,
// the e-mail confirmation rule and the shared hash parameters (by
// fingerprint) are the run's settings: an interrupted run resumes only
// with the same ones, and never into baasmigrate's own tables (whose runs
// have no users-target setting).
func buildSupabaseUsers(env *buildEnv, ex extractors.Extractor, shared *passwords.Credential) (migration.Job, error) {
	confirm := env.Config.String(usersEmailConfirmOption.Name)
	sink, err := postgres.NewSupabaseUsers(postgres.SupabaseUsersConfig{EmailConfirm: confirm, SharedHash: shared})
	if err != nil {
		ex.Close()
		return migration.Job{}, fmt.Errorf("--email-confirm: %w", err)
	}
	if shared == nil {
		warnNoSharedHash(env.Stderr, ex, func(hashes string) string {
			return "users with " + hashes + " are rejected: Supabase Auth verifies them only with the project's parameters " +
				"(add them and run again; the users loaded are not rewritten)"
		})
	}
	hashID := postgres.NewUsers(postgres.UsersConfig{SharedHash: shared}).HashConfigID()
	return migration.Job{
		Kind: record.KindUser, Extractor: ex, Sink: sink,
		Config: runConfig(ex, map[string]string{"users-target": usersTargetSupabase, "supabase-schema": postgres.SupabaseSchema,
			"email-confirm": confirm, "hash-config": hashID}),
	}, nil
}

// usersExtractor builds the source's extractor of users and returns it
// with the shared hash parameters it offers (extractors.SharedHasher; nil
// when it offers none). On error nothing is left open.
func usersExtractor(ctx context.Context, env *buildEnv) (extractors.Extractor, *passwords.Credential, error) {
	_, ex, err := env.Extractor(ctx, record.KindUser)
	if err != nil {
		return nil, nil, err
	}
	sh, ok := ex.(extractors.SharedHasher)
	if !ok {
		return ex, nil, nil
	}
	shared, err := sh.SharedHash()
	if err != nil {
		ex.Close()
		return nil, nil, err
	}
	return ex, shared, nil
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
