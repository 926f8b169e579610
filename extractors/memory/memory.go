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
// Snapshotter (over a fake Clock the test controls), Counter, ReadMeter and
// KeyOrderer.
//
// The package does not register itself in the extractors registry: tests
// build an Extractor with New and hand it to the engine directly.
package memory

import (
	"context"
	"fmt"
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

// Clock is a fake clock for snapshot read times. It moves only when told.
// It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
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
	// Clock gives snapshot times; nil makes a fresh clock at Epoch.
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
// The records never change: a read at any read time within the window
// returns them all.
type Extractor struct {
	name    string
	clock   *Clock
	window  time.Duration
	order   record.KeyOrder
	streams []*stream // by name
	byName  map[string]*stream
	reads   atomic.Int64
	closed  atomic.Bool
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
	_ extractors.Extractor   = (*Extractor)(nil)
	_ extractors.Snapshotter = (*Extractor)(nil)
	_ extractors.Counter     = (*Extractor)(nil)
	_ extractors.ReadMeter   = (*Extractor)(nil)
	_ extractors.KeyOrderer  = (*Extractor)(nil)
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
	e := &Extractor{name: opts.Name, clock: opts.Clock, window: opts.Window, order: opts.Order, byName: map[string]*stream{}}
	seen := make(map[string]bool, len(recs))
	for i, r := range recs {
		if r.Key == "" || r.Kind == "" {
			return nil, fmt.Errorf("memory source %q: record %d has no key or no kind", opts.Name, i)
		}
		if seen[r.Key] {
			return nil, fmt.Errorf("memory source %q: key %q given twice", opts.Name, r.Key)
		}
		seen[r.Key] = true
		name := opts.StreamOf(r)
		st := e.byName[name]
		if st == nil {
			st = &stream{name: name, kind: r.Kind, cmp: keyCompare(r.Kind, opts.Order)}
			e.byName[name] = st
			e.streams = append(e.streams, st)
		}
		if st.kind != r.Kind {
			return nil, fmt.Errorf("memory source %q: stream %q holds %ss and %ss (record %q)", opts.Name, name, st.kind, r.Kind, r.Key)
		}
		st.recs = append(st.recs, r)
	}
	sort.Slice(e.streams, func(i, j int) bool { return e.streams[i].name < e.streams[j].name })
	for _, st := range e.streams {
		slices.SortFunc(st.recs, func(a, b record.Record) int { return st.cmp(a.Key, b.Key) })
		st.keys = make([]string, len(st.recs))
		for i, r := range st.recs {
			st.keys[i] = r.Key
		}
	}
	return e, nil
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

// Plan returns the streams, sorted by name, each split into at most
// partitions contiguous key ranges of nearly equal size (one for an empty
// stream). readTime is not checked: the records do not change.
func (e *Extractor) Plan(ctx context.Context, partitions int, readTime time.Time) ([]extractors.Stream, error) {
	if err := e.usable(ctx); err != nil {
		return nil, err
	}
	partitions = max(partitions, 1)
	out := make([]extractors.Stream, 0, len(e.streams))
	for _, st := range e.streams {
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

// Read emits the records of p after the cursor after, in the stream's
// order (see the package comment). Each
// record emitted counts as one billable read. An error from emit is
// returned unchanged. When readTime is older than the window before any
// record (the clock may move during the read), Read fails
// with extractors.ErrSnapshotExpired; the caller continues from the last
// cursor it got at a new read time.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, readTime time.Time, after string, emit func(record.Record) error) error {
	if err := e.usable(ctx); err != nil {
		return err
	}
	st := e.byName[p.Stream]
	if st == nil {
		return fmt.Errorf("reading partition %s of %s: no stream %q", p.ID, e.Source(), p.Stream)
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

// Count returns the number of records in s's partitions.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	if err := e.usable(ctx); err != nil {
		return 0, err
	}
	st := e.byName[s.Name]
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

// Close makes later calls fail. It is idempotent.
func (e *Extractor) Close() error {
	e.closed.Store(true)
	return nil
}
