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
)
