// Package smoke holds one end-to-end smoke test per service of the local
// stack (`make services-up`): each proves that the service runs, answers on
// the address in .local/services.env, and does the one thing baasmigrate
// relies on it for, with the client library baasmigrate uses.
//
// Without the stack the tests skip; with BAASMIGRATE_REQUIRE_SERVICES=1
// (`make test`, CI) they fail instead.
package smoke
