// Package firebaseauth extracts the users of Firebase Authentication (and
// Identity Platform tenants), with their password hashes, from the live
// service or from an export file.
//
// # Sources
//
//   - The Identity Toolkit API (accounts:batchGet, as the Admin SDK's user
//     iterator), with a service account or Application Default Credentials,
//     or the Auth emulator when --auth-emulator-host (or
//     FIREBASE_AUTH_EMULATOR_HOST) is set. See apiExtractor for how the
//     listing resumes.
//   - A file given with --auth-export: `firebase auth:export` JSON or CSV,
//     or the Auth emulator's accounts.json (emulators:export). Files are
//     streamed one account at a time; a resumed read seeks to the byte after
//     the last committed account.
//
// # Records
//
// Every user is one record of kind user whose key is the uid, exactly. Its
// fields follow record.User (see record.User.Record and record.UserFrom,
// which sinks use to read them back). Password hashes are kept as the
// source's text with an algorithm mark; decoding and validating them is the
// sink's job, so that a bad hash rejects one user instead of stopping the
// run.
//
// # Abilities
//
// Both extractors are extractors.SharedHasher: the project's hash
// parameters (--hash-*) reach the users sink as a FIREBASE_SCRYPT
// credential (HashCredential). The API extractor is an
// extractors.KeyOrderer (UIDOrder: the Auth API lists users in UTF-16 order
// of their uids), so plan and verify merge it with the table; the file
// extractor is an extractors.TargetOwner (an export file is its project's
// only when the user named the project).
//
// # Bad input
//
// A file that stops being parseable (a JSON syntax error, an unterminated
// CSV quote) fails the read with the line and byte offset: nothing after it
// can be trusted. A record that parses but cannot be a user (a field of the
// wrong type, a CSV row with a shifted column count, an account of another
// tenant) is emitted with record.User.Invalid set, and the sink rejects it with
// that reason; the rest of the file loads.
package firebaseauth

import (
	"context"
	"fmt"
	"maps"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// Options of the firebaseauth extractor.
var (
	EmulatorOption = plugin.Option{
		Name: "auth-emulator-host",
		Help: "Read users from a Firebase Auth emulator at host:port instead of Google.",
		Env:  []string{"FIREBASE_AUTH_EMULATOR_HOST"},
	}
	ExportOption = plugin.Option{
		Name: "auth-export",
		Help: "Read users from this export file instead of the Auth API: firebase auth:export JSON or CSV, or the Auth emulator's accounts.json.",
	}
	ExportFormatOption = plugin.Option{
		Name:    "auth-export-format",
		Help:    "Format of --auth-export: json, csv, or auto (by extension, then content).",
		Default: "auto",
	}
	TenantOption = plugin.Option{
		Name: "auth-tenant",
		Help: "Identity Platform tenant ID whose users to migrate (default: the project's own users); one tenant per run.",
	}
	PageSizeOption = plugin.Option{
		Name:    "auth-page-size",
		Help:    "Users fetched per Auth API page (at most 1000).",
		Default: "1000",
		Type:    plugin.Int,
	}
	// projectOption is the shared project option, not required here: an
	// export file needs no project.
	projectOption = plugin.Option{
		Name: firebase.ProjectOption.Name,
		Help: firebase.ProjectOption.Help,
		Env:  firebase.ProjectOption.Env,
	}
)

// The project's password hash parameters (Firebase console →
// Authentication → Users → ⋮ → Password hash parameters). The key and the
// separator are secrets: prefer the environment or the --config file to
// the command line, where other local users can see them.
var (
	HashSignerKeyOption = plugin.Option{
		Name:   "hash-signer-key",
		Help:   "The project's base64_signer_key, to keep Firebase scrypt passwords verifiable.",
		Env:    []string{"FIREBASE_HASH_SIGNER_KEY"},
		Secret: true,
	}
	HashSaltSeparatorOption = plugin.Option{
		Name:   "hash-salt-separator",
		Help:   "The project's base64_salt_separator.",
		Env:    []string{"FIREBASE_HASH_SALT_SEPARATOR"},
		Secret: true,
	}
	HashRoundsOption = plugin.Option{
		Name: "hash-rounds",
		Help: "The project's password hash rounds (1-8).",
		Env:  []string{"FIREBASE_HASH_ROUNDS"},
		Type: plugin.Int,
	}
	HashMemCostOption = plugin.Option{
		Name: "hash-mem-cost",
		Help: "The project's password hash mem_cost (1-14).",
		Env:  []string{"FIREBASE_HASH_MEM_COST"},
		Type: plugin.Int,
	}
)

// HashOptions are the four hash parameter options.
var HashOptions = []plugin.Option{HashSignerKeyOption, HashSaltSeparatorOption, HashRoundsOption, HashMemCostOption}

// Options are all the extractor's options, the hash parameters included.
var Options = append([]plugin.Option{
	projectOption, firebase.CredentialsOption, EmulatorOption, ExportOption, ExportFormatOption, TenantOption, PageSizeOption,
	retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
}, HashOptions...)

func init() {
	extractors.Register(extractors.Spec{
		Source:  "firebase",
		Name:    "firebaseauth",
		Kind:    record.KindUser,
		Help:    "Firebase Authentication users with their password hashes, from the Auth API or an export file.",
		Options: Options,
		New:     func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// New builds the extractor cfg describes: a file reader when --auth-export
// is set, else an Auth API (or emulator) reader. Both offer the hash
// parameters cfg gives as their SharedHash; invalid ones fail New (see
// HashParams).
func New(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) {
	hash, err := HashParams(cfg)
	if err != nil {
		return nil, err
	}
	tenant := cfg.String(TenantOption.Name)
	if path := cfg.String(ExportOption.Name); path != "" {
		f, err := newFile(path, cfg.String(ExportFormatOption.Name), tenant)
		if err != nil {
			return nil, err
		}
		f.hashes = hashes{hash}
		f.settings = settings{TenantOption.Name: tenant}
		f.project = cfg.String(projectOption.Name)
		return f, nil
	}
	a, err := newAPI(ctx, cfg, tenant)
	if err != nil {
		return nil, err
	}
	a.hashes = hashes{hash}
	a.settings = settings{TenantOption.Name: tenant}
	return a, nil
}

// hashes gives both extractors the project's hash parameters as their
// extractors.SharedHasher ability.
type hashes struct{ params firebasescrypt.Params }

// settings are the options a users run is bound to
// (extractors.Configured): --auth-tenant, as given. Runs have recorded it
// from the first version on.
type settings map[string]string

// RunSettings returns a copy of s.
func (s settings) RunSettings() map[string]string { return maps.Clone(s) }

// SharedHash returns the project's hash parameters (HashCredential), or
// nil when the options give none.
func (h hashes) SharedHash() (*passwords.Credential, error) {
	if h.params.IsZero() {
		return nil, nil
	}
	return HashCredential(h.params), nil
}

// SharedHashMissing names Firebase scrypt hashes and the four hash options.
func (hashes) SharedHashMissing() (string, []string) {
	var names []string
	for _, o := range HashOptions {
		names = append(names, "--"+o.Name)
	}
	return "Firebase scrypt hashes", names
}

// HashCredential is p as the shared credential of passwords' contract:
// algorithm FIREBASE_SCRYPT with Params "signer_key" and "salt_separator"
// (padded standard base64), "rounds" and "mem_cost" (decimal). It holds the
// project's secrets.
func HashCredential(p firebasescrypt.Params) *passwords.Credential {
	return &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Params: passwords.FirebaseScryptParams(p)}
}

var (
	_ extractors.SharedHasher = (*apiExtractor)(nil)
	_ extractors.SharedHasher = (*fileExtractor)(nil)
	_ extractors.TargetOwner  = (*fileExtractor)(nil)
)

// TargetOwner: an export file does not say which project it comes from. It
// counts as an export of the project --firebase-project names when the
// user gave that on the command line or in --config — not when it only
// comes from GCLOUD_PROJECT or GOOGLE_CLOUD_PROJECT, which name whatever
// project the shell works on (Cloud Shell sets one) — so that the Auth API
// and every export of one project load into the same tables; otherwise it
// is a source of its own (its Source, named by its path), and a refusal
// says how to name its project.
func (e *fileExtractor) TargetOwner(given func(option string) bool) (source, hint string) {
	if e.project != "" && given != nil && given(firebase.ProjectOption.Name) {
		return ProjectSource(e.project, e.tenant), ""
	}
	return "", fmt.Sprintf("An export file does not say which project it comes from: it is a source of its own unless --%[1]s names its project "+
		"(on the command line or in --config; GCLOUD_PROJECT and GOOGLE_CLOUD_PROJECT are not taken for it). "+
		"If this file is an export of the project whose users these tables hold, pass --%[1]s with that project's ID.",
		firebase.ProjectOption.Name)
}

// HashParams returns the hash parameters cfg gives, or the zero Params when
// it gives none. Giving only some of them is an error naming the missing
// ones; errors never contain the values.
func HashParams(cfg plugin.Config) (firebasescrypt.Params, error) {
	var set, missing []string
	for _, o := range HashOptions {
		if cfg.String(o.Name) != "" {
			set = append(set, o.Name)
		} else {
			missing = append(missing, "--"+o.Name)
		}
	}
	if len(set) == 0 {
		return firebasescrypt.Params{}, nil
	}
	if len(missing) > 0 {
		return firebasescrypt.Params{}, fmt.Errorf("password hash parameters: missing %v (give all four, as the Firebase console shows them, or none)", missing)
	}
	rounds, err := cfg.Int(HashRoundsOption.Name, 0)
	if err != nil {
		return firebasescrypt.Params{}, err
	}
	memCost, err := cfg.Int(HashMemCostOption.Name, 0)
	if err != nil {
		return firebasescrypt.Params{}, err
	}
	p, err := firebasescrypt.ParseParams(cfg.String(HashSignerKeyOption.Name), cfg.String(HashSaltSeparatorOption.Name), rounds, memCost)
	if err != nil {
		return firebasescrypt.Params{}, fmt.Errorf("password hash parameters: %w", err)
	}
	return p, nil
}
