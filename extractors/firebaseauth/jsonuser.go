package firebaseauth

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// userFromJSON reads one account object as the Identity Toolkit API
// (accounts:batchGet), the Auth emulator's accounts.json and `firebase
// auth:export` JSON write it; they share Identity Toolkit's field names
// (auth:export renames lastLoginAt to lastSignedInAt). v must come from an
// encoding/json decoder with UseNumber. label names the record in messages
// ("record 12").
//
// A value it cannot read does not stop it: the user comes back with Invalid
// set (and a Key made from label when there is no localId), so the record
// is rejected with its reason and the rest of the source still loads.
func userFromJSON(v any, label string) record.User {
	obj, ok := v.(map[string]any)
	if !ok {
		return record.User{UID: "#" + label, Invalid: fmt.Sprintf("%s is a JSON %s, not an account object", label, jsonKind(v))}
	}
	r := jsonFields{obj: obj, used: map[string]bool{}}
	u := record.User{}
	if id := r.str("localId"); id != nil && *id != "" {
		u.UID = *id
	} else {
		u.UID = "#" + label
		r.problem("%s has no localId", label)
	}
	u.TenantID = derefStr(r.str("tenantId"))
	u.Email = r.str("email")
	u.PhoneNumber = r.str("phoneNumber")
	u.DisplayName = r.str("displayName")
	u.PhotoURL = r.str("photoUrl")
	u.EmailVerified = r.bool("emailVerified")
	u.Disabled = r.bool("disabled")
	u.CreatedAt = r.millis("createdAt")
	u.LastSignInAt = r.millis("lastLoginAt")
	if t := r.millis("lastSignedInAt"); !t.IsZero() {
		u.LastSignInAt = t
	}
	u.LastRefreshAt = r.rfc3339("lastRefreshAt")
	u.PasswordUpdatedAt = r.millis("passwordUpdatedAt")
	u.ValidSince = r.seconds("validSince")
	u.CustomClaims = r.claims("customAttributes")

	hash, salt := r.str("passwordHash"), r.str("salt")
	version := r.int("version")
	algorithm := r.str("hashAlgorithm") // only in hand-made import files
	if hash != nil && *hash != "" {
		p := &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: *hash, Salt: derefStr(salt), Version: version}
		switch {
		case strings.HasPrefix(*hash, "fakeHash:"):
			p.Algorithm = passwords.EmulatorFake
		case version != nil && *version != 0,
			algorithm != nil && !strings.EqualFold(*algorithm, "SCRYPT"):
			p.Algorithm = passwords.Unknown
		}
		u.Password = p
	} else {
		// No hash: keep what else the source said about a password.
		r.keep("passwordHash", "salt", "version", "hashAlgorithm")
	}

	for i, pv := range r.array("providerUserInfo") {
		pobj, ok := pv.(map[string]any)
		if !ok {
			r.problem("providerUserInfo[%d] is a JSON %s, not an object", i, jsonKind(pv))
			continue
		}
		pr := jsonFields{obj: pobj, used: map[string]bool{}}
		p := record.Provider{
			ProviderID:  derefStr(pr.str("providerId")),
			RawID:       derefStr(pr.str("rawId")),
			FederatedID: pr.str("federatedId"),
			Email:       pr.str("email"),
			DisplayName: pr.str("displayName"),
			PhotoURL:    pr.str("photoUrl"),
			PhoneNumber: pr.str("phoneNumber"),
			Name:        pr.str("screenName"),
		}
		if p.RawID == "" && p.FederatedID != nil {
			p.RawID = *p.FederatedID
		}
		if p.ProviderID == "" || p.RawID == "" {
			pr.problem("has no providerId or rawId")
		}
		p.Extra = pr.rest()
		if pr.bad != "" {
			r.problem("providerUserInfo[%d] %s", i, pr.bad)
		}
		u.Providers = append(u.Providers, p)
	}
	for i, mv := range r.array("mfaInfo") {
		mobj, ok := mv.(map[string]any)
		if !ok {
			r.problem("mfaInfo[%d] is a JSON %s, not an object", i, jsonKind(mv))
			continue
		}
		mr := jsonFields{obj: mobj, used: map[string]bool{}}
		m := record.MFAFactor{
			EnrollmentID:            derefStr(mr.str("mfaEnrollmentId")),
			DisplayName:             mr.str("displayName"),
			PhoneNumber:             mr.str("phoneInfo"),
			UnobfuscatedPhoneNumber: mr.str("unobfuscatedPhoneInfo"),
			EnrolledAt:              mr.rfc3339("enrolledAt"),
			FactorID:                "unknown",
		}
		switch {
		case m.PhoneNumber != nil:
			m.FactorID = "phone"
		case mr.has("totpInfo"):
			m.FactorID = "totp"
			mr.keep("totpInfo")
		case mr.has("emailInfo"):
			m.FactorID = "email"
			if e, ok := mobj["emailInfo"].(map[string]any); ok {
				if s, ok := e["emailAddress"].(string); ok {
					m.EmailAddr = &s
				}
			}
			mr.keep("emailInfo")
		}
		if m.EnrollmentID == "" {
			mr.problem("has no mfaEnrollmentId")
		}
		m.Extra = mr.rest()
		if mr.bad != "" {
			r.problem("mfaInfo[%d] %s", i, mr.bad)
		}
		u.MFA = append(u.MFA, m)
	}
	u.Extra = r.rest()
	u.Invalid = r.bad
	return u
}

// jsonFields reads the fields of one JSON object, remembering which it
// used (the rest go to Extra) and the first problem.
type jsonFields struct {
	obj  map[string]any
	used map[string]bool
	// kept are fields read but also copied to Extra.
	kept []string
	bad  string
}

func (r *jsonFields) problem(format string, args ...any) {
	if r.bad == "" {
		r.bad = fmt.Sprintf(format, args...)
	}
}

func (r *jsonFields) has(k string) bool {
	_, ok := r.obj[k]
	r.used[k] = true
	return ok
}

// keep marks fields to be copied to Extra even though they were read.
func (r *jsonFields) keep(ks ...string) { r.kept = append(r.kept, ks...) }

func (r *jsonFields) get(k string) (any, bool) {
	v, ok := r.obj[k]
	r.used[k] = true
	if ok && v == nil {
		return nil, false // an explicit null is the same as absent
	}
	return v, ok
}

func (r *jsonFields) str(k string) *string {
	v, ok := r.get(k)
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		r.problem("field %q is a JSON %s, want a string", k, jsonKind(v))
		return nil
	}
	return &s
}

func (r *jsonFields) bool(k string) bool {
	v, ok := r.get(k)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		r.problem("field %q is a JSON %s, want true or false", k, jsonKind(v))
	}
	return b
}

// number reads an integer given as a JSON number or a decimal string (the
// API sends int64 as strings).
func (r *jsonFields) number(k string) (float64, bool) {
	v, ok := r.get(k)
	if !ok {
		return 0, false
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	default:
		r.problem("field %q is a JSON %s, want a number", k, jsonKind(v))
		return 0, false
	}
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		r.problem("field %q is %q, not a number", k, s)
		return 0, false
	}
	return f, true
}

func (r *jsonFields) int(k string) *int64 {
	f, ok := r.number(k)
	if !ok {
		return nil
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		r.problem("field %q is not a whole number", k)
		return nil
	}
	n := int64(f)
	return &n
}

func (r *jsonFields) millis(k string) time.Time {
	f, ok := r.number(k)
	if !ok {
		return time.Time{}
	}
	if f < 0 || f > 1e15 {
		r.problem("field %q is out of range for milliseconds since 1970", k)
		return time.Time{}
	}
	return time.UnixMicro(int64(math.Round(f * 1000))).UTC()
}

func (r *jsonFields) seconds(k string) time.Time {
	f, ok := r.number(k)
	if !ok {
		return time.Time{}
	}
	if f < 0 || f > 1e12 {
		r.problem("field %q is out of range for seconds since 1970", k)
		return time.Time{}
	}
	return time.UnixMicro(int64(math.Round(f * 1e6))).UTC()
}

func (r *jsonFields) rfc3339(k string) time.Time {
	s := r.str(k)
	if s == nil || *s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		r.problem("field %q is %q, not an RFC 3339 time", k, *s)
		return time.Time{}
	}
	return t.UTC()
}

// claims reads customAttributes: Firebase's JSON text, or (in hand-made
// files) a JSON object, which is written back as compact text.
func (r *jsonFields) claims(k string) *string {
	v, ok := r.get(k)
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case string:
		return &x
	case map[string]any:
		b, err := json.Marshal(x) // json.Number keeps every digit
		if err != nil {
			r.problem("field %q cannot be re-encoded: %v", k, err)
			return nil
		}
		s := string(b)
		return &s
	}
	r.problem("field %q is a JSON %s, want a JSON object or its text", k, jsonKind(v))
	return nil
}

func (r *jsonFields) array(k string) []any {
	v, ok := r.get(k)
	if !ok {
		return nil
	}
	a, isArr := v.([]any)
	if !isArr {
		r.problem("field %q is a JSON %s, want an array", k, jsonKind(v))
		return nil
	}
	return a
}

// rest returns the fields not read, plus the kept ones, as values; nil when
// there are none.
func (r *jsonFields) rest() map[string]record.Value {
	var out map[string]record.Value
	add := func(k string, v any) {
		if out == nil {
			out = map[string]record.Value{}
		}
		out[k] = jsonValue(v)
	}
	keys := make([]string, 0, len(r.obj))
	for k := range r.obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !r.used[k] {
			add(k, r.obj[k])
		}
	}
	for _, k := range r.kept {
		if v, ok := r.obj[k]; ok {
			add(k, v)
		}
	}
	return out
}

// jsonValue converts a decoded JSON tree (UseNumber) to a Value exactly:
// integers that fit int64 stay integers, other numbers are doubles, object
// keys are kept as they are.
func jsonValue(v any) record.Value {
	switch x := v.(type) {
	case nil:
		return record.Null()
	case bool:
		return record.Bool(x)
	case string:
		return record.String(x)
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return record.Int(i)
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return record.String(string(x)) // beyond float64: keep the digits
		}
		return record.Double(f)
	case float64:
		return record.Double(x)
	case []any:
		out := make([]record.Value, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return record.Array(out...)
	case map[string]any:
		out := make(map[string]record.Value, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return record.Map(out)
	}
	return record.String(fmt.Sprint(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
