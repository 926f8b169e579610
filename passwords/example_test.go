package passwords_test

import (
	"errors"
	"fmt"

	"github.com/baasmigrate/baasmigrate/passwords"
)

// A new backend's sign-in checks the migrated credential, whatever service
// made it, and tells a wrong password from a credential it cannot check.
func ExampleVerify() {
	creds := []passwords.Credential{
		// Supabase Auth's bcrypt (Openwall's crypt_blowfish test vector).
		{Algorithm: passwords.Bcrypt, Hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
		// WordPress' phpass (the phpass reference test vector).
		{Algorithm: passwords.PHPass, Hash: "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"},
		// Cognito exports no hash.
		{Algorithm: passwords.None},
	}
	for _, c := range creds {
		for _, pw := range []string{"U*U", "test12345"} {
			ok, err := passwords.Verify(c, []byte(pw))
			switch {
			case errors.Is(err, passwords.ErrCannotVerify):
				fmt.Printf("%s: sign in through the old service or reset\n", c.Algorithm)
			case err != nil:
				fmt.Printf("%s: broken credential: %v\n", c.Algorithm, err)
			default:
				fmt.Printf("%s %q: %v\n", c.Algorithm, pw, ok)
			}
		}
	}
	// Output:
	// BCRYPT "U*U": true
	// BCRYPT "test12345": false
	// PHPASS "U*U": false
	// PHPASS "test12345": true
	// NONE: sign in through the old service or reset
	// NONE: sign in through the old service or reset
}

// Check finds a broken credential before it is stored, naming the
// parameter without quoting any value.
func ExampleCheck() {
	err := passwords.Check(passwords.Credential{
		Algorithm: passwords.PBKDF2SHA256,
		Hash:      "VGhpcyBpcyBub3QgYSByZWFsIGhhc2g=",
		Params:    map[string]string{"iteration": "600000"},
	})
	fmt.Println(err)
	// Output:
	// malformed password credential: PBKDF2_SHA256: unknown parameter "iteration" (this algorithm takes iterations, key_length, encoding, salt_encoding)
}
