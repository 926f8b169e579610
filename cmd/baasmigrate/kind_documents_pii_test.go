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

// TestDescribeTargetHidesAPasswordWithAnAt: the manifest names its target
// without a password, also when an unencoded "@" in it would make the
// rest of the password read as the host.
func TestDescribeTargetHidesAPasswordWithAnAt(t *testing.T) {
	secret := "S3cret-Pw-" + strings.Repeat("z", 6)
	got := describeTarget("postgres://u:" + secret[:5] + "@" + secret[5:] + "@127.0.0.1:1/db")
	if strings.Contains(got, secret[5:]) {
		t.Errorf("describeTarget printed part of the password: %q", got)
	}
}
