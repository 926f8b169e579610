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
// fields follow record.User (see record.User.Record and UserFromRecord, which sinks use to
// read them back). Password hashes are kept as the source's text with an
// algorithm mark; decoding and validating them is the sink's job, so that a
// bad hash rejects one user instead of stopping the run.
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

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
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
	}
	HashMemCostOption = plugin.Option{
		Name: "hash-mem-cost",
		Help: "The project's password hash mem_cost (1-14).",
		Env:  []string{"FIREBASE_HASH_MEM_COST"},
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
// is set, else an Auth API (or emulator) reader.
func New(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) {
	tenant := cfg.String(TenantOption.Name)
	if path := cfg.String(ExportOption.Name); path != "" {
		return newFile(path, cfg.String(ExportFormatOption.Name), tenant)
	}
	return newAPI(ctx, cfg, tenant)
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
