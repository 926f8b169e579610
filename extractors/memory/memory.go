// Package memory is an extractor over records held in memory, for tests and
// examples: engine tests run migrations from it instead of an emulator, and
// it shows the smallest complete extractor.
//
// Records are given in Go, grouped into streams. Each stream is ordered by
// key in the source's key order (Options.Order, record.ByteOrder by
// default) the way plan and verify read the target (extractors.KeyOrderer):
// documents path segment by path segment, the shorter path first when one
// is a prefix of the other ("users/a/orders/x" before "users/a-b"), users
// by their whole key; files always in the byte order of their names. Each stream is split into partitions by
// key ranges; a record's cursor is its key, so reading after a cursor
// resumes exactly.
// The extractor also offers the optional abilities the engine uses:
// Snapshotter (over a fake Clock the test controls), Counter, ReadMeter,
// KeyOrderer, ChangeStreamer and Getter.
//
// The records given to New are there at every read time. Put and Delete
// change the source afterwards, each as a change committed at the next
// microsecond of the Clock: reads at a read time see the records as they
// were then, Get reads single records at a read time, and Changes follows
// the log of changes from a position (a time), as sync does
// (extractortest.ChangeStream is its contract).
//
// The package does not register itself in the extractors registry: tests
// build an Extractor with New and hand it to the engine directly.
package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// DefaultWindow is how long a snapshot read time stays readable when
// Options.Window is zero: one hour, as Firestore keeps.
const DefaultWindow = time.Hour

// Epoch is where a Clock made by New starts: a fixed instant, so runs of a
// test plan the same read times.
var Epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a fake clock for snapshot read times and commit times. It moves
// only when told (Advance) and when an extractor using it commits a change
// (one microsecond per change). It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	moved chan struct{} // closed and replaced whenever the clock moves
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.wake()
}

// tick moves the clock one microsecond forward and returns the new time to
// the microsecond: a commit time after every time the clock showed before.
func (c *Clock) tick() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	c.wake()
	return c.now.Truncate(time.Microsecond)
}

// wake tells the waiters that the clock moved; c.mu is held.
func (c *Clock) wake() {
	if c.moved != nil {
		close(c.moved)
		c.moved = nil
	}
}

// watch returns the clock's time and a channel closed when it next moves.
func (c *Clock) watch() (time.Time, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moved == nil {
		c.moved = make(chan struct{})
	}
	return c.now, c.moved
}

// Options configure an in-memory source.
type Options struct {
	// Name identifies the source: Source returns "memory:" + Name. Runs
	// over extractors with the same name and kind resume each other.
	Name string
	// StreamOf names the stream a record belongs to. Nil puts a document
	// in the stream named after its root collection (the first
	// "/"-separated segment of its key), as plan and verify expect
	// (diff.Documents.StreamTables), and every other record in one stream
	// per kind, named after it ("users", "files"): the users and files
	// comparisons merge all of a kind's records with its one table. (A
	// source holding users and a root collection named "users" needs a
	// StreamOf.)
	StreamOf func(record.Record) string
	// Clock gives snapshot times and the commit times of Put and Delete;
	// nil makes a fresh clock at Epoch.
	Clock *Clock
	// Window is how long a read time stays readable (DefaultWindow when
	// zero): a Read at an older read time fails with
	// extractors.ErrSnapshotExpired.
	Window time.Duration
	// Order is the order of keys the source delivers (KeyOrder), applied
	// to each path segment of a document's key and to the whole uid of a
	// user; nil means record.ByteOrder. Files always come in the byte
	// order of their names.
	Order record.KeyOrder
}

// Extractor reads records held in memory. It is safe for concurrent use.
// The records given to New exist at every read time; Put and Delete change
// them later, each as a change committed at a time of the Clock, and reads
// at a read time see the records as they were then (the zero read time:
// the latest).
type Extractor struct {
	name     string
	clock    *Clock
	window   time.Duration
	order    record.KeyOrder
	streamOf func(record.Record) string
	reads    atomic.Int64
	closed   atomic.Bool
	done     chan struct{} // closed by Close
	once     sync.Once

	mu         sync.RWMutex
	base       *view                    // the records given to New
	log        []entry                  // changes, in commit order
	latest     map[string]record.Record // the records after the whole log
	streamKind map[string]record.Kind   // the kind of every stream there ever was
	views      map[int]*view            // views[n]: the records after log[:n]
}

// entry is one change in the log.
type entry struct {
	commit time.Time
	op     record.Op
	rec    record.Record // whole for an upsert; Kind and Key for a delete
}

// view is the source's records at one point of the log, by stream.
type view struct {
	streams []*stream // by name
	byName  map[string]*stream
	byKey   map[string]record.Record
}

// stream is one stream's records, sorted by cmp.
type stream struct {
	name string
	kind record.Kind
	cmp  func(a, b string) int
	keys []string
	recs []record.Record
}

var (
	_ extractors.Extractor      = (*Extractor)(nil)
	_ extractors.Snapshotter    = (*Extractor)(nil)
	_ extractors.Counter        = (*Extractor)(nil)
	_ extractors.ReadMeter      = (*Extractor)(nil)
	_ extractors.KeyOrderer     = (*Extractor)(nil)
	_ extractors.ChangeStreamer = (*Extractor)(nil)
	_ extractors.Getter         = (*Extractor)(nil)
)

// New returns an extractor over recs. Every record needs a kind and a
// non-empty key; keys are unique across the source, and the records of a
// stream are of one kind. Records are kept as given (their Cursor is set
// when read) and must not be changed afterwards.
func New(recs []record.Record, opts Options) (*Extractor, error) {
	if opts.StreamOf == nil {
		opts.StreamOf = rootSegment
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(Epoch)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Order == nil {
		opts.Order = record.ByteOrder
	}
	e := &Extractor{
		name: opts.Name, clock: opts.Clock, window: opts.Window, order: opts.Order, streamOf: opts.StreamOf,
		done: make(chan struct{}), latest: make(map[string]record.Record, len(recs)), streamKind: map[string]record.Kind{},
	}
	for i, r := range recs {
		if r.Key == "" || r.Kind == "" {
			return nil, fmt.Errorf("memory source %q: record %d has no key or no kind", opts.Name, i)
		}
		if _, dup := e.latest[r.Key]; dup {
			return nil, fmt.Errorf("memory source %q: key %q given twice", opts.Name, r.Key)
		}
		e.latest[r.Key] = r
		name := opts.StreamOf(r)
		if k, ok := e.streamKind[name]; ok && k != r.Kind {
			return nil, fmt.Errorf("memory source %q: stream %q holds %ss and %ss (record %q)", opts.Name, name, k, r.Kind, r.Key)
		}
		e.streamKind[name] = r.Kind
	}
	e.base = e.newView(recs)
	e.views = map[int]*view{0: e.base}
	return e, nil
}

// newView groups recs (of unique keys, each stream of one kind) into
// streams sorted by name, each sorted by its order.
func (e *Extractor) newView(recs []record.Record) *view {
	v := &view{byName: map[string]*stream{}, byKey: make(map[string]record.Record, len(recs))}
	for _, r := range recs {
		v.byKey[r.Key] = r
		name := e.streamOf(r)
		st := v.byName[name]
		if st == nil {
			st = &stream{name: name, kind: r.Kind, cmp: keyCompare(r.Kind, e.order)}
			v.byName[name] = st
			v.streams = append(v.streams, st)
		}
		st.recs = append(st.recs, r)
	}
	sort.Slice(v.streams, func(i, j int) bool { return v.streams[i].name < v.streams[j].name })
	for _, st := range v.streams {
		slices.SortFunc(st.recs, func(a, b record.Record) int { return st.cmp(a.Key, b.Key) })
		st.keys = make([]string, len(st.recs))
		for i, r := range st.recs {
			st.keys[i] = r.Key
		}
	}
	return v
}

// maxViews bounds the views kept for reads at past times.
const maxViews = 16

// viewAt returns the records as they were at readTime (zero: the latest).
func (e *Extractor) viewAt(readTime time.Time) *view {
	e.mu.RLock()
	n := len(e.log)
	if !readTime.IsZero() {
		n = sort.Search(len(e.log), func(i int) bool { return e.log[i].commit.After(readTime) })
	}
	v := e.views[n]
	e.mu.RUnlock()
	if v != nil {
		return v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.views[n]; v != nil {
		return v
	}
	byKey := maps.Clone(e.base.byKey)
	for _, c := range e.log[:n] {
		if c.op == record.OpDelete {
			delete(byKey, c.rec.Key)
		} else {
			byKey[c.rec.Key] = c.rec
		}
	}
	recs := slices.Collect(maps.Values(byKey))
	v = e.newView(recs)
	if len(e.views) >= maxViews {
		e.views = map[int]*view{0: e.base}
	}
	e.views[n] = v
	return v
}

// keyCompare orders the keys of records of kind by order: documents path
// segment by path segment (the order diff.Documents.CompareKeys merges
// with and postgres reads tables in: each ID by order, then the shorter
// path first), users by the whole key, and files by the bytes of their
// names whatever order is (an object store's listing order, which the
// files comparison merges in).
func keyCompare(kind record.Kind, order record.KeyOrder) func(a, b string) int {
	switch kind {
	case record.KindFile:
		return record.ByteOrder.Compare
	case record.KindUser:
		return order.Compare
	}
	return func(a, b string) int {
		return slices.CompareFunc(strings.Split(a, "/"), strings.Split(b, "/"), order.Compare)
	}
}

// rootSegment is the default StreamOf.
func rootSegment(r record.Record) string {
	if r.Kind != record.KindDocument {
		return string(r.Kind) + "s"
	}
	s, _, _ := strings.Cut(r.Key, "/")
	return s
}

// Source returns "memory:" and the source's name.
func (e *Extractor) Source() string { return "memory:" + e.name }

// Plan returns the streams that hold records at readTime (zero: now),
// sorted by name, each split into at most partitions contiguous key ranges
// of nearly equal size. readTime is not checked against the window.
func (e *Extractor) Plan(ctx context.Context, partitions int, readTime time.Time) ([]extractors.Stream, error) {
	if err := e.usable(ctx); err != nil {
		return nil, err
	}
	partitions = max(partitions, 1)
	v := e.viewAt(readTime)
	out := make([]extractors.Stream, 0, len(v.streams))
	for _, st := range v.streams {
		n := min(partitions, max(len(st.keys), 1))
		s := extractors.Stream{Name: st.name, Kind: st.kind, ReadTime: readTime}
		for i := range n {
			p := extractors.Partition{Stream: st.name, ID: strconv.Itoa(i)}
			if i > 0 {
				p.Start = st.keys[i*len(st.keys)/n]
			}
			if i < n-1 {
				p.End = st.keys[(i+1)*len(st.keys)/n]
			}
			s.Partitions = append(s.Partitions, p)
		}
		out = append(out, s)
	}
	return out, nil
}

// Read emits the records of p as they were at readTime (zero: the latest)
// after the cursor after, in the stream's order (see the package
// comment). Each
// record emitted counts as one billable read. An error from emit is
// returned unchanged. When readTime is older than the window before any
// record (the clock may move during the read), Read fails
// with extractors.ErrSnapshotExpired; the caller continues from the last
// cursor it got at a new read time.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, readTime time.Time, after string, emit func(record.Record) error) error {
	if err := e.usable(ctx); err != nil {
		return err
	}
	st := e.viewAt(readTime).byName[p.Stream]
	if st == nil {
		if _, ok := e.kindOf(p.Stream); !ok {
			return fmt.Errorf("reading partition %s of %s: no stream %q", p.ID, e.Source(), p.Stream)
		}
		return nil // every record of the stream was deleted by readTime
	}
	lo, hi := st.bounds(p)
	if after != "" {
		lo = max(lo, st.upperBound(after))
	}
	for i := lo; i < hi; i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading partition %s/%s of %s: %w", p.Stream, p.ID, e.Source(), err)
		}
		// A read time can expire in the middle of a read, as a
		// Firestore query's does between two pages.
		if err := e.readable(readTime); err != nil {
			return fmt.Errorf("reading partition %s/%s of %s: %w", p.Stream, p.ID, e.Source(), err)
		}
		r := st.recs[i]
		r.Cursor = r.Key
		e.reads.Add(1)
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// bounds returns the index range of st's records inside p.
func (st *stream) bounds(p extractors.Partition) (lo, hi int) {
	lo, hi = 0, len(st.keys)
	if p.Start != "" {
		lo, _ = slices.BinarySearchFunc(st.keys, p.Start, st.cmp)
	}
	if p.End != "" {
		hi, _ = slices.BinarySearchFunc(st.keys, p.End, st.cmp)
	}
	return lo, max(lo, hi)
}

// upperBound is the index of the first key after k.
func (st *stream) upperBound(k string) int {
	i, found := slices.BinarySearchFunc(st.keys, k, st.cmp)
	if found {
		i++
	}
	return i
}

// usable fails when ctx ended or the extractor was closed.
func (e *Extractor) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.closed.Load() {
		return fmt.Errorf("%s is closed", e.Source())
	}
	return nil
}

// readable fails with ErrSnapshotExpired when readTime left the window.
func (e *Extractor) readable(readTime time.Time) error {
	if readTime.IsZero() {
		return nil
	}
	if oldest := e.clock.Now().Add(-e.window); readTime.Before(oldest) {
		return fmt.Errorf("read time %s is before %s: %w", readTime.Format(time.RFC3339Nano), oldest.Format(time.RFC3339Nano), extractors.ErrSnapshotExpired)
	}
	return nil
}

// SnapshotTime returns the clock's time, to the microsecond (what
// PostgreSQL keeps of a read time).
func (e *Extractor) SnapshotTime(ctx context.Context) (time.Time, error) {
	if err := e.usable(ctx); err != nil {
		return time.Time{}, err
	}
	return e.clock.Now().Truncate(time.Microsecond), nil
}

// SnapshotWindow is Options.Window.
func (e *Extractor) SnapshotWindow() time.Duration { return e.window }

// Count returns the number of records in s's partitions at s.ReadTime.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	if err := e.usable(ctx); err != nil {
		return 0, err
	}
	st := e.viewAt(s.ReadTime).byName[s.Name]
	if st == nil {
		return 0, fmt.Errorf("counting stream %q of %s: no such stream", s.Name, e.Source())
	}
	var n int64
	for _, p := range s.Partitions {
		lo, hi := st.bounds(p)
		n += int64(hi - lo)
	}
	return n, nil
}

// BillableReads is the number of records emitted so far.
func (e *Extractor) BillableReads() int64 { return e.reads.Load() }

// KeyOrder is Options.Order (record.ByteOrder by default): partitions
// deliver documents in it path segment by path segment and users by
// whole key (files in byte order), and the partitions of a stream follow
// each other in it.
func (e *Extractor) KeyOrder() record.KeyOrder { return e.order }

// Close makes later calls fail and ends Changes. It is idempotent.
func (e *Extractor) Close() error {
	e.closed.Store(true)
	e.once.Do(func() { close(e.done) })
	return nil
}

// kindOf returns the kind of the stream named name, if there ever was one.
func (e *Extractor) kindOf(name string) (record.Kind, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	k, ok := e.streamKind[name]
	return k, ok
}

// Put creates or replaces the record with rec's key, as a change committed
// at a new time of the clock (which it advances by one microsecond), and
// returns that time. The record stored is rec's Kind, Key and a copy of its
// Fields; its UpdateTime is the commit time, its CreateTime that of the
// change that created it (this one, unless it replaces a record). A key
// keeps its kind, and a stream its records' kind, for the life of the
// source.
func (e *Extractor) Put(rec record.Record) (time.Time, error) {
	if rec.Key == "" || rec.Kind == "" {
		return time.Time{}, fmt.Errorf("putting a record into %s: no key or no kind", e.Source())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return time.Time{}, fmt.Errorf("putting %q into %s: the extractor is closed", rec.Key, e.Source())
	}
	old, exists := e.latest[rec.Key]
	if exists && old.Kind != rec.Kind {
		return time.Time{}, fmt.Errorf("putting %q into %s: it is a %s, not a %s", rec.Key, e.Source(), old.Kind, rec.Kind)
	}
	name := e.streamOf(rec)
	if k, ok := e.streamKind[name]; ok && k != rec.Kind {
		return time.Time{}, fmt.Errorf("putting %q into %s: stream %q holds %ss, not %ss", rec.Key, e.Source(), name, k, rec.Kind)
	}
	commit := e.clock.tick()
	stored := record.Record{Kind: rec.Kind, Key: rec.Key, Fields: maps.Clone(rec.Fields), CreateTime: commit, UpdateTime: commit}
	if exists {
		stored.CreateTime = old.CreateTime
	}
	e.streamKind[name] = rec.Kind
	e.latest[rec.Key] = stored
	e.log = append(e.log, entry{commit: commit, op: record.OpUpsert, rec: stored})
	return commit, nil
}

// Delete deletes the record with key, as a change committed at a new time
// of the clock (see Put), and returns that time. It fails when no record
// has key.
func (e *Extractor) Delete(key string) (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return time.Time{}, fmt.Errorf("deleting %q from %s: the extractor is closed", key, e.Source())
	}
	old, exists := e.latest[key]
	if !exists {
		return time.Time{}, fmt.Errorf("deleting %q from %s: no record has that key", key, e.Source())
	}
	commit := e.clock.tick()
	delete(e.latest, key)
	e.log = append(e.log, entry{commit: commit, op: record.OpDelete, rec: record.Record{Kind: old.Kind, Key: key}})
	return commit, nil
}

// PositionAt returns the position from which Changes delivers the changes
// committed after t: t itself, written in RFC 3339 with nanoseconds.
func (e *Extractor) PositionAt(t time.Time) (string, error) {
	if t.IsZero() {
		return "", errors.New("taking a change stream position of a memory source: no time given")
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// Changes follows the change log from position from (see
// extractors.ChangeStreamer; hints are not needed and ignored). It first
// delivers a batch consistent at the clock's time holding every change
// committed after from up to then (none, when the clock has not moved
// since), then one batch each time the clock moves (a change committed, or
// Advance): the changes committed since the last batch, or none (a
// heartbeat). A batch's ReadTime is the clock's time to the microsecond
// and its Position that time; every change delivered counts as one
// billable read (as a Firestore listener's documents do). It returns
// extractors.ErrSnapshotExpired (wrapped) when from is older than the
// window, ctx.Err() when ctx ends, an error when the extractor is closed,
// and an error from emit unchanged.
func (e *Extractor) Changes(ctx context.Context, from string, hints extractors.ChangeHints, emit func(record.ChangeBatch) error) error {
	if err := e.usable(ctx); err != nil {
		return err
	}
	pos, err := time.Parse(time.RFC3339Nano, from)
	if err != nil {
		return fmt.Errorf("following the changes of %s: position %q is not one of a memory source", e.Source(), from)
	}
	if err := e.readable(pos); err != nil {
		return fmt.Errorf("following the changes of %s from %s: %w", e.Source(), from, err)
	}
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The clock and the log are read together: a change is committed
		// (its time taken and logged) under e.mu, so every change
		// committed up to now is in the log.
		e.mu.RLock()
		now, moved := e.clock.watch()
		now = now.Truncate(time.Microsecond)
		lo := sort.Search(len(e.log), func(i int) bool { return e.log[i].commit.After(pos) })
		hi := sort.Search(len(e.log), func(i int) bool { return e.log[i].commit.After(now) })
		var changes []record.Change
		for _, c := range e.log[lo:max(lo, hi)] {
			changes = append(changes, record.Change{Op: c.op, Record: c.rec, CommitTime: c.commit})
		}
		e.mu.RUnlock()
		if !now.Before(pos) && (first || len(changes) > 0 || now.After(pos)) {
			e.reads.Add(int64(len(changes)))
			if err := emit(record.ChangeBatch{Changes: changes, ReadTime: now, Position: now.Format(time.RFC3339Nano)}); err != nil {
				return err
			}
			first, pos = false, now
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.done:
			return fmt.Errorf("following the changes of %s: the extractor was closed", e.Source())
		case <-moved:
		}
	}
}

// Get calls emit with the record of each key as it was at readTime (zero:
// now), in the order given, or with nil when no record had that key then.
// Every key looked up counts as one billable read. It returns
// extractors.ErrSnapshotExpired (wrapped) when readTime is older than the
// window, and an error from emit unchanged.
func (e *Extractor) Get(ctx context.Context, keys []string, readTime time.Time, emit func(key string, rec *record.Record) error) error {
	if err := e.usable(ctx); err != nil {
		return err
	}
	if err := e.readable(readTime); err != nil {
		return fmt.Errorf("getting %d records of %s: %w", len(keys), e.Source(), err)
	}
	v := e.viewAt(readTime)
	for _, k := range keys {
		e.reads.Add(1)
		var rec *record.Record
		if r, ok := v.byKey[k]; ok {
			rec = &r
		}
		if err := emit(k, rec); err != nil {
			return err
		}
	}
	return nil
}
