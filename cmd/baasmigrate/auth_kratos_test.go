package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/kratostest"
)

func TestAuthImportKratosFlags(t *testing.T) {
	clearServiceEnv(t)
	in := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"schema_id":"default","traits":{"email":"a@example.test"},"metadata_admin":{"firebase_uid":"a"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"auth", "import-kratos", "--in", in},
		{"auth", "import-kratos", "--url", "http://127.0.0.1:1"},
		{"auth", "import-kratos", "--url", "http://127.0.0.1:1", "--in", in, "--batch-size", "2001"},
		{"auth", "import-kratos", "--url", "127.0.0.1:4434", "--in", in},
	} {
		if res := run(t, args...); res.code != exitError {
			t.Errorf("%v: exit %d, want %d\n%s", args, res.code, exitError, res.stderr)
		}
	}
}

// TestAuthImportKratosExitStatus: 0 when every identity is in Kratos, 1
// when one was refused, with the uid and reason on stderr; the token comes
// from $KRATOS_ADMIN_TOKEN and is never printed.
func TestAuthImportKratosExitStatus(t *testing.T) {
	clearServiceEnv(t)
	s := kratostest.New(kratostest.Options{Token: "tok-123"})
	ts := httptest.NewServer(s)
	defer ts.Close()
	t.Setenv(kratosTokenEnv, "tok-123")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	lines := `{"schema_id":"default","traits":{"email":"a@example.test"},"metadata_admin":{"firebase_uid":"a"}}` + "\n"
	if err := os.WriteFile(in, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, "auth", "import-kratos", "--url", ts.URL, "--in", in)
	if res.code != exitOK || !strings.Contains(res.stderr, "in all: 1 created, 0 already present, 0 refused, 0 not yet sent") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(in + ".report.jsonl"); err != nil {
		t.Errorf("the default report: %v", err)
	}
	lines += `{"schema_id":"default","traits":{"email":"A@example.test"},"metadata_admin":{"firebase_uid":"b"}}` + "\n"
	in2 := filepath.Join(dir, "in2.jsonl")
	if err := os.WriteFile(in2, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	res = run(t, "auth", "import-kratos", "--url", ts.URL, "--in", in2, "--report", filepath.Join(dir, "r2.jsonl"))
	if res.code != exitProblems || !strings.Contains(res.stderr, "1 already present, 1 refused") || !strings.Contains(res.stderr, "refused: line 2, uid b: 409") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr+res.stdout, "tok-123") {
		t.Error("the token is printed")
	}
}
