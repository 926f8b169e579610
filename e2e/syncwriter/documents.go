// Package syncwriter makes continuous, seeded, rate-limited random changes
// to a live source — Firestore documents through the official client,
// Firebase Auth users through the Admin SDK, Cloud Storage objects through
// the storage client — while `baasmigrate sync` follows it, for the
// end-to-end tests and the sync benchmark.
//
// Each writer keeps a model of what it believes the source holds (its
// "truth"), which a test can check against the source; but the tests compare
// the target with the source as it really is at the end, read with the
// official clients, never with the model alone.
package syncwriter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
)

// Op names one kind of change the document writer makes.
type Op string

// The changes the document writer makes.
const (
	OpUpdate        Op = "update"         // Update of a few fields (some nested) of a live document
	OpOverwrite     Op = "overwrite"      // Set replacing a live document whole
	OpFieldDelete   Op = "field-delete"   // Update deleting one field of a live document
	OpAdd           Op = "add"            // a new document in an existing collection (root or subcollection)
	OpNewCollection Op = "new-collection" // a document in a brand-new root collection
	OpNewSubcoll    Op = "new-subcoll"    // a document written with a child in a brand-new subcollection, in one batch
	OpDeleteLeaf    Op = "delete-leaf"    // delete of a live document without live descendants
	OpDeleteParent  Op = "delete-parent"  // delete of a live document whose descendants stay
	OpRecreate      Op = "recreate"       // a deleted document written again
)

// defaultWeights is the mix of changes: mostly updates and adds, a steady
// share of deletes, a few brand-new collections.
var defaultWeights = map[Op]int{
	OpUpdate: 30, OpOverwrite: 8, OpFieldDelete: 10, OpAdd: 22, OpNewCollection: 2,
	OpNewSubcoll: 4, OpDeleteLeaf: 12, OpDeleteParent: 5, OpRecreate: 4,
}

// Options configure a document Writer.
type Options struct {
	// Seed makes the sequence of changes reproducible (for the same
	// starting data and the same sequence of calls).
	Seed uint64
	// Rate is the pace in document writes per second; 0 means as fast as
	// the emulator commits.
	Rate float64
	// MaxBatch is the most writes in one commit (each commit has 1 to
	// MaxBatch writes); default 4.
	MaxBatch int
	// NewCollections bounds how many brand-new collection IDs (root
	// collections and subcollections) the writer creates; default 6; a
	// negative value means none.
	NewCollections int
	// Weights overrides the mix of changes (relative weights; an Op left
	// out or 0 is never chosen). Nil: a mix of every Op.
	Weights map[Op]int
	// Prefix starts every collection ID the writer invents (default "sw").
	Prefix string
	// OnCommit, when set, is called after every successful commit with its
	// sequence number (from 1), the newest update time the source gave the
	// documents it wrote (its commit time, unless every write was a delete
	// or left its document unchanged: then zero or older), the paths of the
	// documents it wrote and of those it deleted. It runs on the writer's
	// goroutine.
	OnCommit func(seq int64, commitTime time.Time, written, deleted []string)
}

// Stats count what a Writer did.
type Stats struct {
	Commits int64
	Writes  int64
	ByOp    map[Op]int64
	// LastCommit is the newest update time the source gave a document the
	// writer wrote.
	LastCommit time.Time
}

// Writer makes random changes to the documents of one Firestore database.
// Its methods are safe for concurrent use, but changes are made one commit
// at a time.
type Writer struct {
	client *firestore.Client
	opts   Options

	mu      sync.Mutex
	rng     *rand.Rand
	docs    map[string]map[string]any // live documents (the model)
	live    []string                  // the keys of docs, for random picks
	index   map[string]int            // position of a path in live
	gone    []string                  // documents the writer deleted (for OpRecreate)
	groups  map[string]bool           // every collection ID that has held a document
	colls   map[string]bool           // every collection path (pattern instances) that has held a document
	collv   []string                  // the keys of colls, in the order they appeared
	desc    map[string]int            // live documents strictly below a document path
	created int                       // brand-new collection IDs made so far
	counter int64
	stats   Stats
	start   time.Time
}

// New returns a Writer over the database behind client. Call Load (or
// Seed) before changing anything, so the model knows the starting data.
func New(client *firestore.Client, opts Options) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4
	}
	if opts.NewCollections == 0 {
		opts.NewCollections = 6
	}
	if opts.Weights == nil {
		opts.Weights = defaultWeights
	}
	if opts.Prefix == "" {
		opts.Prefix = "sw"
	}
	return &Writer{
		client: client, opts: opts,
		rng:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x51a7e)),
		docs: map[string]map[string]any{}, index: map[string]int{},
		groups: map[string]bool{}, colls: map[string]bool{}, desc: map[string]int{}, stats: Stats{ByOp: map[Op]int64{}},
	}
}

// Seed writes n documents of the writer's own starting collections
// ("<prefix>_accounts" with "events" and "events/{}/notes" below, and
// "<prefix>_catalog"), some subcollections under parents never written,
// and adds them to the model.
func (w *Writer) Seed(ctx context.Context, n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.opts.Prefix
	var paths []string
	for i := 0; len(paths) < n; i++ {
		acct := fmt.Sprintf("%s_accounts/a%05d", p, i)
		paths = append(paths, acct)
		for j := 0; j < i%3 && len(paths) < n; j++ {
			ev := fmt.Sprintf("%s/events/e%02d", acct, j)
			paths = append(paths, ev)
			if j == 1 && len(paths) < n {
				paths = append(paths, ev+"/notes/n0")
			}
		}
		if i%4 == 0 && len(paths) < n {
			paths = append(paths, fmt.Sprintf("%s_catalog/c%05d", p, i))
		}
		if i%9 == 0 && len(paths) < n { // a subcollection whose parent is never written
			paths = append(paths, fmt.Sprintf("%s_ghosts/g%05d/items/x", p, i))
		}
	}
	for start := 0; start < len(paths); start += 400 {
		b := w.client.Batch()
		chunk := paths[start:min(start+400, len(paths))]
		data := make([]map[string]any, len(chunk))
		for i, path := range chunk {
			data[i] = w.fields()
			b.Set(w.client.Doc(path), data[i])
		}
		if _, err := b.Commit(ctx); err != nil {
			return fmt.Errorf("seeding documents %s…: %w", chunk[0], err)
		}
		for i, path := range chunk {
			w.put(path, data[i])
		}
	}
	return nil
}

// Load reads every document of the given collection groups through the
// official client into the model, so the writer changes existing data too.
func (w *Writer) Load(ctx context.Context, groups ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range groups {
		it := w.client.CollectionGroup(g).Documents(ctx)
		for {
			snap, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return fmt.Errorf("loading collection group %s: %w", g, err)
			}
			w.put(relPath(snap.Ref), snap.Data())
		}
	}
	return nil
}

// relPath is a document's path relative to the database root.
func relPath(ref *firestore.DocumentRef) string {
	_, rel, ok := strings.Cut(ref.Path, "/documents/")
	if !ok {
		return ref.Path
	}
	return rel
}

// put records a live document in the model.
func (w *Writer) put(path string, data map[string]any) {
	segs := strings.Split(path, "/")
	if _, ok := w.docs[path]; !ok {
		w.index[path] = len(w.live)
		w.live = append(w.live, path)
		for n := 2; n < len(segs); n += 2 {
			w.desc[strings.Join(segs[:n], "/")]++
		}
	}
	w.docs[path] = data
	w.groups[segs[len(segs)-2]] = true
	if c := strings.Join(segs[:len(segs)-1], "/"); !w.colls[c] {
		w.colls[c] = true
		w.collv = append(w.collv, c)
	}
}

// drop removes a document from the model.
func (w *Writer) drop(path string) {
	i, ok := w.index[path]
	if !ok {
		return
	}
	last := w.live[len(w.live)-1]
	w.live[i], w.index[last] = last, i
	w.live = w.live[:len(w.live)-1]
	delete(w.index, path)
	delete(w.docs, path)
	segs := strings.Split(path, "/")
	for n := 2; n < len(segs); n += 2 {
		a := strings.Join(segs[:n], "/")
		if w.desc[a]--; w.desc[a] == 0 {
			delete(w.desc, a)
		}
	}
	w.gone = append(w.gone, path)
}

// Groups returns every collection ID that has held a document the writer
// knows of, sorted: what a test reads the source by.
func (w *Writer) Groups() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.groups))
}

// Expected returns the model: every document the writer believes live,
// path → fields as written (Go values as the client takes them).
func (w *Writer) Expected() map[string]map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]map[string]any, len(w.docs))
	for p, d := range w.docs {
		out[p] = d
	}
	return out
}

// Deleted returns the documents the writer deleted and did not write again.
func (w *Writer) Deleted() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.gone {
		if _, live := w.docs[p]; !live {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Stats returns what the writer did so far.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.ByOp = maps.Clone(w.stats.ByOp)
	return s
}

// Run commits changes at the configured rate until ctx is done, then
// returns nil; a failed commit ends it with the error. A commit in flight
// when ctx ends is finished (it runs on its own context), so the model
// never disagrees with the source about a commit that may have happened.
func (w *Writer) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.start.IsZero() {
		w.start = time.Now()
	}
	w.mu.Unlock()
	for ctx.Err() == nil {
		if err := w.pace(ctx); err != nil {
			return nil
		}
		if err := w.Step(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	return nil
}

// Steps makes n commits, as fast as allowed by the rate.
func (w *Writer) Steps(ctx context.Context, n int) error {
	for range n {
		if err := w.pace(ctx); err != nil {
			return err
		}
		if err := w.Step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pace waits until the rate allows the next writes.
func (w *Writer) pace(ctx context.Context) error {
	w.mu.Lock()
	if w.start.IsZero() {
		w.start = time.Now()
	}
	var wait time.Duration
	if w.opts.Rate > 0 {
		due := w.start.Add(time.Duration(float64(w.stats.Writes) / w.opts.Rate * float64(time.Second)))
		wait = time.Until(due)
	}
	w.mu.Unlock()
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// write is one planned write of a batch.
type write struct {
	op     Op
	path   string
	set    map[string]any     // Set: the whole document
	update []firestore.Update // Update
	after  map[string]any     // the document after the write (nil: deleted)
}

// Step makes one commit of 1 to MaxBatch random writes, each to a
// different document, and updates the model once it is committed.
func (w *Writer) Step(ctx context.Context) error {
	w.mu.Lock()
	n := 1 + w.rng.IntN(w.opts.MaxBatch)
	touched := map[string]bool{}
	var writes []write
	for len(writes) < n {
		ws := w.plan(touched)
		if ws == nil {
			continue
		}
		for _, x := range ws {
			touched[x.path] = true
		}
		writes = append(writes, ws...)
	}
	w.mu.Unlock()

	b := w.client.Batch()
	for _, x := range writes {
		ref := w.client.Doc(x.path)
		switch {
		case x.after == nil:
			b.Delete(ref)
		case x.set != nil:
			b.Set(ref, x.set)
		default:
			b.Update(ref, x.update)
		}
	}
	res, err := b.Commit(ctx)
	if err != nil {
		return fmt.Errorf("committing %d writes (%s %s, …): %w", len(writes), writes[0].op, writes[0].path, err)
	}
	w.mu.Lock()
	var written, deleted []string
	var at time.Time
	for i, x := range writes {
		if x.after == nil {
			w.drop(x.path)
			deleted = append(deleted, x.path)
		} else {
			w.put(x.path, x.after)
			written = append(written, x.path)
			if i < len(res) && res[i].UpdateTime.After(at) {
				at = res[i].UpdateTime
			}
		}
		w.stats.ByOp[x.op]++
	}
	w.stats.Commits++
	w.stats.Writes += int64(len(writes))
	if at.After(w.stats.LastCommit) {
		w.stats.LastCommit = at
	}
	seq, hook := w.stats.Commits, w.opts.OnCommit
	w.mu.Unlock()
	if hook != nil {
		hook(seq, at, written, deleted)
	}
	return nil
}

// plan chooses one change (one or two writes) to documents not yet
// touched in this batch; nil when the chosen kind is not possible now.
func (w *Writer) plan(touched map[string]bool) []write {
	op := w.pick()
	randomLive := func(want func(string) bool) string {
		for range 20 {
			if len(w.live) == 0 {
				return ""
			}
			p := w.live[w.rng.IntN(len(w.live))]
			if !touched[p] && (want == nil || want(p)) {
				return p
			}
		}
		return ""
	}
	switch op {
	case OpUpdate:
		p := randomLive(nil)
		if p == "" {
			return nil
		}
		after := cloneMap(w.docs[p])
		var ups []firestore.Update
		for _, f := range w.someFields() {
			v := w.value(f)
			if f == "meta" && w.rng.IntN(2) == 0 { // a nested field path
				m, _ := after["meta"].(map[string]any)
				m = cloneMap(m)
				nv := w.rng.Int64N(1000)
				m["a"] = nv
				after["meta"] = m
				ups = append(ups, firestore.Update{FieldPath: firestore.FieldPath{"meta", "a"}, Value: nv})
				continue
			}
			after[f] = v
			ups = append(ups, firestore.Update{Path: f, Value: v})
		}
		return []write{{op: op, path: p, update: ups, after: after}}
	case OpOverwrite:
		p := randomLive(nil)
		if p == "" {
			return nil
		}
		d := w.fields()
		return []write{{op: op, path: p, set: d, after: d}}
	case OpFieldDelete:
		p := randomLive(func(p string) bool { return len(w.docs[p]) > 1 })
		if p == "" {
			return nil
		}
		after := cloneMap(w.docs[p])
		keys := slices.Sorted(maps.Keys(after))
		f := keys[w.rng.IntN(len(keys))]
		delete(after, f)
		return []write{{op: op, path: p, update: []firestore.Update{{Path: f, Value: firestore.Delete}}, after: after}}
	case OpAdd:
		if len(w.collv) == 0 {
			return nil
		}
		p := w.collv[w.rng.IntN(len(w.collv))] + "/" + w.newID()
		d := w.fields()
		return []write{{op: op, path: p, set: d, after: d}}
	case OpNewCollection:
		if !w.mayCreate() {
			return nil
		}
		p := w.newCollection() + "/" + w.newID()
		d := w.fields()
		return []write{{op: op, path: p, set: d, after: d}}
	case OpNewSubcoll:
		if !w.mayCreate() || len(w.colls) == 0 {
			return nil
		}
		// The parent is a new or an existing document, written in the same
		// commit as its child in a collection no document had before.
		var parent string
		if w.rng.IntN(2) == 0 {
			parent = randomLive(func(p string) bool { return strings.Count(p, "/") < 5 })
		}
		if parent == "" {
			parent = w.collv[w.rng.IntN(len(w.collv))] + "/" + w.newID()
		}
		child := parent + "/" + w.newCollection() + "/" + w.newID()
		if touched[parent] {
			return nil
		}
		pd, cd := w.fields(), w.fields()
		return []write{{op: op, path: parent, set: pd, after: pd}, {op: op, path: child, set: cd, after: cd}}
	case OpDeleteLeaf:
		p := randomLive(func(p string) bool { return !w.hasDescendants(p) })
		if p == "" {
			return nil
		}
		return []write{{op: op, path: p}}
	case OpDeleteParent:
		p := randomLive(w.hasDescendants)
		if p == "" {
			return nil
		}
		return []write{{op: op, path: p}}
	case OpRecreate:
		for range 5 {
			if len(w.gone) == 0 {
				return nil
			}
			p := w.gone[w.rng.IntN(len(w.gone))]
			if _, live := w.docs[p]; live || touched[p] {
				continue
			}
			d := w.fields()
			return []write{{op: op, path: p, set: d, after: d}}
		}
	}
	return nil
}

// pick draws an Op by weight.
func (w *Writer) pick() Op {
	ops := slices.Sorted(maps.Keys(w.opts.Weights))
	total := 0
	for _, o := range ops {
		total += w.opts.Weights[o]
	}
	r := w.rng.IntN(max(total, 1))
	for _, o := range ops {
		if r < w.opts.Weights[o] {
			return o
		}
		r -= w.opts.Weights[o]
	}
	return OpUpdate
}

func (w *Writer) mayCreate() bool {
	return w.opts.NewCollections > 0 && w.created < w.opts.NewCollections
}

// newCollection invents a collection ID no document has used.
func (w *Writer) newCollection() string {
	w.created++
	for {
		id := fmt.Sprintf("%s_new%d_%d", w.opts.Prefix, w.created, w.rng.IntN(1000))
		if !w.groups[id] {
			return id
		}
	}
}

// newID invents a document ID not used before by this writer.
func (w *Writer) newID() string {
	w.counter++
	return fmt.Sprintf("w%06d%c", w.counter, 'a'+rune(w.rng.IntN(26)))
}

// hasDescendants reports whether a live document lies below path.
func (w *Writer) hasDescendants(path string) bool {
	return w.desc[path] > 0
}

// fieldNames are the fields the writer uses; each keeps one type, as an
// app's schema would, so an inferred mapping stays valid.
var fieldNames = []string{"title", "n", "score", "flag", "at", "tags", "meta", "note"}

// someFields returns one to three distinct field names.
func (w *Writer) someFields() []string {
	k := 1 + w.rng.IntN(3)
	perm := w.rng.Perm(len(fieldNames))
	out := make([]string, k)
	for i := range k {
		out[i] = fieldNames[perm[i]]
	}
	return out
}

// fields returns a fresh document: most fields, in their types.
func (w *Writer) fields() map[string]any {
	d := map[string]any{}
	for _, f := range fieldNames {
		if w.rng.IntN(5) > 0 {
			d[f] = w.value(f)
		}
	}
	if len(d) == 0 {
		d["title"] = w.value("title")
	}
	return d
}

var words = []string{"alpha", "Brücke", "gamma", "δέλτα", "emoji 😀", "", "x y z", "quote's"}

// value returns a random value of field f's type.
func (w *Writer) value(f string) any {
	r := w.rng
	switch f {
	case "title":
		return fmt.Sprintf("%s %d", words[r.IntN(len(words))], r.IntN(100000))
	case "n":
		return r.Int64N(1<<40) - 1<<39
	case "score":
		return float64(r.IntN(1_000_000)) / 7
	case "flag":
		return r.IntN(2) == 0
	case "at":
		return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(400 * 24 * time.Hour)))).Truncate(time.Microsecond)
	case "tags":
		n := r.IntN(4)
		out := make([]any, n)
		for i := range out {
			out[i] = words[r.IntN(len(words))]
		}
		return out
	case "meta":
		return map[string]any{"a": r.Int64N(1000), "b": words[r.IntN(len(words))]}
	case "note":
		if r.IntN(3) == 0 {
			return nil
		}
		return words[r.IntN(len(words))]
	}
	return nil
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Check reads every document of the writer's collection groups from the
// source through the official client and returns the differences from the
// model (at most limit of them): a test of the writer itself.
func (w *Writer) Check(ctx context.Context, limit int) ([]string, error) {
	want := w.Expected()
	var diffs []string
	add := func(format string, args ...any) {
		if len(diffs) < limit {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	seen := map[string]bool{}
	for _, g := range w.Groups() {
		it := w.client.CollectionGroup(g).Documents(ctx)
		for {
			snap, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading collection group %s: %w", g, err)
			}
			p := relPath(snap.Ref)
			seen[p] = true
			d, ok := want[p]
			switch {
			case !ok:
				add("%s: in the source, not in the model", p)
			case !SameValue(d, snap.Data()):
				add("%s: source %v, model %v", p, snap.Data(), d)
			}
		}
	}
	for p := range want {
		if !seen[p] {
			add("%s: in the model, not in the source", p)
		}
	}
	sort.Strings(diffs)
	return diffs, nil
}

// SameValue reports whether two values as the Firestore client takes and
// returns them are equal (times compared as instants, nil and empty
// arrays and maps alike).
func SameValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !SameValue(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !SameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return a == b
}
