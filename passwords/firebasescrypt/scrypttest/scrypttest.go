// Package scrypttest holds the published test vector of Firebase's scrypt
// (github.com/firebase/scrypt's README), for tests: a project's hash
// parameters and one user's hash and salt of Password. It is public test
// data, not a secret of anyone's.
package scrypttest

// The project's hash parameters, as the Firebase console shows them.
const (
	SignerKey     = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
	SaltSeparator = "Bw=="
	Rounds        = 8
	MemCost       = 14
)

// One user's password, and its hash and salt as an export gives them.
const (
	Password = "user1password"
	Hash     = "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="
	Salt     = "42xEC+ixf3L2lw=="
)
