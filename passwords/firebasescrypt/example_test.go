package firebasescrypt_test

import (
	"fmt"
	"log"

	"github.com/baasmigrate/baasmigrate/passwords/argon2id"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// A sign-in handler in the new backend: verify a migrated Firebase hash
// once, then replace it with an Argon2id hash, so the Firebase parameters
// are needed only until every active user has signed in once.
func Example_verifyThenUpgrade() {
	// The project's parameters, loaded once at start-up (baasmigrate stores
	// them in firebase_auth.hash_configs), and one user's row of
	// firebase_auth.users (password_salt, password_hash as bytea).
	params, err := firebasescrypt.ParseParams(
		"jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==", "Bw==", 8, 14)
	if err != nil {
		log.Fatal(err)
	}
	salt, _ := firebasescrypt.DecodeBase64("42xEC+ixf3L2lw==")
	hash, _ := firebasescrypt.DecodeBase64("lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==")

	password := []byte("user1password") // from the sign-in form
	ok, err := params.Verify(password, salt, hash)
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		fmt.Println("wrong password")
		return
	}
	upgraded, err := argon2id.Hash(password, argon2id.Default)
	if err != nil {
		log.Fatal(err)
	}
	// In one transaction: store upgraded, clear the Firebase hash and salt.
	again, _ := argon2id.Verify(password, upgraded)
	fmt.Println("signed in; upgraded hash verifies:", again)
	// Output: signed in; upgraded hash verifies: true
}
