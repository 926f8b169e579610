// Package e2e holds end-to-end tests: the real baasmigrate binary against
// the real local services (make services-up), one file per area
// (documents_test.go, users_test.go, files_test.go, ...).
package e2e

import (
	"os"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestMain exports the emulator addresses from .local/services.env into
// the process environment, where Google's client libraries look for them.
func TestMain(m *testing.M) {
	for _, k := range []string{"FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"} {
		if v, ok := testenv.Lookup(k); ok {
			os.Setenv(k, v)
		}
	}
	os.Exit(m.Run())
}
