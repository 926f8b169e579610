package record

import (
	"reflect"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/passwords"
)

func ptr(s string) *string { return &s }

func TestUserRecordRoundTrip(t *testing.T) {
	v := int64(0)
	u := User{
		UID: "Case-Sensitive/ü", TenantID: "t", Email: ptr("a@b.c"), PhoneNumber: ptr("+1"), DisplayName: ptr(""), PhotoURL: ptr("p"),
		EmailVerified: true, Disabled: true,
		CreatedAt: time.UnixMilli(1), LastSignInAt: time.UnixMilli(2).UTC(), LastRefreshAt: time.UnixMilli(3).UTC(),
		PasswordUpdatedAt: time.UnixMilli(4).UTC(), ValidSince: time.Unix(5, 0).UTC(), CustomClaims: ptr(`{"a":1}`),
		Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: "h", Salt: "s", Version: &v, Params: map[string]string{"rounds": "8"}},
		Providers: []Provider{{ProviderID: "google.com", RawID: "1", FederatedID: ptr("f"), Email: ptr("e"), DisplayName: ptr("d"),
			PhotoURL: ptr("p"), PhoneNumber: ptr("n"), Name: ptr("s"), Extra: map[string]Value{"x": Int(1)}}},
		MFA: []MFAFactor{{EnrollmentID: "m", FactorID: "email", EmailAddr: ptr("m@b.c"), EnrolledAt: time.UnixMilli(6).UTC(),
			Extra: map[string]Value{"emailInfo": Map(map[string]Value{"emailAddress": String("m@b.c")})}}},
		Extra:   map[string]Value{"screenName": String("x")},
		Invalid: "because",
	}
	u.CreatedAt = u.CreatedAt.UTC()
	r := u.Record("c")
	if r.Key != u.UID || r.Cursor != "c" || !r.CreateTime.Equal(u.CreatedAt) {
		t.Fatalf("record = %+v", r)
	}
	back, err := UserFrom(r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, u) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", back, u)
	}
	// Typed JSON (how rejects are stored) round-trips as well.
	data, _ := r.MarshalJSON()
	if _, err := UnmarshalJSONFields(data); err != nil {
		t.Fatal(err)
	}
	bad := r
	bad.Fields = map[string]Value{fEmail: Int(1)}
	if _, err := UserFrom(bad); err == nil {
		t.Fatal("a record with a mistyped field was accepted")
	}
}
