package record

import (
	"fmt"
	"math"
	"time"

	"github.com/baasmigrate/baasmigrate/passwords"
)

// User is one account of a source's authentication service, in the shape
// every users extractor produces and every users sink reads (UserFrom). Optional
// strings are nil when the source does not have them, and "" when it has
// them empty; times are zero when unknown.
type User struct {
	UID string
	// TenantID is the source's tenant (Identity Platform tenant, ...); ""
	// for a project's own users.
	TenantID                                  string
	Email, PhoneNumber, DisplayName, PhotoURL *string
	EmailVerified, Disabled                   bool
	CreatedAt, LastSignInAt, LastRefreshAt    time.Time
	PasswordUpdatedAt                         time.Time
	// ValidSince is when the user's refresh tokens were last revoked: ID
	// tokens issued before it are invalid.
	ValidSince time.Time
	// CustomClaims is the custom claims JSON object, as text exactly as the
	// source has it (some sources store it as a string).
	CustomClaims *string
	// Password is nil for users without one (OAuth-, phone-, link-only).
	Password  *passwords.Credential
	Providers []Provider
	MFA       []MFAFactor
	// Extra holds the source's fields that have no place above, so nothing
	// is dropped (screenName, language, emailLinkSignin, ...).
	Extra map[string]Value
	// Invalid, when not empty, says why the source record could not be read
	// as a user (a field of the wrong type, a CSV row with the wrong number
	// of columns). Sinks must reject such a record with this reason.
	Invalid string
	// Position is where an export file holds the user; nil for users read
	// from the Auth API, whose uids are unique by construction.
	Position *Position
}

// Position is where in an export file a user was read. A uid is
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

// Provider is an identity linked to the account (google.com, password,
// phone, an OIDC or SAML provider, ...).
type Provider struct {
	ProviderID string
	// RawID is the user's id at the provider.
	RawID                                                        string
	FederatedID, Email, DisplayName, PhotoURL, PhoneNumber, Name *string
	Extra                                                        map[string]Value
}

// MFAFactor is an enrolled second factor.
type MFAFactor struct {
	EnrollmentID string
	// FactorID is "phone", "totp", "email", or "unknown" for a kind this
	// version does not know (its data is then in Extra).
	FactorID                                                     string
	DisplayName, PhoneNumber, UnobfuscatedPhoneNumber, EmailAddr *string
	EnrolledAt                                                   time.Time
	Extra                                                        map[string]Value
}

// Field names of user records: the encoding of a User in Record.Fields,
// read back by UserFrom.
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

// UserFieldPosition is the field of a user record that holds its Position.
const UserFieldPosition = fPosition

// Record turns u into a user record with the given cursor. Key is the uid.
func (u User) Record(cursor string) Record {
	f := map[string]Value{
		fEmailVerified: Bool(u.EmailVerified),
		fDisabled:      Bool(u.Disabled),
	}
	if u.TenantID != "" {
		f[fTenant] = String(u.TenantID)
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
		m := map[string]Value{
			"algorithm": String(p.Algorithm),
			"hash":      String(p.Hash),
			"salt":      String(p.Salt),
		}
		if p.Version != nil {
			m["version"] = Int(*p.Version)
		}
		if len(p.Params) > 0 {
			params := make(map[string]Value, len(p.Params))
			for k, v := range p.Params {
				params[k] = String(v)
			}
			m["params"] = Map(params)
		}
		f[fPassword] = Map(m)
	}
	if len(u.Providers) > 0 {
		arr := make([]Value, len(u.Providers))
		for i, p := range u.Providers {
			m := map[string]Value{"providerId": String(p.ProviderID), "rawId": String(p.RawID)}
			putStr(m, "federatedId", p.FederatedID)
			putStr(m, "email", p.Email)
			putStr(m, "displayName", p.DisplayName)
			putStr(m, "photoUrl", p.PhotoURL)
			putStr(m, "phoneNumber", p.PhoneNumber)
			putStr(m, "screenName", p.Name)
			if len(p.Extra) > 0 {
				m["extra"] = Map(p.Extra)
			}
			arr[i] = Map(m)
		}
		f[fProviders] = Array(arr...)
	}
	if len(u.MFA) > 0 {
		arr := make([]Value, len(u.MFA))
		for i, m := range u.MFA {
			v := map[string]Value{"enrollmentId": String(m.EnrollmentID), "factorId": String(m.FactorID)}
			putStr(v, "displayName", m.DisplayName)
			putStr(v, "phoneNumber", m.PhoneNumber)
			putStr(v, "unobfuscatedPhoneNumber", m.UnobfuscatedPhoneNumber)
			putStr(v, "emailAddress", m.EmailAddr)
			putTime(v, "enrolledAt", m.EnrolledAt)
			if len(m.Extra) > 0 {
				v["extra"] = Map(m.Extra)
			}
			arr[i] = Map(v)
		}
		f[fMFA] = Array(arr...)
	}
	if len(u.Extra) > 0 {
		f[fExtra] = Map(u.Extra)
	}
	if u.Invalid != "" {
		f[fInvalid] = String(u.Invalid)
	}
	if p := u.Position; p != nil {
		f[fPosition] = Map(map[string]Value{
			"file": String(p.File), "read": String(p.Read),
			"record": Int(p.Record), "line": Int(p.Line),
		})
	}
	return Record{Kind: KindUser, Key: u.UID, CreateTime: u.CreatedAt, Fields: f, Cursor: cursor}
}

// UserFrom reads a record made by User.Record back. It fails only for a
// record User.Record did not make.
func UserFrom(r Record) (User, error) {
	if r.Kind != KindUser {
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
		u.Password = &passwords.Credential{
			Algorithm: derefStr(pg.str("algorithm")),
			Hash:      derefStr(pg.str("hash")),
			Salt:      derefStr(pg.str("salt")),
		}
		if vv, ok := pg.m["version"]; ok {
			n := pg.int(vv)
			u.Password.Version = &n
		}
		if vv, ok := pg.m["params"]; ok {
			for k, pv := range pg.mapOf(vv) {
				if pv.Type() != TypeString {
					pg.fail("params."+k, pv, TypeString)
					continue
				}
				if u.Password.Params == nil {
					u.Password.Params = map[string]string{}
				}
				u.Password.Params[k] = pv.StringValue()
			}
			if pg.err != nil && g.err == nil {
				g.err = pg.err
			}
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

func putStr(m map[string]Value, k string, s *string) {
	if s != nil {
		m[k] = String(*s)
	}
}

func putTime(m map[string]Value, k string, t time.Time) {
	if !t.IsZero() {
		m[k] = Timestamp(t)
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
	m   map[string]Value
	err error
}

func (g *getter) fail(k string, v Value, want Type) {
	if g.err == nil {
		g.err = fmt.Errorf("field %q is %s, want %s", k, v.Type(), want)
	}
}

func (g *getter) str(k string) *string {
	v, ok := g.m[k]
	if !ok {
		return nil
	}
	if v.Type() != TypeString {
		g.fail(k, v, TypeString)
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
	if v.Type() != TypeBool {
		g.fail(k, v, TypeBool)
	}
	return v.BoolValue()
}

func (g *getter) time(k string) time.Time {
	v, ok := g.m[k]
	if !ok {
		return time.Time{}
	}
	if v.Type() != TypeTimestamp {
		g.fail(k, v, TypeTimestamp)
		return time.Time{}
	}
	return v.TimeValue()
}

func (g *getter) int(v Value) int64 {
	if v.Type() != TypeInt {
		g.fail("version", v, TypeInt)
		return math.MinInt64
	}
	return v.IntValue()
}

func (g *getter) intField(k string) int64 {
	v, ok := g.m[k]
	if !ok {
		return 0
	}
	if v.Type() != TypeInt {
		g.fail(k, v, TypeInt)
		return 0
	}
	return v.IntValue()
}

func (g *getter) mapOf(v Value) map[string]Value {
	if v.Type() == TypeNull {
		return nil
	}
	if v.Type() != TypeMap {
		g.fail("(nested)", v, TypeMap)
		return nil
	}
	return v.MapValue()
}

func (g *getter) arrayOf(k string) []Value {
	v, ok := g.m[k]
	if !ok {
		return nil
	}
	if v.Type() != TypeArray {
		g.fail(k, v, TypeArray)
		return nil
	}
	return v.ArrayValue()
}
