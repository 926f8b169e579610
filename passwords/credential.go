package passwords

// Credential is a user's password as a source hands it over: which
// algorithm made the hash, the hash and salt in the source's own text, and
// the algorithm's parameters. It is what the users tables store per user
// and what Verify checks a password against.
type Credential struct {
	// Algorithm is one of the algorithm names below.
	Algorithm string
	// Hash and Salt are the source's text. Algorithms with a self-describing
	// encoding (bcrypt's "$2b$…", argon2's PHC string "$argon2id$…",
	// phpass's "$P$…") keep everything in Hash and leave Salt empty.
	Hash, Salt string
	// Params are the algorithm's parameters as text ("rounds", "mem_cost",
	// "iterations", ...), per user; nil when the algorithm needs none or
	// they live in the hash itself. Firebase scrypt's are the project's and
	// are stored once per project (hash configurations), not per user.
	Params map[string]string
	// Version is the source's password version when it gives one (Firebase:
	// 0 is its scrypt).
	Version *int64
}

// Algorithm names, as credentials and the users tables carry them.
const (
	// FirebaseScrypt is Firebase's modified scrypt with the project's hash
	// parameters (passwords/firebasescrypt): every hash Firebase hands out
	// through its API and auth:export.
	FirebaseScrypt = "FIREBASE_SCRYPT"
	// EmulatorFake is the Firebase Auth emulator's stand-in
	// ("fakeHash:salt=…:password=…"), which holds the password in clear.
	EmulatorFake = "EMULATOR_FAKE"
	// Unknown marks a hash the source says is of an algorithm this version
	// does not know. It is kept verbatim; it cannot be verified until the
	// user resets the password.
	Unknown = "UNKNOWN"
	// None marks a user whose source exports no hash at all (Cognito): the
	// password is captured at the user's first login against the old
	// service.
	None = "NONE"

	// Bcrypt is bcrypt in its modular crypt form "$2a$", "$2b$" or "$2y$"
	// (Supabase Auth, Appwrite, most PHP and Node applications).
	Bcrypt = "BCRYPT"
	// Argon2id and Argon2i are Argon2 (RFC 9106) version 19 in the PHC
	// string form "$argon2id$v=19$m=…,t=…,p=…$salt$hash".
	Argon2id = "ARGON2ID"
	Argon2i  = "ARGON2I"
	// Scrypt is standard scrypt (RFC 7914) with N, r, p in Params.
	Scrypt = "SCRYPT"
	// PBKDF2SHA256 and PBKDF2SHA512 are PBKDF2 (RFC 8018) with HMAC-SHA-256
	// or HMAC-SHA-512, with the iteration count in Params or in a Django or
	// passlib modular string.
	PBKDF2SHA256 = "PBKDF2_SHA256"
	PBKDF2SHA512 = "PBKDF2_SHA512"
	// SHA1, SHA256, SHA512 and MD5 are one pass of the digest over the
	// password, optionally with a salt before or after it: legacy imports,
	// verifiable but not safe to keep.
	SHA1   = "SHA1"
	SHA256 = "SHA256"
	SHA512 = "SHA512"
	MD5    = "MD5"
	// PHPass is phpass' portable hash "$P$…" (WordPress) or "$H$…" (phpBB).
	PHPass = "PHPASS"
)
