package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// TestConnectSettings: the pool's sessions have the timeouts and the
// float output the sinks rely on, and at most the connections asked for.
func TestConnectSettings(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, testenv.PostgresURL(t), 3, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d, want 3", got)
	}
	for setting, want := range map[string]string{"lock_timeout": "10s", "statement_timeout": "11s", "extra_float_digits": "3"} {
		var got string
		if err := pool.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

// TestConnectErrorsHoldNoSecret: a connection string Connect cannot read
// is not quoted, and a failed connection is named without its password.
func TestConnectErrorsHoldNoSecret(t *testing.T) {
	ctx := context.Background()
	secret := "S3cret-Pw-" + strings.Repeat("x", 6)
	for _, bad := range []string{
		"host=127.0.0.1 user=x password = " + secret + " port=abc",
		"postgres://u:" + secret[:5] + "@" + secret[5:] + "@127.0.0.1:1/db", // an unencoded @
	} {
		_, err := postgres.Connect(ctx, bad, 1, time.Second)
		if !errors.Is(err, postgres.ErrConnString) || strings.Contains(err.Error(), secret[5:]) {
			t.Errorf("Connect(%q): %v; want ErrConnString, quoting nothing", bad, err)
		}
	}
	if _, err := postgres.Connect(ctx, testenv.PostgresURL(t), 1, 0); err == nil {
		t.Error("a zero timeout was accepted")
	}
	dsn := testenv.PostgresURL(t)
	wrong := strings.Replace(dsn, ":"+password(dsn)+"@", ":"+secret+"@", 1)
	if wrong == dsn {
		t.Skip("DATABASE_URL is not a URL with a password to replace")
	}
	_, err := postgres.Connect(ctx, wrong, 1, 5*time.Second)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "connecting to postgres://") {
		t.Errorf("wrong password: %v; want a failure naming the database, not the password", err)
	}
}

// password returns the password of a URL dsn as written in it.
func password(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	colon := strings.LastIndex(dsn[:max(at, 0)], ":")
	if at < 0 || colon < 0 || !strings.HasPrefix(dsn, "postgres") {
		return "\x00none"
	}
	return dsn[colon+1 : at]
}
