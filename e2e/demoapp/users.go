package demoapp

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"time"

	"firebase.google.com/go/v4/auth"
	"firebase.google.com/go/v4/auth/hash"

	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// The demo project's password hash parameters: the public test vector of
// Firebase's scrypt (github.com/firebase/scrypt), not a secret of anyone's.
const (
	HashSignerKey     = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
	HashSaltSeparator = "Bw=="
	HashRounds        = 8
	HashMemCost       = 14
)

// UserPassword is the password of demo user i.
func UserPassword(i int) string { return fmt.Sprintf("demo-password-%d", i) }

// Users returns n Auth users to import, uid user0000… like the documents'
// users, each with a Firebase scrypt hash of UserPassword(i); some have a
// Google identity, some a phone number, every tenth has no password.
func Users(n int) ([]*auth.UserToImport, error) {
	params, err := firebasescrypt.ParseParams(HashSignerKey, HashSaltSeparator, HashRounds, HashMemCost)
	if err != nil {
		return nil, err
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*auth.UserToImport, n)
	for i := range n {
		u := (&auth.UserToImport{}).
			UID(fmt.Sprintf("user%04d", i)).
			Email(fmt.Sprintf("user%d@example.com", i)).
			EmailVerified(i%3 != 0).
			DisplayName(fmt.Sprintf("User %d", i)).
			Metadata(&auth.UserMetadata{CreationTimestamp: base.Add(time.Duration(i) * time.Hour).UnixMilli()})
		if i%10 != 9 {
			salt := []byte(fmt.Sprintf("salt-%04d", i))
			h, err := params.Hash([]byte(UserPassword(i)), salt)
			if err != nil {
				return nil, err
			}
			u = u.PasswordHash(h).PasswordSalt(salt)
		}
		if i%4 == 0 {
			u = u.ProviderData([]*auth.UserProvider{{ProviderID: "google.com", UID: fmt.Sprintf("g-%d", i), Email: fmt.Sprintf("user%d@gmail.example", i)}})
		}
		if i%5 == 0 {
			u = u.PhoneNumber(fmt.Sprintf("+1555%07d", i))
		}
		if i%7 == 0 {
			u = u.CustomClaims(map[string]any{"role": "admin", "level": i})
		}
		out[i] = u
	}
	return out, nil
}

// SeedUsers imports users into the Auth emulator (or project) behind c.
func SeedUsers(ctx context.Context, c *auth.Client, users []*auth.UserToImport) error {
	key, _ := base64.StdEncoding.DecodeString(HashSignerKey)
	sep, _ := base64.StdEncoding.DecodeString(HashSaltSeparator)
	opt := auth.WithHash(hash.Scrypt{Key: key, SaltSeparator: sep, Rounds: HashRounds, MemoryCost: HashMemCost})
	for start := 0; start < len(users); start += 1000 {
		chunk := users[start:min(start+1000, len(users))]
		res, err := c.ImportUsers(ctx, chunk, opt)
		if err != nil {
			return fmt.Errorf("importing users: %w", err)
		}
		if res.FailureCount > 0 {
			return fmt.Errorf("importing users: %d failed, first: %s", res.FailureCount, res.Errors[0].Reason)
		}
	}
	return nil
}

// VariedUsers returns n users to import, with uid fmt.Sprintf(uidFormat, i)
// and e-mail <uid>@example.test, for tests that count and compare users
// rather than check passwords: every third has a password hash of random
// bytes (drawn from seed), every third a Google identity and custom claims,
// every third a verified address, a display name and, half of them,
// disabled.
func VariedUsers(seed uint64, uidFormat string, n int) []*auth.UserToImport {
	r := rand.New(rand.NewPCG(seed, 9))
	out := make([]*auth.UserToImport, n)
	for i := range n {
		uid := fmt.Sprintf(uidFormat, i)
		u := (&auth.UserToImport{}).UID(uid).Email(uid + "@example.test").
			Metadata(&auth.UserMetadata{CreationTimestamp: 1600000000000 + int64(i)})
		switch i % 3 {
		case 0:
			h := make([]byte, 64)
			for j := range h {
				h[j] = byte(r.IntN(256))
			}
			u.PasswordHash(h).PasswordSalt([]byte(fmt.Sprintf("s%d", i)))
		case 1:
			u.ProviderData([]*auth.UserProvider{{ProviderID: "google.com", UID: fmt.Sprintf("g%d", i)}}).CustomClaims(map[string]any{"i": float64(i)})
		case 2:
			u.EmailVerified(true).DisplayName(fmt.Sprintf("User %d", i)).Disabled(i%2 == 0)
		}
		out[i] = u
	}
	return out
}
