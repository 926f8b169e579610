// Package passwords holds the code a new backend imports to keep migrated
// passwords working.
//
// A migrated user's password is a Credential: the algorithm's name, the
// hash and salt in the source's own text, and the algorithm's parameters.
// Verify checks a password against one, whatever service made it:
//
//	ok, err := passwords.Verify(cred, []byte(password))
//	switch {
//	case errors.Is(err, passwords.ErrCannotVerify):
//		// No hash was exported (Cognito) or its algorithm is unknown:
//		// send the user through the old service once, or a reset.
//	case err != nil:
//		// The stored credential is malformed: a migration bug, not a
//		// wrong password.
//	case ok:
//		// Signed in. Rehash with argon2id.Hash and store that instead.
//	}
//
// Check says whether a credential is well formed before it is stored, and
// Algorithms lists every name. The algorithms, the Params each reads and
// the services whose hashes land in each are in docs/passwords.md:
// Firebase scrypt, bcrypt, Argon2id and Argon2i, standard scrypt,
// PBKDF2-HMAC-SHA256/512 (with Django's and passlib's strings), salted
// SHA-1/SHA-256/SHA-512/MD5, phpass, the Firebase Auth emulator's stand-in,
// and "none" for sources that export no hash.
//
// Two sub-packages serve the same end: firebasescrypt verifies Firebase
// Authentication's hashes and encodes them for Supabase Auth and Ory
// Kratos; argon2id makes and verifies the modern hashes passwords are
// upgraded to on a user's first successful sign-in.
//
// The packages depend only on the standard library and golang.org/x/crypto,
// so importing them does not pull baasmigrate's migration machinery into an
// application.
package passwords
