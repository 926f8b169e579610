package firebaseauth

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

func TestHashParamsAllOrNothingAndNoSecretsInErrors(t *testing.T) {
	const key = scrypttest.SignerKey
	p, err := HashParams(plugin.Config{})
	if err != nil || !p.IsZero() {
		t.Fatalf("no parameters: %v, %v", p, err)
	}
	p, err = HashParams(plugin.Config{"hash-signer-key": key, "hash-salt-separator": "Bw==", "hash-rounds": "8", "hash-mem-cost": "14"})
	if err != nil || p.IsZero() || p.Rounds() != 8 {
		t.Fatalf("all four: %v, %v", p, err)
	}
	_, err = HashParams(plugin.Config{"hash-signer-key": key})
	if err == nil || !strings.Contains(err.Error(), "--hash-rounds") || !strings.Contains(err.Error(), "--hash-salt-separator") {
		t.Fatalf("partial: %v", err)
	}
	for _, cfg := range []plugin.Config{
		{"hash-signer-key": key + "!", "hash-salt-separator": "Bw==", "hash-rounds": "8", "hash-mem-cost": "14"},
		{"hash-signer-key": key, "hash-salt-separator": "Bw==!" + key, "hash-rounds": "8", "hash-mem-cost": "14"},
		{"hash-signer-key": key, "hash-salt-separator": "Bw==", "hash-rounds": "80", "hash-mem-cost": "14"},
	} {
		_, err := HashParams(cfg)
		if err == nil || strings.Contains(err.Error(), key[:20]) || strings.Contains(err.Error(), "Bw==") {
			t.Fatalf("bad parameters: err = %v (must exist and not quote secrets)", err)
		}
	}
}

// TestSharedHashIsTheProjectsParameters: both extractors hand the hash
// options over as passwords' shared credential, and nothing without them.
func TestSharedHashIsTheProjectsParameters(t *testing.T) {
	const key = scrypttest.SignerKey
	path := writeFile(t, "u.json", `{"users":[]}`)
	ex, err := New(context.Background(), plugin.Config{ExportOption.Name: path,
		"hash-signer-key": key, "hash-salt-separator": "Bw", "hash-rounds": "8", "hash-mem-cost": "14"})
	if err != nil {
		t.Fatal(err)
	}
	sh, ok := ex.(extractors.SharedHasher)
	if !ok {
		t.Fatal("the file extractor is no SharedHasher")
	}
	c, err := sh.SharedHash()
	want := map[string]string{"signer_key": key, "salt_separator": "Bw==", "rounds": "8", "mem_cost": "14"}
	if err != nil || c == nil || c.Algorithm != passwords.FirebaseScrypt || !maps.Equal(c.Params, want) || c.Hash != "" || c.Salt != "" {
		t.Fatalf("SharedHash = %+v, %v; want FIREBASE_SCRYPT with %v", c, err, want)
	}
	hashes, opts := sh.SharedHashMissing()
	if hashes != "Firebase scrypt hashes" || strings.Join(opts, " ") != "--hash-signer-key --hash-salt-separator --hash-rounds --hash-mem-cost" {
		t.Errorf("SharedHashMissing = %q, %q", hashes, opts)
	}
	ex, err = New(context.Background(), plugin.Config{ExportOption.Name: path})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ex.(extractors.SharedHasher).SharedHash(); c != nil || err != nil {
		t.Fatalf("without options: %+v, %v", c, err)
	}
	_, err = New(context.Background(), plugin.Config{ExportOption.Name: path, "hash-signer-key": key})
	if err == nil || !strings.Contains(err.Error(), "password hash parameters: missing") || strings.Contains(err.Error(), key[:20]) {
		t.Fatalf("partial parameters: %v", err)
	}
}

// TestExportFileOwnerNeedsAProjectTheUserNamed: an export file counts as
// its project's only when the user named the project.
func TestExportFileOwnerNeedsAProjectTheUserNamed(t *testing.T) {
	path := writeFile(t, "u.json", `{"users":[]}`)
	ex, err := New(context.Background(), plugin.Config{ExportOption.Name: path, "firebase-project": "p1", TenantOption.Name: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	to, ok := ex.(extractors.TargetOwner)
	if !ok {
		t.Fatal("the file extractor is no TargetOwner")
	}
	yes := func(o string) bool { return o == "firebase-project" }
	if src, hint := to.TargetOwner(yes); src != ProjectSource("p1", "t1") || hint != "" {
		t.Errorf("project given: %q, %q", src, hint)
	}
	for _, given := range []func(string) bool{nil, func(string) bool { return false }} {
		if src, hint := to.TargetOwner(given); src != "" || !strings.Contains(hint, "--firebase-project") {
			t.Errorf("project not given: %q, %q", src, hint)
		}
	}
	api, err := newAPI(context.Background(), plugin.Config{"firebase-project": "p1", EmulatorOption.Name: "localhost:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := any(api).(extractors.TargetOwner); ok {
		t.Error("the API extractor names its project itself; it needs no TargetOwner")
	}
}
