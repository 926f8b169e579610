package cognito_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/cognito"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/internal/cognitotest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/passwords"
)

const identitiesJSON = `[{"userId":"1090","providerName":"Google","providerType":"Google","issuer":null,"primary":"true","dateCreated":"1700000000000"},` +
	`{"userId":"alice@corp","providerName":"CorpSAML","providerType":"SAML","issuer":"urn:corp","primary":"false","dateCreated":"1700000001000"}]`

// seed fills a fresh pool: alice (CONFIRMED, every kind of attribute,
// two linked identities, two groups), bob (FORCE_CHANGE_PASSWORD,
// disabled), carol (UNCONFIRMED, signed up), dave (SMS MFA, preferred,
// the pool's MFA OPTIONAL) and fillers u000… so that ListUsers takes
// three pages. It returns the pool.
func seed(t *testing.T, c *cip.Client, fillers int) cognitotest.Pool {
	t.Helper()
	ctx := context.Background()
	pool := cognitotest.NewPool(t, c)
	cognitotest.CreateUser(t, c, pool.ID, "alice", "Alice-Passw0rd!", cognitotest.Attrs(
		"email", "alice@example.test", "email_verified", "true", "phone_number", "+15550001111", "phone_number_verified", "false",
		"name", "Alice Liddell", "picture", "https://example.test/a.png", "locale", "en-GB", "birthdate", "1990-01-02",
		"custom:tier", "gold", "custom:score", "42", "identities", identitiesJSON)...)
	cognitotest.CreateUser(t, c, pool.ID, "bob", "")
	if _, err := c.AdminDisableUser(ctx, &cip.AdminDisableUserInput{UserPoolId: &pool.ID, Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: &pool.ClientID, Username: aws.String("carol"), Password: aws.String("Carol-Passw0rd!"),
		UserAttributes: cognitotest.Attrs("email", "carol@example.test")}); err != nil {
		t.Fatal(err)
	}
	cognitotest.CreateUser(t, c, pool.ID, "dave", "Dave-Passw0rd!", cognitotest.Attrs("phone_number", "+15550002222", "phone_number_verified", "true")...)
	auth, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{ClientId: &pool.ClientID, AuthFlow: types.AuthFlowTypeUserPasswordAuth,
		AuthParameters: map[string]string{"USERNAME": "dave", "PASSWORD": "Dave-Passw0rd!"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetUserPoolMfaConfig(ctx, &cip.SetUserPoolMfaConfigInput{UserPoolId: &pool.ID, MfaConfiguration: types.UserPoolMfaTypeOptional,
		SmsMfaConfiguration: &types.SmsMfaConfigType{SmsAuthenticationMessage: aws.String("code {####}")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetUserMFAPreference(ctx, &cip.SetUserMFAPreferenceInput{AccessToken: auth.AuthenticationResult.AccessToken,
		SMSMfaSettings: &types.SMSMfaSettingsType{Enabled: true, PreferredMfa: true}}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"admins", "editors", "empty"} {
		if _, err := c.CreateGroup(ctx, &cip.CreateGroupInput{UserPoolId: &pool.ID, GroupName: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range [][2]string{{"admins", "alice"}, {"editors", "alice"}, {"editors", "dave"}} {
		if _, err := c.AdminAddUserToGroup(ctx, &cip.AdminAddUserToGroupInput{UserPoolId: &pool.ID, GroupName: aws.String(m[0]), Username: aws.String(m[1])}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range fillers {
		cognitotest.CreateUser(t, c, pool.ID, fmt.Sprintf("u%03d", i), fmt.Sprintf("Filler-Passw0rd-%d", i),
			cognitotest.Attrs("email", fmt.Sprintf("u%03d@example.test", i), "custom:tier", "bronze")...)
	}
	return pool
}

// TestCognitoConformance runs the extractor suite over a seeded pool read
// through the paging front, with every record built by hand from what the
// seed wrote (subs and times from AdminGetUser).
func TestCognitoConformance(t *testing.T) {
	endpoint := cognitotest.Endpoint(t)
	direct := cognitotest.Client(endpoint)
	pool := seed(t, direct, 125)
	front := cognitotest.Start(t, endpoint)
	want := map[string]record.Record{}
	ctx := context.Background()
	got := func(username string) (string, time.Time, time.Time) {
		u, err := direct.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: &pool.ID, Username: aws.String(username)})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range u.UserAttributes {
			if aws.ToString(a.Name) == "sub" {
				return aws.ToString(a.Value), u.UserCreateDate.UTC(), u.UserLastModifiedDate.UTC()
			}
		}
		t.Fatalf("%s has no sub", username)
		return "", time.Time{}, time.Time{}
	}
	str := func(s string) *string { return &s }
	add := func(username, status string, enabled bool, attrs map[string]string, u record.User, groups []string, mfa []string, preferred string) {
		sub, created, modified := got(username)
		attrs["sub"] = sub
		u.UID, u.CreatedAt, u.Disabled = sub, created, !enabled
		all := map[string]record.Value{}
		for k, v := range attrs {
			all[k] = record.String(v)
		}
		u.Extra = map[string]record.Value{"username": record.String(username), "userStatus": record.String(status),
			"enabled": record.Bool(enabled), "lastModifiedAt": record.Timestamp(modified), "attributes": record.Map(all),
			"mfaSettings": record.Array()}
		if len(groups) > 0 {
			vals := make([]record.Value, len(groups))
			for i, g := range groups {
				vals[i] = record.String(g)
			}
			u.Extra["groups"] = record.Array(vals...)
		}
		if mfa != nil {
			vals := make([]record.Value, len(mfa))
			for i, g := range mfa {
				vals[i] = record.String(g)
			}
			u.Extra["mfaSettings"] = record.Array(vals...)
		}
		if preferred != "" {
			u.Extra["preferredMfa"] = record.String(preferred)
		}
		u.Password = &passwords.Credential{Algorithm: passwords.None}
		want[sub] = u.Record("")
	}
	aliceAttrs := map[string]string{"email": "alice@example.test", "email_verified": "true", "phone_number": "+15550001111",
		"phone_number_verified": "false", "name": "Alice Liddell", "picture": "https://example.test/a.png", "locale": "en-GB",
		"birthdate": "1990-01-02", "custom:tier": "gold", "custom:score": "42", "identities": identitiesJSON}
	add("alice", "CONFIRMED", true, aliceAttrs, record.User{
		Email: str("alice@example.test"), EmailVerified: true, PhoneNumber: str("+15550001111"), DisplayName: str("Alice Liddell"),
		PhotoURL:     str("https://example.test/a.png"),
		CustomClaims: str(`{"cognito:groups":["admins","editors"],"custom:score":"42","custom:tier":"gold"}`),
		Providers: []record.Provider{
			{ProviderID: "CorpSAML", RawID: "alice@corp", Extra: map[string]record.Value{"providerType": record.String("SAML"),
				"issuer": record.String("urn:corp"), "primary": record.Bool(false), "dateCreated": record.Timestamp(time.UnixMilli(1700000001000).UTC())}},
			{ProviderID: "Google", RawID: "1090", Extra: map[string]record.Value{"providerType": record.String("Google"),
				"primary": record.Bool(true), "dateCreated": record.Timestamp(time.UnixMilli(1700000000000).UTC())}},
		},
	}, []string{"admins", "editors"}, nil, "")
	add("bob", "FORCE_CHANGE_PASSWORD", false, map[string]string{}, record.User{}, nil, nil, "")
	add("carol", "UNCONFIRMED", true, map[string]string{"email": "carol@example.test"}, record.User{Email: str("carol@example.test")}, nil, nil, "")
	add("dave", "CONFIRMED", true, map[string]string{"phone_number": "+15550002222", "phone_number_verified": "true"}, record.User{
		PhoneNumber: str("+15550002222"), CustomClaims: str(`{"cognito:groups":["editors"]}`),
		MFA: []record.MFAFactor{{EnrollmentID: "SMS_MFA", FactorID: "phone", PhoneNumber: str("+15550002222"),
			Extra: map[string]record.Value{"preferred": record.Bool(true)}}},
	}, []string{"editors"}, []string{"SMS_MFA"}, "SMS_MFA")
	for i := range 125 {
		add(fmt.Sprintf("u%03d", i), "CONFIRMED", true, map[string]string{"email": fmt.Sprintf("u%03d@example.test", i), "custom:tier": "bronze"},
			record.User{Email: str(fmt.Sprintf("u%03d@example.test", i)), CustomClaims: str(`{"custom:tier":"bronze"}`)}, nil, nil, "")
	}
	policy := retry.Policy{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}
	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			return cognito.NewWithClient(cognitotest.Client(front.URL), pool.ID, 1000, 1000, policy)
		},
		Want:        want,
		Partitions:  []int{1, 4},
		ResumeEvery: 29,
		Unreachable: func(t *testing.T) extractors.Extractor {
			c := cognitotest.Client("http://127.0.0.1:1")
			return cognito.NewWithClient(c, pool.ID, 1000, 1000, policy)
		},
	})
	if n := front.Count("ListUsers"); n == 0 {
		t.Error("the front saw no ListUsers")
	}
}

// TestCognitoPagesAndPaces: one read lists 129 users in three ListUsers
// pages of at most 60; a throttled page is retried, and the pacer halves
// its rate.
func TestCognitoPagesAndPaces(t *testing.T) {
	endpoint := cognitotest.Endpoint(t)
	direct := cognitotest.Client(endpoint)
	pool := seed(t, direct, 125)
	front := cognitotest.Start(t, endpoint)
	ex := cognito.NewWithClient(cognitotest.Client(front.URL), pool.ID, 40, 1000, retry.Policy{Attempts: 4, Initial: time.Millisecond, Max: 5 * time.Millisecond})
	front.Throttle("ListUsers", 4) // the SDK's 3 attempts, then ours
	streams, err := ex.Plan(context.Background(), 4, time.Time{})
	if err != nil || len(streams) != 1 || len(streams[0].Partitions) != 1 {
		t.Fatalf("plan: %v %+v", err, streams)
	}
	n := 0
	err = ex.Read(context.Background(), streams[0].Partitions[0], time.Time{}, "", func(r record.Record) error {
		n++
		return nil
	})
	if err != nil || n != 129 {
		t.Fatalf("read %d users (%v); want 129", n, err)
	}
	if got := front.Count("ListUsers"); got != 3+4 {
		t.Errorf("%d ListUsers requests; want 3 pages + 4 throttled", got)
	}
	if r := cognito.ListRate(ex); r >= 40 {
		t.Errorf("after throttling the list pace is still %v requests/s", r)
	}
	// ListGroups once, ListUsersInGroup once per group.
	if front.Count("ListGroups") != 1 || front.Count("ListUsersInGroup") != 3 || front.Count("AdminGetUser") != 129 {
		t.Errorf("ListGroups %d, ListUsersInGroup %d, AdminGetUser %d; want 1, 3 and 129 (the pool's MFA is OPTIONAL)",
			front.Count("ListGroups"), front.Count("ListUsersInGroup"), front.Count("AdminGetUser"))
	}
}

// TestResumeAfterADeletedUserStops: a cursor whose user is no longer on
// its page stops the read, saying to --restart.
func TestResumeAfterADeletedUserStops(t *testing.T) {
	endpoint := cognitotest.Endpoint(t)
	direct := cognitotest.Client(endpoint)
	pool := seed(t, direct, 0)
	ex := cognito.NewWithClient(cognitotest.Client(cognitotest.Start(t, endpoint).URL), pool.ID, 1000, 1000, retry.Policy{Attempts: 1})
	p := extractors.Partition{Stream: cognito.StreamName, ID: "p0000"}
	var cursors []string
	if err := ex.Read(context.Background(), p, time.Time{}, "", func(r record.Record) error {
		cursors = append(cursors, r.Cursor)
		return nil
	}); err != nil || len(cursors) != 4 {
		t.Fatalf("%d users, %v", len(cursors), err)
	}
	var c struct{ U string }
	_ = json.Unmarshal([]byte(cursors[1]), &c)
	if _, err := direct.AdminDeleteUser(context.Background(), &cip.AdminDeleteUserInput{UserPoolId: &pool.ID, Username: &c.U}); err != nil {
		t.Fatal(err)
	}
	err := ex.Read(context.Background(), p, time.Time{}, cursors[1], func(record.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "--restart") {
		t.Fatalf("resuming after a deleted user: %v; want advice to --restart", err)
	}
}

func TestRates(t *testing.T) {
	list, read, err := cognito.Rates(plugin.Config{})
	if err != nil || list != 20 || read != 80 {
		t.Fatalf("defaults: %d, %d, %v; want 20, 80, nil", list, read, err)
	}
	list, read, err = cognito.Rates(plugin.Config{cognito.ListRPSOption.Name: "5", cognito.ReadRPSOption.Name: "300"})
	if err != nil || list != 5 || read != 300 {
		t.Fatalf("set: %d, %d, %v; want 5, 300, nil", list, read, err)
	}
	for _, bad := range []plugin.Config{{cognito.ListRPSOption.Name: "0"}, {cognito.ReadRPSOption.Name: "10001"}, {cognito.ListRPSOption.Name: "x"}} {
		if _, _, err := cognito.Rates(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
