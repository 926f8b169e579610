package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
)

// TestSourceUnknown: every command that reads a source refuses an unknown
// --source with exit status 2, naming the registered sources, before it
// connects to anything (the target given here does not exist).
func TestSourceUnknown(t *testing.T) {
	env := clitest.Env("DATABASE_URL=postgres://nobody@127.0.0.1:1/none", "GCLOUD_PROJECT=p")
	for _, args := range [][]string{
		{"migrate", "--source", "nope"},
		{"plan", "--source", "nope"},
		{"verify", "--source", "nope", "--only", "files"},
		{"infer", "--source", "nope"},
	} {
		res := clitest.Run(t, env, args...)
		if res.Code != 2 || !strings.Contains(res.Stderr, `unknown source "nope"`) || !strings.Contains(res.Stderr, "firebase") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the registered sources (firebase)", args, res.Code, res.Stderr)
		}
	}
}

// TestSourcesLists: baasmigrate sources lists firebase with its three
// kinds, their extractors and options — secrets marked — as text and JSON.
func TestSourcesLists(t *testing.T) {
	env := clitest.Env()
	res := clitest.Run(t, env, "sources")
	if res.Code != 0 {
		t.Fatalf("sources: exit %d, stderr %q", res.Code, res.Stderr)
	}
	for _, want := range []string{
		"firebase (--source firebase)", "users: extractor firebaseauth.", "documents: extractor firestore.", "files: extractor gcs.",
		"--firebase-project string (required; env GCLOUD_PROJECT, GOOGLE_CLOUD_PROJECT)", "--hash-signer-key string (secret;", `--firestore-database string (default "(default)")`,
		"--storage-prefix string\n", "--firestore-page-size int (default 1000)",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("sources does not say %q:\n%s", want, res.Stdout)
		}
	}

	res = clitest.Run(t, env, "sources", "--format", "json")
	if res.Code != 0 {
		t.Fatalf("sources --format json: exit %d, stderr %q", res.Code, res.Stderr)
	}
	var l struct {
		Sources []struct {
			Name  string
			Kinds []struct {
				Kind, Extractor, Help string
				Options               []struct {
					Name, Default, Help string
					Env                 []string
					Required, Secret    bool
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(res.Stdout), &l); err != nil {
		t.Fatalf("sources --format json: %v\n%s", err, res.Stdout)
	}
	// Sources come sorted by name: amplify (users from Cognito, and the
	// kinds of its other extractors), firebase with three kinds, then
	// supabase with users, tables and files.
	var names []string
	kinds := map[string]map[string]string{}
	for _, s := range l.Sources {
		names = append(names, s.Name)
		kinds[s.Name] = map[string]string{}
		for _, k := range s.Kinds {
			kinds[s.Name][k.Kind] = k.Extractor
		}
	}
	if strings.Join(names, ",") != "amplify,firebase,supabase" || len(kinds["firebase"]) != 3 || len(kinds["supabase"]) != 3 ||
		kinds["amplify"]["user"] != "cognito" || kinds["amplify"]["document"] != "dynamodb" {
		t.Fatalf("sources: %+v, want amplify with users from cognito and documents from dynamodb, firebase with three kinds and supabase with three", l.Sources)
	}
	got := map[string]string{}
	secrets := map[string]bool{}
	for _, k := range l.Sources[1].Kinds {
		got[k.Kind] = k.Extractor
		if k.Help == "" || len(k.Options) == 0 {
			t.Errorf("kind %s: help %q, %d options", k.Kind, k.Help, len(k.Options))
		}
		for _, o := range k.Options {
			if o.Secret {
				secrets[o.Name] = true
				if o.Default != "" {
					t.Errorf("secret option %s shows a default", o.Name)
				}
			}
		}
	}
	if got["user"] != "firebaseauth" || got["document"] != "firestore" || got["file"] != "gcs" {
		t.Errorf("extractors by kind %v", got)
	}
	if !secrets["hash-signer-key"] || !secrets["hash-salt-separator"] {
		t.Errorf("secret options %v, want the hash signer key and salt separator", secrets)
	}
	if res := clitest.Run(t, env, "sources", "--format", "yaml"); res.Code != 2 {
		t.Errorf("sources --format yaml: exit %d, want 2", res.Code)
	}
}

// TestSourceFlagOnEveryCommand: migrate, plan, verify and infer take
// --source, defaulting to firebase.
func TestSourceFlagOnEveryCommand(t *testing.T) {
	for _, c := range []string{"migrate", "plan", "verify", "infer"} {
		res := clitest.Run(t, clitest.Env(), c, "--help")
		if res.Code != 0 || !strings.Contains(res.Stdout, "--source") || !strings.Contains(res.Stdout, `(default "firebase")`) {
			t.Errorf("%s --help: exit %d, no --source defaulting to firebase:\n%s", c, res.Code, res.Stdout)
		}
	}
}
