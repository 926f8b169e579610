package main

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

// TestCheckPasswordDispatchesOnTheAlgorithm: verify-password checks each
// stored credential with its own algorithm, and says why it cannot check
// the others (exit 2 in runVerifyPassword).
func TestCheckPasswordDispatchesOnTheAlgorithm(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	// firebase/scrypt's published vector: "user1password".
	params, err := firebasescrypt.ParseParams(scrypttest.SignerKey, "Bw==", 8, 14)
	if err != nil {
		t.Fatal(err)
	}
	fb := &passwords.Credential{Algorithm: passwords.FirebaseScrypt,
		Hash: scrypttest.Hash, Salt: scrypttest.Salt}
	bc, _ := bcrypt.GenerateFromPassword([]byte("bcrypt pw"), bcrypt.MinCost)
	rawSalt, _ := firebasescrypt.DecodeBase64(fb.Salt)
	rawHash, _ := firebasescrypt.DecodeBase64(fb.Hash)
	encoded, err := params.KratosHash(rawSalt, rawHash)
	if err != nil {
		t.Fatal(err)
	}
	users := []record.User{
		{UID: "fb", Password: fb},
		{UID: "bc", Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: string(bc)}},
		{UID: "emu", Password: &passwords.Credential{Algorithm: passwords.EmulatorFake, Hash: "fakeHash:salt=s:password=emu pw", Salt: "s"}},
		{UID: "none", Password: &passwords.Credential{Algorithm: passwords.None}},
		{UID: "unknown", Password: &passwords.Credential{Algorithm: passwords.Unknown, Hash: "whatever"}},
		{UID: "enc", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: encoded}},
		{UID: "oauth", Providers: []record.Provider{{ProviderID: "google.com", RawID: "g"}}},
	}
	load := func(schema string, shared *passwords.Credential, us []record.User) {
		t.Helper()
		sink := postgres.NewUsers(postgres.UsersConfig{Schema: schema, SharedHash: shared})
		if err := sink.Prepare(ctx, pool); err != nil {
			t.Fatal(err)
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var recs []record.Record
		for _, u := range us {
			recs = append(recs, u.Record(""))
		}
		if out, err := sink.Write(ctx, tx, recs); err != nil || len(out.Rejects) > 0 {
			t.Fatalf("%v %v", out.Rejects, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	load("with_params", firebaseauth.HashCredential(params), users)
	load("no_params", nil, users[:1])
	// A malformed bcrypt hash where no hash parameters were given: an
	// error about the hash, not about parameters.
	if _, err := pool.Exec(ctx, `INSERT INTO no_params.users (uid, email_verified, disabled, password_algorithm, password_hash_verbatim, password_salt_verbatim)
		VALUES ('badbc', false, false, 'BCRYPT', '$2b$not-bcrypt', '')`); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		schema, uid, password string
		match                 bool
		err                   string
	}{
		{"with_params", "fb", "user1password", true, ""},
		{"with_params", "fb", "user2password", false, ""},
		{"with_params", "bc", "bcrypt pw", true, ""},
		{"with_params", "bc", "bcrypt pW", false, ""},
		{"with_params", "enc", "user1password", true, ""},
		{"with_params", "enc", "user2password", false, ""},
		{"with_params", "emu", "emu pw", true, ""},
		{"with_params", "emu", "other", false, ""},
		{"with_params", "none", "x", false, "its source exports none (NONE)"},
		{"with_params", "unknown", "x", false, "unknown algorithm"},
		{"with_params", "oauth", "x", false, "has no password (signs in with: google.com)"},
		{"with_params", "nobody", "x", false, `no user with uid "nobody" in schema "with_params"`},
		{"no_params", "fb", "user1password", false, "the migration was given no hash parameters"},
		{"no_params", "fb", "user1password", false, "--hash-signer-key, --hash-salt-separator, --hash-rounds, --hash-mem-cost"},
		{"no_params", "badbc", "x", false, "checking the BCRYPT password"},
	} {
		ok, err := checkPassword(ctx, pool, c.schema, c.uid, []byte(c.password))
		if c.err == "" && (err != nil || ok != c.match) {
			t.Errorf("%s/%s: %v, %v; want %v", c.schema, c.uid, ok, err, c.match)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s/%s: %v, %v; want an error saying %q", c.schema, c.uid, ok, err, c.err)
		}
		if err != nil && strings.Contains(err.Error(), "jxspr8Ki0RYycVU8") {
			t.Errorf("%s/%s: the error quotes the signer key", c.schema, c.uid)
		}
	}
}

// TestSupabaseEmailConfirmAlias: --supabase-email-confirm is --email-confirm.
func TestSupabaseEmailConfirmAlias(t *testing.T) {
	r := run(t, "auth", "export", "--format", "supabase", "--supabase-email-confirm", "some", "--out", t.TempDir()+"/x.jsonl")
	if r.code != exitError || !strings.Contains(r.stderr, "--email-confirm \"some\"") {
		t.Fatalf("--supabase-email-confirm some: exit %d, %s; want --email-confirm's refusal", r.code, r.stderr)
	}
	for _, path := range [][]string{{"auth", "export"}, {"migrate"}} {
		cmd, _, err := newRootCommand().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if f := cmd.Flags().Lookup("supabase-email-confirm"); f == nil || f.Name != "email-confirm" {
			t.Errorf("%v: --supabase-email-confirm is %+v; want --email-confirm", path, f)
		}
	}
}

// TestAuthExportEmailConfirmFlag: --email-confirm defaults to "all" (users
// sign in as on Firebase) and refuses other values, naming the flag.
func TestAuthExportEmailConfirmFlag(t *testing.T) {
	cmd := newAuthExportCommand()
	f := cmd.Flags().Lookup("email-confirm")
	if f == nil || f.DefValue != "all" {
		t.Fatalf("--email-confirm: %+v; want a flag defaulting to all", f)
	}
	cmd.SetArgs([]string{"--format", "supabase", "--email-confirm", "some", "--out", t.TempDir() + "/x.jsonl"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--email-confirm") || !strings.Contains(err.Error(), "verified or all") {
		t.Errorf("--email-confirm some: %v", err)
	}
}
