// Package authexport writes migrated users (record.User, as the users
// tables hold them) as import files for self-hosted auth servers —
// Supabase Auth and Ory Kratos — one JSON request body per line, with each
// password hash in a form the server verifies at sign-in where it can.
//
// Which credentials each format carries (anything else is exported without
// its password, counted in Stats.Notes, and the user must reset it):
//
//   - supabase: FIREBASE_SCRYPT (as "$fbscrypt$…"), BCRYPT and ARGON2ID /
//     ARGON2I (their own "$2b$…" / "$argon2id$…" strings); supabase/auth
//     internal/crypto/password.go verifies these three families.
//   - kratos: FIREBASE_SCRYPT (as "$firescrypt$…"), BCRYPT (as it is, cost
//     up to 15), ARGON2ID and ARGON2I (rewritten unpadded), PBKDF2_SHA256
//     and PBKDF2_SHA512, SCRYPT, SHA1, SHA256, SHA512 and MD5 in any form
//     passwords.Verify reads (converted by kratosHash to the form ory/kratos
//     hash/hash_comparator.go verifies, within its hash/hash_limits.go
//     bounds), and any hash already in one of Kratos' own forms
//     ("$pbkdf2-sha256$i=…", "$scrypt$…", "$sha1$…", "$md5$…", "{SSHA}…", …).
package authexport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// FirebaseUIDKey is the metadata key holding a user's Firebase uid in
// every target: Supabase's app_metadata (raw_app_meta_data in auth.users,
// written by the export and the direct load, and how verify and the load
// tell migrated users from Supabase's own) and Kratos' metadata_admin.
const FirebaseUIDKey = "firebase_uid"

// Formats are the names of the formats New accepts.
var Formats = []string{"supabase", "kratos"}

// EmailConfirm values: which e-mail addresses are written as confirmed.
const (
	// ConfirmAll confirms every address (the default): Firebase lets users
	// with unverified addresses sign in with their password, Supabase Auth
	// refuses them (400 email_not_confirmed) and Kratos does with its
	// require_verified_address login hook.
	ConfirmAll = "all"
	// ConfirmVerified confirms the addresses Firebase marks emailVerified.
	ConfirmVerified = "verified"
)

// Options tune the formats.
type Options struct {
	// EmailConfirm is ConfirmAll ("" means it) or ConfirmVerified: which
	// addresses are written as confirmed (Supabase email_confirm, Kratos
	// verifiable_addresses[].verified and status). Firebase's own flag is
	// kept beside them either way (firebase_email_verified in app_metadata
	// and metadata_admin). Phone numbers are always confirmed: Firebase
	// holds a phone number once it was verified by SMS and has no flag for
	// an unverified one.
	EmailConfirm string
	// KratosSchemaID is the identity schema of the identities ("default"
	// when empty).
	KratosSchemaID string
	// KratosExternalID also sets external_id to the uid (Kratos versions
	// without the field refuse it), for uids of up to 64 bytes: longer
	// ones (Firebase allows 128 characters) are left without external_id
	// and listed in Stats.Listed; metadata_admin.firebase_uid has every uid.
	KratosExternalID bool
}

// Stats count what an Exporter did, for its report.
type Stats struct {
	// Written users; WithHash of them carry a password hash in a form the
	// server verifies natively. Whether a hash matches the user's password
	// (one made with another signer key, say) cannot be known without the
	// password, so WithHash claims nothing about that.
	Written, WithHash int
	// Skipped lists the uids not written, by reason.
	Skipped map[string][]string
	// Notes counts the users written with a caveat, by note.
	Notes map[string]int
	// Listed names the users written with a caveat that concerns each
	// of them (uids by note), such as a value the target cannot hold.
	Listed map[string][]string
	// WithoutPassword names the users that have a credential but were
	// written without it (for any of the reasons of Notes and Listed):
	// they cannot sign in with their password and must reset it.
	WithoutPassword []string
}

func (s *Stats) skip(reason, uid string) { s.Skipped[reason] = append(s.Skipped[reason], uid) }

func (s *Stats) list(note, uid string) { s.Listed[note] = append(s.Listed[note], uid) }

// supabaseMaxHash is the length of supabase/auth's auth.users
// encrypted_password column (varchar(255), migrations/00_init_auth_schema.up.sql).
const supabaseMaxHash = 255

// kratosMaxExternalID is the length of ory/kratos' identities.external_id
// column (VARCHAR(64), persistence/sql/migrations/sql/
// 20250708190000000000_identities_external_id.*.up.sql), counted in bytes
// here: a uid of at most 64 bytes has at most 64 characters.
const kratosMaxExternalID = 64

// Exporter writes users in one format. Give it the users oldest first:
// of two users whose e-mail addresses differ at most in case, the first is
// written and the later one skipped (Stats.Skipped), in every format.
// It is not safe for concurrent use.
type Exporter struct {
	format    string
	opts      Options
	seenEmail map[string]string // lower-case e-mail → first uid
	Stats     Stats
}

// New returns an Exporter for format ("supabase" or "kratos").
func New(format string, opts Options) (*Exporter, error) {
	if format != "supabase" && format != "kratos" {
		return nil, fmt.Errorf("%q is not supabase or kratos", format)
	}
	switch opts.EmailConfirm {
	case "":
		opts.EmailConfirm = ConfirmAll
	case ConfirmAll, ConfirmVerified:
	default:
		return nil, fmt.Errorf("email confirmation %q is not %s or %s", opts.EmailConfirm, ConfirmVerified, ConfirmAll)
	}
	if opts.KratosSchemaID == "" {
		opts.KratosSchemaID = "default"
	}
	return &Exporter{format: format, opts: opts, seenEmail: map[string]string{},
		Stats: Stats{Skipped: map[string][]string{}, Notes: map[string]int{}, Listed: map[string][]string{}}}, nil
}

// Write writes u as one line to w, or skips it (Stats.Skipped) when the
// server cannot hold it.
func (e *Exporter) Write(w io.Writer, u *record.User) error {
	body := e.Body(u)
	if body == nil {
		return nil
	}
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding user %q: %w", u.UID, err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return err
	}
	e.Stats.Written++
	return nil
}

// Body returns u as one request body of the format, or nil when the
// server cannot hold u (counted in Stats.Skipped).
func (e *Exporter) Body(u *record.User) map[string]any {
	if e.format == "supabase" {
		return e.supabaseUser(u)
	}
	return e.kratosIdentity(u)
}

// Report writes the statistics for a person: out and format name what was
// written. Only uids are named, never addresses or hashes.
func (s *Stats) Report(w io.Writer, out, format string) {
	fmt.Fprintf(w, "wrote %d users to %s for %s (%d with a password hash in a form it verifies natively; no password was checked)\n", s.Written, out, format, s.WithHash)
	for _, n := range slices.Sorted(maps.Keys(s.Notes)) {
		fmt.Fprintf(w, "  %d users: %s\n", s.Notes[n], n)
	}
	for _, n := range slices.Sorted(maps.Keys(s.Listed)) {
		fmt.Fprintf(w, "  %d users: %s (uids: %s)\n", len(s.Listed[n]), n, sample(s.Listed[n]))
	}
	if len(s.WithoutPassword) > 0 {
		fmt.Fprintf(w, "  %d users exported without their password, who must reset it (uids: %s)\n", len(s.WithoutPassword), sample(s.WithoutPassword))
	}
	for _, r := range slices.Sorted(maps.Keys(s.Skipped)) {
		fmt.Fprintf(w, "  skipped %d users: %s (uids: %s)\n", len(s.Skipped[r]), r, sample(s.Skipped[r]))
	}
}

// sample joins the first ten uids, with "…" when there are more.
func sample(uids []string) string {
	if len(uids) > 10 {
		return strings.Join(uids[:10], ", ") + ", …"
	}
	return strings.Join(uids, ", ")
}

// Algorithm names of passwords' contract that only this package needs.
const (
	bcryptAlg   = "BCRYPT"
	argon2idAlg = "ARGON2ID"
	argon2iAlg  = "ARGON2I"
)

var (
	bcryptHash = regexp.MustCompile(`^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)
	argon2Hash = regexp.MustCompile(`^\$argon2(id|i)\$v=(16|19)\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`)
	// kratosNative are the other forms Kratos' hash comparator reads.
	kratosNative = regexp.MustCompile(`^(\$pbkdf2-sha[0-9]{1,3}\$|\$scrypt\$|\$sha(1|256|512)\$|\$md5\$|\$md5-crypt\$|\$sha256-crypt\$|\$sha512-crypt\$|\$hmac-[a-z0-9]+\$|\{SSHA(256|512)?\})`)
)

// hashFor returns u's hash in the format's form, or "" with a note why
// there is none.
func (e *Exporter) hashFor(u *record.User) string {
	c := u.Password
	if c == nil {
		return ""
	}
	enc, why := convertHash(e.format, *c)
	if why.kind != whyNone {
		e.Stats.WithoutPassword = append(e.Stats.WithoutPassword, u.UID)
	}
	switch why.kind {
	case whyNone:
		e.Stats.WithHash++
		return enc
	case whyReset:
		e.Stats.Notes["exported without their password ("+why.text+"; they must reset it)"]++
	case whyPlain:
		// The reason of earlier versions, without "; they must reset it".
		e.Stats.Notes["exported without their password ("+why.text+")"]++
	case whyListed:
		e.Stats.list("exported without their password ("+why.text+"; they must reset it)", u.UID)
	}
	return ""
}

// hashWhy says why convertHash wrote no hash, and how the export notes it.
type hashWhy struct {
	kind int
	text string
}

const (
	whyNone   = iota // a hash was written
	whyReset         // noted by reason, "they must reset it"
	whyPlain         // noted by reason as earlier versions did
	whyListed        // listed by uid (a value the target cannot hold)
)

// SupabaseHash returns c in the form Supabase Auth verifies natively
// (what auth export --format supabase writes as password_hash and what
// the direct load writes to auth.users.encrypted_password): a Firebase
// scrypt hash as "$fbscrypt$…", a bcrypt or argon2 hash as it is. The
// error says why c has no such form (never quoting hash, salt or
// parameter values).
func SupabaseHash(c passwords.Credential) (string, error) {
	enc, why := convertHash("supabase", c)
	if why.kind != whyNone {
		return "", errors.New(why.text)
	}
	return enc, nil
}

// convertHash writes c in format's form, or says why it cannot.
func convertHash(format string, c passwords.Credential) (string, hashWhy) {
	without := func(why string) (string, hashWhy) { return "", hashWhy{whyReset, why} }
	var enc string
	switch c.Algorithm {
	case passwords.FirebaseScrypt:
		p, salt, hash, err := firebaseScrypt(c)
		if err != nil {
			return "", hashWhy{whyPlain, err.Error()}
		}
		if format == "supabase" {
			enc, err = p.SupabaseHash(salt, hash)
		} else {
			enc, err = p.KratosHash(salt, hash)
		}
		if err != nil {
			return "", hashWhy{whyPlain, err.Error()}
		}
	case bcryptAlg:
		if !bcryptHash.MatchString(c.Hash) {
			return without("a bcrypt hash that is not in the $2b$ form")
		}
		if format == "kratos" && bcryptCost(c.Hash) > kratosMaxBcryptCost {
			return without(fmt.Sprintf("a bcrypt cost over %d, which Kratos refuses", kratosMaxBcryptCost))
		}
		enc = c.Hash
	case argon2idAlg, argon2iAlg:
		if format == "kratos" {
			h, err := kratosHash(c)
			if err != nil {
				return without(kratosWhy(c.Algorithm, err))
			}
			enc = h
			break
		}
		if !argon2Hash.MatchString(c.Hash) {
			return without("an argon2 hash that is not a PHC string")
		}
		enc = c.Hash
	default:
		if format == "kratos" && kratosConverts(c.Algorithm) {
			h, err := kratosHash(c)
			if err == nil {
				enc = h
				break
			}
			if !errors.Is(err, errKratosBounds) && c.Salt == "" && len(c.Params) == 0 && kratosNative.MatchString(c.Hash) {
				// Already in a form of Kratos' own ("$pbkdf2-sha256$i=…").
				enc = c.Hash
				break
			}
			return without(kratosWhy(c.Algorithm, err))
		}
		if format == "kratos" && c.Salt == "" && len(c.Params) == 0 && kratosNative.MatchString(c.Hash) {
			enc = c.Hash
			break
		}
		if c.Algorithm == passwords.EmulatorFake || c.Algorithm == passwords.Unknown {
			return without(c.Algorithm + " hashes cannot be verified there")
		}
		if c.Algorithm == passwords.None {
			return without("the source exported no hash")
		}
		return without(c.Algorithm + " hashes cannot be written for " + format + " by this version")
	}
	if format == "supabase" && len(enc) > supabaseMaxHash {
		// The admin API would store it in a varchar(255) column: refused or
		// cut, never verifiable. (Postgres counts characters; every form
		// written here is ASCII, so bytes and characters agree.)
		return "", hashWhy{whyListed, fmt.Sprintf("its %s hash in Supabase's form is longer than the %d characters of auth.users.encrypted_password", c.Algorithm, supabaseMaxHash)}
	}
	return enc, hashWhy{}
}

// kratosWhy is the note of a credential kratosHash could not convert.
func kratosWhy(algorithm string, err error) string {
	if errors.Is(err, errKratosBounds) {
		return "a hash " + err.Error() + " (ory/kratos hash/hash_limits.go)"
	}
	// passwords' errors never quote a hash, a salt or a parameter's value.
	return "a malformed " + algorithm + " credential: " + err.Error()
}

// firebaseScrypt decodes a Firebase scrypt credential with the project's
// parameters (passwords' contract: signer_key and salt_separator in
// standard base64, rounds and mem_cost in decimal) into Params and the raw
// salt and hash; a hash in Supabase's "$fbscrypt$…" or Kratos'
// "$firescrypt$…" form carries them itself. Errors never quote values.
func firebaseScrypt(c passwords.Credential) (firebasescrypt.Params, []byte, []byte, error) {
	if strings.HasPrefix(c.Hash, firebasescrypt.SupabasePrefix) || strings.HasPrefix(c.Hash, firebasescrypt.KratosPrefix) {
		if c.Salt != "" || len(c.Params) > 0 {
			return firebasescrypt.Params{}, nil, nil, fmt.Errorf("an encoded Firebase scrypt hash with a separate salt or parameters")
		}
		p, salt, hash, err := firebasescrypt.ParseEncoded(c.Hash)
		if err != nil {
			// ParseEncoded never quotes the string.
			return firebasescrypt.Params{}, nil, nil, fmt.Errorf("the encoded hash: %w", err)
		}
		return p, salt, hash, nil
	}
	if c.Params["signer_key"] == "" {
		return firebasescrypt.Params{}, nil, nil, fmt.Errorf("migrate was given no hash parameters")
	}
	p, err := passwords.FirebaseScryptParamsFrom(c.Params)
	if err != nil {
		return firebasescrypt.Params{}, nil, nil, fmt.Errorf("the stored hash parameters: %w", err)
	}
	salt, err := firebasescrypt.DecodeBase64(c.Salt)
	if err != nil {
		return firebasescrypt.Params{}, nil, nil, fmt.Errorf("the salt is not base64")
	}
	hash, err := firebasescrypt.DecodeBase64(c.Hash)
	if err != nil {
		return firebasescrypt.Params{}, nil, nil, fmt.Errorf("the hash is not base64")
	}
	return p, salt, hash, nil
}

// supabaseUIDNamespace derives Supabase user ids from uids (UUID version
// 5). It never changes, so exports are stable.
var supabaseUIDNamespace = uuid.MustParse("a3f2c6e8-1b47-5d90-8e21-4c7b9f0d6a15")

// SupabaseID is the Supabase user id of a uid (of tenant, "" for none).
func SupabaseID(tenant, uid string) string {
	name := uid
	if tenant != "" {
		name = tenant + "/" + uid
	}
	return uuid.NewSHA1(supabaseUIDNamespace, []byte(name)).String()
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// supabaseUser is one request body for Supabase Auth's admin API (fields
// of AdminUserParams in supabase/auth internal/api/admin.go), or nil when
// Supabase cannot hold the user.
func (e *Exporter) supabaseUser(u *record.User) map[string]any {
	email, phone := str(u.Email), str(u.PhoneNumber)
	if email == "" && phone == "" {
		e.Stats.skip("Supabase needs an e-mail address or a phone number", u.UID)
		return nil
	}
	if e.duplicate(u.UID, email) {
		return nil
	}
	body := map[string]any{"id": SupabaseID(u.TenantID, u.UID)}
	if email != "" {
		body["email"] = email
		// supabase/auth internal/api/token.go refuses password sign-in
		// with an unconfirmed e-mail (email_not_confirmed).
		body["email_confirm"] = e.confirmed(u)
	}
	if phone != "" {
		body["phone"] = phone
		body["phone_confirm"] = true // Firebase phone numbers are verified by SMS
	}
	if h := e.hashFor(u); h != "" {
		body["password_hash"] = h
	}
	app, meta, claimsErr := SupabaseMetadata(u)
	if len(meta) > 0 {
		body["user_metadata"] = meta
	}
	switch {
	case claimsErr != nil:
		e.Stats.list("custom claims not exported: they are not a JSON object", u.UID)
	case beyond53(app):
		e.Stats.list("custom claims hold integers beyond 2^53: exact in the file, but Supabase's admin API decodes app_metadata into float64 "+
			"(AdminUserParams in supabase/auth internal/api/admin.go) and stores them rounded; set them in auth.users.raw_app_meta_data with SQL after the import", u.UID)
	}
	body["app_metadata"] = app
	if u.Disabled {
		body["ban_duration"] = "876000h" // Supabase's way to disable: a 100-year ban
	}
	return body
}

// SupabaseMetadata returns u's app_metadata and user_metadata as the
// Supabase export writes them (and the direct load writes to
// raw_app_meta_data and raw_user_meta_data). app_metadata, which only an
// admin can change, holds the custom claims (numbers as json.Number, so
// exact), then firebase_uid, firebase_email_verified (with an e-mail
// address) and firebase_providers (provider_id and provider_uid of each
// linked provider), which win over claims of those names.
// user_metadata holds display_name and avatar_url. err says the claims
// are not a JSON object; app then holds the other keys.
func SupabaseMetadata(u *record.User) (app, user map[string]any, err error) {
	user = map[string]any{}
	if v := str(u.DisplayName); v != "" {
		user["display_name"] = v
	}
	if v := str(u.PhotoURL); v != "" {
		user["avatar_url"] = v
	}
	app = map[string]any{}
	if u.CustomClaims != nil && *u.CustomClaims != "" {
		claims, cerr := decodeExact(*u.CustomClaims)
		if cerr != nil {
			err = errors.New("custom claims are not a JSON object")
		} else {
			app = claims
		}
	}
	app[FirebaseUIDKey] = u.UID
	if str(u.Email) != "" {
		app["firebase_email_verified"] = u.EmailVerified
	}
	if len(u.Providers) > 0 {
		app["firebase_providers"] = providerList(u.Providers)
	}
	return app, user, err
}

// EmailConfirmed reports whether u's e-mail address is written as
// confirmed under mode (Options.EmailConfirm: ConfirmAll, or "" for it,
// or ConfirmVerified).
func EmailConfirmed(mode string, u *record.User) bool {
	return mode != ConfirmVerified || u.EmailVerified
}

// decodeExact decodes a JSON object keeping every number as written
// (json.Number), so that encoding it again changes no digit.
func decodeExact(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil || dec.More() {
		return nil, errors.New("not one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not one JSON object")
	}
	return m, nil
}

// maxExact is 2^53: every integer of at most this magnitude is exact in a
// float64.
var maxExact = new(big.Int).Lsh(big.NewInt(1), 53)

// beyond53 reports whether v (as decodeExact returns it) holds an integer
// literal of magnitude over 2^53, which a float64 decoder rounds.
func beyond53(v any) bool {
	switch v := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return false
		}
		n, ok := new(big.Int).SetString(string(v), 10)
		return ok && n.CmpAbs(maxExact) > 0
	case map[string]any:
		for _, x := range v {
			if beyond53(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if beyond53(x) {
				return true
			}
		}
	}
	return false
}

type provider struct {
	ProviderID  string `json:"provider_id"`
	ProviderUID string `json:"provider_uid"`
}

func providerList(ps []record.Provider) []provider {
	out := make([]provider, len(ps))
	for i, p := range ps {
		out[i] = provider{p.ProviderID, p.RawID}
	}
	return out
}

// confirmed reports whether u's e-mail address is written as confirmed
// (Options.EmailConfirm).
func (e *Exporter) confirmed(u *record.User) bool {
	return EmailConfirmed(e.opts.EmailConfirm, u)
}

// duplicate reports whether an earlier user had email in another case
// (or with surrounding blanks), and then skips uid with a reason that
// names the first uid and how the server treats the address: both
// lower-case it — supabase/auth validateEmail (internal/api/mail.go) and
// NewUser (internal/models/user.go), then adminUserCreate answers 422
// email_exists (internal/api/admin.go); ory/kratos lower-cases verifiable
// and recovery addresses on import (identity/handler.go) and credential
// identifiers (x/normalize.go), then answers 409 Conflict.
func (e *Exporter) duplicate(uid, email string) bool {
	if email == "" {
		return false
	}
	k := strings.ToLower(strings.TrimSpace(email))
	first, dup := e.seenEmail[k]
	if !dup {
		e.seenEmail[k] = uid
		return false
	}
	server := "Supabase lower-cases addresses and answers 422 email_exists for the later one"
	if e.format == "kratos" {
		server = "Kratos lower-cases addresses and answers 409 Conflict for the later one"
	}
	e.Stats.skip("e-mail address already used by an older account, differing at most in case ("+server+"; first uid: "+first+")", uid)
	return true
}

// kratosIdentity is one request body for Ory Kratos' admin API
// (CreateIdentityBody in ory/kratos identity/handler.go), or nil when
// Kratos cannot hold the user.
func (e *Exporter) kratosIdentity(u *record.User) map[string]any {
	email, phone := str(u.Email), str(u.PhoneNumber)
	if e.duplicate(u.UID, email) {
		return nil
	}
	traits := map[string]any{}
	switch {
	case email != "":
		traits["email"] = email
	case phone != "":
		traits["phone"] = phone
		e.Stats.Notes["have no e-mail: their phone number is in traits.phone, which your identity schema must define"]++
	default:
		e.Stats.Notes["have neither e-mail nor phone: their traits are empty, which your identity schema must allow"]++
	}
	body := map[string]any{"schema_id": e.opts.KratosSchemaID, "traits": traits, "state": "active"}
	if u.Disabled {
		body["state"] = "inactive"
	}
	creds := map[string]any{}
	if h := e.hashFor(u); h != "" {
		creds["password"] = map[string]any{"config": map[string]any{"hashed_password": h}}
	}
	var oidc []map[string]any
	for _, p := range u.Providers {
		switch p.ProviderID {
		case "password", "phone", "firebase", "anonymous":
			continue
		}
		oidc = append(oidc, map[string]any{"provider": strings.TrimSuffix(p.ProviderID, ".com"), "subject": p.RawID})
	}
	if len(oidc) > 0 {
		creds["oidc"] = map[string]any{"config": map[string]any{"providers": oidc}}
	}
	if len(creds) > 0 {
		body["credentials"] = creds
	}
	// ory/kratos identity/extension_verification.go keeps an imported
	// address that matches one the identity schema marks verifiable (and
	// drops the others), so a confirmed address is not asked for again,
	// nor refused by the require_verified_address login hook.
	if email != "" {
		ok := e.confirmed(u)
		status := "pending"
		if ok {
			status = "completed"
		}
		body["verifiable_addresses"] = []map[string]any{{"value": email, "verified": ok, "via": "email", "status": status}}
		body["recovery_addresses"] = []map[string]any{{"value": email, "via": "email"}}
	} else if phone != "" {
		// Firebase phone numbers are verified by SMS.
		body["verifiable_addresses"] = []map[string]any{{"value": phone, "verified": true, "via": "sms", "status": "completed"}}
	}
	admin := map[string]any{FirebaseUIDKey: u.UID}
	if email != "" {
		admin["firebase_email_verified"] = u.EmailVerified
	}
	if u.TenantID != "" {
		admin["firebase_tenant_id"] = u.TenantID
	}
	if u.CustomClaims != nil && *u.CustomClaims != "" {
		if json.Valid([]byte(*u.CustomClaims)) {
			admin["custom_claims"] = json.RawMessage(*u.CustomClaims) // exact: Kratos stores it as raw JSON
		} else {
			e.Stats.list("custom claims not exported: they are not JSON", u.UID)
		}
	}
	if v := str(u.DisplayName); v != "" {
		admin["display_name"] = v
	}
	if v := str(u.PhotoURL); v != "" {
		admin["photo_url"] = v
	}
	if phone != "" {
		admin["phone_number"] = phone
	}
	if !u.CreatedAt.IsZero() {
		admin["created_at"] = u.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	body["metadata_admin"] = admin
	if e.opts.KratosExternalID {
		if len(u.UID) > kratosMaxExternalID {
			// One such identity fails a whole PATCH /admin/identities batch
			// (HTTP 500): leave it unset; metadata_admin has the uid.
			e.Stats.list(fmt.Sprintf("external_id left unset: the uid is longer than Kratos' external_id holds (%d bytes); it is in metadata_admin.firebase_uid", kratosMaxExternalID), u.UID)
		} else {
			body["external_id"] = u.UID
		}
	}
	return body
}
