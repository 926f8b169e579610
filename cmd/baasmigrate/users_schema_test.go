package main

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// TestMigratedUsersSchema: without --users-schema, the auth commands use
// the schema the target's recorded users runs wrote to when there is one;
// firebase_auth (the option's default) when there is no state, no such
// run, or it is one of several; and name the schemas when several others
// are recorded. --users-schema always wins.
func TestMigratedUsersSchema(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	resolve := func(flag string) (string, error) {
		t.Helper()
		f := pflag.NewFlagSet("auth", pflag.ContinueOnError)
		addOptionFlags(f, []plugin.Option{usersSchemaOption})
		if flag != "" {
			if err := f.Parse([]string{"--users-schema", flag}); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := pluginConfig(f, []plugin.Option{usersSchemaOption})
		if err != nil {
			t.Fatal(err)
		}
		return migratedUsersSchema(ctx, f, pool, cfg)
	}
	check := func(what, flag, want string) {
		t.Helper()
		got, err := resolve(flag)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", what, got, err, want)
		}
	}
	check("no state", "", postgres.DefaultUsersSchema)
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	check("no users run", "", postgres.DefaultUsersSchema)
	run := func(schema string) {
		t.Helper()
		r, err := state.StartRun(ctx, "user src-"+schema, record.KindUser, map[string]string{"users-schema": schema}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := state.FinishRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	run("supabase_users")
	check("one recorded schema", "", "supabase_users")
	check("--users-schema given", "tenant_b", "tenant_b")
	run("other_users")
	if _, err := resolve(""); err == nil || !strings.Contains(err.Error(), "other_users, supabase_users") || !strings.Contains(err.Error(), "--users-schema") {
		t.Errorf("two recorded schemas: %v; want both named and --users-schema asked for", err)
	}
	run(postgres.DefaultUsersSchema)
	check("the default among several", "", postgres.DefaultUsersSchema)
}
