package capture_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/baasmigrate/baasmigrate/internal/cognitotest"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/argon2id"
	"github.com/baasmigrate/baasmigrate/passwords/capture"
)

// fast keeps the tests' hashes cheap; the cost does not change what is
// tested.
var fast = argon2id.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// TestCaptureAgainstCognitoLocal: both flows capture the right password
// as an Argon2id credential that verifies it (and refuses another), and
// capture nothing for a wrong password, an unknown user, a temporary
// password (NEW_PASSWORD_REQUIRED; the admin flow's status check) or an
// unconfirmed user.
func TestCaptureAgainstCognitoLocal(t *testing.T) {
	ctx := context.Background()
	c := cognitotest.Client(cognitotest.Endpoint(t))
	pool := cognitotest.NewPool(t, c)
	cognitotest.CreateUser(t, c, pool.ID, "alice", "Alice-Passw0rd!")
	cognitotest.CreateUser(t, c, pool.ID, "bob", "") // temporary password Temp-Passw0rd!
	if _, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: &pool.ClientID, Username: aws.String("carol"), Password: aws.String("Carol-Passw0rd!")}); err != nil {
		t.Fatal(err)
	}
	for _, flow := range []struct {
		name string
		cap  *capture.Cognito
	}{
		{"USER_PASSWORD_AUTH", &capture.Cognito{Client: c, ClientID: pool.ClientID, Params: fast}},
		{"ADMIN_USER_PASSWORD_AUTH", &capture.Cognito{Client: c, ClientID: pool.ClientID, UserPoolID: pool.ID, Params: fast}},
	} {
		t.Run(flow.name, func(t *testing.T) {
			// A temporary password: Cognito's challenge, or (the admin
			// flow against cognito-local, which sends none) the status.
			bobReason, bobChallenge := capture.ReasonChallenge, "NEW_PASSWORD_REQUIRED"
			if flow.cap.UserPoolID != "" {
				bobReason, bobChallenge = capture.ReasonNotFinal, "FORCE_CHANGE_PASSWORD"
			}
			res, err := flow.cap.Capture(ctx, "alice", []byte("Alice-Passw0rd!"))
			if err != nil || !res.Captured || res.Credential == nil || res.Credential.Algorithm != passwords.Argon2id {
				t.Fatalf("the right password: %+v, %v", res, err)
			}
			if ok, err := passwords.Verify(*res.Credential, []byte("Alice-Passw0rd!")); !ok || err != nil {
				t.Errorf("the captured credential does not verify the password (%v)", err)
			}
			if ok, _ := passwords.Verify(*res.Credential, []byte("Alice-Passw0rd?")); ok {
				t.Error("the captured credential verifies another password")
			}
			for _, c := range []struct {
				user, password, reason, challenge string
			}{
				{"alice", "Alice-Passw0rd?", capture.ReasonWrongPassword, ""},
				{"nobody", "Alice-Passw0rd!", capture.ReasonWrongPassword, ""},
				{"bob", "Temp-Passw0rd!", bobReason, bobChallenge},
				{"carol", "Carol-Passw0rd!", capture.ReasonNotConfirmed, ""},
				{"alice", "", capture.ReasonNoPassword, ""},
			} {
				res, err := flow.cap.Capture(ctx, c.user, []byte(c.password))
				if err != nil || res.Captured || res.Credential != nil || res.Reason != c.reason || res.Challenge != c.challenge {
					t.Errorf("%s with %q: %+v, %v; want not captured: %q %q", c.user, c.password, res, err, c.reason, c.challenge)
				}
			}
		})
	}
}

// TestCaptureErrorsNeverShowThePassword: a failure to ask Cognito is an
// error, without the password in it.
func TestCaptureErrorsNeverShowThePassword(t *testing.T) {
	c := cognitotest.Client("http://127.0.0.1:1")
	_, err := (&capture.Cognito{Client: c, ClientID: "x"}).Capture(context.Background(), "alice", []byte("S3cret-Passw0rd!"))
	if err == nil || strings.Contains(err.Error(), "S3cret-Passw0rd!") {
		t.Fatalf("capture against a closed port: %v", err)
	}
}

// TestSecretHash matches the value AWS documents how to compute
// (HMAC-SHA256 of username+clientId, keyed by the secret, base64).
func TestSecretHash(t *testing.T) {
	// Computed independently: printf 'aliceclient1' | openssl dgst -sha256 -hmac secret -binary | base64
	if got, want := capture.SecretHash("secret", "alice", "client1"), "1f+jIZ5jrvd9T9LKNEBwDVXuGhIxTem62DTEPkKb29k="; got != want {
		t.Errorf("SecretHash = %s, want %s", got, want)
	}
}
