package syncwriter

import (
	"context"
	"testing"

	"cloud.google.com/go/firestore"

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
