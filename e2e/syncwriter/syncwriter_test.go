package syncwriter

import (
	"context"
	"slices"
	"testing"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"
	firebase "firebase.google.com/go/v4"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/baasmigrate/baasmigrate/extractors/gcs/gcstest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestWriterModelMatchesSource runs the writer against the Firestore
// emulator for a few hundred commits of every kind of change and checks
// that its model is what the source holds, document by document, and that
// the same seed makes the same changes.
func TestWriterModelMatchesSource(t *testing.T) {
	host := testenv.FirestoreEmulatorHost(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	ctx := context.Background()
	run := func() (*Writer, Stats) {
		client, err := firestore.NewClient(ctx, testenv.FreshProjectID(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		w := New(client, Options{Seed: 42, MaxBatch: 5, NewCollections: 8})
		if err := w.Seed(ctx, 300); err != nil {
			t.Fatal(err)
		}
		if err := w.Steps(ctx, 400); err != nil {
			t.Fatal(err)
		}
		diffs, err := w.Check(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			t.Error(d)
		}
		return w, w.Stats()
	}
	w, s := run()
	t.Logf("%d commits, %d writes: %v; %d live documents in %d collection groups, %d deleted", s.Commits, s.Writes, s.ByOp, len(w.Expected()), len(w.Groups()), len(w.Deleted()))
	for op := range defaultWeights {
		if s.ByOp[op] == 0 {
			t.Errorf("no change of kind %s in 400 commits", op)
		}
	}
	if s.Commits != 400 || s.Writes < 400 {
		t.Errorf("stats %+v", s)
	}
	_, s2 := run()
	if s2.Writes != s.Writes || len(s2.ByOp) != len(s.ByOp) {
		t.Errorf("the same seed made %d writes, then %d", s.Writes, s2.Writes)
	}
}

// TestUsersAndFilesWriters runs the users and files writers against the
// Auth emulator and a private fake-gcs-server: what they believe live is
// what the sources list, and every kind of change happened.
func TestUsersAndFilesWriters(t *testing.T) {
	ctx := context.Background()
	t.Setenv("FIREBASE_AUTH_EMULATOR_HOST", testenv.AuthEmulatorHost(t))
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: testenv.FreshProjectID(t)})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := app.Auth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUsers(ac, 3, "wu")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(ctx, 10); err != nil {
		t.Fatal(err)
	}
	host := gcstest.MemoryEmulator(t)
	sc, err := storage.NewClient(ctx, option.WithEndpoint(host+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Bucket("writer-test").Create(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	f := NewFiles(sc, "writer-test", 3, "wf")
	if err := f.Add(ctx, 10); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := u.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	for it := ac.Users(ctx, ""); ; {
		x, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, x.UID)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, u.Live()) {
		t.Errorf("Auth lists %v, the writer believes %v", listed, u.Live())
	}
	listed = nil
	for it := sc.Bucket("writer-test").Objects(ctx, nil); ; {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, a.Name)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, f.Live()) {
		t.Errorf("the bucket lists %v, the writer believes %v", listed, f.Live())
	}
	if u.Changed == 0 || u.Deleted == 0 || f.Overwritten == 0 || f.Retagged == 0 || f.Deleted == 0 {
		t.Errorf("not every kind of change: users %d/%d/%d, files %d/%d/%d/%d", u.Added, u.Changed, u.Deleted, f.Added, f.Overwritten, f.Retagged, f.Deleted)
	}
}
