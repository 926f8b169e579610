package smoke

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/auth"
	"firebase.google.com/go/v4/auth/hash"
	"google.golang.org/api/iterator"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// A Firebase scrypt hash configuration and one user's hash of
// "user1password" (reference/firebase.md, from firebase/scrypt's tests).
const (
	scryptSignerKey     = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
	scryptSaltSeparator = "Bw=="
	scryptRounds        = 8
	scryptMemCost       = 14
	userSalt            = "42xEC+ixf3L2lw=="
	userHash            = "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="
)

// TestAuthEmulator imports a scrypt user with the Admin SDK and lists it
// back: the emulator must return the very hash and salt bytes imported
// (the reason baasmigrate's auth tests use ImportUsers).
func TestAuthEmulator(t *testing.T) {
	testenv.AuthEmulatorHost(t) // also exports FIREBASE_AUTH_EMULATOR_HOST for the SDK
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A fresh project: the emulator keeps one user store per project id.
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: testenv.FreshProjectID(t)})
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		t.Fatal(err)
	}

	key, salt, want := mustB64(t, scryptSignerKey), mustB64(t, userSalt), mustB64(t, userHash)
	user := (&auth.UserToImport{}).UID("uid-Smoke_1").Email("smoke@example.com").
		PasswordHash(want).PasswordSalt(salt)
	res, err := client.ImportUsers(ctx, []*auth.UserToImport{user}, auth.WithHash(hash.Scrypt{
		Key: key, SaltSeparator: mustB64(t, scryptSaltSeparator), Rounds: scryptRounds, MemoryCost: scryptMemCost,
	}))
	if err != nil {
		t.Fatalf("ImportUsers: %v", err)
	}
	if res.FailureCount != 0 || res.SuccessCount != 1 {
		t.Fatalf("ImportUsers: %d ok, %d failed: %+v", res.SuccessCount, res.FailureCount, res.Errors)
	}

	var users []*auth.ExportedUserRecord
	for it := client.Users(ctx, ""); ; {
		u, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatalf("listing users: %v", err)
		}
		users = append(users, u)
	}
	if len(users) != 1 {
		t.Fatalf("listed %d users in a fresh project, want 1", len(users))
	}
	u := users[0]
	if u.UID != "uid-Smoke_1" || u.Email != "smoke@example.com" {
		t.Errorf("listed uid=%q email=%q, want uid-Smoke_1 smoke@example.com", u.UID, u.Email)
	}
	if got := decodeAnyB64(u.PasswordHash); !bytes.Equal(got, want) {
		t.Errorf("PasswordHash %q decodes to %x, want the imported %x", u.PasswordHash, got, want)
	}
	if got := decodeAnyB64(u.PasswordSalt); !bytes.Equal(got, salt) {
		t.Errorf("PasswordSalt %q decodes to %x, want the imported %x", u.PasswordSalt, got, salt)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeAnyB64 decodes standard or URL-safe base64, padded or not: the
// Admin SDK sends URL-safe, the emulator returns what it stored.
func decodeAnyB64(s string) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}
