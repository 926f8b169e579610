package firestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/extractors"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// waitLimit bounds every wait for a batch: a test that sees nothing for
// this long fails instead of hanging.
const waitLimit = 30 * time.Second

// newExtractor connects the extractor to project on the emulator at host,
// with short retry delays and the extra options given.
func newExtractor(t *testing.T, host, project string, extra ...string) *fsx.Extractor {
	t.Helper()
	cfg := plugin.Config{
		"firebase-project": project, "firestore-emulator-host": host, "firestore-snapshot-window": "1h",
		"retry-attempts": "5", "retry-backoff": "1ms", "firestore-discover": "false",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	ex, err := fsx.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// stream is a Changes call running in the background.
type stream struct {
	cancel  context.CancelFunc
	batches chan record.ChangeBatch
	done    chan error
	got     []record.ChangeBatch
}

func follow(t *testing.T, ex *fsx.Extractor, from string, hints extractors.ChangeHints) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{cancel: cancel, batches: make(chan record.ChangeBatch, 10000), done: make(chan error, 1)}
	go func() {
		s.done <- ex.Changes(ctx, from, hints, func(b record.ChangeBatch) error {
			select {
			case s.batches <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// until collects batches until one has a read time at or after t.
func (s *stream) until(tb *testing.T, t time.Time) []record.ChangeBatch {
	tb.Helper()
	return s.untilFunc(tb, fmt.Sprintf("a batch at or after %s", t.Format(time.RFC3339Nano)), func(b record.ChangeBatch) bool {
		return !b.ReadTime.Before(t)
	})
}

// untilFunc collects batches until done accepts one.
func (s *stream) untilFunc(tb *testing.T, what string, done func(record.ChangeBatch) bool) []record.ChangeBatch {
	tb.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case b := <-s.batches:
			if n := len(s.got); n > 0 && b.ReadTime.Before(s.got[n-1].ReadTime) {
				tb.Fatalf("batch read time %s before the previous one's %s", b.ReadTime, s.got[n-1].ReadTime)
			}
			if want, _ := (&fsx.Extractor{}).PositionAt(b.ReadTime); b.Position != want {
				tb.Fatalf("batch at %s has position %q, want %q", b.ReadTime, b.Position, want)
			}
			s.got = append(s.got, b)
			if done(b) {
				return s.got
			}
		case err := <-s.done:
			s.done <- err
			tb.Fatalf("Changes ended while waiting for %s: %v", what, err)
		case <-timeout:
			tb.Fatalf("no %s within %s; got %d batches", what, waitLimit, len(s.got))
		}
	}
}

// stop ends the stream and returns what Changes returned.
func (s *stream) stop(t *testing.T) error {
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(waitLimit):
		t.Fatal("Changes did not return after its context ended")
	}
	return nil
}

// snapshot reads every document at readTime through Plan and Read.
func snapshot(t *testing.T, ex *fsx.Extractor, readTime time.Time) map[string]record.Record {
	t.Helper()
	ctx := context.Background()
	streams, err := ex.Plan(ctx, 1, readTime)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]record.Record{}
	for _, st := range streams {
		for _, p := range st.Partitions {
			if err := ex.Read(ctx, p, readTime, "", func(r record.Record) error {
				r.Cursor = ""
				out[r.Key] = r
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// apply applies batches to state, checking each change against the
// contract: an upsert's record is whole and was committed after from.
func apply(t *testing.T, state map[string]record.Record, from time.Time, batches []record.ChangeBatch) {
	t.Helper()
	for _, b := range batches {
		seen := map[string]bool{}
		for _, c := range b.Changes {
			if seen[c.Record.Key] {
				t.Errorf("batch at %s has two changes of %s", b.ReadTime, c.Record.Key)
			}
			seen[c.Record.Key] = true
			if c.CommitTime.After(b.ReadTime) {
				t.Errorf("%s %s committed at %s, after its batch's read time %s", c.Op, c.Record.Key, c.CommitTime, b.ReadTime)
			}
			switch c.Op {
			case record.OpUpsert:
				if !c.Record.UpdateTime.After(from) {
					t.Errorf("upsert of %s updated at %s, not after the starting position %s", c.Record.Key, c.Record.UpdateTime, from)
				}
				if c.Record.Cursor != "" || c.Record.Kind != record.KindDocument || !c.CommitTime.Equal(c.Record.UpdateTime) {
					t.Errorf("upsert of %s: cursor %q, kind %s, commit time %s (update time %s)", c.Record.Key, c.Record.Cursor, c.Record.Kind, c.CommitTime, c.Record.UpdateTime)
				}
				state[c.Record.Key] = c.Record
			case record.OpDelete:
				delete(state, c.Record.Key)
			default:
				t.Errorf("change of %s with op %v", c.Record.Key, c.Op)
			}
		}
	}
}

// sameDocuments fails t unless got and want hold the same documents with
// the same fields and times.
func sameDocuments(t *testing.T, what string, got, want map[string]record.Record) {
	t.Helper()
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(mapKeys(keys)) {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			diffs = append(diffs, "missing "+k)
		case !wok:
			diffs = append(diffs, "extra "+k)
		case !record.Equal(record.Map(g.Fields), record.Map(w.Fields)) || !g.UpdateTime.Equal(w.UpdateTime) || !g.CreateTime.Equal(w.CreateTime):
			diffs = append(diffs, fmt.Sprintf("%s: %v (updated %s), want %v (updated %s)", k, g.Fields, g.UpdateTime, w.Fields, w.UpdateTime))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// keysOf lists the changes of batches as "op key", sorted.
func keysOf(batches []record.ChangeBatch) []string {
	var out []string
	for _, b := range batches {
		for _, c := range b.Changes {
			out = append(out, c.Op.String()+" "+c.Record.Key)
		}
	}
	sort.Strings(out)
	return out
}

// writer makes changes through the official client and remembers the
// commit time of the last one.
type writer struct {
	t      *testing.T
	client *firestore.Client
	last   time.Time
}

func (w *writer) set(path string, data map[string]any) {
	w.t.Helper()
	res, err := w.client.Doc(path).Set(context.Background(), data)
	if err != nil {
		w.t.Fatal(err)
	}
	w.last = res.UpdateTime
}

func (w *writer) update(path string, u ...firestore.Update) {
	w.t.Helper()
	res, err := w.client.Doc(path).Update(context.Background(), u)
	if err != nil {
		w.t.Fatal(err)
	}
	w.last = res.UpdateTime
}

func (w *writer) delete(path string) {
	w.t.Helper()
	res, err := w.client.Doc(path).Delete(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	w.last = res.UpdateTime
}

// batch commits sets of several documents at once.
func (w *writer) batch(docs map[string]map[string]any) {
	w.t.Helper()
	b := w.client.Batch()
	for p, d := range docs {
		b.Set(w.client.Doc(p), d)
	}
	res, err := b.Commit(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	w.last = res[0].UpdateTime
}

// baseDocs: documents at three levels, a field to delete, a leaf, a parent
// with children, and a root collection outside the hints.
func baseDocs() []demoapp.Doc {
	return []demoapp.Doc{
		{Path: "a/1", Fields: map[string]any{"n": 1}},
		{Path: "a/1/b/1", Fields: map[string]any{"n": 2}},
		{Path: "a/1/b/1/c/1", Fields: map[string]any{"n": 3}},
		{Path: "a/2", Fields: map[string]any{"x": 1, "y": "drop me"}},
		{Path: "a/3", Fields: map[string]any{"leaf": true}},
		{Path: "p/1", Fields: map[string]any{"parent": true}},
		{Path: "p/1/k/1", Fields: map[string]any{"child": 1}},
		{Path: "p/1/k/2", Fields: map[string]any{"child": 2}},
	}
}

// writeMix makes creates, updates, a field delete, deletes of a leaf and
// of a parent with children, at every depth.
func writeMix(w *writer) {
	w.set("a/4", map[string]any{"new": true})
	w.update("a/2", firestore.Update{Path: "y", Value: firestore.Delete})
	w.delete("a/3")
	w.delete("p/1")
	w.set("a/1/b/1/c/2", map[string]any{"deep": "new"})
	w.update("a/1/b/1/c/1", firestore.Update{Path: "n", Value: 33})
	w.set("a/1/b/2", map[string]any{"n": 4})
	w.delete("p/1/k/2")
	w.set("p/1/k/1", map[string]any{"child": 11})
}

// TestChangesFollowWrites: a stream started at a copy's read time delivers
// creates, updates, field deletes, deletes of leaves and of a parent whose
// children remain, at three levels; the copy plus the batches equals the
// database at the last batch's read time, and nothing committed at or
// before the start is delivered.
func TestChangesFollowWrites(t *testing.T) {
	host, project, client := seedEmulator(t, baseDocs())
	ex := newExtractor(t, host, project)
	ctx := context.Background()
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, err := ex.PositionAt(start)
	if err != nil {
		t.Fatal(err)
	}
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}})
	w := &writer{t: t, client: client}
	writeMix(w)
	batches := s.until(t, w.last)
	apply(t, state, start, batches)
	last := batches[len(batches)-1].ReadTime
	sameDocuments(t, "copy + changes", state, snapshot(t, ex, last))
	want := []string{
		"delete a/3", "delete p/1", "delete p/1/k/2", "upsert a/1/b/1/c/1", "upsert a/1/b/1/c/2", "upsert a/1/b/2",
		"upsert a/2", "upsert a/4", "upsert p/1/k/1",
	}
	if got := slices.Compact(keysOf(batches)); !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if _, ok := state["a/2"].Fields["y"]; ok {
		t.Errorf("a/2 kept its deleted field: %v", state["a/2"].Fields)
	}
	if err := s.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Changes after its context ended = %v, want context.Canceled", err)
	}
}

// TestChangesResumeFromPosition: a stream started again from a batch's
// Position delivers what followed that batch and nothing before it.
func TestChangesResumeFromPosition(t *testing.T) {
	host, project, client := seedEmulator(t, baseDocs())
	ex := newExtractor(t, host, project)
	ctx := context.Background()
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, _ := ex.PositionAt(start)
	hints := extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}}
	s := follow(t, ex, from, hints)
	w := &writer{t: t, client: client}
	w.set("a/5", map[string]any{"first": true})
	w.update("a/1", firestore.Update{Path: "n", Value: 10})
	first := s.until(t, w.last)
	s.stop(t)
	apply(t, state, start, first)
	mid := first[len(first)-1]

	// While no stream runs.
	w.set("a/5", map[string]any{"first": false})
	w.delete("a/1/b/1/c/1")
	w.set("p/2", map[string]any{"later": true})
	s2 := follow(t, ex, mid.Position, hints)
	w.set("a/6", map[string]any{"after": true})
	second := s2.until(t, w.last)
	apply(t, state, mid.ReadTime, second)
	sameDocuments(t, "copy + first stream + resumed stream", state, snapshot(t, ex, second[len(second)-1].ReadTime))
	want := []string{"delete a/1/b/1/c/1", "upsert a/5", "upsert a/6", "upsert p/2"}
	if got := slices.Compact(keysOf(second)); !slices.Equal(got, want) {
		t.Errorf("resumed stream delivered %v, want %v (nothing from before its position)", got, want)
	}
}

// TestChangesDeliverHeartbeats: an idle source yields empty batches with
// increasing read times (from the emulator's heartbeats).
func TestChangesDeliverHeartbeats(t *testing.T) {
	emu, err := firestoreemu.Start("127.0.0.1:0", firestoreemu.Options{ListenHeartbeat: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	client := emulatorClient(t, emu.Addr(), "heartbeats")
	if err := demoapp.Seed(context.Background(), client, baseDocs()); err != nil {
		t.Fatal(err)
	}
	ex := newExtractor(t, emu.Addr(), "heartbeats")
	start, err := ex.SnapshotTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{})
	var empty []time.Time
	s.untilFunc(t, "three empty batches", func(b record.ChangeBatch) bool {
		if len(b.Changes) != 0 {
			t.Fatalf("idle source delivered changes %v", keysOf([]record.ChangeBatch{b}))
		}
		empty = append(empty, b.ReadTime)
		return len(empty) == 3
	})
	if !empty[2].After(empty[0]) || empty[0].Before(start) {
		t.Errorf("heartbeat read times %v (start %s): want them to advance from the start", empty, start)
	}
}

// emulatorClient returns an official client on project of the emulator at
// host.
func emulatorClient(t *testing.T, host, project string) *firestore.Client {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	client, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestChangesSurviveCutStreams: Listen streams cut after a few documents
// (UNAVAILABLE) are resumed from the last consistent point and nothing is
// lost.
func TestChangesSurviveCutStreams(t *testing.T) {
	host, project, client := seedEmulator(t, baseDocs())
	hooks := firestoreemu.HooksFor(host)
	ctx := context.Background()
	if _, err := hooks.Info(ctx); err != nil {
		t.Skipf("the emulator at %s has no fault hooks: %v", host, err)
	}
	ex := newExtractor(t, host, project)
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c", "k", "x"}})
	s.until(t, start) // the stream is up
	after := 3
	if err := hooks.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Listen"}, AfterDocuments: &after, Times: 4},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.ClearFaults(context.Background(), project) })
	w := &writer{t: t, client: client}
	for i := range 12 {
		w.batch(map[string]map[string]any{
			fmt.Sprintf("a/w%02d", i):          {"i": i},
			fmt.Sprintf("a/1/b/1/c/w%02d", i):  {"i": i},
			fmt.Sprintf("p/1/k/w%02d", i):      {"i": i},
			fmt.Sprintf("a/2/b/2/c/2/x/%d", i): {"i": i}, // under missing parents
		})
	}
	writeMix(w)
	batches := s.until(t, w.last)
	st, err := hooks.Faults(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Injected) != 1 || st.Injected[0] == 0 {
		t.Fatalf("faults injected %v: want Listen streams cut", st.Injected)
	}
	apply(t, state, start, s.got)
	_ = batches
	sameDocuments(t, "copy + changes through cut streams", state, snapshot(t, ex, s.got[len(s.got)-1].ReadTime))
}

// TestChangesFindNewCollections: collection IDs that appear after the
// stream started — a root collection, a subcollection under a written
// document, and one under a document of the new collection — are found by
// discovery and their documents delivered.
func TestChangesFindNewCollections(t *testing.T) {
	host, project, client := seedEmulator(t, baseDocs())
	ex := newExtractor(t, host, project, "firestore-discover", "true")
	ctx := context.Background()
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}})
	w := &writer{t: t, client: client}
	w.set("fresh/1", map[string]any{"root": true})
	w.set("fresh/1/deeper/1", map[string]any{"level": 2})
	w.batch(map[string]map[string]any{"a/1": {"n": 100}, "a/1/newsub/1": {"sub": true}})
	want := []string{"fresh/1", "fresh/1/deeper/1", "a/1/newsub/1"}
	seen := map[string]bool{}
	s.untilFunc(t, "the documents of the new collections", func(b record.ChangeBatch) bool {
		for _, c := range b.Changes {
			seen[c.Record.Key] = true
		}
		for _, k := range want {
			if !seen[k] {
				return false
			}
		}
		return true
	})
	// Then a change in a new collection comes like any other.
	w.set("fresh/1/deeper/2", map[string]any{"level": 2})
	s.until(t, w.last)
	apply(t, state, start, s.got)
	sameDocuments(t, "copy + changes with new collections", state, snapshot(t, ex, s.got[len(s.got)-1].ReadTime))
}

// TestChangesHonourCollections: with --collections, documents under other
// root collections are not delivered, even those of a collection ID the
// stream watches.
func TestChangesHonourCollections(t *testing.T) {
	host, project, client := seedEmulator(t, append(baseDocs(), demoapp.Doc{Path: "p/1/b/1", Fields: map[string]any{"x": 1}}))
	ex := newExtractor(t, host, project, "collections", "a")
	start, err := ex.SnapshotTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c"}})
	w := &writer{t: t, client: client}
	w.set("p/1/b/1", map[string]any{"x": 2})
	w.set("p/9", map[string]any{"x": 2})
	w.delete("p/1/k/1")
	w.set("a/1/b/1", map[string]any{"x": 2})
	batches := s.until(t, w.last)
	if got := slices.Compact(keysOf(batches)); !slices.Equal(got, []string{"upsert a/1/b/1"}) {
		t.Errorf("with --collections a: %v, want only a/1/b/1", got)
	}
}

// fakeClock is a wall clock that a test moves forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func startEmulatorWithClock(t *testing.T) (*firestoreemu.Emulator, *fakeClock) {
	t.Helper()
	clock := &fakeClock{}
	emu, err := firestoreemu.Start("127.0.0.1:0", firestoreemu.Options{History: time.Hour, Now: clock.now, ListenHeartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu, clock
}

// TestChangesFromExpiredPosition: a position older than the source keeps
// gives ErrSnapshotExpired — at the start, and when a cut stream resumes
// after its last consistent point has left the history (the emulator
// answers the resumed target with RESET).
func TestChangesFromExpiredPosition(t *testing.T) {
	emu, clock := startEmulatorWithClock(t)
	const project = "expired"
	client := emulatorClient(t, emu.Addr(), project)
	ctx := context.Background()
	if err := demoapp.Seed(ctx, client, baseDocs()); err != nil {
		t.Fatal(err)
	}
	ex := newExtractor(t, emu.Addr(), project)
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := ex.PositionAt(start)
	hints := extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}}

	t.Run("resumed after the history", func(t *testing.T) {
		s := follow(t, ex, from, hints)
		s.until(t, start)
		after := 0
		hooks := firestoreemu.HooksFor(emu.Addr())
		if err := hooks.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
			{Methods: []string{"Listen"}, AfterDocuments: &after, Times: 1},
		}}); err != nil {
			t.Fatal(err)
		}
		clock.advance(2 * time.Hour)
		if _, err := client.Doc("a/9").Set(ctx, map[string]any{"cut": true}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.done:
			s.done <- err
			if !errors.Is(err, extractors.ErrSnapshotExpired) || !strings.Contains(err.Error(), "RESET") && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("Changes = %v, want ErrSnapshotExpired saying the target was reset", err)
			}
		case b := <-s.batches:
			t.Fatalf("a batch at %s was delivered after the history passed: %v", b.ReadTime, keysOf([]record.ChangeBatch{b}))
		case <-time.After(waitLimit):
			t.Fatal("Changes did not end")
		}
	})
	t.Run("started after the history", func(t *testing.T) {
		err := ex.Changes(ctx, from, hints, func(b record.ChangeBatch) error {
			t.Errorf("batch delivered from an expired position: %v", b)
			return nil
		})
		if !errors.Is(err, extractors.ErrSnapshotExpired) {
			t.Fatalf("Changes = %v, want ErrSnapshotExpired", err)
		}
	})
}

// TestPositionAt: a position is the read time in RFC 3339, UTC; a zero
// time and a malformed position are refused.
func TestPositionAt(t *testing.T) {
	ex := newExtractor(t, "127.0.0.1:1", "p")
	at := time.Date(2026, 12, 6, 15, 4, 5, 123456000, time.FixedZone("x", 3600))
	pos, err := ex.PositionAt(at)
	if err != nil || pos != "2026-12-06T14:04:05.123456Z" {
		t.Fatalf("PositionAt = %q, %v", pos, err)
	}
	if _, err := ex.PositionAt(time.Time{}); err == nil {
		t.Error("PositionAt(zero) succeeded")
	}
	err = ex.Changes(context.Background(), "yesterday", extractors.ChangeHints{}, func(record.ChangeBatch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "yesterday") {
		t.Errorf("Changes from a malformed position = %v", err)
	}
}

// TestChangesResumeRemovedTargets: Firestore gives up a target it cannot
// bring up to date (REMOVE); the stream resumes from the last consistent
// point and loses nothing. REMOVEs that keep coming before any consistent
// point end the stream with ErrSnapshotExpired, so the caller catches up
// another way.
func TestChangesResumeRemovedTargets(t *testing.T) {
	emu, _ := startEmulatorWithClock(t)
	const project = "removed"
	client := emulatorClient(t, emu.Addr(), project)
	ctx := context.Background()
	if err := demoapp.Seed(ctx, client, baseDocs()); err != nil {
		t.Fatal(err)
	}
	hooks := firestoreemu.HooksFor(emu.Addr())
	ex := newExtractor(t, emu.Addr(), project)
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}})
	s.until(t, start)
	after := 2
	if err := hooks.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Listen"}, AfterDocuments: &after, Times: 3, Code: "ABORTED", RemoveTarget: true},
	}}); err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, client: client}
	for i := range 5 {
		w.batch(map[string]map[string]any{fmt.Sprintf("a/r%d", i): {"i": i}, fmt.Sprintf("a/1/b/1/c/r%d", i): {"i": i}})
	}
	writeMix(w)
	s.until(t, w.last)
	if st, err := hooks.Faults(ctx, project); err != nil || st.Injected[0] != 3 {
		t.Fatalf("targets removed %v (%v), want 3", st.Injected, err)
	}
	apply(t, state, start, s.got)
	sameDocuments(t, "copy + changes through removed targets", state, snapshot(t, ex, s.got[len(s.got)-1].ReadTime))

	after = 0
	if err := hooks.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Listen"}, AfterDocuments: &after, Code: "ABORTED", RemoveTarget: true},
	}}); err != nil {
		t.Fatal(err)
	}
	w.set("a/always", map[string]any{"removed": true})
	select {
	case err := <-s.done:
		s.done <- err
		if !errors.Is(err, extractors.ErrSnapshotExpired) || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("Changes = %v, want ErrSnapshotExpired saying the target kept being removed", err)
		}
	case b := <-s.batches:
		t.Fatalf("a batch was delivered while every target is removed: %v", keysOf([]record.ChangeBatch{b}))
	case <-time.After(waitLimit):
		t.Fatal("Changes did not end")
	}
}

// TestChangesNewRootCollectionInItsBatch: a root collection created after
// the stream started is in the first batch consistent at or after its
// creation — root collection IDs are checked at every consistent point.
func TestChangesNewRootCollectionInItsBatch(t *testing.T) {
	host, project, client := seedEmulator(t, baseDocs())
	ex := newExtractor(t, host, project, "firestore-discover", "true")
	start, err := ex.SnapshotTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}})
	s.until(t, start)
	w := &writer{t: t, client: client}
	w.set("brandnew/1", map[string]any{"v": 1})
	w.set("a/7", map[string]any{"v": 1})
	batches := s.until(t, w.last)
	apply(t, state, start, batches)
	sameDocuments(t, "at the first batch after the writes", state, snapshot(t, ex, batches[len(batches)-1].ReadTime))
}

// TestChangesUnderConcurrentWrites: a writer makes random changes —
// creates, updates, field deletes, deletes of leaves and of parents, new
// root collections and new subcollections under documents it writes —
// while Listen streams are cut at random; once it stops, the copy plus the
// batches equals the database at the last batch's read time.
func TestChangesUnderConcurrentWrites(t *testing.T) {
	host, project, client := seedEmulator(t, baseDocs())
	hooks := firestoreemu.HooksFor(host)
	ctx := context.Background()
	if _, err := hooks.Info(ctx); err != nil {
		t.Skipf("the emulator at %s has no fault hooks: %v", host, err)
	}
	ex := newExtractor(t, host, project, "firestore-discover", "true")
	start, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := snapshot(t, ex, start)
	from, _ := ex.PositionAt(start)
	s := follow(t, ex, from, extractors.ChangeHints{Collections: []string{"a", "b", "c", "k"}})
	after, fraction := 5, 0.3
	if err := hooks.SetFaults(ctx, project, firestoreemu.FaultConfig{Seed: 7, Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Listen"}, AfterDocuments: &after, Fraction: &fraction, Times: 20},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.ClearFaults(context.Background(), project) })

	rng := rand.New(rand.NewPCG(11, 12))
	var live []string
	for k := range state {
		live = append(live, k)
	}
	sort.Strings(live)
	w := &writer{t: t, client: client}
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		pick := func() string { return live[rng.IntN(len(live))] }
		for i := range 300 {
			var res *firestore.WriteResult
			var err error
			switch op := rng.IntN(10); {
			case op < 3 || len(live) < 5: // create, sometimes in a new collection
				path := fmt.Sprintf("a/n%d", i)
				switch rng.IntN(4) {
				case 0:
					path = fmt.Sprintf("root%d/d%d", i%7, i)
				case 1:
					path = fmt.Sprintf("%s/sub%d/d%d", pick(), i%5, i)
				}
				var rs []*firestore.WriteResult
				b := client.Batch()
				b.Set(client.Doc(path), map[string]any{"i": i, "x": "y"})
				if parent := path[:max(strings.LastIndex(path, "/"), 0)]; strings.Count(parent, "/") >= 1 {
					// New subcollections come with a write to their parent.
					parentDoc := parent[:strings.LastIndex(parent, "/")]
					b.Set(client.Doc(parentDoc), map[string]any{"touched": i}, firestore.MergeAll)
				}
				if rs, err = b.Commit(ctx); err == nil {
					res = rs[0]
					live = append(live, path)
				}
			case op < 6:
				res, err = client.Doc(pick()).Set(ctx, map[string]any{"i": i, "x": "z"}, firestore.MergeAll)
			case op < 7:
				res, err = client.Doc(pick()).Update(ctx, []firestore.Update{{Path: "x", Value: firestore.Delete}})
				if status.Code(err) == codes.NotFound {
					err = nil
					continue
				}
			default:
				j := rng.IntN(len(live))
				res, err = client.Doc(live[j]).Delete(ctx)
				live = append(live[:j], live[j+1:]...)
			}
			if err != nil {
				errs <- err
				return
			}
			w.last = res.UpdateTime
		}
	}()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	s.until(t, w.last)
	st, err := hooks.Faults(ctx, project)
	if err != nil || st.Injected[0] == 0 {
		t.Fatalf("faults injected %v (%v): want Listen streams cut", st.Injected, err)
	}
	apply(t, state, start, s.got)
	sameDocuments(t, "copy + changes under concurrent writes and cut streams", state, snapshot(t, ex, s.got[len(s.got)-1].ReadTime))
}
