package firestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestGetAtReadTime: Get returns, in the order asked and once per key, the
// documents as they were at the read time — changed and deleted ones at
// their old versions, ones created later and missing parents as nil — the
// same records Read builds, over several BatchGetDocuments calls, billing
// one read per key.
func TestGetAtReadTime(t *testing.T) {
	docs := baseDocs()
	for i := range 650 {
		docs = append(docs, demoapp.Doc{Path: fmt.Sprintf("many/%04d", i), Fields: map[string]any{"i": i}})
	}
	host, project, client := seedEmulator(t, docs)
	ex := newExtractor(t, host, project)
	ctx := context.Background()
	at, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, ex, at)
	w := &writer{t: t, client: client}
	w.update("a/2", firestore.Update{Path: "x", Value: 2})
	w.delete("a/3")
	w.set("a/new", map[string]any{"later": true})

	keys := []string{"a/2", "a/3", "a/new", "a/1/b/1/c/1", "nothing/here", "a/2"}
	for i := 649; i >= 0; i -= 2 {
		keys = append(keys, fmt.Sprintf("many/%04d", i))
	}
	keys = append(keys, "a/1/b/9/c/1") // under a missing parent, itself missing
	before := ex.BillableReads()
	var got []string
	err = ex.Get(ctx, keys, at, func(key string, rec *record.Record) error {
		got = append(got, key)
		w, ok := want[key]
		switch {
		case rec == nil && ok:
			t.Errorf("%s: nil, want the document as of the read time", key)
		case rec != nil && !ok:
			t.Errorf("%s: %v, want nil (no document at the read time)", key, rec.Fields)
		case rec != nil:
			if rec.Key != key || !record.Equal(record.Map(rec.Fields), record.Map(w.Fields)) || !rec.UpdateTime.Equal(w.UpdateTime) || !rec.CreateTime.Equal(w.CreateTime) {
				t.Errorf("%s: %+v, want %+v", key, *rec, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Fatalf("emitted keys %v, want %v", got, keys)
	}
	// a/2 is asked twice in one call but read once.
	if reads := ex.BillableReads() - before; reads != int64(len(keys)-1) {
		t.Errorf("billed %d reads for %d distinct keys", reads, len(keys)-1)
	}

	// Now: the changes show.
	var now []*record.Record
	if err := ex.Get(ctx, []string{"a/2", "a/3", "a/new"}, time.Time{}, func(_ string, rec *record.Record) error {
		now = append(now, rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if now[0] == nil || now[0].Fields["x"].String() != record.Int(2).String() || now[1] != nil || now[2] == nil {
		t.Errorf("Get now: %v", now)
	}

	// An error from emit is returned unchanged.
	stop := errors.New("stop")
	if err := ex.Get(ctx, keys, at, func(string, *record.Record) error { return stop }); err != stop {
		t.Errorf("Get with a failing emit = %v, want its error", err)
	}
	if err := ex.Get(ctx, []string{"a"}, at, func(string, *record.Record) error { return nil }); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Get of a collection path = %v, want it refused naming the key", err)
	}
}

// TestGetExpiredReadTime: a read time older than the source keeps gives
// ErrSnapshotExpired.
func TestGetExpiredReadTime(t *testing.T) {
	emu, clock := startEmulatorWithClock(t)
	const project = "getexpired"
	client := emulatorClient(t, emu.Addr(), project)
	ctx := context.Background()
	if err := demoapp.Seed(ctx, client, baseDocs()); err != nil {
		t.Fatal(err)
	}
	ex := newExtractor(t, emu.Addr(), project)
	at, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := ex.Get(ctx, []string{"a/1"}, at, func(_ string, rec *record.Record) error {
		if rec != nil {
			n++
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("Get within the history: %d found, %v", n, err)
	}
	clock.advance(2 * time.Hour)
	err = ex.Get(ctx, []string{"a/1"}, at, func(string, *record.Record) error {
		t.Error("emit called for an expired read time")
		return nil
	})
	if !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Fatalf("Get at a read time past the history = %v, want ErrSnapshotExpired", err)
	}
}
