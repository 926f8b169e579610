package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/capture"
)

func init() {
	extraCommands = append(extraCommands, newAuthCommand)
}

func newAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Work with migrated Auth users: check a password, export users for Supabase Auth or Ory Kratos",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newVerifyPasswordCommand(), newAuthExportCommand(), newAuthImportKratosCommand(), newCaptureStatusCommand())
	return cmd
}

func newVerifyPasswordCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify-password --uid UID",
		Short: "Check a password against a migrated user's hash; exit 0 match, 1 no match, 2 error",
		Long: `verify-password reads a password from standard input (a prompt without echo when it is
a terminal; otherwise everything up to the first line break) and checks it against the
hash the migration stored for the user, with the algorithm stored beside it (Firebase
scrypt, bcrypt, argon2, scrypt, PBKDF2, salted SHA and MD5, phpass) and its parameters,
the shared ones included. Use it to confirm a migration kept passwords working, with a
test account whose password you know.

Exit status: 0 the password matches, 1 it does not, 2 the check could not be made (no
such user, a user without a password, a user whose source exported no hash (NONE) and
whose password has not been captured at a first sign-in yet (passwords/capture: then the
captured hash is checked), a hash of an unknown algorithm, hash parameters never given to
migrate).`,
		Args: cobra.NoArgs,
		RunE: runVerifyPassword,
	}
	f := cmd.Flags()
	f.String("uid", "", "The user's uid (exact)")
	addOptionFlags(f, []plugin.Option{postgresOption, usersSchemaOption})
	return cmd
}

func runVerifyPassword(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	uid, _ := cmd.Flags().GetString("uid")
	if uid == "" {
		return &exitStatus{code: exitError, err: errors.New("--uid is required")}
	}
	cfg, err := pluginConfig(cmd.Flags(), []plugin.Option{postgresOption, usersSchemaOption})
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	password, err := readPassword(cmd, uid)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, schema, err := connectUsersTarget(ctx, cmd.Flags(), cfg)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	ok, err := checkPassword(ctx, pool, schema, uid, password)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if !ok {
		fmt.Fprintln(cmd.OutOrStdout(), "no match")
		return &exitStatus{code: exitProblems}
	}
	fmt.Fprintln(cmd.OutOrStdout(), "match")
	return nil
}

// readPassword reads the password: without echo from a terminal, else the
// first line of standard input (a final "\n" or "\r\n" is not part of it).
func readPassword(cmd *cobra.Command, uid string) ([]byte, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Password for %s: ", uid)
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		return pw, nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(in, 1<<16), 1<<16).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	return line, nil
}

// checkPassword verifies password against the stored credential of uid,
// with the algorithm the credential names (passwords.Verify). The error
// says why no check could be made: no such user, no password, a credential
// of NONE (the source exported no hash) or UNKNOWN, or a hash whose shared
// parameters migrate was never given.
func checkPassword(ctx context.Context, pool *pgxpool.Pool, schema, uid string, password []byte) (bool, error) {
	u, err := postgres.ReadUser(ctx, pool, schema, uid)
	if err != nil {
		return false, err
	}
	c := u.Password
	if c == nil {
		var providers []string
		for _, p := range u.Providers {
			providers = append(providers, p.ProviderID)
		}
		return false, fmt.Errorf("user %q has no password (signs in with: %s)", uid, strings.Join(providers, ", "))
	}
	if c.Algorithm == passwords.None {
		// A password captured at first sign-in (passwords/capture) is kept
		// beside the row, which keeps the source's NONE.
		captured, err := capture.Captured(ctx, pool, schema, uid)
		if err != nil {
			return false, err
		}
		if captured != nil {
			c = captured
		}
	}
	switch c.Algorithm {
	case passwords.None:
		return false, fmt.Errorf("user %q has no password hash: its source exports none (%s); the password is captured at the user's first sign-in against the old service, not checked here", uid, passwords.None)
	case passwords.Unknown:
		return false, fmt.Errorf("user %q has a password hash of an unknown algorithm (kept verbatim); it cannot be verified", uid)
	}
	ok, err := passwords.Verify(*c, password)
	switch {
	case err == nil:
		return ok, nil
	case errors.Is(err, passwords.ErrCannotVerify) && u.HashConfigID == "":
		// Only an algorithm whose hashes need shared parameters (today
		// Firebase scrypt) says ErrCannotVerify here: None and Unknown were
		// answered above, and a malformed credential is ErrMalformed.
		what, options := c.Algorithm, "the source's hash parameters"
		if c.Algorithm == passwords.FirebaseScrypt {
			// The Firebase users extractor's options, as earlier versions
			// named them.
			what, options = "Firebase scrypt", "--hash-signer-key, --hash-salt-separator, --hash-rounds, --hash-mem-cost"
		}
		return false, fmt.Errorf("user %q has a %s hash but the migration was given no hash parameters; "+
			"run migrate again with %s and --restart", uid, what, options)
	}
	return false, fmt.Errorf("checking the %s password of %q: %w", c.Algorithm, uid, err)
}

func newAuthExportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export --format supabase|kratos --out FILE",
		Short: "Write migrated users as import files for Supabase Auth or Ory Kratos, with hashes they verify natively",
		Long: `export writes one JSON object per line (JSON Lines), one line per user, ready for the
target server's admin import, with each password hash in a form the server verifies
at sign-in where it has one — so passwords keep working there too:

  --format supabase  request bodies for Supabase Auth's POST /auth/v1/admin/users, with
                     password_hash "$fbscrypt$…" for Firebase scrypt, bcrypt and argon2
                     as they are; ids are UUIDs derived from the uid (version 5), the
                     uid is kept in app_metadata.firebase_uid
  --format kratos    request bodies for Ory Kratos' POST /admin/identities, with
                     credentials.password.config.hashed_password "$firescrypt$…" for
                     Firebase scrypt; PBKDF2, scrypt, SHA-1/256/512 and MD5 converted to
                     Kratos' forms; bcrypt, argon2 and Kratos' own forms as they are

E-mail addresses are written as confirmed (--email-confirm all, the default): Firebase lets
users with an unverified address sign in, Supabase Auth refuses them ("email_not_confirmed")
and Kratos does with its require_verified_address hook. --email-confirm verified keeps
Firebase's emailVerified instead; either way it is kept as firebase_email_verified in
app_metadata / metadata_admin. Phone numbers are always confirmed (Firebase verified them
by SMS).

Users with other hashes are exported without their password, and the report says so.
Of users whose addresses differ only in case, the oldest is written and the others are
skipped and reported, as both servers lower-case addresses and refuse the second.
Firebase scrypt hashes embed the project's signer key: the file is created readable by
its owner only; treat it like the hashes themselves. docs/auth.md shows how to import it.`,
		Args: cobra.NoArgs,
		RunE: runAuthExport,
	}
	f := cmd.Flags()
	f.String("format", "", "supabase or kratos")
	f.String("out", "", "Write to this `file` (created with mode 0600)")
	f.String("email-confirm", authexport.ConfirmAll, "Which e-mail addresses to write as confirmed: all (users sign in as on Firebase, where unverified addresses sign in too) or verified (Firebase's emailVerified)")
	f.String("kratos-schema-id", "default", "Kratos identity schema id for the identities")
	f.Bool("kratos-external-id", false, "Also set Kratos' external_id to the Firebase uid, for uids of up to 64 bytes (Kratos' column; longer ones are listed and left unset; Kratos versions without the field refuse it)")
	addOptionFlags(f, []plugin.Option{postgresOption, usersSchemaOption})
	return cmd
}

func runAuthExport(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	format, _ := f.GetString("format")
	out, _ := f.GetString("out")
	schemaID, _ := f.GetString("kratos-schema-id")
	externalID, _ := f.GetBool("kratos-external-id")
	confirm, _ := f.GetString("email-confirm")
	if confirm != authexport.ConfirmAll && confirm != authexport.ConfirmVerified {
		return &exitStatus{code: exitError, err: fmt.Errorf("--email-confirm %q: want %s or %s", confirm, authexport.ConfirmVerified, authexport.ConfirmAll)}
	}
	exp, err := authexport.New(format, authexport.Options{KratosSchemaID: schemaID, KratosExternalID: externalID, EmailConfirm: confirm})
	if err != nil {
		return &exitStatus{code: exitError, err: fmt.Errorf("--format: %w", err)}
	}
	if out == "" {
		return &exitStatus{code: exitError, err: errors.New("--out FILE is required (the file holds the project's signer key, so it is never written to the terminal)")}
	}
	cfg, err := pluginConfig(f, []plugin.Option{postgresOption, usersSchemaOption})
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, schema, err := connectUsersTarget(ctx, f, cfg)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	if err := postgres.CheckUsersTables(ctx, pool, schema); err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return &exitStatus{code: exitError, err: fmt.Errorf("creating the export file: %w", err)}
	}
	defer file.Close()
	if err := file.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		return &exitStatus{code: exitError, err: fmt.Errorf("restricting the export file: %w", err)}
	}
	w := bufio.NewWriter(file)
	err = postgres.EachUser(ctx, pool, schema, func(u *postgres.StoredUser) error { return exp.Write(w, &u.User) })
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = file.Close()
	}
	if err != nil {
		return &exitStatus{code: exitError, err: fmt.Errorf("exporting users: %w", err)}
	}
	exp.Stats.Report(cmd.ErrOrStderr(), out, format)
	return nil
}
