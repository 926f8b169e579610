package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
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
	cmd.AddCommand(newVerifyPasswordCommand(), newAuthExportCommand())
	return cmd
}

func newVerifyPasswordCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify-password --uid UID",
		Short: "Check a password against a migrated user's hash; exit 0 match, 1 no match, 2 error",
		Long: `verify-password reads a password from standard input (a prompt without echo when it is
a terminal; otherwise everything up to the first line break) and checks it against the
hash the migration stored for the user, with the project's hash parameters stored
beside it. Use it to confirm a migration kept passwords working, with a test account
whose password you know.

Exit status: 0 the password matches, 1 it does not, 2 the check could not be made (no
such user, a user without a password, a hash of an unknown algorithm, hash parameters
never given to migrate).`,
		Args: cobra.NoArgs,
		RunE: runVerifyPassword,
	}
	f := cmd.Flags()
	f.String("uid", "", "The user's Firebase uid (exact)")
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
	pool, err := connectTarget(ctx, cfg.String(postgresOption.Name), 1, 0)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	ok, err := checkPassword(ctx, pool, cfg.String(usersSchemaOption.Name), uid, password)
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

// checkPassword verifies password against the stored hash of uid.
func checkPassword(ctx context.Context, pool *pgxpool.Pool, schema, uid string, password []byte) (bool, error) {
	q := pgx.Identifier{schema, postgres.UsersTable}.Sanitize()
	h := pgx.Identifier{schema, postgres.HashConfigsTable}.Sanitize()
	p := pgx.Identifier{schema, postgres.ProvidersTable}.Sanitize()
	var (
		algorithm                  *string
		hash, salt                 []byte
		hashVerbatim, saltVerbatim *string
		configID                   *string
		key, sep                   []byte
		rounds, memCost            *int
		providers                  []string
	)
	err := pool.QueryRow(ctx, `SELECT u.password_algorithm, u.password_hash, u.password_salt, u.password_hash_verbatim,
			u.password_salt_verbatim, u.hash_config_id, h.signer_key, h.salt_separator, h.rounds, h.mem_cost,
			ARRAY(SELECT provider_id FROM `+p+` WHERE uid = u.uid ORDER BY 1)
		FROM `+q+` u LEFT JOIN `+h+` h ON h.id = u.hash_config_id WHERE u.uid = $1`, uid).
		Scan(&algorithm, &hash, &salt, &hashVerbatim, &saltVerbatim, &configID, &key, &sep, &rounds, &memCost, &providers)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("no user with uid %q in schema %q", uid, schema)
	}
	if err != nil {
		return false, fmt.Errorf("reading user %q: %w", uid, err)
	}
	if algorithm == nil {
		return false, fmt.Errorf("user %q has no password (signs in with: %s)", uid, strings.Join(providers, ", "))
	}
	switch *algorithm {
	case passwords.FirebaseScrypt:
		if configID == nil || key == nil {
			return false, fmt.Errorf("user %q has a Firebase scrypt hash but the migration was given no hash parameters; "+
				"run migrate again with --hash-signer-key, --hash-salt-separator, --hash-rounds, --hash-mem-cost and --restart", uid)
		}
		params, err := firebasescrypt.NewParams(key, sep, *rounds, *memCost)
		if err != nil {
			return false, fmt.Errorf("the stored hash parameters %s: %w", *configID, err)
		}
		return params.Verify(password, salt, hash)
	case passwords.EmulatorFake:
		want := "fakeHash:salt=" + *saltVerbatim + ":password=" + string(password)
		return subtle.ConstantTimeCompare([]byte(want), []byte(*hashVerbatim)) == 1, nil
	}
	return false, fmt.Errorf("user %q has a password hash of an unknown algorithm (kept verbatim); it cannot be verified", uid)
}

func newAuthExportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export --format supabase|kratos --out FILE",
		Short: "Write migrated users as import files for Supabase Auth or Ory Kratos, with hashes they verify natively",
		Long: `export writes one JSON object per line (JSON Lines), one line per user, ready for the
target server's admin import, with each Firebase scrypt hash in the form the server
verifies at sign-in — so passwords keep working there too:

  --format supabase  request bodies for Supabase Auth's POST /auth/v1/admin/users, with
                     password_hash "$fbscrypt$…"; ids are UUIDs derived from the uid
                     (version 5), the uid is kept in app_metadata.firebase_uid
  --format kratos    request bodies for Ory Kratos' POST /admin/identities, with
                     credentials.password.config.hashed_password "$firescrypt$…"

The hashes embed the project's signer key: the file is created readable by its owner
only; treat it like the hashes themselves. docs/auth.md shows how to import it.`,
		Args: cobra.NoArgs,
		RunE: runAuthExport,
	}
	f := cmd.Flags()
	f.String("format", "", "supabase or kratos")
	f.String("out", "", "Write to this `file` (created with mode 0600)")
	f.String("kratos-schema-id", "default", "Kratos identity schema id for the identities")
	f.Bool("kratos-external-id", false, "Also set Kratos' external_id to the Firebase uid (Kratos versions without the field refuse it)")
	addOptionFlags(f, []plugin.Option{postgresOption, usersSchemaOption})
	return cmd
}

// exportUser is one user as the export reads it from the target.
type exportUser struct {
	UID, Tenant, Email, Phone, DisplayName, PhotoURL string
	EmailVerified, Disabled                          bool
	CreatedAt                                        *time.Time
	Claims                                           []byte
	Algorithm, ConfigID                              string
	Hash, Salt                                       []byte
	Providers                                        []exportProvider
}

type exportProvider struct {
	ProviderID  string `json:"provider_id"`
	ProviderUID string `json:"provider_uid"`
}

// exportStats counts what an export did, for the report on stderr.
type exportStats struct {
	written, withHash int
	skipped           map[string][]string // reason → uids
	notes             map[string]int      // note → users
}

func (s *exportStats) skip(reason, uid string) { s.skipped[reason] = append(s.skipped[reason], uid) }

func runAuthExport(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	format, _ := f.GetString("format")
	out, _ := f.GetString("out")
	if format != "supabase" && format != "kratos" {
		return &exitStatus{code: exitError, err: fmt.Errorf("--format: %q is not supabase or kratos", format)}
	}
	if out == "" {
		return &exitStatus{code: exitError, err: errors.New("--out FILE is required (the file holds the project's signer key, so it is never written to the terminal)")}
	}
	cfg, err := pluginConfig(f, []plugin.Option{postgresOption, usersSchemaOption})
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	schema := cfg.String(usersSchemaOption.Name)
	pool, err := connectTarget(ctx, cfg.String(postgresOption.Name), 1, 0)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	params, err := loadHashConfigs(ctx, pool, schema)
	if err != nil {
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
	stats := &exportStats{skipped: map[string][]string{}, notes: map[string]int{}}
	schemaID, _ := f.GetString("kratos-schema-id")
	externalID, _ := f.GetBool("kratos-external-id")
	seenEmail := map[string]string{}
	err = eachExportUser(ctx, pool, schema, func(u exportUser) error {
		var line map[string]any
		switch format {
		case "supabase":
			line = supabaseUser(u, params, seenEmail, stats)
		case "kratos":
			line = kratosIdentity(u, params, schemaID, externalID, stats)
		}
		if line == nil {
			return nil
		}
		data, err := json.Marshal(line)
		if err != nil {
			return fmt.Errorf("encoding user %q: %w", u.UID, err)
		}
		stats.written++
		_, err = w.Write(append(data, '\n'))
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = file.Close()
	}
	if err != nil {
		return &exitStatus{code: exitError, err: fmt.Errorf("exporting users: %w", err)}
	}
	report(cmd, out, format, stats)
	return nil
}

func report(cmd *cobra.Command, out, format string, s *exportStats) {
	e := cmd.ErrOrStderr()
	fmt.Fprintf(e, "wrote %d users to %s for %s (%d with a password hash it verifies)\n", s.written, out, format, s.withHash)
	notes := make([]string, 0, len(s.notes))
	for n := range s.notes {
		notes = append(notes, n)
	}
	sort.Strings(notes)
	for _, n := range notes {
		fmt.Fprintf(e, "  %d users: %s\n", s.notes[n], n)
	}
	reasons := make([]string, 0, len(s.skipped))
	for r := range s.skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		uids := s.skipped[r]
		sample := uids
		if len(sample) > 10 {
			sample = sample[:10]
		}
		fmt.Fprintf(e, "  skipped %d users: %s (uids: %s)\n", len(uids), r, strings.Join(sample, ", "))
	}
}

// loadHashConfigs reads every stored hash configuration by id.
func loadHashConfigs(ctx context.Context, pool *pgxpool.Pool, schema string) (map[string]firebasescrypt.Params, error) {
	rows, err := pool.Query(ctx, `SELECT id, signer_key, salt_separator, rounds, mem_cost FROM `+
		pgx.Identifier{schema, postgres.HashConfigsTable}.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("reading the hash parameters in schema %q (did migrate --only users run?): %w", schema, err)
	}
	defer rows.Close()
	out := map[string]firebasescrypt.Params{}
	for rows.Next() {
		var id string
		var key, sep []byte
		var rounds, memCost int
		if err := rows.Scan(&id, &key, &sep, &rounds, &memCost); err != nil {
			return nil, fmt.Errorf("reading the hash parameters: %w", err)
		}
		p, err := firebasescrypt.NewParams(key, sep, rounds, memCost)
		if err != nil {
			return nil, fmt.Errorf("the stored hash parameters %s: %w", id, err)
		}
		out[id] = p
	}
	return out, rows.Err()
}

// eachExportUser streams the users, oldest first (so that of two users
// sharing an e-mail address the older keeps it), with their providers.
func eachExportUser(ctx context.Context, pool *pgxpool.Pool, schema string, fn func(exportUser) error) error {
	u := pgx.Identifier{schema, postgres.UsersTable}.Sanitize()
	p := pgx.Identifier{schema, postgres.ProvidersTable}.Sanitize()
	rows, err := pool.Query(ctx, `SELECT u.uid, coalesce(u.tenant_id, ''), coalesce(u.email, ''), coalesce(u.phone_number, ''),
			coalesce(u.display_name, ''), coalesce(u.photo_url, ''), u.email_verified, u.disabled, u.created_at,
			u.custom_claims::text, coalesce(u.password_algorithm, ''), coalesce(u.hash_config_id, ''), u.password_hash, u.password_salt,
			coalesce((SELECT json_agg(json_build_object('provider_id', provider_id, 'provider_uid', provider_uid)
				ORDER BY provider_id, provider_uid) FROM `+p+` WHERE uid = u.uid), '[]')
		FROM `+u+` u ORDER BY u.created_at NULLS LAST, u.uid`)
	if err != nil {
		return fmt.Errorf("reading users in schema %q: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var x exportUser
		var claims *string
		var providers []byte
		if err := rows.Scan(&x.UID, &x.Tenant, &x.Email, &x.Phone, &x.DisplayName, &x.PhotoURL, &x.EmailVerified, &x.Disabled,
			&x.CreatedAt, &claims, &x.Algorithm, &x.ConfigID, &x.Hash, &x.Salt, &providers); err != nil {
			return fmt.Errorf("reading users: %w", err)
		}
		if claims != nil {
			x.Claims = []byte(*claims)
		}
		if err := json.Unmarshal(providers, &x.Providers); err != nil {
			return fmt.Errorf("reading the providers of %q: %w", x.UID, err)
		}
		if err := fn(x); err != nil {
			return err
		}
	}
	return rows.Err()
}

// hashFor returns u's hash in the server's format, or "" with a note why
// there is none.
func hashFor(u exportUser, params map[string]firebasescrypt.Params, encode func(firebasescrypt.Params, []byte, []byte) (string, error), s *exportStats) string {
	switch {
	case u.Algorithm == "":
		return ""
	case u.Algorithm != passwords.FirebaseScrypt:
		s.notes["exported without their password ("+u.Algorithm+" hashes cannot be verified there; they must reset it)"]++
		return ""
	}
	p, ok := params[u.ConfigID]
	if !ok {
		s.notes["exported without their password (migrate was given no hash parameters)"]++
		return ""
	}
	enc, err := encode(p, u.Salt, u.Hash)
	if err != nil {
		s.notes["exported without their password ("+err.Error()+")"]++
		return ""
	}
	s.withHash++
	return enc
}

// firebaseUIDNamespace derives Supabase user ids from Firebase uids
// (UUID version 5). It never changes, so exports are stable.
var firebaseUIDNamespace = uuid.MustParse("a3f2c6e8-1b47-5d90-8e21-4c7b9f0d6a15")

// supabaseUser is one request body for Supabase Auth's admin API (fields of
// AdminUserParams in supabase/auth internal/api/admin.go), or nil when
// Supabase cannot hold the user.
func supabaseUser(u exportUser, params map[string]firebasescrypt.Params, seenEmail map[string]string, s *exportStats) map[string]any {
	if u.Email == "" && u.Phone == "" {
		s.skip("Supabase needs an e-mail address or a phone number", u.UID)
		return nil
	}
	if u.Email != "" {
		k := strings.ToLower(u.Email)
		if first, dup := seenEmail[k]; dup {
			s.skip("e-mail address already used by an older account, which Supabase does not allow (first uid: "+first+")", u.UID)
			return nil
		}
		seenEmail[k] = u.UID
	}
	name := u.UID
	if u.Tenant != "" {
		name = u.Tenant + "/" + u.UID
	}
	body := map[string]any{"id": uuid.NewSHA1(firebaseUIDNamespace, []byte(name)).String()}
	if u.Email != "" {
		body["email"] = u.Email
		body["email_confirm"] = u.EmailVerified
	}
	if u.Phone != "" {
		body["phone"] = u.Phone
		body["phone_confirm"] = true // Firebase phone numbers are verified by SMS
	}
	if h := hashFor(u, params, firebasescrypt.Params.SupabaseHash, s); h != "" {
		body["password_hash"] = h
	}
	meta := map[string]any{}
	if u.DisplayName != "" {
		meta["display_name"] = u.DisplayName
	}
	if u.PhotoURL != "" {
		meta["avatar_url"] = u.PhotoURL
	}
	if len(meta) > 0 {
		body["user_metadata"] = meta
	}
	app := map[string]any{}
	if len(u.Claims) > 0 {
		if err := json.Unmarshal(u.Claims, &app); err != nil {
			app = map[string]any{}
		}
	}
	app["firebase_uid"] = u.UID
	if len(u.Providers) > 0 {
		app["firebase_providers"] = u.Providers
	}
	body["app_metadata"] = app
	if u.Disabled {
		body["ban_duration"] = "876000h" // Supabase's way to disable: a 100-year ban
	}
	return body
}

// kratosIdentity is one request body for Ory Kratos' admin API
// (CreateIdentityBody in ory/kratos identity/handler.go).
func kratosIdentity(u exportUser, params map[string]firebasescrypt.Params, schemaID string, externalID bool, s *exportStats) map[string]any {
	traits := map[string]any{}
	switch {
	case u.Email != "":
		traits["email"] = u.Email
	case u.Phone != "":
		traits["phone"] = u.Phone
		s.notes["have no e-mail: their phone number is in traits.phone, which your identity schema must define"]++
	default:
		s.notes["have neither e-mail nor phone: their traits are empty, which your identity schema must allow"]++
	}
	body := map[string]any{"schema_id": schemaID, "traits": traits, "state": "active"}
	if u.Disabled {
		body["state"] = "inactive"
	}
	creds := map[string]any{}
	if h := hashFor(u, params, firebasescrypt.Params.KratosHash, s); h != "" {
		creds["password"] = map[string]any{"config": map[string]any{"hashed_password": h}}
	}
	var oidc []map[string]any
	for _, p := range u.Providers {
		switch p.ProviderID {
		case "password", "phone", "firebase", "anonymous":
			continue
		}
		oidc = append(oidc, map[string]any{"provider": strings.TrimSuffix(p.ProviderID, ".com"), "subject": p.ProviderUID})
	}
	if len(oidc) > 0 {
		creds["oidc"] = map[string]any{"config": map[string]any{"providers": oidc}}
	}
	if len(creds) > 0 {
		body["credentials"] = creds
	}
	if u.Email != "" {
		status := "pending"
		if u.EmailVerified {
			status = "completed"
		}
		body["verifiable_addresses"] = []map[string]any{{"value": u.Email, "verified": u.EmailVerified, "via": "email", "status": status}}
		body["recovery_addresses"] = []map[string]any{{"value": u.Email, "via": "email"}}
	}
	admin := map[string]any{"firebase_uid": u.UID}
	if u.Tenant != "" {
		admin["firebase_tenant_id"] = u.Tenant
	}
	if len(u.Claims) > 0 {
		admin["custom_claims"] = json.RawMessage(u.Claims)
	}
	if u.DisplayName != "" {
		admin["display_name"] = u.DisplayName
	}
	if u.PhotoURL != "" {
		admin["photo_url"] = u.PhotoURL
	}
	if u.Phone != "" {
		admin["phone_number"] = u.Phone
	}
	if u.CreatedAt != nil {
		admin["created_at"] = u.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	body["metadata_admin"] = admin
	if externalID {
		body["external_id"] = u.UID
	}
	return body
}
