// Package capture captures the passwords of users migrated from Amazon
// Cognito, which exports no password hashes: such users are stored with
// the credential passwords.None. At a user's first sign-in to the new
// backend, Capture checks the password the user typed against Cognito
// (InitiateAuth with USER_PASSWORD_AUTH and the app client's id, or
// AdminInitiateAuth with ADMIN_USER_PASSWORD_AUTH), and only when Cognito
// accepts it returns a new Argon2id credential (passwords/argon2id) to
// store in the user's place; Store writes it. This is the lazy migration
// pattern Cognito itself offers (its "user migration" Lambda trigger),
// reversed: the old service vouches for the password, the new one keeps it.
//
// A password Cognito did not accept is never hashed, returned or stored.
// Cognito's answers other than tokens are reported as not captured with
// a reason: a wrong password or unknown user (NotAuthorizedException;
// cognito-local answers InvalidPasswordException), an unconfirmed user, a
// required reset, and challenges — NEW_PASSWORD_REQUIRED (the password was
// a temporary one: the user must choose a new one), SMS_MFA,
// SOFTWARE_TOKEN_MFA, EMAIL_OTP, SELECT_MFA_TYPE, MFA_SETUP and others.
// Capture does not answer challenges: a user with MFA in Cognito is not
// captured by a password alone; such users reset their password in the
// new backend (or the login handler completes the challenge with Cognito
// itself and captures afterwards). The admin flow also checks, after
// Cognito accepted the password, that the user's status is CONFIRMED
// (AdminGetUser), so that a temporary password is never kept even where
// no challenge came (cognito-local sends none). The tokens Cognito issues
// on success are discarded.
//
// # Where captured credentials go
//
// Store records the credential in <schema>.password_captures (uid,
// algorithm, PHC string, captured_at; EnsureTable creates it), and leaves
// the users row as migrate wrote it (NONE): so `migrate`, `sync`'s polls,
// `verify` and `cutover`, which compare the target with Cognito, keep
// seeing what Cognito has, and never undo a capture. Lookup gives the
// login handler the credential to check (the captured one for a user
// whose row holds NONE); `auth verify-password` checks captured
// credentials the same way; Status (`baasmigrate auth capture-status`)
// counts captured and uncaptured users. Once the pool is no longer
// migrated or synced (after the cutover), Apply (`auth capture-status
// --apply`) writes the captured credentials into the users rows, for
// backends and `auth export` that read only those.
package capture

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"

	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/argon2id"
)

// Reasons a password is not captured (Result.Reason).
const (
	ReasonWrongPassword   = "wrong password or no such user"
	ReasonNotConfirmed    = "the user is not confirmed in Cognito"
	ReasonResetRequired   = "Cognito requires a password reset"
	ReasonChallenge       = "Cognito asked for a challenge"
	ReasonNoPassword      = "no password given"
	ReasonUnexpectedReply = "Cognito's answer held neither tokens nor a challenge"
	ReasonNotFinal        = "the user's password in Cognito is not final (status not CONFIRMED)"
)

// Result is the outcome of one capture.
type Result struct {
	// Captured reports that Cognito accepted the password; Credential is
	// then the Argon2id credential to store (Algorithm ARGON2ID, Hash the
	// PHC string), and nil otherwise.
	Captured   bool
	Credential *passwords.Credential
	// Reason says why the password was not captured (one of the Reason
	// constants); Challenge names Cognito's challenge when Reason is
	// ReasonChallenge (NEW_PASSWORD_REQUIRED, SMS_MFA, ...), or the
	// user's status when Reason is ReasonNotFinal (FORCE_CHANGE_PASSWORD).
	Reason, Challenge string
}

// Cognito checks passwords against a user pool.
type Cognito struct {
	// Client is the Cognito user pools client (the new backend's own,
	// with credentials from the AWS SDK's default chain; the admin flow
	// needs cognito-idp:AdminInitiateAuth on the pool, the public flow
	// none).
	Client *cip.Client
	// ClientID is the app client's id; the client must allow the flow
	// (ALLOW_USER_PASSWORD_AUTH or ALLOW_ADMIN_USER_PASSWORD_AUTH).
	ClientID string
	// ClientSecret is the app client's secret, when it has one: each
	// request then carries its SECRET_HASH.
	ClientSecret string
	// UserPoolID, when set, selects AdminInitiateAuth with
	// ADMIN_USER_PASSWORD_AUTH; otherwise InitiateAuth with
	// USER_PASSWORD_AUTH.
	UserPoolID string
	// Params are the Argon2id settings of captured hashes (argon2id.Default
	// when zero).
	Params argon2id.Params
}

// Capture checks username's password against Cognito. It returns
// Captured with a fresh Argon2id credential only when Cognito answered
// with tokens. A password Cognito refused, or answered with a challenge,
// is reported in Result with the reason and a nil error. The error is for
// failures to ask (network, throttling, a misconfigured client); the
// password is then not captured either. Neither the password nor the
// credential ever appears in an error or a reason.
func (c *Cognito) Capture(ctx context.Context, username string, password []byte) (Result, error) {
	if len(password) == 0 {
		return Result{Reason: ReasonNoPassword}, nil
	}
	params := map[string]string{"USERNAME": username, "PASSWORD": string(password)}
	if c.ClientSecret != "" {
		params["SECRET_HASH"] = SecretHash(c.ClientSecret, username, c.ClientID)
	}
	var (
		tokens    *types.AuthenticationResultType
		challenge types.ChallengeNameType
		err       error
	)
	if c.UserPoolID != "" {
		var out *cip.AdminInitiateAuthOutput
		out, err = c.Client.AdminInitiateAuth(ctx, &cip.AdminInitiateAuthInput{UserPoolId: &c.UserPoolID, ClientId: &c.ClientID,
			AuthFlow: types.AuthFlowTypeAdminUserPasswordAuth, AuthParameters: params})
		if out != nil {
			tokens, challenge = out.AuthenticationResult, out.ChallengeName
		}
	} else {
		var out *cip.InitiateAuthOutput
		out, err = c.Client.InitiateAuth(ctx, &cip.InitiateAuthInput{ClientId: &c.ClientID,
			AuthFlow: types.AuthFlowTypeUserPasswordAuth, AuthParameters: params})
		if out != nil {
			tokens, challenge = out.AuthenticationResult, out.ChallengeName
		}
	}
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode() {
			case "NotAuthorizedException", "UserNotFoundException", "InvalidPasswordException":
				return Result{Reason: ReasonWrongPassword}, nil
			case "UserNotConfirmedException":
				return Result{Reason: ReasonNotConfirmed}, nil
			case "PasswordResetRequiredException":
				return Result{Reason: ReasonResetRequired}, nil
			}
		}
		return Result{}, fmt.Errorf("checking the password of %q with Cognito: %w", username, err)
	}
	if challenge != "" {
		return Result{Reason: ReasonChallenge, Challenge: string(challenge)}, nil
	}
	if tokens == nil {
		return Result{Reason: ReasonUnexpectedReply}, nil
	}
	if c.UserPoolID != "" {
		// With admin rights, make sure: only a CONFIRMED user's password
		// is final. (Cognito challenges the others; cognito-local, for
		// one, answers a FORCE_CHANGE_PASSWORD user's temporary password
		// with tokens.)
		u, err := c.Client.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: &c.UserPoolID, Username: &username})
		if err != nil {
			return Result{}, fmt.Errorf("reading the status of %q in Cognito: %w", username, err)
		}
		if u.UserStatus != types.UserStatusTypeConfirmed {
			return Result{Reason: ReasonNotFinal, Challenge: string(u.UserStatus)}, nil
		}
	}
	p := c.Params
	if p == (argon2id.Params{}) {
		p = argon2id.Default
	}
	hash, err := argon2id.Hash(password, p)
	if err != nil {
		return Result{}, fmt.Errorf("hashing the captured password of %q: %w", username, err)
	}
	return Result{Captured: true, Credential: &passwords.Credential{Algorithm: passwords.Argon2id, Hash: hash}}, nil
}

// SecretHash is the SECRET_HASH Cognito requires from app clients with a
// secret: base64 of HMAC-SHA256 keyed by the secret over the username
// followed by the client id.
func SecretHash(secret, username, clientID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(username + clientID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
