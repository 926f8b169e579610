package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// TestVaultConnStringNotQuoted: a --vault connection string that cannot be
// read is not quoted back, password and all, as the target's is not.
func TestVaultConnStringNotQuoted(t *testing.T) {
	secret := "S3cret-Pw-" + strings.Repeat("y", 6)
	for _, bad := range []string{
		"host=127.0.0.1 user=x password = " + secret + " port=abc",
		"postgres://u:" + secret[:5] + "@" + secret[5:] + "@127.0.0.1:1/db", // an unencoded @
	} {
		_, err := documentsVault(context.Background(), &buildEnv{Config: plugin.Config{vaultOption.Name: bad}})
		if !errors.Is(err, postgres.ErrConnString) || strings.Contains(err.Error(), secret[5:]) {
			t.Errorf("--vault %q: %v; want ErrConnString, quoting nothing", bad, err)
		}
	}
}
