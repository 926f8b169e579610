package syncwriter

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"

	"firebase.google.com/go/v4/auth"
	"firebase.google.com/go/v4/auth/hash"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// UsersWriter adds, changes and deletes Firebase Auth users through the
// Admin SDK (against the Auth emulator), seeded. Added users are imported
// with a real Firebase scrypt hash of the demo project's parameters
// (demoapp.Hash*), so their passwords can be checked after a migration.
type UsersWriter struct {
	client *auth.Client
	prefix string

	mu      sync.Mutex
	rng     *rand.Rand
	params  firebasescrypt.Params
	live    map[string]bool
	counter int
	Added   int
	Changed int
	Deleted int
}

// NewUsers returns a UsersWriter; the users it adds have UIDs starting
// with prefix.
func NewUsers(client *auth.Client, seed uint64, prefix string) (*UsersWriter, error) {
	params, err := firebasescrypt.ParseParams(demoapp.HashSignerKey, demoapp.HashSaltSeparator, demoapp.HashRounds, demoapp.HashMemCost)
	if err != nil {
		return nil, err
	}
	return &UsersWriter{client: client, prefix: prefix, rng: rand.New(rand.NewPCG(seed, 0xa17)), params: params, live: map[string]bool{}}, nil
}

// Password is the password of the user with uid, as the writer sets it.
func Password(uid string) string { return "pw-" + uid }

// Add imports n new users.
func (u *UsersWriter) Add(ctx context.Context, n int) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var batch []*auth.UserToImport
	var uids []string
	for range n {
		u.counter++
		uid := fmt.Sprintf("%s%05d", u.prefix, u.counter)
		salt := []byte(fmt.Sprintf("salt-%s", uid))
		h, err := u.params.Hash([]byte(Password(uid)), salt)
		if err != nil {
			return err
		}
		x := (&auth.UserToImport{}).UID(uid).Email(uid + "@sync.test").DisplayName("User " + uid).
			EmailVerified(u.rng.IntN(2) == 0).PasswordHash(h).PasswordSalt(salt).
			Metadata(&auth.UserMetadata{CreationTimestamp: 1700000000000 + int64(u.counter)*1000})
		if u.rng.IntN(3) == 0 {
			x = x.CustomClaims(map[string]any{"role": "member", "n": float64(u.rng.IntN(100))})
		}
		batch = append(batch, x)
		uids = append(uids, uid)
	}
	key, _ := base64.StdEncoding.DecodeString(demoapp.HashSignerKey)
	sep, _ := base64.StdEncoding.DecodeString(demoapp.HashSaltSeparator)
	res, err := u.client.ImportUsers(ctx, batch, auth.WithHash(hash.Scrypt{Key: key, SaltSeparator: sep, Rounds: demoapp.HashRounds, MemoryCost: demoapp.HashMemCost}))
	if err != nil {
		return fmt.Errorf("importing %d users: %w", n, err)
	}
	if res.FailureCount > 0 {
		return fmt.Errorf("importing users: %d failed, first: %s", res.FailureCount, res.Errors[0].Reason)
	}
	for _, uid := range uids {
		u.live[uid] = true
	}
	u.Added += n
	return nil
}

// Step makes one random change: add a user, change one (display name,
// disabled, verified address, e-mail, custom claims) or delete one.
func (u *UsersWriter) Step(ctx context.Context) error {
	u.mu.Lock()
	r := u.rng.IntN(10)
	uids := slices.Sorted(maps.Keys(u.live))
	var uid string
	if len(uids) > 0 {
		uid = uids[u.rng.IntN(len(uids))]
	}
	choice := u.rng.IntN(5)
	name := fmt.Sprintf("Renamed %d", u.rng.IntN(1_000_000))
	flag := u.rng.IntN(2) == 0
	u.mu.Unlock()
	switch {
	case r < 3 || uid == "":
		return u.Add(ctx, 1)
	case r < 8:
		upd := &auth.UserToUpdate{}
		switch choice {
		case 0:
			upd = upd.DisplayName(name)
		case 1:
			upd = upd.Disabled(flag)
		case 2:
			upd = upd.EmailVerified(flag)
		case 3:
			upd = upd.Email(fmt.Sprintf("%s.%d@changed.test", uid, len(name)))
		case 4:
			upd = upd.CustomClaims(map[string]any{"role": name})
		}
		if _, err := u.client.UpdateUser(ctx, uid, upd); err != nil {
			return fmt.Errorf("updating user %s: %w", uid, err)
		}
		u.mu.Lock()
		u.Changed++
		u.mu.Unlock()
	default:
		if err := u.client.DeleteUser(ctx, uid); err != nil {
			return fmt.Errorf("deleting user %s: %w", uid, err)
		}
		u.mu.Lock()
		delete(u.live, uid)
		u.Deleted++
		u.mu.Unlock()
	}
	return nil
}

// Live returns the UIDs the writer added and did not delete.
func (u *UsersWriter) Live() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Sorted(maps.Keys(u.live))
}
