package cognito

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// MFA is a user's multi-factor settings as AdminGetUser reports them:
// the factors enabled (SMS_MFA, SOFTWARE_TOKEN_MFA, EMAIL_OTP) and the
// preferred one. Known is false when they were not read (the pool's MFA
// is OFF, so no user has any).
type MFA struct {
	Known     bool
	Settings  []string
	Preferred string
}

// StatusExternalProvider is the status of a user who signs in only
// through a federated identity provider: such a user has no password.
const StatusExternalProvider = "EXTERNAL_PROVIDER"

// UserFrom maps one Cognito user to a user record (see the package
// documentation for every field). groups are the user's groups, sorted;
// mfa its MFA settings. A user without a sub, or whose identities
// attribute is not the JSON Cognito writes, is returned with Invalid set
// (the sink rejects it with that reason).
func UserFrom(u types.UserType, groups []string, mfa MFA) record.User {
	attrs := map[string]string{}
	for _, a := range u.Attributes {
		if a.Name != nil && a.Value != nil {
			attrs[*a.Name] = *a.Value
		}
	}
	username := aws.ToString(u.Username)
	out := record.User{
		UID:      attrs["sub"],
		Disabled: !u.Enabled,
		Extra: map[string]record.Value{
			"username":   record.String(username),
			"userStatus": record.String(string(u.UserStatus)),
			"enabled":    record.Bool(u.Enabled),
		},
	}
	if out.UID == "" {
		// Every Cognito user has a sub; without one the record is not a
		// user we can key.
		out.UID = "username:" + username
		out.Invalid = fmt.Sprintf("Cognito user %q has no sub attribute", username)
	}
	if u.UserCreateDate != nil {
		out.CreatedAt = u.UserCreateDate.UTC()
	}
	if u.UserLastModifiedDate != nil {
		out.Extra["lastModifiedAt"] = record.Timestamp(u.UserLastModifiedDate.UTC())
	}
	if v, ok := attrs["email"]; ok {
		out.Email = &v
		out.EmailVerified = attrs["email_verified"] == "true"
	}
	if v, ok := attrs["phone_number"]; ok {
		out.PhoneNumber = &v
	}
	if v, ok := attrs["name"]; ok {
		out.DisplayName = &v
	}
	if v, ok := attrs["picture"]; ok {
		out.PhotoURL = &v
	}
	// Every attribute, standard and custom, exactly as Cognito has it
	// (values are strings there).
	all := make(map[string]record.Value, len(attrs))
	for k, v := range attrs {
		all[k] = record.String(v)
	}
	out.Extra["attributes"] = record.Map(all)

	// The claims Cognito puts in the user's ID token beyond the standard
	// ones: custom: attributes and cognito:groups.
	claims := map[string]any{}
	for k, v := range attrs {
		if strings.HasPrefix(k, "custom:") {
			claims[k] = v
		}
	}
	if len(groups) > 0 {
		claims["cognito:groups"] = groups
		vals := make([]record.Value, len(groups))
		for i, g := range groups {
			vals[i] = record.String(g)
		}
		out.Extra["groups"] = record.Array(vals...)
	}
	if len(claims) > 0 {
		text, _ := json.Marshal(claims) // strings and string slices: cannot fail
		s := string(text)
		out.CustomClaims = &s
	}

	if id, ok := attrs["identities"]; ok {
		providers, err := identities(id)
		if err != nil {
			out.Invalid = fmt.Sprintf("Cognito user %q: the identities attribute is not a JSON array of identities: %v", username, err)
		}
		out.Providers = providers
	}
	out.MFA = factors(u.MFAOptions, mfa, attrs)
	if mfa.Known {
		vals := make([]record.Value, len(mfa.Settings))
		for i, s := range mfa.Settings {
			vals[i] = record.String(s)
		}
		out.Extra["mfaSettings"] = record.Array(vals...)
		if mfa.Preferred != "" {
			out.Extra["preferredMfa"] = record.String(mfa.Preferred)
		}
	}
	// Cognito never exports password hashes: every user who can sign in
	// with a password gets a credential of NONE, captured at the first
	// sign-in against Cognito (passwords/capture). A user of a federated
	// provider only has none at all.
	if u.UserStatus != StatusExternalProvider {
		out.Password = &passwords.Credential{Algorithm: passwords.None}
	}
	return out
}

// identity is one element of Cognito's identities attribute.
type identity struct {
	UserID       string          `json:"userId"`
	ProviderName string          `json:"providerName"`
	ProviderType string          `json:"providerType"`
	Issuer       *string         `json:"issuer"`
	Primary      json.RawMessage `json:"primary"`
	DateCreated  json.RawMessage `json:"dateCreated"`
}

// identities reads the identities attribute of a user linked to
// identity-provider users: the provider's name becomes the provider id,
// the user's id there the raw id.
func identities(text string) ([]record.Provider, error) {
	var ids []identity
	if err := json.Unmarshal([]byte(text), &ids); err != nil {
		return nil, err
	}
	out := make([]record.Provider, 0, len(ids))
	for _, id := range ids {
		if id.ProviderName == "" || id.UserID == "" {
			return nil, fmt.Errorf("an identity without providerName or userId")
		}
		p := record.Provider{ProviderID: id.ProviderName, RawID: id.UserID, Extra: map[string]record.Value{}}
		if id.ProviderType != "" {
			p.Extra["providerType"] = record.String(id.ProviderType)
		}
		if id.Issuer != nil {
			p.Extra["issuer"] = record.String(*id.Issuer)
		}
		if b := jsonBool(id.Primary); b != nil {
			p.Extra["primary"] = record.Bool(*b)
		}
		if t := epochMillis(id.DateCreated); !t.IsZero() {
			p.Extra["dateCreated"] = record.Timestamp(t)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ProviderID != out[j].ProviderID {
			return out[i].ProviderID < out[j].ProviderID
		}
		return out[i].RawID < out[j].RawID
	})
	return out, nil
}

// factors lists the user's MFA factors: the ones AdminGetUser reports
// enabled (when known), else the legacy MFAOptions (SMS) ListUsers gives.
// Enrolment ids are the setting names; TOTP secrets never leave Cognito.
func factors(legacy []types.MFAOptionType, mfa MFA, attrs map[string]string) []record.MFAFactor {
	settings := mfa.Settings
	if !mfa.Known {
		for _, o := range legacy {
			if o.DeliveryMedium == types.DeliveryMediumTypeSms {
				settings = append(settings, "SMS_MFA")
			}
		}
	}
	var out []record.MFAFactor
	seen := map[string]bool{}
	for _, s := range settings {
		if seen[s] {
			continue
		}
		seen[s] = true
		f := record.MFAFactor{EnrollmentID: s, Extra: map[string]record.Value{"preferred": record.Bool(s == mfa.Preferred)}}
		switch s {
		case "SMS_MFA":
			f.FactorID = "phone"
			if v, ok := attrs["phone_number"]; ok {
				f.PhoneNumber = &v
			}
		case "SOFTWARE_TOKEN_MFA":
			f.FactorID = "totp"
		case "EMAIL_OTP":
			f.FactorID = "email"
			if v, ok := attrs["email"]; ok {
				f.EmailAddr = &v
			}
		default:
			f.FactorID = "unknown"
			f.Extra["cognitoSetting"] = record.String(s)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EnrollmentID < out[j].EnrollmentID })
	return out
}

// jsonBool reads true/false or "true"/"false" (Cognito writes the latter).
func jsonBool(raw json.RawMessage) *bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil && len(raw) > 0 {
		return &b
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := strconv.ParseBool(s); err == nil {
			return &v
		}
	}
	return nil
}

// epochMillis reads a time in milliseconds since the epoch, as a number
// or a string of digits; zero when absent or unreadable.
func epochMillis(raw json.RawMessage) time.Time {
	s := strings.Trim(string(raw), `"`)
	if s == "" || s == "null" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
