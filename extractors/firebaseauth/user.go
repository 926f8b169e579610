package firebaseauth

import (
	"fmt"
	"math"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Password algorithms, as records and the target mark them.
const (
	// AlgorithmFirebaseScrypt is Firebase's modified scrypt with the
	// project's hash parameters (passwords/firebasescrypt): every hash
	// Firebase hands out through its API and auth:export.
	AlgorithmFirebaseScrypt = "FIREBASE_SCRYPT"
	// AlgorithmEmulatorFake is the Auth emulator's stand-in
	// ("fakeHash:salt=…:password=…"), which holds the password in clear.
	AlgorithmEmulatorFake = "EMULATOR_FAKE"
	// AlgorithmUnknown marks a hash the source says is not Firebase scrypt
	// (a non-zero password version, or another hashAlgorithm). It is kept
	// verbatim; it cannot be verified until the user resets the password.
	AlgorithmUnknown = "UNKNOWN"
)

// User is one Firebase Auth account as read from any source. Optional
// strings are nil when the source does not have them, and "" when it has
// them empty; times are zero when unknown.
type User struct {
	UID string
	// TenantID is the Identity Platform tenant; "" for the project's own
	// users.
	TenantID                                  string
	Email, PhoneNumber, DisplayName, PhotoURL *string
	EmailVerified, Disabled                   bool
	CreatedAt, LastSignInAt, LastRefreshAt    time.Time
	PasswordUpdatedAt                         time.Time
	// ValidSince is when the user's refresh tokens were last revoked: ID
	// tokens issued before it are invalid.
	ValidSince time.Time
	// CustomClaims is the custom claims JSON object, as text exactly as the
	// source has it (Firebase stores it as a string).
	CustomClaims *string
	// Password is nil for users without one (OAuth-, phone-, link-only).
	Password  *Password
	Providers []Provider
	MFA       []MFAFactor
	// Extra holds the source's fields that have no place above, so nothing
	// is dropped (screenName, language, emailLinkSignin, ...).
	Extra map[string]record.Value
	// Invalid, when not empty, says why the source record could not be read
	// as a user (a field of the wrong type, a CSV row with the wrong number
	// of columns). Sinks must reject such a record with this reason.
	Invalid string
	// Position is where an export file holds the user; nil for users read
	// from the Auth API, whose uids are unique by construction.
	Position *Position
}

// Position is where in an export file a user was read. A Firebase uid is
// unique, but a file can hold one twice (two exports concatenated, a
// hand-edited file): sinks use positions to load the first occurrence
// only and to report every other, across batches, workers and resumed
// runs.
type Position struct {
	// File is the export file's absolute path.
	File string
	// Read identifies one planned reading of the file, the same for every
	// record of a run (resumed or not) and different for every new run:
	// an occurrence recorded by an earlier run is not a duplicate of one
	// read now.
	Read string
	// Record is the record's 1-based number in the file, and Line the
	// 1-based line it starts on.
	Record, Line int64
}

// String names the position in messages: "record 12 (line 40)".
func (p Position) String() string { return fmt.Sprintf("record %d (line %d)", p.Record, p.Line) }

// Password is a user's password hash, verbatim from the source.
type Password struct {
	// Algorithm is one of the Algorithm constants.
	Algorithm string
	// Hash and Salt are the source's text: base64 (standard or URL-safe)
	// for AlgorithmFirebaseScrypt, anything for the others.
	Hash, Salt string
	// Version is the source's password version when it gives one (0 is
	// Firebase scrypt).
	Version *int64
}

// Provider is an identity linked to the account (google.com, password,
// phone, an OIDC or SAML provider, ...).
type Provider struct {
	ProviderID string
	// RawID is the user's id at the provider.
	RawID                                                        string
	FederatedID, Email, DisplayName, PhotoURL, PhoneNumber, Name *string
	Extra                                                        map[string]record.Value
}

// MFAFactor is an enrolled second factor.
type MFAFactor struct {
	EnrollmentID string
	// FactorID is "phone", "totp", "email", or "unknown" for a kind this
	// version does not know (its data is then in Extra).
	FactorID                                                     string
	DisplayName, PhoneNumber, UnobfuscatedPhoneNumber, EmailAddr *string
	EnrolledAt                                                   time.Time
	Extra                                                        map[string]record.Value
}

// Field names of user records. Together with the Algorithm constants they
// are the contract between this extractor and the users sink.
const (
	fTenant         = "tenantId"
	fEmail          = "email"
	fPhone          = "phoneNumber"
	fDisplayName    = "displayName"
	fPhotoURL       = "photoUrl"
	fEmailVerified  = "emailVerified"
	fDisabled       = "disabled"
	fCreatedAt      = "createdAt"
	fLastSignInAt   = "lastSignInAt"
	fLastRefreshAt  = "lastRefreshAt"
	fPasswordUpdate = "passwordUpdatedAt"
	fValidSince     = "validSince"
	fCustomClaims   = "customClaims"
	fPassword       = "password"
	fProviders      = "providers"
	fMFA            = "mfa"
	fExtra          = "extra"
	fInvalid        = "invalid"
	fPosition       = "position"
)

// Record turns u into a user record with the given cursor. Key is the uid.
func (u User) Record(cursor string) record.Record {
	f := map[string]record.Value{
		fEmailVerified: record.Bool(u.EmailVerified),
		fDisabled:      record.Bool(u.Disabled),
	}
	if u.TenantID != "" {
		f[fTenant] = record.String(u.TenantID)
	}
	putStr(f, fEmail, u.Email)
	putStr(f, fPhone, u.PhoneNumber)
	putStr(f, fDisplayName, u.DisplayName)
	putStr(f, fPhotoURL, u.PhotoURL)
	putStr(f, fCustomClaims, u.CustomClaims)
	putTime(f, fCreatedAt, u.CreatedAt)
	putTime(f, fLastSignInAt, u.LastSignInAt)
	putTime(f, fLastRefreshAt, u.LastRefreshAt)
	putTime(f, fPasswordUpdate, u.PasswordUpdatedAt)
	putTime(f, fValidSince, u.ValidSince)
	if p := u.Password; p != nil {
		m := map[string]record.Value{
			"algorithm": record.String(p.Algorithm),
			"hash":      record.String(p.Hash),
			"salt":      record.String(p.Salt),
		}
		if p.Version != nil {
			m["version"] = record.Int(*p.Version)
		}
		f[fPassword] = record.Map(m)
	}
	if len(u.Providers) > 0 {
		arr := make([]record.Value, len(u.Providers))
		for i, p := range u.Providers {
			m := map[string]record.Value{"providerId": record.String(p.ProviderID), "rawId": record.String(p.RawID)}
			putStr(m, "federatedId", p.FederatedID)
			putStr(m, "email", p.Email)
			putStr(m, "displayName", p.DisplayName)
			putStr(m, "photoUrl", p.PhotoURL)
			putStr(m, "phoneNumber", p.PhoneNumber)
			putStr(m, "screenName", p.Name)
			if len(p.Extra) > 0 {
				m["extra"] = record.Map(p.Extra)
			}
			arr[i] = record.Map(m)
		}
		f[fProviders] = record.Array(arr...)
	}
	if len(u.MFA) > 0 {
		arr := make([]record.Value, len(u.MFA))
		for i, m := range u.MFA {
			v := map[string]record.Value{"enrollmentId": record.String(m.EnrollmentID), "factorId": record.String(m.FactorID)}
			putStr(v, "displayName", m.DisplayName)
			putStr(v, "phoneNumber", m.PhoneNumber)
			putStr(v, "unobfuscatedPhoneNumber", m.UnobfuscatedPhoneNumber)
			putStr(v, "emailAddress", m.EmailAddr)
			putTime(v, "enrolledAt", m.EnrolledAt)
			if len(m.Extra) > 0 {
				v["extra"] = record.Map(m.Extra)
			}
			arr[i] = record.Map(v)
		}
		f[fMFA] = record.Array(arr...)
	}
	if len(u.Extra) > 0 {
		f[fExtra] = record.Map(u.Extra)
	}
	if u.Invalid != "" {
		f[fInvalid] = record.String(u.Invalid)
	}
	if p := u.Position; p != nil {
		f[fPosition] = record.Map(map[string]record.Value{
			"file": record.String(p.File), "read": record.String(p.Read),
			"record": record.Int(p.Record), "line": record.Int(p.Line),
		})
	}
	return record.Record{Kind: record.KindUser, Key: u.UID, CreateTime: u.CreatedAt, Fields: f, Cursor: cursor}
}

// UserFromRecord reads a record made by User.Record back. It fails only
// for a record this package did not make.
func UserFromRecord(r record.Record) (User, error) {
	if r.Kind != record.KindUser {
		return User{}, fmt.Errorf("record %q is a %s, not a user", r.Key, r.Kind)
	}
	g := getter{m: r.Fields}
	u := User{
		UID:               r.Key,
		TenantID:          derefStr(g.str(fTenant)),
		Email:             g.str(fEmail),
		PhoneNumber:       g.str(fPhone),
		DisplayName:       g.str(fDisplayName),
		PhotoURL:          g.str(fPhotoURL),
		EmailVerified:     g.bool(fEmailVerified),
		Disabled:          g.bool(fDisabled),
		CreatedAt:         g.time(fCreatedAt),
		LastSignInAt:      g.time(fLastSignInAt),
		LastRefreshAt:     g.time(fLastRefreshAt),
		PasswordUpdatedAt: g.time(fPasswordUpdate),
		ValidSince:        g.time(fValidSince),
		CustomClaims:      g.str(fCustomClaims),
		Invalid:           derefStr(g.str(fInvalid)),
	}
	if v, ok := r.Fields[fPassword]; ok {
		pg := getter{m: g.mapOf(v)}
		u.Password = &Password{
			Algorithm: derefStr(pg.str("algorithm")),
			Hash:      derefStr(pg.str("hash")),
			Salt:      derefStr(pg.str("salt")),
		}
		if vv, ok := pg.m["version"]; ok {
			n := pg.int(vv)
			u.Password.Version = &n
		}
	}
	for _, v := range g.arrayOf(fProviders) {
		pg := getter{m: g.mapOf(v)}
		u.Providers = append(u.Providers, Provider{
			ProviderID:  derefStr(pg.str("providerId")),
			RawID:       derefStr(pg.str("rawId")),
			FederatedID: pg.str("federatedId"),
			Email:       pg.str("email"),
			DisplayName: pg.str("displayName"),
			PhotoURL:    pg.str("photoUrl"),
			PhoneNumber: pg.str("phoneNumber"),
			Name:        pg.str("screenName"),
			Extra:       pg.mapOf(pg.m["extra"]),
		})
	}
	for _, v := range g.arrayOf(fMFA) {
		mg := getter{m: g.mapOf(v)}
		u.MFA = append(u.MFA, MFAFactor{
			EnrollmentID:            derefStr(mg.str("enrollmentId")),
			FactorID:                derefStr(mg.str("factorId")),
			DisplayName:             mg.str("displayName"),
			PhoneNumber:             mg.str("phoneNumber"),
			UnobfuscatedPhoneNumber: mg.str("unobfuscatedPhoneNumber"),
			EmailAddr:               mg.str("emailAddress"),
			EnrolledAt:              mg.time("enrolledAt"),
			Extra:                   mg.mapOf(mg.m["extra"]),
		})
	}
	if v, ok := r.Fields[fExtra]; ok {
		u.Extra = g.mapOf(v)
	}
	if v, ok := r.Fields[fPosition]; ok {
		pg := getter{m: g.mapOf(v)}
		u.Position = &Position{
			File: derefStr(pg.str("file")), Read: derefStr(pg.str("read")),
			Record: pg.intField("record"), Line: pg.intField("line"),
		}
		if pg.err != nil && g.err == nil {
			g.err = pg.err
		}
	}
	if g.err != nil {
		return User{}, fmt.Errorf("user record %q: %w", r.Key, g.err)
	}
	return u, nil
}

func putStr(m map[string]record.Value, k string, s *string) {
	if s != nil {
		m[k] = record.String(*s)
	}
}

func putTime(m map[string]record.Value, k string, t time.Time) {
	if !t.IsZero() {
		m[k] = record.Timestamp(t)
	}
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// getter reads typed fields, remembering the first type mismatch.
type getter struct {
	m   map[string]record.Value
	err error
}

func (g *getter) fail(k string, v record.Value, want record.Type) {
	if g.err == nil {
		g.err = fmt.Errorf("field %q is %s, want %s", k, v.Type(), want)
	}
}

func (g *getter) str(k string) *string {
	v, ok := g.m[k]
	if !ok {
		return nil
	}
	if v.Type() != record.TypeString {
		g.fail(k, v, record.TypeString)
		return nil
	}
	s := v.StringValue()
	return &s
}

func (g *getter) bool(k string) bool {
	v, ok := g.m[k]
	if !ok {
		return false
	}
	if v.Type() != record.TypeBool {
		g.fail(k, v, record.TypeBool)
	}
	return v.BoolValue()
}

func (g *getter) time(k string) time.Time {
	v, ok := g.m[k]
	if !ok {
		return time.Time{}
	}
	if v.Type() != record.TypeTimestamp {
		g.fail(k, v, record.TypeTimestamp)
		return time.Time{}
	}
	return v.TimeValue()
}

func (g *getter) int(v record.Value) int64 {
	if v.Type() != record.TypeInt {
		g.fail("version", v, record.TypeInt)
		return math.MinInt64
	}
	return v.IntValue()
}

func (g *getter) intField(k string) int64 {
	v, ok := g.m[k]
	if !ok {
		return 0
	}
	if v.Type() != record.TypeInt {
		g.fail(k, v, record.TypeInt)
		return 0
	}
	return v.IntValue()
}

func (g *getter) mapOf(v record.Value) map[string]record.Value {
	if v.Type() == record.TypeNull {
		return nil
	}
	if v.Type() != record.TypeMap {
		g.fail("(nested)", v, record.TypeMap)
		return nil
	}
	return v.MapValue()
}

func (g *getter) arrayOf(k string) []record.Value {
	v, ok := g.m[k]
	if !ok {
		return nil
	}
	if v.Type() != record.TypeArray {
		g.fail(k, v, record.TypeArray)
		return nil
	}
	return v.ArrayValue()
}
