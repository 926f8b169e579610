package mappings

import (
	"container/heap"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// InferOptions tunes schema inference.
type InferOptions struct {
	// Schema is the target schema written into the mapping (DefaultSchema
	// when empty).
	Schema string
	// MaxColumns caps the mapped columns per table (default 200, at most
	// 1500 so key and meta columns fit PostgreSQL's 1600); the least
	// frequent fields beyond it are left to the overflow column.
	MaxColumns int
	// MaxTrackedFields caps the distinct field names whose statistics are
	// kept per table (default 50×MaxColumns, at least 10000), which bounds
	// memory for collections that use data as field names. Up to the cap
	// statistics are exact. Past it the tracked set is the names with the
	// smallest hashes (a sample that does not depend on the order of
	// observations, so neither does the mapping), and a frequent field may
	// fall outside it and be left to the overflow.
	MaxTrackedFields int
	// ReservedTables are table names inference must not give to a
	// collection (e.g. tables other loaders create in the same schema).
	ReservedTables []string
	// ChildTables maps a field whose values are all arrays of maps (empty
	// arrays and nulls aside) to a child table (mappings.ChildTable) with
	// columns inferred from the elements, instead of a jsonb column.
	ChildTables bool
}

// Inferrer builds a mapping from a stream of documents. Its memory grows
// with the number of collection patterns and fields, not documents. It is
// safe for concurrent use, and Mapping depends only on the multiset of
// observations, not on their order.
type Inferrer struct {
	opts InferOptions

	mu        sync.Mutex
	tables    map[string]*tableStats
	malformed int64
}

type tableStats struct {
	docs    int64
	fields  map[string]*fieldStats
	evict   fieldHeap // tracked fields, largest hash on top
	limit   fieldKey  // once capped: fields not below limit are ignored
	limited bool
}

type fieldStats struct {
	key     fieldKey
	present int64
	seen    [numKinds]int64
	refs    refTargets // where its references point (relations.go)
	elems   *elemStats // arrays of maps, with ChildTables (relations.go)
}

// fieldKey orders field names by hash, then name, for bottom-k tracking.
type fieldKey struct {
	h    uint64
	name string
}

func (a fieldKey) less(b fieldKey) bool {
	if a.h != b.h {
		return a.h < b.h
	}
	return a.name < b.name
}

type fieldHeap []*fieldStats

func (h fieldHeap) Len() int           { return len(h) }
func (h fieldHeap) Less(i, j int) bool { return h[j].key.less(h[i].key) }
func (h fieldHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *fieldHeap) Push(x any)        { *h = append(*h, x.(*fieldStats)) }
func (h *fieldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// kind classifies one observed value; the names are the keys of Column.Seen.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt
	kDouble
	kTimestamp
	kString
	kBytes
	kReference
	kGeo
	kVector
	kMap
	kBoolArray
	kIntArray
	kDoubleArray
	kNumberArray
	kTimestampArray
	kStringArray
	kBytesArray
	kReferenceArray
	kEmptyArray
	kNullArray
	kOtherArray
	kDecimal
	numKinds
)

var kindNames = [numKinds]string{
	kNull: "null", kBool: "boolean", kInt: "integer", kDouble: "double",
	kTimestamp: "timestamp", kString: "string", kBytes: "bytes",
	kReference: "reference", kGeo: "geopoint", kVector: "vector", kMap: "map",
	kBoolArray: "boolean[]", kIntArray: "integer[]", kDoubleArray: "double[]",
	kNumberArray: "number[]", kTimestampArray: "timestamp[]",
	kStringArray: "string[]", kBytesArray: "bytes[]",
	kReferenceArray: "reference[]", kEmptyArray: "[]", kNullArray: "null[]",
	kOtherArray: "array", kDecimal: "decimal",
}

var scalarKinds = map[record.Type]kind{
	record.TypeNull: kNull, record.TypeBool: kBool, record.TypeInt: kInt,
	record.TypeDouble: kDouble, record.TypeTimestamp: kTimestamp,
	record.TypeString: kString, record.TypeBytes: kBytes,
	record.TypeReference: kReference, record.TypeGeoPoint: kGeo,
	record.TypeVector: kVector, record.TypeMap: kMap,
	record.TypeDecimal: kDecimal,
}

var arrayKinds = map[record.Type]kind{
	record.TypeBool: kBoolArray, record.TypeInt: kIntArray,
	record.TypeDouble: kDoubleArray, record.TypeTimestamp: kTimestampArray,
	record.TypeString: kStringArray, record.TypeBytes: kBytesArray,
	record.TypeReference: kReferenceArray,
}

func classify(v record.Value) kind {
	if v.Type() != record.TypeArray {
		return scalarKinds[v.Type()]
	}
	elems := v.ArrayValue()
	if len(elems) == 0 {
		return kEmptyArray
	}
	var seen record.Type
	found, numbers := false, false
	for _, e := range elems {
		t := e.Type()
		switch {
		case t == record.TypeNull:
			continue
		case arrayKinds[t] == 0:
			return kOtherArray
		case !found:
			seen, found = t, true
		case t == seen:
		case (t == record.TypeInt || t == record.TypeDouble) && (seen == record.TypeInt || seen == record.TypeDouble):
			numbers = true
		default:
			return kOtherArray
		}
	}
	switch {
	case !found:
		return kNullArray
	case numbers:
		return kNumberArray
	}
	return arrayKinds[seen]
}

// NewInferrer returns an Inferrer with o's defaults filled in.
func NewInferrer(o InferOptions) *Inferrer {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.MaxColumns <= 0 {
		o.MaxColumns = 200
	}
	o.MaxColumns = min(o.MaxColumns, 1500)
	if o.MaxTrackedFields <= 0 {
		o.MaxTrackedFields = max(50*o.MaxColumns, 10000)
	}
	o.MaxTrackedFields = max(o.MaxTrackedFields, o.MaxColumns)
	return &Inferrer{opts: o, tables: map[string]*tableStats{}}
}

type observation struct {
	key  fieldKey
	kind kind
	ref  string // for a reference: the pattern it points into (refPattern)
	// elems are the fields of each element of an array of maps, with
	// ChildTables (relations.go).
	elems [][]observation
}

// Observe records one document: its path relative to the database root and
// its fields. Every ancestor collection pattern of the path gets a table
// too, even if none of its documents is ever observed. A malformed path (see
// PatternOf) is counted (Malformed) and otherwise ignored. fields is only
// read.
func (in *Inferrer) Observe(path string, fields map[string]record.Value) {
	pattern, _, err := PatternOf(path)
	if err != nil {
		in.mu.Lock()
		in.malformed++
		in.mu.Unlock()
		return
	}
	obs := make([]observation, 0, len(fields))
	for name, v := range fields {
		if !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
			continue // cannot be named in a mapping; stays in the overflow
		}
		obs = append(obs, observation{key: fieldKey{h: hash64(name), name: name}, kind: classify(v), ref: refPattern(v), elems: in.elementObservations(v)})
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for p := parentPattern(pattern); p != ""; p = parentPattern(p) {
		in.table(p)
	}
	ts := in.table(pattern)
	ts.docs++
	for _, o := range obs {
		fs := ts.field(o.key, in.opts.MaxTrackedFields)
		if fs == nil {
			continue
		}
		fs.present++
		fs.seen[o.kind]++
		fs.refs.note(o.ref)
		fs.noteElements(o.elems, in.opts.MaxTrackedFields)
	}
}

// Malformed returns how many observed paths were not document paths.
func (in *Inferrer) Malformed() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.malformed
}

func (in *Inferrer) table(pattern string) *tableStats {
	ts := in.tables[pattern]
	if ts == nil {
		ts = &tableStats{fields: map[string]*fieldStats{}}
		in.tables[pattern] = ts
	}
	return ts
}

// field returns the statistics of a field, or nil when the field falls
// outside the tracked bottom-k set.
func (ts *tableStats) field(k fieldKey, limit int) *fieldStats {
	if fs := ts.fields[k.name]; fs != nil {
		return fs
	}
	if ts.limited && !k.less(ts.limit) {
		return nil
	}
	fs := &fieldStats{key: k}
	ts.fields[k.name] = fs
	heap.Push(&ts.evict, fs)
	if len(ts.fields) > limit {
		top := heap.Pop(&ts.evict).(*fieldStats)
		delete(ts.fields, top.key.name)
		ts.limit, ts.limited = top.key, true
		if top == fs {
			return nil
		}
	}
	return fs
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Mapping returns the mapping inferred from everything observed so far:
// tables sorted by collection pattern (so parents precede children), each
// with default key columns, and columns for its most frequent top-level
// fields (at most MaxColumns, sorted by field name) typed by the rules of
// docs/mapping.md. Maps become jsonb columns; flattening them is left to the
// user. Names are sanitized and de-duplicated deterministically.
func (in *Inferrer) Mapping() *Mapping {
	in.mu.Lock()
	defer in.mu.Unlock()
	patterns := sortedKeys(in.tables)
	m := &Mapping{Version: CurrentVersion, Schema: in.opts.Schema}
	taken := map[string]bool{}
	for _, r := range in.opts.ReservedTables {
		taken[r] = true
	}
	reqs := make([]nameRequest, len(patterns))
	for i, p := range patterns {
		reqs[i] = nameRequest{original: p, candidate: tableCandidate(p)}
	}
	names := assignNames(reqs, taken)
	for i, p := range patterns {
		t := &Table{Collection: p, Name: names[i], Documents: in.tables[p].docs}
		in.inferColumns(t, in.tables[p])
		m.Tables = append(m.Tables, t)
	}
	dropUnmappedSuggestions(m)
	nameChildTables(m)
	return m
}

// tableCandidate is the default table name of a pattern: its sanitized
// collection IDs joined by "_".
func tableCandidate(pattern string) string {
	colls, _ := patternCollections(pattern)
	parts := make([]string, len(colls))
	for i, c := range colls {
		parts[i] = SanitizeName(c, "t")
	}
	name := strings.Join(parts, "_")
	if len(name) > maxIdentifierBytes {
		name = withSuffix(name, shortHash(pattern))
	}
	return name
}

func (in *Inferrer) inferColumns(t *Table, ts *tableStats) {
	colls, _ := patternCollections(t.Collection)
	taken := map[string]bool{}
	for _, mc := range MetaColumns {
		taken[mc] = true
	}
	keyReqs := make([]nameRequest, 0, len(colls))
	for i, c := range colls[:len(colls)-1] {
		keyReqs = append(keyReqs, nameRequest{
			original:  c + strings.Repeat("/", i), // outer ancestors win ties
			candidate: withSuffix(SanitizeName(c, "c"), "id"),
		})
	}
	keyReqs = append(keyReqs, nameRequest{original: "id", candidate: "id"})
	keys := assignNames(keyReqs, taken)
	t.ParentColumns = keys[:len(keys)-1]
	if len(t.ParentColumns) == 0 {
		t.ParentColumns = nil
	}
	t.IDColumn = keys[len(keys)-1]

	fields := make([]*fieldStats, 0, len(ts.fields))
	for _, fs := range ts.fields {
		fields = append(fields, fs)
	}
	sort.Slice(fields, func(i, j int) bool {
		if fields[i].present != fields[j].present {
			return fields[i].present > fields[j].present
		}
		return fields[i].key.name < fields[j].key.name
	})
	if len(fields) > in.opts.MaxColumns {
		fields = fields[:in.opts.MaxColumns]
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].key.name < fields[j].key.name })
	reqs := make([]nameRequest, len(fields))
	notes := make([]string, len(fields))
	for i, fs := range fields {
		cand := SanitizeName(fs.key.name, "f")
		if taken[cand] {
			// A field named like a key or meta column ("id" beside the
			// document ID's "id") gets a readable name, and a note saying
			// why.
			what := "the document ID"
			switch {
			case slices.Contains(MetaColumns, cand):
				what = "a meta column"
			case cand != t.IDColumn:
				what = "a parent document ID"
			}
			notes[i] = fmt.Sprintf("renamed: %s has column %s", what, cand)
			cand = withSuffix(cand, "field")
		}
		reqs[i] = nameRequest{original: fs.key.name, candidate: cand}
	}
	colNames := assignNames(reqs, taken)
	for i, fs := range fields {
		if in.opts.ChildTables && fs.childCandidate() {
			t.Children = append(t.Children, inferChild(t, fs))
			continue
		}
		typ, src := fs.decide()
		c := &Column{
			Field:  FormatFieldPath([]string{fs.key.name}),
			Name:   colNames[i],
			Type:   typ,
			Source: src,
			Seen:   map[string]int64{},
			Note:   notes[i],
		}
		suggestReference(c, fs)
		for k, n := range fs.seen {
			if n > 0 {
				c.Seen[kindNames[k]] = n
			}
		}
		t.Columns = append(t.Columns, c)
	}
}

// candidate is one way to type a column, with how many values it holds.
type candidate struct {
	typ, source string
	count       int64
}

// decide picks the column type holding the most non-null values of the
// field; ties go to the earlier candidate in a fixed order. Fields seen
// only as null become jsonb.
func (fs *fieldStats) decide() (typ, source string) {
	s := &fs.seen
	ints, doubles := s[kInt], s[kDouble]
	cands := []candidate{
		{"text", SourceString, s[kString]},
		{"bigint", SourceInteger, 0},
		{"double precision", SourceDouble, 0},
		{"double precision", SourceNumber, 0},
		{"boolean", SourceBoolean, s[kBool]},
		{"timestamptz", SourceTimestamp, s[kTimestamp]},
		{"text", SourceReference, s[kReference]},
		{"bytea", SourceBytes, s[kBytes]},
		{"point", SourceGeoPoint, s[kGeo]},
		{"double precision[]", SourceVector, s[kVector]},
	}
	switch {
	case s[kDecimal] > 0:
		// Exact decimals (DynamoDB's N), whole ones among them as
		// integers: numeric keeps every digit of both.
		cands = append(cands, candidate{"numeric", SourceDecimal, s[kDecimal] + ints})
	case ints > 0 && doubles > 0:
		cands[3].count = ints + doubles
	case ints > 0:
		cands[1].count = ints
	default:
		cands[2].count = doubles
	}
	empties := s[kEmptyArray] + s[kNullArray]
	arrays := []candidate{
		{"text[]", SourceString + "[]", s[kStringArray]},
		{"bigint[]", SourceInteger + "[]", 0},
		{"double precision[]", SourceDouble + "[]", 0},
		{"double precision[]", SourceNumber + "[]", 0},
		{"boolean[]", SourceBoolean + "[]", s[kBoolArray]},
		{"timestamptz[]", SourceTimestamp + "[]", s[kTimestampArray]},
		{"text[]", SourceReference + "[]", s[kReferenceArray]},
		{"bytea[]", SourceBytes + "[]", s[kBytesArray]},
	}
	ia, da, na := s[kIntArray], s[kDoubleArray], s[kNumberArray]
	switch {
	case na > 0 || (ia > 0 && da > 0):
		arrays[3].count = ia + da + na
	case ia > 0:
		arrays[1].count = ia
	default:
		arrays[2].count = da
	}
	typedArrays := false
	for i := range arrays {
		if arrays[i].count > 0 {
			arrays[i].count += empties // empty arrays fit any array column
			typedArrays = true
		}
	}
	js := candidate{"jsonb", SourceAny, s[kMap] + s[kOtherArray]}
	if !typedArrays {
		js.count += empties
	}
	cands = append(append(cands, arrays...), js)
	best := candidate{"jsonb", SourceAny, 0}
	for _, c := range cands {
		if c.count > best.count {
			best = c
		}
	}
	return best.typ, best.source
}

// Extend returns m with tables inferred from recs for the collection
// patterns m has none for (their ancestors' patterns too, as Observe gives
// them), and those patterns. Table names avoid those of m. m is not
// changed; when recs hold no new pattern, the result is a copy of m and
// the list is empty.
func Extend(m *Mapping, recs []record.Record) (*Mapping, []string, error) {
	reserved := make([]string, 0, len(m.Tables))
	for _, t := range m.Tables {
		reserved = append(reserved, t.Name)
	}
	in := NewInferrer(InferOptions{Schema: m.Schema, ReservedTables: reserved})
	for _, r := range recs {
		in.Observe(r.Key, r.Fields)
	}
	inferred := in.Mapping()
	out := *m
	out.Tables = slices.Clone(m.Tables)
	var added []string
	for _, t := range inferred.Tables {
		if m.TableFor(t.Collection) != nil {
			continue
		}
		out.Tables = append(out.Tables, t)
		added = append(added, t.Collection)
	}
	// As inference writes them: by pattern, each table after its parent.
	slices.SortStableFunc(out.Tables, func(a, b *Table) int { return strings.Compare(a.Collection, b.Collection) })
	if err := out.Validate(); err != nil {
		return nil, nil, err
	}
	return &out, added, nil
}

// EvolveOptions tunes Evolve.
type EvolveOptions struct {
	// Columns gives a top-level field that no column or exclusion of its
	// table names a column of its own, typed by the rules of inference
	// from the values the batch holds. When false such fields stay in the
	// overflow column (lossless), and only new collections change the
	// mapping.
	Columns bool
	// MaxColumns caps the mapped columns of a table that evolution grows
	// (default 200, like InferOptions); fields beyond it stay in the
	// overflow. Columns a table already has are never removed.
	MaxColumns int
	// ReservedColumns are column names evolution must not give a field
	// (columns the loader adds of its own, e.g. a deletion time).
	ReservedColumns []string
	// NoTables leaves documents of collections without a table alone
	// (the loader rejects them) instead of inferring tables for them.
	NoTables bool
}

// Evolution is how Evolve grew a mapping.
type Evolution struct {
	// Mapping is the grown mapping; the mapping given is not changed.
	Mapping *Mapping
	// Tables lists the collection patterns that got a table, sorted.
	Tables []string
	// Columns lists the columns added to existing tables, as
	// "table.column", sorted.
	Columns []string
}

// Evolve returns how m must grow for the documents of recs, or nil when it
// need not: a document of a collection pattern m has no table for gets one
// (and its ancestors theirs), inferred from recs as Extend does; with
// o.Columns, a top-level field no column or exclusion of its table covers
// gets a column, appended after the table's columns, its type decided from
// the batch's values like inference does (a field seen only as null
// becomes jsonb, which holds any later value). A field whose value does
// not fit its existing column's type is not evolution's concern: the
// value goes to the overflow, losslessly, as with any mapping. The result
// depends only on m and the set of recs. Names that cannot be identifiers
// (invalid UTF-8, NUL) are left to the overflow.
func Evolve(m *Mapping, recs []record.Record, o EvolveOptions) (*Evolution, error) {
	if o.MaxColumns <= 0 {
		o.MaxColumns = 200
	}
	o.MaxColumns = min(o.MaxColumns, 1500)
	var fresh []record.Record
	type growth struct {
		t      *Table
		known  map[string]bool
		fields map[string]*fieldStats
	}
	grown := map[*Table]*growth{}
	// Batches come in key order: consecutive documents of one collection
	// share its path, so its pattern is parsed once per run of them.
	var lastColl string
	var lastTable *Table
	for _, r := range recs {
		var t *Table
		coll, _, cut := cutLast(r.Key)
		if cut && coll == lastColl && lastTable != nil {
			t = lastTable
		} else {
			pattern, _, err := PatternOf(r.Key)
			if err != nil {
				continue // the sink rejects it
			}
			t = m.TableFor(pattern)
			lastColl, lastTable = coll, t
		}
		if t == nil {
			if !o.NoTables {
				fresh = append(fresh, r)
			}
			continue
		}
		if !o.Columns {
			continue
		}
		g := grown[t]
		for name, v := range r.Fields {
			if g == nil {
				g = &growth{t: t, known: topFields(t)}
				grown[t] = g
			}
			if g.known[name] || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
				continue
			}
			if g.fields == nil {
				g.fields = map[string]*fieldStats{}
			}
			fs := g.fields[name]
			if fs == nil {
				fs = &fieldStats{key: fieldKey{h: hash64(name), name: name}}
				g.fields[name] = fs
			}
			fs.present++
			fs.seen[classify(v)]++
		}
	}
	ev := &Evolution{}
	out := m
	if len(fresh) > 0 {
		ext, added, err := Extend(m, fresh)
		if err != nil {
			return nil, fmt.Errorf("inferring tables for collections the mapping has none for: %w", err)
		}
		out, ev.Tables = ext, added
		sort.Strings(ev.Tables)
	}
	for _, g := range grown {
		room := o.MaxColumns - len(g.t.Columns)
		if len(g.fields) == 0 || room <= 0 {
			continue
		}
		if out == m {
			c := *m
			c.Tables = slices.Clone(m.Tables)
			out = &c
		}
		t := *g.t
		t.Columns = slices.Clone(g.t.Columns)
		t.Columns = append(t.Columns, newColumns(&t, g.fields, room, o.ReservedColumns)...)
		for _, c := range t.Columns[len(g.t.Columns):] {
			ev.Columns = append(ev.Columns, t.Name+"."+c.Name)
		}
		for i, x := range out.Tables {
			if x == g.t {
				out.Tables[i] = &t
			}
		}
	}
	if out == m {
		return nil, nil
	}
	sort.Strings(ev.Columns)
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("growing the mapping: %w", err)
	}
	ev.Mapping = out
	return ev, nil
}

// topFields returns the top-level field names t's columns and exclusions
// cover (a flattened map's name among them).
func topFields(t *Table) map[string]bool {
	known := make(map[string]bool, len(t.Columns)+len(t.Exclude))
	for _, c := range t.Columns {
		if segs, err := ParseFieldPath(c.Field); err == nil {
			known[segs[0]] = true
		}
	}
	for _, x := range t.Exclude {
		if segs, err := ParseFieldPath(x); err == nil {
			known[segs[0]] = true
		}
	}
	return known
}

// newColumns names and types columns for fields of t, at most room of
// them (the most frequent, then by name), sorted by field name. Names
// avoid t's key, meta and mapped columns and reserved.
func newColumns(t *Table, fields map[string]*fieldStats, room int, reserved []string) []*Column {
	list := make([]*fieldStats, 0, len(fields))
	for _, fs := range fields {
		list = append(list, fs)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].present != list[j].present {
			return list[i].present > list[j].present
		}
		return list[i].key.name < list[j].key.name
	})
	if len(list) > room {
		list = list[:room]
	}
	sort.Slice(list, func(i, j int) bool { return list[i].key.name < list[j].key.name })
	special := map[string]string{}
	for _, mc := range MetaColumns {
		special[mc] = "a meta column"
	}
	for _, r := range reserved {
		special[r] = "a column of the loader"
	}
	for _, k := range t.ParentColumns {
		special[k] = "a parent document ID"
	}
	special[t.IDColumn] = "the document ID"
	taken := map[string]bool{}
	for k := range special {
		taken[k] = true
	}
	for _, c := range t.Columns {
		taken[c.Name] = true
	}
	reqs := make([]nameRequest, len(list))
	notes := make([]string, len(list))
	for i, fs := range list {
		cand := SanitizeName(fs.key.name, "f")
		notes[i] = "added during the run: not in the inference sample"
		if what, ok := special[cand]; ok {
			notes[i] = fmt.Sprintf("added during the run; renamed: %s has column %s", what, cand)
			cand = withSuffix(cand, "field")
		}
		reqs[i] = nameRequest{original: fs.key.name, candidate: cand}
	}
	names := assignNames(reqs, taken)
	cols := make([]*Column, len(list))
	for i, fs := range list {
		typ, src := fs.decide()
		c := &Column{Field: FormatFieldPath([]string{fs.key.name}), Name: names[i], Type: typ, Source: src, Seen: map[string]int64{}, Note: notes[i]}
		for k, n := range fs.seen {
			if n > 0 {
				c.Seen[kindNames[k]] = n
			}
		}
		cols[i] = c
	}
	return cols
}

// cutLast splits a document path at its last "/": the collection's path
// and the document ID.
func cutLast(path string) (coll, id string, ok bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", path, false
	}
	return path[:i], path[i+1:], true
}
