package extractortest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// ChangeHarness describes a source with a change stream
// (extractors.ChangeStreamer) for ChangeStream.
type ChangeHarness struct {
	// New returns a change source to write to and follow. It is called
	// once per sub-test; the suite closes its extractor.
	New func(t *testing.T) ChangeSource
	// Coalesces says that the stream delivers, at each consistent point,
	// the state of each key that changed since the last one rather than
	// every change (Firestore Listen): a version of a key replaced before
	// the next consistent point may be skipped, and a record created and
	// deleted between two may not appear at all. The suite then checks
	// that the state delivered at the consistent points it waits for is
	// the source's, instead of that every change arrives.
	Coalesces bool
	// Window, if set, is how far back a position may start and still be
	// followed: the suite checks that a position older than that fails
	// with extractors.ErrSnapshotExpired.
	Window time.Duration
	// Wait bounds how long the suite waits for the next batch or for
	// Changes to return before it fails (default two minutes; longer than
	// the source takes to send a heartbeat). It only keeps a broken source
	// from hanging the test; nothing is timed.
	Wait time.Duration
}

// ChangeSource is one source under test, as ChangeHarness.New returns it.
// The suite writes every record it follows: Put and Delete change records
// with the keys Key and Unhinted give, and records with other keys may
// exist but must not change while the suite runs.
type ChangeSource struct {
	// Extractor reads the source and implements extractors.ChangeStreamer;
	// when it implements extractors.Getter, the suite checks that too.
	Extractor extractors.Extractor
	// Hints are passed to Changes.
	Hints extractors.ChangeHints
	// Key returns the i-th key the suite writes (i from 0): distinct keys
	// for distinct i, of records where Hints say the target has tables.
	// No record with these keys exists before the suite writes it: every
	// New gives a fresh database, or keys of its own.
	Key func(i int) string
	// Unhinted, if set, returns keys of records in collections Hints do
	// not name and that hold no record before the suite writes one (best
	// a collection of its own for each i): the suite checks that they
	// are followed too, created both before and after Changes starts.
	Unhinted func(i int) string
	// Put creates or replaces (whole) the record with key, its fields
	// exactly fields, committing before it returns. Read must deliver the
	// fields with their names and values (the source may add fields of
	// its own).
	Put func(ctx context.Context, key string, fields map[string]record.Value) error
	// Delete deletes the record with key, which exists, committing before
	// it returns.
	Delete func(ctx context.Context, key string) error
	// Now returns the source's current time: every change committed before
	// Now is called is committed at or before the time it returns, and
	// every change committed after it returns is committed after that
	// time. Nil uses the extractor's SnapshotTime (extractors.Snapshotter).
	Now func(ctx context.Context) (time.Time, error)
}

// ChangeStream runs the change-stream suite: the contract of
// extractors.ChangeStreamer and of record.ChangeBatch. It writes records
// through the harness before the start position, after it but before
// Changes is called, and while Changes runs, and checks:
//   - ordered: changes to one key arrive in commit order (the suite writes
//     a version number into every record it puts), and the ReadTimes of a
//     stream's batches never decrease;
//   - nothing missed: every change committed after the start position is
//     delivered (creates and updates as OpUpsert, deletes as OpDelete; with
//     Coalesces, the latest state at each consistent point), nothing
//     committed at or before it is, and once a batch is consistent at a
//     time, every key's state replayed from the stream is the source's;
//   - resumable: starting again from any batch's Position delivers what
//     follows it: changes delivered again are allowed, but only changes
//     committed after that batch, and the final state of every key is the
//     source's;
//   - records: an upsert carries the whole record as Read delivers it
//     (and as Get delivers it at the change's commit time, for a Getter),
//     with an empty Cursor and CommitTime its UpdateTime; a delete carries
//     only Kind and Key;
//   - Changes returns ctx.Err() when ctx ends, an error from emit
//     unchanged, and, with Window set, extractors.ErrSnapshotExpired for a
//     position too old;
//   - Get, for a Getter, emits each key in the order given, nil for a key
//     without a record at the read time, and returns emit's error
//     unchanged.
//
// The source must deliver a batch at or after any time Now returned
// without being written to again (a heartbeat on an idle source): the
// suite waits for one to know a point has been reached.
//
//	extractortest.ChangeStream(t, extractortest.ChangeHarness{
//		New: func(t *testing.T) extractortest.ChangeSource { ... },
//	})
func ChangeStream(t *testing.T, h ChangeHarness) {
	if h.Wait <= 0 {
		h.Wait = 2 * time.Minute
	}
	t.Run("FollowsInOrderMissingNothing", func(t *testing.T) { followChanges(t, h) })
	t.Run("ResumesFromEveryPosition", func(t *testing.T) { resumeChanges(t, h) })
	t.Run("EndsWithTheContext", func(t *testing.T) { changesEndWithContext(t, h) })
	t.Run("CallerErrorsComeBackUnchanged", func(t *testing.T) { changesCallerError(t, h) })
	if h.Window > 0 {
		t.Run("ExpiredPosition", func(t *testing.T) { expiredPosition(t, h) })
	}
	t.Run("Get", func(t *testing.T) { getByKey(t, h) })
}

// changeSource opens a source and checks what the suite needs of it.
func changeSource(t *testing.T, h ChangeHarness) (ChangeSource, extractors.ChangeStreamer) {
	t.Helper()
	src := h.New(t)
	t.Cleanup(func() { src.Extractor.Close() })
	cs, ok := src.Extractor.(extractors.ChangeStreamer)
	if !ok {
		t.Fatalf("%T does not implement extractors.ChangeStreamer", src.Extractor)
	}
	if src.Key == nil || src.Put == nil || src.Delete == nil {
		t.Fatal("the harness gives no Key, Put or Delete")
	}
	if src.Now == nil {
		s, ok := src.Extractor.(extractors.Snapshotter)
		if !ok {
			t.Fatalf("the harness gives no Now and %T is not an extractors.Snapshotter", src.Extractor)
		}
		src.Now = s.SnapshotTime
	}
	return src, cs
}

// write is one change the suite made.
type write struct {
	key    string
	del    bool
	v      int64 // the version put (0 for a delete)
	fields map[string]record.Value
}

func (w write) String() string {
	if w.del {
		return fmt.Sprintf("the delete of %q", w.key)
	}
	return fmt.Sprintf("version %d of %q", w.v, w.key)
}

// writer makes changes through the harness and logs them, in the order
// they were committed.
type writer struct {
	t      *testing.T
	src    ChangeSource
	writes []write
	byKey  map[string][]int // indexes into writes
	byV    map[int64]int
}

func newWriter(t *testing.T, src ChangeSource) *writer {
	return &writer{t: t, src: src, byKey: map[string][]int{}, byV: map[int64]int{}}
}

// versionField holds the version the suite put into each record.
const versionField = "v"

func (w *writer) put(key string, extra bool) {
	w.t.Helper()
	v := int64(len(w.writes) + 1)
	fields := map[string]record.Value{
		versionField: record.Int(v),
		"s":          record.String(key + "@" + strconv.FormatInt(v, 10)),
	}
	if extra {
		fields["extra"] = record.String("present in this version only")
	}
	if err := w.src.Put(context.Background(), key, fields); err != nil {
		w.t.Fatalf("putting version %d of %q: %v", v, key, err)
	}
	w.log(write{key: key, v: v, fields: fields})
}

func (w *writer) delete(key string) {
	w.t.Helper()
	if err := w.src.Delete(context.Background(), key); err != nil {
		w.t.Fatalf("deleting %q: %v", key, err)
	}
	w.log(write{key: key, del: true})
}

func (w *writer) log(wr write) {
	i := len(w.writes)
	w.writes = append(w.writes, wr)
	w.byKey[wr.key] = append(w.byKey[wr.key], i)
	if !wr.del {
		w.byV[wr.v] = i
	}
}

// now takes the source's time.
func (w *writer) now() time.Time {
	w.t.Helper()
	at, err := w.src.Now(context.Background())
	if err != nil {
		w.t.Fatalf("taking the source's time: %v", err)
	}
	return at
}

// last returns, per key, the index of the last write among the first n
// (-1 for a key not written among them).
func (w *writer) last(n int) map[string]int {
	out := map[string]int{}
	for key, idx := range w.byKey {
		out[key] = -1
		for _, i := range idx {
			if i < n {
				out[key] = i
			}
		}
	}
	return out
}

// present reports whether write index i leaves its key with a record.
func (w *writer) present(i int) bool { return i >= 0 && !w.writes[i].del }

// stateOf describes the state write index i leaves its key in.
func (w *writer) stateOf(i int) string {
	if !w.present(i) {
		return "absent"
	}
	return fmt.Sprintf("version %d", w.writes[i].v)
}

// follower runs Changes in the background and hands over its batches.
type follower struct {
	t       *testing.T
	wait    time.Duration
	cancel  context.CancelFunc
	batches chan record.ChangeBatch
	done    chan error
	ended   bool
	err     error
}

// follow starts Changes from position from. Batches emitted after ctx ended
// are dropped (emit returns nil): the stream must notice ctx itself.
func follow(t *testing.T, h ChangeHarness, cs extractors.ChangeStreamer, from string, hints extractors.ChangeHints) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{t: t, wait: h.Wait, cancel: cancel, batches: make(chan record.ChangeBatch), done: make(chan error, 1)}
	go func() {
		f.done <- cs.Changes(ctx, from, hints, func(b record.ChangeBatch) error {
			select {
			case f.batches <- b:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	t.Cleanup(func() { f.stop() })
	return f
}

// next returns the next batch; it fails the test when Changes returned.
func (f *follower) next() record.ChangeBatch {
	f.t.Helper()
	timer := time.NewTimer(f.wait)
	defer timer.Stop()
	select {
	case b := <-f.batches:
		return b
	case err := <-f.done:
		f.ended, f.err = true, err
		f.t.Fatalf("Changes returned before its context ended: %v", err)
	case <-timer.C:
		f.t.Fatalf("no batch from Changes within %v", f.wait)
	}
	panic("unreachable")
}

// stop cancels Changes and returns what it returned.
func (f *follower) stop() error {
	f.t.Helper()
	if f.ended {
		return f.err
	}
	f.cancel()
	timer := time.NewTimer(f.wait)
	defer timer.Stop()
	select {
	case f.err = <-f.done:
		f.ended = true
		return f.err
	case <-timer.C:
		f.t.Fatalf("Changes did not return within %v of its context ending", f.wait)
	}
	panic("unreachable")
}

// tracker checks a stream's batches against the writes, batch by batch.
type tracker struct {
	t     *testing.T
	w     *writer
	label string
	// from is the state the stream started from: per key, the index of
	// the last write at or before the start position (-1: none).
	from map[string]int
	// at is the state replayed from the stream: per key, the index of
	// the write its last change was.
	at        map[string]int
	delivered map[int]bool
	coalesces bool
	readTime  time.Time
	batches   []record.ChangeBatch
	// after[i] is at after batches[i].
	after []map[string]int
	// upserts are the upserts delivered, for comparison with Get; latest
	// is the last one of each key.
	upserts []record.Change
	latest  map[string]record.Change
	// deletes are deletes that were the last change to their key in
	// their batch, with the batch's ReadTime as CommitTime.
	deletes []record.Change
}

// newTracker returns a tracker of a stream started from a position at time
// start (the time given to PositionAt, or the ReadTime of the batch whose
// Position it is), when the state of every key was from.
func newTracker(t *testing.T, w *writer, label string, start time.Time, from map[string]int, coalesces bool) *tracker {
	tr := &tracker{t: t, w: w, label: label, from: map[string]int{}, at: map[string]int{}, delivered: map[int]bool{},
		coalesces: coalesces, latest: map[string]record.Change{}, readTime: start}
	for k, i := range from {
		tr.from[k], tr.at[k] = i, i
	}
	return tr
}

// untilCaughtUp takes batches from f until one is consistent at or after
// time until, checking each, and then checks that the stream's state is
// that of the first n writes.
func (tr *tracker) untilCaughtUp(f *follower, until time.Time, n int) {
	tr.t.Helper()
	for {
		b := f.next()
		tr.batch(b)
		if !b.ReadTime.Before(until) {
			tr.caughtUp(b, n)
			return
		}
	}
}

func (tr *tracker) batch(b record.ChangeBatch) {
	t := tr.t
	t.Helper()
	n := len(tr.batches)
	tr.batches = append(tr.batches, b)
	if b.ReadTime.IsZero() {
		t.Errorf("%s: batch %d has no ReadTime", tr.label, n)
	}
	if b.ReadTime.Before(tr.readTime) {
		t.Errorf("%s: batch %d's ReadTime went back, from %v (the previous batch's, or the start position's) to %v", tr.label, n, tr.readTime, b.ReadTime)
	}
	tr.readTime = b.ReadTime
	if b.Position == "" {
		t.Errorf("%s: batch %d has no Position", tr.label, n)
	}
	lastOp := map[string]int{}
	for ci, c := range b.Changes {
		key := c.Record.Key
		where := fmt.Sprintf("%s: batch %d (ReadTime %v), change %d (%s of %q)", tr.label, n, b.ReadTime, ci, c.Op, key)
		if _, ok := tr.w.byKey[key]; !ok {
			t.Errorf("%s: the suite never wrote that key", where)
			continue
		}
		if c.Record.Kind == "" || c.Record.Cursor != "" {
			t.Errorf("%s: kind %q and cursor %q; want a kind and no cursor", where, c.Record.Kind, c.Record.Cursor)
		}
		if c.CommitTime.IsZero() || c.CommitTime.After(b.ReadTime) {
			t.Errorf("%s: CommitTime %v is not set or after the batch's ReadTime", where, c.CommitTime)
		}
		idx := -1
		switch c.Op {
		case record.OpUpsert:
			idx = tr.upsert(where, c)
		case record.OpDelete:
			idx = tr.delete(where, c)
		default:
			t.Errorf("%s: unknown op %d", where, c.Op)
		}
		if idx < 0 {
			continue
		}
		switch {
		case idx <= index(tr.from, key):
			t.Errorf("%s is %v, committed at or before the position the stream started from (where %q was %s)", where, tr.w.writes[idx], key, tr.w.stateOf(index(tr.from, key)))
		case idx < index(tr.at, key):
			t.Errorf("%s is %v, out of commit order: %v was delivered before it", where, tr.w.writes[idx], tr.w.writes[tr.at[key]])
		default:
			tr.at[key] = idx
			tr.delivered[idx] = true
			if c.Op == record.OpUpsert {
				tr.latest[key] = c
			}
		}
		lastOp[key] = ci
	}
	for _, ci := range lastOp {
		if c := b.Changes[ci]; c.Op == record.OpDelete {
			c.CommitTime = b.ReadTime
			tr.deletes = append(tr.deletes, c)
		}
	}
	after := make(map[string]int, len(tr.at))
	for k, i := range tr.at {
		after[k] = i
	}
	tr.after = append(tr.after, after)
}

// upsert returns the index of the write c delivers, or -1 after reporting
// why it delivers none.
func (tr *tracker) upsert(where string, c record.Change) int {
	t := tr.t
	t.Helper()
	v, ok := c.Record.Fields[versionField]
	if !ok || v.Type() != record.TypeInt {
		t.Errorf("%s: the record has no version field %q (fields %v)", where, versionField, record.Map(c.Record.Fields))
		return -1
	}
	idx, ok := tr.w.byV[v.IntValue()]
	if !ok || tr.w.writes[idx].key != c.Record.Key {
		t.Errorf("%s: version %d was never put with that key", where, v.IntValue())
		return -1
	}
	for name, want := range tr.w.writes[idx].fields {
		if got, ok := c.Record.Fields[name]; !ok || !record.Equal(got, want) {
			t.Errorf("%s: field %q is %v, version %d put %v", where, name, got, v.IntValue(), want)
		}
	}
	if u := c.Record.UpdateTime; !u.IsZero() && !u.Equal(c.CommitTime) {
		t.Errorf("%s: CommitTime %v is not the record's UpdateTime %v", where, c.CommitTime, u)
	}
	tr.upserts = append(tr.upserts, c)
	return idx
}

// delete returns the index of the delete c delivers: the one that left the
// key absent when the stream's state already has it so (delivered again),
// else the key's next delete. (The suite deletes each key at most once
// after the start position, so a delete is never ambiguous.)
func (tr *tracker) delete(where string, c record.Change) int {
	t := tr.t
	t.Helper()
	if len(c.Record.Fields) != 0 || !c.Record.CreateTime.IsZero() || !c.Record.UpdateTime.IsZero() {
		t.Errorf("%s: a delete carries more than Kind and Key: %+v", where, c.Record)
	}
	cur := index(tr.at, c.Record.Key)
	if cur >= 0 && tr.w.writes[cur].del {
		return cur
	}
	for _, i := range tr.w.byKey[c.Record.Key] {
		if i > cur && tr.w.writes[i].del {
			return i
		}
	}
	t.Errorf("%s: the suite made no delete of that key after %s", where, tr.w.stateOf(cur))
	return -1
}

// caughtUp checks, at batch b consistent at or after the time the first n
// writes were done by, that the stream's state of every key is theirs and,
// unless the source coalesces, that every one of them after the start was
// delivered.
func (tr *tracker) caughtUp(b record.ChangeBatch, n int) {
	t := tr.t
	t.Helper()
	want := tr.w.last(n)
	for key, wi := range want {
		got := index(tr.at, key)
		if tr.w.present(got) != tr.w.present(wi) || (tr.w.present(wi) && got != wi) {
			t.Errorf("%s: after the batch at %v, %q is %s in the stream, but %s at the source", tr.label, b.ReadTime, key, tr.w.stateOf(got), tr.w.stateOf(wi))
		}
	}
	if tr.coalesces {
		return
	}
	for i := range n {
		if wr := tr.w.writes[i]; i > index(tr.from, wr.key) && !tr.delivered[i] {
			t.Errorf("%s: %v, committed after the position the stream started from, was never delivered (by the batch at %v)", tr.label, wr, b.ReadTime)
		}
	}
}

// index returns m[key], or -1 (no write) when key is not in m.
func index(m map[string]int, key string) int {
	if i, ok := m[key]; ok {
		return i
	}
	return -1
}

// scenario is a source written to before and after a start position and
// followed from it until the writes stopped.
type scenario struct {
	src  ChangeSource
	cs   extractors.ChangeStreamer
	w    *writer
	f    *follower
	tr   *tracker
	end  time.Time // the source's time after the last write
	from string
}

// runScenario writes, follows and checks the stream until it has caught
// up with every write; the stream is left running (sc.f).
func runScenario(t *testing.T, h ChangeHarness) *scenario {
	src, cs := changeSource(t, h)
	w := newWriter(t, src)
	k := src.Key
	// Before the start position: none of this may be delivered, not even
	// the delete of a record that never reappears.
	w.put(k(0), false)
	w.put(k(1), false)
	w.put(k(2), false)
	w.put(k(2), true)
	w.put(k(3), false)
	w.delete(k(3))
	w.put(k(4), false)
	start := w.now()
	from, err := cs.PositionAt(start)
	if err != nil {
		t.Fatalf("PositionAt(%v): %v", start, err)
	}
	tr := newTracker(t, w, "following from the start position", start, w.last(len(w.writes)), h.Coalesces)
	// After it but before Changes is called: an update that adds a field,
	// a delete, creates, two versions of one key in a row.
	w.put(k(0), true)
	w.delete(k(1))
	w.put(k(5), false)
	w.put(k(5), true)
	w.put(k(6), false)
	w.put(k(4), true)
	if src.Unhinted != nil {
		w.put(src.Unhinted(0), false)
	}
	caughtUp := w.now()
	f := follow(t, h, cs, from, src.Hints)
	tr.untilCaughtUp(f, caughtUp, len(w.writes))
	// While Changes runs: an update that removes a field, deletes, a
	// record created again after its delete, a collection not hinted.
	w.put(k(0), false)
	w.delete(k(5))
	w.put(k(1), false)
	w.put(k(2), false)
	w.put(k(7), false)
	w.delete(k(6))
	if src.Unhinted != nil {
		w.put(src.Unhinted(1), false)
		w.put(src.Unhinted(0), true)
	}
	tr.untilCaughtUp(f, w.now(), len(w.writes))
	// Several versions of one key in a row, and a record created and
	// deleted between two waits.
	w.put(k(7), true)
	w.put(k(7), false)
	w.put(k(7), true)
	w.delete(k(4))
	w.put(k(8), false)
	w.delete(k(8))
	end := w.now()
	tr.untilCaughtUp(f, end, len(w.writes))
	return &scenario{src: src, cs: cs, w: w, f: f, tr: tr, end: end, from: from}
}

// followChanges checks a stream followed from a start position: what it
// delivers (see runScenario and tracker), that it ends with ctx.Err(), and
// that its upserts are the records Read (and Get) deliver.
func followChanges(t *testing.T, h ChangeHarness) {
	sc := runScenario(t, h)
	if err := sc.f.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Changes returned %v when its context ended; want ctx.Err()", err)
	}
	if t.Failed() {
		return
	}
	read := readSource(t, sc.src.Extractor)
	for key := range sc.w.byKey {
		got, ok := read[key]
		final := index(sc.tr.at, key)
		switch {
		case !sc.w.present(final) && ok:
			t.Errorf("%q: the stream's last change deletes it, but Read delivers it", key)
		case sc.w.present(final) && !ok:
			t.Errorf("%q: the stream's last change is an upsert, but Read does not deliver it", key)
		case ok:
			if d := recordDiff(sc.tr.latest[key].Record, got); d != "" {
				t.Errorf("%q: the stream's last upsert differs from what Read delivers: %s", key, d)
			}
		}
	}
	g, ok := sc.src.Extractor.(extractors.Getter)
	if !ok {
		return
	}
	for _, c := range sc.tr.upserts {
		got := getOne(t, g, c.Record.Key, c.CommitTime)
		if got == nil {
			t.Errorf("%q: Get at the commit time %v of an upsert finds no record", c.Record.Key, c.CommitTime)
		} else if d := recordDiff(c.Record, *got); d != "" {
			t.Errorf("%q: the upsert committed at %v differs from what Get delivers at its commit time: %s", c.Record.Key, c.CommitTime, d)
		}
	}
	for _, c := range sc.tr.deletes {
		if got := getOne(t, g, c.Record.Key, c.CommitTime); got != nil {
			t.Errorf("%q: deleted by the batch at %v, but Get at that time delivers it", c.Record.Key, c.CommitTime)
		}
	}
}

// readSource reads the whole source at a fresh snapshot, by key.
func readSource(t *testing.T, ex extractors.Extractor) map[string]record.Record {
	t.Helper()
	_, streams, err := extractors.PlanSnapshot(context.Background(), ex, 1)
	if err != nil {
		t.Fatalf("planning a read of the source: %v", err)
	}
	out := map[string]record.Record{}
	for _, st := range streams {
		for _, p := range st.Partitions {
			for _, r := range readAll(t, ex, p, st.ReadTime, "") {
				out[r.Key] = r
			}
		}
	}
	return out
}

// getOne gets key at readTime.
func getOne(t *testing.T, g extractors.Getter, key string, readTime time.Time) *record.Record {
	t.Helper()
	var got *record.Record
	calls := 0
	err := g.Get(context.Background(), []string{key}, readTime, func(k string, r *record.Record) error {
		calls++
		if k != key {
			t.Errorf("Get(%q) emitted key %q", key, k)
		}
		got = r
		return nil
	})
	if err != nil {
		t.Fatalf("Get(%q at %v): %v", key, readTime, err)
	}
	if calls != 1 {
		t.Errorf("Get(%q) called emit %d times; want once", key, calls)
	}
	return got
}

// recordDiff says how a record delivered by a change differs from the
// same record delivered by Read or Get ("" when they are the same): kind,
// key, fields and times (not the cursor).
func recordDiff(change, read record.Record) string {
	switch {
	case change.Kind != read.Kind || change.Key != read.Key:
		return fmt.Sprintf("%s %q, not %s %q", change.Kind, change.Key, read.Kind, read.Key)
	case !record.Equal(record.Map(change.Fields), record.Map(read.Fields)):
		return fmt.Sprintf("fields\n got  %v\n want %v", record.Map(change.Fields), record.Map(read.Fields))
	case !change.CreateTime.Equal(read.CreateTime) || !change.UpdateTime.Equal(read.UpdateTime):
		return fmt.Sprintf("times %v/%v, not %v/%v", change.CreateTime, change.UpdateTime, read.CreateTime, read.UpdateTime)
	}
	return ""
}

// maxResumes bounds the positions resumeChanges starts from.
const maxResumes = 12

// resumeChanges follows the scenario's stream again from batches'
// Positions (every batch, or maxResumes spread over them, the first and
// the last included), each until it has caught up with every write.
func resumeChanges(t *testing.T, h ChangeHarness) {
	sc := runScenario(t, h)
	sc.f.stop()
	if t.Failed() {
		return
	}
	n := len(sc.tr.batches)
	picks := map[int]bool{}
	for j := range min(n, maxResumes) {
		picks[j*(n-1)/max(min(n, maxResumes)-1, 1)] = true
	}
	for i, b := range sc.tr.batches {
		if !picks[i] {
			continue
		}
		label := fmt.Sprintf("resumed from the Position of batch %d (ReadTime %v)", i, b.ReadTime)
		f := follow(t, h, sc.cs, b.Position, sc.src.Hints)
		tr := newTracker(t, sc.w, label, b.ReadTime, sc.tr.after[i], h.Coalesces)
		tr.untilCaughtUp(f, sc.end, len(sc.w.writes))
		if err := f.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Changes returned %v when its context ended; want ctx.Err()", label, err)
		}
	}
}

// bounded runs fn and returns its error, failing the test when it does not
// return within wait.
func bounded(t *testing.T, wait time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, wait)
	}
	panic("unreachable")
}

// changesEndWithContext: Changes returns ctx.Err() when called with an
// ended context, and when the context ends while it waits for changes.
func changesEndWithContext(t *testing.T, h ChangeHarness) {
	src, cs := changeSource(t, h)
	w := newWriter(t, src)
	w.put(src.Key(0), false)
	start := w.now()
	from, err := cs.PositionAt(start)
	if err != nil {
		t.Fatalf("PositionAt: %v", err)
	}
	w.put(src.Key(1), false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = bounded(t, h.Wait, "Changes with an ended context", func() error {
		return cs.Changes(ctx, from, src.Hints, func(record.ChangeBatch) error { return nil })
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Changes with an ended context returned %v; want ctx.Err()", err)
	}
	f := follow(t, h, cs, from, src.Hints)
	newTracker(t, w, "following", start, w.last(1), h.Coalesces).untilCaughtUp(f, w.now(), len(w.writes))
	if err := f.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Changes returned %v when its context ended while it waited; want ctx.Err()", err)
	}
}

// changesCallerError: an error from emit ends Changes and comes back
// unchanged, not classified retryable, after one call.
func changesCallerError(t *testing.T, h ChangeHarness) {
	src, cs := changeSource(t, h)
	w := newWriter(t, src)
	w.put(src.Key(0), false)
	from, err := cs.PositionAt(w.now())
	if err != nil {
		t.Fatalf("PositionAt: %v", err)
	}
	w.put(src.Key(1), false)
	w.put(src.Key(0), true)
	calls := 0
	err = bounded(t, h.Wait, "Changes with an emit that fails", func() error {
		return cs.Changes(context.Background(), from, src.Hints, func(record.ChangeBatch) error {
			calls++
			return errCaller
		})
	})
	if !errors.Is(err, errCaller) || calls != 1 {
		t.Fatalf("emit's error: Changes returned %v after %d calls; want the error itself after 1 call", err, calls)
	}
	if retry.IsRetryable(err) {
		t.Fatalf("emit's error came back classified retryable: %v", err)
	}
}

// expiredPosition: a position older than the window fails with
// extractors.ErrSnapshotExpired.
func expiredPosition(t *testing.T, h ChangeHarness) {
	src, cs := changeSource(t, h)
	w := newWriter(t, src)
	w.put(src.Key(0), false)
	old := w.now().Add(-h.Window - time.Second)
	from, err := cs.PositionAt(old)
	if err != nil {
		t.Fatalf("PositionAt(%v): %v", old, err)
	}
	calls := 0
	err = bounded(t, h.Wait, "Changes from an expired position", func() error {
		return cs.Changes(context.Background(), from, src.Hints, func(record.ChangeBatch) error {
			calls++
			return errCaller
		})
	})
	if !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Errorf("Changes from a position %v older than the window returned %v after %d batches; want extractors.ErrSnapshotExpired", h.Window, err, calls)
	}
}

// getByKey: Get emits each key in the order given, with the record Read
// delivers or nil, at the read time given (past versions included), and
// returns emit's error unchanged.
func getByKey(t *testing.T, h ChangeHarness) {
	src, _ := changeSource(t, h)
	g, ok := src.Extractor.(extractors.Getter)
	if !ok {
		t.Skip("not an extractors.Getter")
	}
	w := newWriter(t, src)
	k := src.Key
	w.put(k(0), false)
	w.put(k(1), false)
	before := w.now()
	w.put(k(0), true)
	w.delete(k(1))
	w.put(k(2), false)
	after := w.now()
	keys := []string{k(2), k(1), k(3), k(0)} // k(3) never written
	get := func(at time.Time) map[string]*record.Record {
		t.Helper()
		var order []string
		got := map[string]*record.Record{}
		if err := g.Get(context.Background(), keys, at, func(key string, r *record.Record) error {
			order = append(order, key)
			got[key] = r
			return nil
		}); err != nil {
			t.Fatalf("Get at %v: %v", at, err)
		}
		if fmt.Sprint(order) != fmt.Sprint(keys) {
			t.Fatalf("Get at %v emitted %q; want each of %q once, in that order", at, order, keys)
		}
		return got
	}
	read := readSource(t, src.Extractor)
	for _, at := range []time.Time{after, {}} {
		got := get(at)
		for _, key := range keys {
			want, ok := read[key]
			switch {
			case !ok && got[key] != nil:
				t.Errorf("Get at %v: %q has a record, Read delivers none", at, key)
			case ok && got[key] == nil:
				t.Errorf("Get at %v: %q has no record, Read delivers one", at, key)
			case ok:
				want.Cursor = ""
				if d := recordDiff(*got[key], want); d != "" {
					t.Errorf("Get at %v: %q differs from what Read delivers: %s", at, key, d)
				}
			}
		}
	}
	past := get(before)
	for key, wantV := range map[string]int64{k(0): 1, k(1): 2, k(2): 0, k(3): 0} {
		r := past[key]
		switch {
		case wantV == 0 && r != nil:
			t.Errorf("Get at %v: %q has a record; it had none then", before, key)
		case wantV != 0 && r == nil:
			t.Errorf("Get at %v: %q has no record; it had version %d then", before, key, wantV)
		case wantV != 0 && !record.Equal(r.Fields[versionField], record.Int(wantV)):
			t.Errorf("Get at %v: %q is version %v; it was version %d then", before, key, r.Fields[versionField], wantV)
		}
	}
	calls := 0
	err := g.Get(context.Background(), keys, after, func(string, *record.Record) error {
		calls++
		return errCaller
	})
	if !errors.Is(err, errCaller) || calls != 1 {
		t.Errorf("emit's error: Get returned %v after %d calls; want the error itself after 1 call", err, calls)
	}
}
