package capture_test

import (
	"context"
	"errors"
	"log"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/config"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/capture"
)

// loginHandler is the new backend's sign-in, for users migrated from
// Cognito into schema (baasmigrate migrate --source amplify --only users:
// cognito_users unless --users-schema says otherwise). A user whose
// credential is still NONE is checked against Cognito once; on success
// the password is stored as Argon2id (in <schema>.password_captures) and
// every later sign-in is checked locally (Lookup returns the captured
// credential). A password Cognito refuses is refused here too, and nothing
// is stored.
func loginHandler(db *pgxpool.Pool, cognito *capture.Cognito, schema string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		username, password := r.PostFormValue("username"), []byte(r.PostFormValue("password"))
		uid, cred, ok, err := capture.Lookup(ctx, db, schema, username)
		switch {
		case err != nil:
			http.Error(w, "sign-in unavailable", http.StatusServiceUnavailable)
			return
		case !ok || cred == nil:
			http.Error(w, "wrong username or password", http.StatusUnauthorized)
			return
		}
		if cred.Algorithm == passwords.None {
			res, err := cognito.Capture(ctx, username, password)
			if err != nil { // Cognito could not be asked: try again later
				http.Error(w, "sign-in unavailable", http.StatusServiceUnavailable)
				return
			}
			if !res.Captured {
				// res.Reason says why: a wrong password, or a challenge
				// (NEW_PASSWORD_REQUIRED, MFA) this backend sends the user
				// to a password reset for.
				http.Error(w, "wrong username or password", http.StatusUnauthorized)
				return
			}
			// Cognito vouched for the password: keep it. A concurrent
			// sign-in may have stored it first (ErrNotNone): fine.
			if err := capture.Store(ctx, db, schema, uid, res.Credential); err != nil && !errors.Is(err, capture.ErrNotNone) {
				http.Error(w, "sign-in unavailable", http.StatusServiceUnavailable)
				return
			}
			startSession(w, uid)
			return
		}
		if ok, err := passwords.Verify(*cred, password); err != nil || !ok {
			http.Error(w, "wrong username or password", http.StatusUnauthorized)
			return
		}
		startSession(w, uid)
	}
}

func startSession(w http.ResponseWriter, uid string) { w.WriteHeader(http.StatusNoContent) }

// Wiring the capture into a login handler: the Cognito client comes from
// the AWS SDK's default credential chain; the app client must allow
// ALLOW_USER_PASSWORD_AUTH (or set UserPoolID for the admin flow, which
// needs cognito-idp:AdminInitiateAuth). The captures table is created
// once at start-up.
func Example_loginHandler() {
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	db, err := pgxpool.New(ctx, "postgres://app@db/app")
	if err != nil {
		log.Fatal(err)
	}
	if err := capture.EnsureTable(ctx, db, "cognito_users"); err != nil {
		log.Fatal(err)
	}
	c := &capture.Cognito{Client: cip.NewFromConfig(awsCfg), ClientID: "1example23456789"}
	http.Handle("POST /login", loginHandler(db, c, "cognito_users"))
	log.Fatal(http.ListenAndServe(":8080", nil))
}
