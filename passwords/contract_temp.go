// TEMP until merge: a minimal stand-in for the passwords helper's
// Algorithms, Check, Verify and ErrCannotVerify (branch i10-passwords),
// so that the users branch builds and its tests run. Delete this file when
// merging that branch: the two define the same names.

package passwords

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
	"golang.org/x/crypto/bcrypt"
)

// ErrCannotVerify is returned (wrapped) by Verify when no password can be
// checked against the credential.
var ErrCannotVerify = errors.New("the password cannot be verified")

// Algorithms returns every algorithm name the users tables accept.
func Algorithms() []string {
	return []string{FirebaseScrypt, "BCRYPT", "ARGON2ID", "ARGON2I", "SCRYPT", "PBKDF2_SHA256", "PBKDF2_SHA512",
		"SHA1", "SHA256", "SHA512", "MD5", "PHPASS", None, EmulatorFake, Unknown}
}

// Check says why c is malformed; nil when it is not.
func Check(c Credential) error {
	known := false
	for _, a := range Algorithms() {
		known = known || a == c.Algorithm
	}
	switch {
	case !known:
		return fmt.Errorf("unknown password algorithm %q", c.Algorithm)
	case c.Algorithm == None:
		if c.Hash != "" || c.Salt != "" {
			return errors.New("a credential without a hash (NONE) has a hash or a salt")
		}
	case c.Algorithm == FirebaseScrypt:
		if _, err := firebasescrypt.DecodeBase64(c.Hash); err != nil || c.Hash == "" {
			return errors.New("the Firebase scrypt password hash is not base64 or empty")
		}
	case c.Algorithm == "BCRYPT":
		if _, err := bcrypt.Cost([]byte(c.Hash)); err != nil {
			return errors.New("the bcrypt hash is malformed")
		}
	case c.Algorithm == EmulatorFake || c.Algorithm == Unknown:
	default:
		if c.Hash == "" {
			return fmt.Errorf("the %s hash is empty", c.Algorithm)
		}
	}
	return nil
}

// Verify reports whether password matches c.
func Verify(c Credential, password []byte) (bool, error) {
	switch c.Algorithm {
	case FirebaseScrypt:
		rounds, err1 := strconv.Atoi(c.Params["rounds"])
		memCost, err2 := strconv.Atoi(c.Params["mem_cost"])
		if c.Params["signer_key"] == "" || err1 != nil || err2 != nil {
			return false, fmt.Errorf("%w: Firebase scrypt needs the project's hash parameters", ErrCannotVerify)
		}
		p, err := firebasescrypt.ParseParams(c.Params["signer_key"], c.Params["salt_separator"], rounds, memCost)
		if err != nil {
			return false, err
		}
		return p.VerifyBase64(password, c.Salt, c.Hash)
	case EmulatorFake:
		return "fakeHash:salt="+c.Salt+":password="+string(password) == c.Hash, nil
	case "BCRYPT":
		err := bcrypt.CompareHashAndPassword([]byte(c.Hash), password)
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	return false, fmt.Errorf("%w: %s", ErrCannotVerify, strings.ToLower(c.Algorithm))
}
