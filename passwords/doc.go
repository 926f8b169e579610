// Package passwords holds the code a new backend imports to keep migrated
// passwords working: firebasescrypt verifies hashes made by Firebase
// Authentication, argon2id makes and verifies the modern hashes they are
// upgraded to on a user's first successful sign-in.
//
// The packages depend only on the standard library and golang.org/x/crypto,
// so importing them does not pull baasmigrate's migration machinery into an
// application.
package passwords
