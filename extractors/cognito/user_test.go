package cognito

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/baasmigrate/baasmigrate/passwords"
)

func attrs(kv ...string) []types.AttributeType {
	var out []types.AttributeType
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.AttributeType{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

// TestUserFromStatuses: statuses cognito-local cannot produce. A user of
// an external provider only has no password; every other status gets
// NONE; the status is kept.
func TestUserFromStatuses(t *testing.T) {
	for _, c := range []struct {
		status   types.UserStatusType
		password bool
	}{
		{types.UserStatusTypeConfirmed, true}, {types.UserStatusTypeUnconfirmed, true},
		{types.UserStatusTypeForceChangePassword, true}, {types.UserStatusTypeResetRequired, true},
		{types.UserStatusTypeArchived, true}, {types.UserStatusTypeCompromised, true},
		{types.UserStatusTypeExternalProvider, false},
	} {
		u := UserFrom(types.UserType{Username: aws.String("google_1090"), UserStatus: c.status, Enabled: true,
			Attributes: attrs("sub", "0b5c3f9e-1111-2222-3333-444455556666")}, nil, MFA{})
		if got := u.Extra["userStatus"]; got.StringValue() != string(c.status) {
			t.Errorf("%s: status kept as %v", c.status, got)
		}
		if c.password != (u.Password != nil) || (u.Password != nil && (u.Password.Algorithm != passwords.None || u.Password.Hash != "" || u.Password.Salt != "")) {
			t.Errorf("%s: credential %+v", c.status, u.Password)
		}
		if u.Invalid != "" {
			t.Errorf("%s: invalid: %s", c.status, u.Invalid)
		}
	}
}

// TestUserFromLegacyMFAAndBadInput: legacy MFAOptions (SMS) become a
// phone factor when AdminGetUser was not asked; a user without a sub or
// with unreadable identities is marked invalid, naming the username.
func TestUserFromLegacyMFAAndBadInput(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	u := UserFrom(types.UserType{Username: aws.String("zed"), Enabled: true, UserStatus: types.UserStatusTypeConfirmed, UserCreateDate: &created,
		Attributes: attrs("sub", "s-1", "phone_number", "+15551234567"),
		MFAOptions: []types.MFAOptionType{{DeliveryMedium: types.DeliveryMediumTypeSms, AttributeName: aws.String("phone_number")}}}, nil, MFA{})
	if len(u.MFA) != 1 || u.MFA[0].FactorID != "phone" || *u.MFA[0].PhoneNumber != "+15551234567" || !u.CreatedAt.Equal(created) {
		t.Errorf("legacy SMS MFA: %+v, created %v", u.MFA, u.CreatedAt)
	}
	if _, ok := u.Extra["mfaSettings"]; ok {
		t.Error("mfaSettings set although AdminGetUser was not asked")
	}
	nosub := UserFrom(types.UserType{Username: aws.String("ghost"), UserStatus: types.UserStatusTypeConfirmed}, nil, MFA{})
	if !strings.Contains(nosub.Invalid, `"ghost" has no sub`) {
		t.Errorf("no sub: %q", nosub.Invalid)
	}
	bad := UserFrom(types.UserType{Username: aws.String("fed"), UserStatus: types.UserStatusTypeExternalProvider,
		Attributes: attrs("sub", "s-2", "identities", "not json")}, nil, MFA{})
	if !strings.Contains(bad.Invalid, `"fed": the identities attribute`) {
		t.Errorf("bad identities: %q", bad.Invalid)
	}
	if r := UserFrom(types.UserType{Username: aws.String("x"), Attributes: attrs("sub", "s-3")}, []string{"a", "b"}, MFA{}).Record(""); r.Key != "s-3" {
		t.Errorf("key %q", r.Key)
	} else if f := r.Fields["customClaims"]; f.StringValue() != `{"cognito:groups":["a","b"]}` {
		t.Errorf("claims %v", f)
	}
}
