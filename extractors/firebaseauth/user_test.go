package firebaseauth

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

func TestUserRecordRoundTrip(t *testing.T) {
	v := int64(0)
	u := User{
		UID: "Case-Sensitive/ü", TenantID: "t", Email: ptr("a@b.c"), PhoneNumber: ptr("+1"), DisplayName: ptr(""), PhotoURL: ptr("p"),
		EmailVerified: true, Disabled: true,
		CreatedAt: time.UnixMilli(1), LastSignInAt: time.UnixMilli(2).UTC(), LastRefreshAt: time.UnixMilli(3).UTC(),
		PasswordUpdatedAt: time.UnixMilli(4).UTC(), ValidSince: time.Unix(5, 0).UTC(), CustomClaims: ptr(`{"a":1}`),
		Password: &Password{Algorithm: AlgorithmFirebaseScrypt, Hash: "h", Salt: "s", Version: &v},
		Providers: []Provider{{ProviderID: "google.com", RawID: "1", FederatedID: ptr("f"), Email: ptr("e"), DisplayName: ptr("d"),
			PhotoURL: ptr("p"), PhoneNumber: ptr("n"), Name: ptr("s"), Extra: map[string]record.Value{"x": record.Int(1)}}},
		MFA: []MFAFactor{{EnrollmentID: "m", FactorID: "email", EmailAddr: ptr("m@b.c"), EnrolledAt: time.UnixMilli(6).UTC(),
			Extra: map[string]record.Value{"emailInfo": record.Map(map[string]record.Value{"emailAddress": record.String("m@b.c")})}}},
		Extra:   map[string]record.Value{"screenName": record.String("x")},
		Invalid: "because",
	}
	u.CreatedAt = u.CreatedAt.UTC()
	r := u.Record("c")
	if r.Key != u.UID || r.Cursor != "c" || !r.CreateTime.Equal(u.CreatedAt) {
		t.Fatalf("record = %+v", r)
	}
	back, err := UserFromRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, u) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", back, u)
	}
	// Typed JSON (how rejects are stored) round-trips as well.
	data, _ := r.MarshalJSON()
	if _, err := record.UnmarshalJSONFields(data); err != nil {
		t.Fatal(err)
	}
	bad := r
	bad.Fields = map[string]record.Value{fEmail: record.Int(1)}
	if _, err := UserFromRecord(bad); err == nil {
		t.Fatal("a record with a mistyped field was accepted")
	}
}

func TestHashParamsAllOrNothingAndNoSecretsInErrors(t *testing.T) {
	const key = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
	p, err := HashParams(plugin.Config{})
	if err != nil || !p.IsZero() {
		t.Fatalf("no parameters: %v, %v", p, err)
	}
	p, err = HashParams(plugin.Config{"hash-signer-key": key, "hash-salt-separator": "Bw==", "hash-rounds": "8", "hash-mem-cost": "14"})
	if err != nil || p.IsZero() || p.Rounds() != 8 {
		t.Fatalf("all four: %v, %v", p, err)
	}
	_, err = HashParams(plugin.Config{"hash-signer-key": key})
	if err == nil || !strings.Contains(err.Error(), "--hash-rounds") || !strings.Contains(err.Error(), "--hash-salt-separator") {
		t.Fatalf("partial: %v", err)
	}
	for _, cfg := range []plugin.Config{
		{"hash-signer-key": key + "!", "hash-salt-separator": "Bw==", "hash-rounds": "8", "hash-mem-cost": "14"},
		{"hash-signer-key": key, "hash-salt-separator": "Bw==!" + key, "hash-rounds": "8", "hash-mem-cost": "14"},
		{"hash-signer-key": key, "hash-salt-separator": "Bw==", "hash-rounds": "80", "hash-mem-cost": "14"},
	} {
		_, err := HashParams(cfg)
		if err == nil || strings.Contains(err.Error(), key[:20]) || strings.Contains(err.Error(), "Bw==") {
			t.Fatalf("bad parameters: err = %v (must exist and not quote secrets)", err)
		}
	}
}
