package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"firebase.google.com/go/v4/auth"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
)

// TestTwoUsersSourcesDoNotShareTables: the users of two Firebase projects
// migrated into one users schema do not overwrite each other. The second
// project's job — from the Auth API, or from an export file that does not
// name its project — stops before writing anything, naming the tables and
// both sources, and plan says migrate would refuse; an export file named
// as the first project's (--firebase-project) loads into its tables, and
// --share-target lets the second project in.
func TestTwoUsersSourcesDoNotShareTables(t *testing.T) {
	ctx := context.Background()
	a, b := newUsersFixture(t), newUsersFixture(t)
	for _, f := range []*usersFixture{a, b} {
		if _, err := f.client.CreateUser(ctx, (&auth.UserToCreate{}).UID("u1").DisplayName("from the API of "+f.project)); err != nil {
			t.Fatal(err)
		}
	}
	export := func(name string) string {
		t.Helper()
		path := filepath.Join(a.dir, name+".json")
		text := fmt.Sprintf(`{"users": [{"localId": "u1", "displayName": %q, "createdAt": "1600000000000"}]}`, "from "+name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// state returns u1's display name and the number of runs recorded.
	state := func() (string, int) {
		t.Helper()
		var name string
		var runs int
		if err := a.pool.QueryRow(ctx, `SELECT (SELECT display_name FROM firebase_auth.users WHERE uid = 'u1'), (SELECT count(*) FROM baasmigrate.runs)`).Scan(&name, &runs); err != nil {
			t.Fatal(err)
		}
		return name, runs
	}
	usersA, usersB := "firebaseauth:projects/"+a.project, "firebaseauth:projects/"+b.project
	a.run(0, "migrate", "--only", "users", "--firebase-project", a.project)
	wantName, wantRuns := "from the API of "+a.project, 1
	refused := func(res clitest.Result, names ...string) {
		t.Helper()
		for _, want := range append(names, usersA, `"firebase_auth"."users"`, "--share-target") {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("the refusal does not name %s:\n%s", want, res.Stderr)
			}
		}
		if name, runs := state(); name != wantName || runs != wantRuns {
			t.Fatalf("u1 is %q with %d runs recorded; want %q and %d: the refused job wrote something", name, runs, wantName, wantRuns)
		}
	}

	// The Auth API of project B.
	refused(a.run(2, "migrate", "--only", "users", "--firebase-project", b.project), usersB)
	if res := a.run(1, "plan", "--only", "users", "--firebase-project", b.project); !strings.Contains(res.Stdout+res.Stderr, usersA) {
		t.Errorf("plan does not say migrate would refuse:\n%s\n%s", res.Stdout, res.Stderr)
	}
	// An export file of project B that does not say so: it is not taken
	// for project A's, not even with GCLOUD_PROJECT naming A (Cloud Shell
	// sets GOOGLE_CLOUD_PROJECT on its own).
	fileB := export("export-of-b")
	refused(a.run(2, "migrate", "--only", "users", "--auth-export", fileB), "firebaseauth-file:"+fileB, "--firebase-project")
	refused(clitest.Run(t, append(a.env(), "GCLOUD_PROJECT="+a.project), "migrate", "--only", "users", "--auth-export", fileB), "firebaseauth-file:"+fileB)
	refused(a.run(2, "migrate", "--only", "users", "--auth-export", fileB, "--firebase-project", b.project), usersB)
	if res := a.run(1, "plan", "--only", "users", "--auth-export", fileB); !strings.Contains(res.Stdout+res.Stderr, usersA) {
		t.Errorf("plan of B's file does not say migrate would refuse:\n%s\n%s", res.Stdout, res.Stderr)
	}

	// A new export of project A, named as such, loads into A's tables; so
	// does A's API again.
	a.run(0, "migrate", "--only", "users", "--auth-export", export("export-of-a"), "--firebase-project", a.project)
	wantName, wantRuns = "from export-of-a", 2
	if name, runs := state(); name != wantName || runs != wantRuns {
		t.Fatalf("after A's export u1 is %q with %d runs; want %q and %d", name, runs, wantName, wantRuns)
	}
	a.run(0, "migrate", "--only", "users", "--firebase-project", a.project, "--restart")
	wantName, wantRuns = "from the API of "+a.project, 3
	if name, runs := state(); name != wantName || runs != wantRuns {
		t.Fatalf("after A's API again u1 is %q with %d runs; want %q and %d", name, runs, wantName, wantRuns)
	}
	// The project may be named in the --config file too.
	config := filepath.Join(a.dir, "config.yaml")
	if err := os.WriteFile(config, []byte("firebase-project: "+a.project+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.run(0, "migrate", "--only", "users", "--auth-export", export("another-export-of-a"), "--config", config)
	wantName, wantRuns = "from another-export-of-a", 4
	if name, runs := state(); name != wantName || runs != wantRuns {
		t.Fatalf("after A's export named in --config u1 is %q with %d runs; want %q and %d", name, runs, wantName, wantRuns)
	}

	// The user says B belongs in the same tables.
	a.run(0, "migrate", "--only", "users", "--firebase-project", b.project, "--share-target")
	if name, _ := state(); name != "from the API of "+b.project {
		t.Fatalf("with --share-target u1 is %q; want B's", name)
	}
}
