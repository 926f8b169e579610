package benchreport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecordReplacesOnlyItsSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := Record(path, "a", "## A\n1\n"); err != nil {
		t.Fatal(err)
	}
	if err := Record(path, "b", "## B\n2\n"); err != nil {
		t.Fatal(err)
	}
	if err := Record(path, "a", "## A\n3\n"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	text := string(data)
	if !strings.HasPrefix(text, "# Benchmarks") || strings.Contains(text, "\n1\n") || !strings.Contains(text, "## A\n3\n") ||
		!strings.Contains(text, "## B\n2\n") || strings.Count(text, "bench/a:begin") != 1 || strings.Index(text, "## A") > strings.Index(text, "## B") {
		t.Fatalf("unexpected file:\n%s", text)
	}
}
