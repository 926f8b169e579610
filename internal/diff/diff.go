// Package diff compares a source with the target by key and by content —
// the one engine behind `plan` (what a migration would do) and `verify`
// (whether the target equals the source).
//
// Both sides are streamed in key order and merged, table by table: the
// source through its extractor, the target through server-side cursors
// inside one read-only, repeatable-read transaction (one consistent
// snapshot, nothing written). Memory is bounded by one cursor chunk per
// open table, never by table size.
//
// Content is compared by a canonical, type-aware checksum of each record's
// fields: the source record is taken through the same transform migrate
// applies and back, the target row through the inverse transform, and both
// are hashed in the lossless typed-JSON encoding, so equal values hash
// equal whatever their representation on either side.
package diff

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Sample outcomes.
const (
	Mismatched      = "mismatched"
	MissingInTarget = "missing_in_target"
	ExtraInTarget   = "extra_in_target"
	Rejected        = "rejected"
	Overflow        = "overflow"
	// ExcludedInTarget is a target row of a record an erasure list
	// excludes (Options.Exclude): it must not be there.
	ExcludedInTarget = "excluded_in_target"
)

// Sample is one example of a difference.
type Sample struct {
	Outcome string `json:"outcome"`
	Key     string `json:"key"`
	// Fields names the fields that differ (mismatched) or go to the
	// overflow column (overflow).
	Fields []string `json:"fields,omitempty"`
	// Reason says why a record would be rejected.
	Reason string `json:"reason,omitempty"`
}

// String renders s as "outcome key field,field: reason" (the parts that
// are set), the form tests and logs compare.
func (s Sample) String() string {
	line := s.Outcome + " " + s.Key
	if len(s.Fields) > 0 {
		line += " " + strings.Join(s.Fields, ",")
	}
	if s.Reason != "" {
		line += ": " + s.Reason
	}
	return line
}

// TableReport is the comparison of one target table. For verify, Matching
// rows are identical; for plan, Matching rows would be left unchanged,
// Mismatched updated, MissingInTarget inserted.
type TableReport struct {
	Kind  string `json:"kind"`
	Table string `json:"table"`
	// Source is the number of source records routed to the table.
	Source          int64 `json:"source"`
	Matching        int64 `json:"matching"`
	Mismatched      int64 `json:"mismatched"`
	MissingInTarget int64 `json:"missing_in_target"`
	ExtraInTarget   int64 `json:"extra_in_target"`
	// Rejected counts source records that have no place in the target
	// (no table for their collection, a key the target cannot hold).
	Rejected int64 `json:"rejected"`
	// Overflow counts source records with fields that land in the overflow
	// column (outside the mapping, or of a type their column cannot hold).
	Overflow int64 `json:"overflow"`
	// Placeholders counts target rows standing in for parents that exist
	// only through their subcollections; they are not compared.
	Placeholders int64 `json:"placeholders"`
	// Excluded counts source records an erasure list excludes
	// (Options.Exclude): neither compared nor expected in the target.
	Excluded int64 `json:"excluded,omitempty"`
	// ExcludedInTarget counts target rows of excluded records: each is a
	// difference (the erasure list says the record must not be there).
	ExcludedInTarget int64    `json:"excluded_in_target,omitempty"`
	Samples          []Sample `json:"samples,omitempty"`

	sampled map[string]int
}

// SampleLines returns the table's samples as strings, sorted.
func (t *TableReport) SampleLines() []string {
	out := make([]string, len(t.Samples))
	for i, s := range t.Samples {
		out[i] = s.String()
	}
	slices.Sort(out)
	return out
}

// Identical reports whether the table has no difference at all.
func (t *TableReport) Identical() bool {
	return t.Mismatched == 0 && t.MissingInTarget == 0 && t.ExtraInTarget == 0 && t.Rejected == 0 && t.ExcludedInTarget == 0
}

// Report is the outcome of a comparison.
type Report struct {
	// ReadTime is the source snapshot compared (zero when the source has
	// none).
	ReadTime time.Time      `json:"read_time"`
	Tables   []*TableReport `json:"tables"`
	// SourceReads is what the comparison itself cost in billable source
	// reads (-1 when the source does not meter them).
	SourceReads int64 `json:"source_reads"`
}

// Identical reports whether every table is identical.
func (r *Report) Identical() bool {
	for _, t := range r.Tables {
		if !t.Identical() {
			return false
		}
	}
	return true
}

// Options tune a comparison.
type Options struct {
	// Samples is how many sample keys to keep per table and outcome.
	Samples int
	// OnDifference, when set, is called for every difference found
	// (Mismatched, MissingInTarget, ExtraInTarget), in addition to the
	// counts and samples of the report; rejected records, overflow and
	// placeholder rows are not differences. It is called while the
	// comparison's read-only transaction is open, from the goroutine that
	// called Compare or Recheck, one difference at a time; an error from
	// it stops the comparison and is returned unchanged.
	OnDifference func(ctx context.Context, d Difference) error
	// OnRejected, when set, is called for every source record that has no
	// place in the target (Routed.Reject: a collection without a table),
	// with Outcome Rejected and the record as Source, under the same terms
	// as OnDifference. Sync's catch-up uses it to give new collections a
	// table.
	OnRejected func(ctx context.Context, d Difference) error
	// Exclude, when set, names the source keys an erasure list excludes
	// (see internal/erasure). Such a source record is counted as Excluded
	// on the table it would go to and not compared; a target row standing
	// for an excluded key (whether or not the source still has the record)
	// counts as ExcludedInTarget, a difference, sampled with its key. Rows
	// of excluded keys are not handed to OnDifference: sync neither writes
	// nor deletes them.
	Exclude func(key string) bool
	// ExcludedUnnamed counts the target rows of excluded keys without
	// sampling their keys, for a report that is stored (cutover's, in the
	// state schema): an erasure list's keys are personal data, named only
	// in verify's report.
	ExcludedUnnamed bool
}

// Difference is one record on which the source and the target differ.
type Difference struct {
	// Outcome is Mismatched, MissingInTarget or ExtraInTarget.
	Outcome string
	// Table is the target table.
	Table string
	// Key is the record's source key (a document path, a uid, an object
	// name); for ExtraInTarget, the key of the record the row was loaded
	// from.
	Key string
	// Source is the source record, for Mismatched and MissingInTarget;
	// nil for ExtraInTarget.
	Source *record.Record
}

// Item is one keyed record on either side, ready to compare.
type Item struct {
	// Key orders items within a table: compared element by element, each
	// by its bytes, or by the adapter's KeyComparer.
	Key []string
	// Label names the item for people (a document path, a uid).
	Label string
	// Fields is the content compared.
	Fields map[string]record.Value
	// Placeholder marks target rows that stand in for something the source
	// does not hold as a record (missing parents).
	Placeholder bool
	// Problem, on a target item, says why its row could not be read back
	// as a record; such a row counts as mismatched, with Problem as the
	// sample's reason.
	Problem string
}

// Routed is where a source record goes in the target.
type Routed struct {
	// Table is the target table ("" with Reject set: nowhere).
	Table string
	Item
	// Overflow lists the record's fields that would land in an overflow
	// column.
	Overflow []string
	// Reject says why the record has no place in the target.
	Reject string
}

// TargetCursor reads one target table in key order.
type TargetCursor interface {
	Next(ctx context.Context) (Item, bool, error)
}

// Adapter fits one kind of record to the engine.
type Adapter interface {
	// Kind names the kind of record ("document").
	Kind() string
	// Tables lists every target table of the kind.
	Tables() []string
	// StreamTables lists the tables a source stream feeds.
	StreamTables(stream string) []string
	// Route places a source record: its table, key and the fields the
	// target should hold for it.
	Route(rec record.Record) Routed
	// Open opens a cursor over a table inside tx; nil when the table does
	// not exist in the target yet.
	Open(ctx context.Context, tx pgx.Tx, table string) (TargetCursor, error)
}

// KeyComparer is implemented by adapters whose keys are not ordered element
// by element in bytes (documents: numeric IDs first). The engine merges a
// table's source records with its target rows, and checks the source's
// order, with CompareKeys; keys of other adapters are ordered by the
// package's CompareKeys.
type KeyComparer interface {
	// CompareKeys orders two keys of one table as the source delivers its
	// records and the adapter's cursors read its rows.
	CompareKeys(a, b []string) int
}

// TargetLookup is implemented by adapters that can read target rows by
// key and count a table's rows: Recheck and CountRecords need it, and so
// do unordered streams (KeyLookup).
type TargetLookup interface {
	// Lookup returns the target items of keys in table, by KeyString of
	// their key; keys without a row (or with a row marked deleted, see
	// loaders.DeletedAtColumn) are absent. Placeholder rows are present,
	// with Placeholder set.
	Lookup(ctx context.Context, tx pgx.Tx, table string, keys [][]string) (map[string]Item, error)
	// Count returns the number of rows in table that stand for source
	// records (placeholders and rows marked deleted excluded); 0 when the
	// table does not exist.
	Count(ctx context.Context, tx pgx.Tx, table string) (int64, error)
}

// KeyLookup is implemented by adapters whose source does not deliver
// records in the target's key order (an export file, say). Their streams
// are compared batch by batch instead of merged: the target rows of a batch
// of source keys are looked up by key, and rows the source does not have
// are counted (total rows minus those found), without samples — and named,
// for Options.OnDifference, when the adapter is a KeyScanner.
type KeyLookup interface {
	TargetLookup
	// Ordered reports whether a stream's records come in key order.
	Ordered(stream string) bool
}

// KeyScanner is implemented by KeyLookup adapters that can name the rows
// of a table that a comparison did not find in the source, so that
// Options.OnDifference sees every row only the target has on the lookup
// path. The engine keeps the keys it looked up in a temporary table of the
// comparison's transaction (on the server, not in memory) and asks for the
// rows whose key is not in it.
type KeyScanner interface {
	// ScanUnseen calls fn with every row of table (placeholders and rows
	// marked deleted excluded) whose key is not in seen, the temporary
	// table of the keys looked up: columns tbl (text, the table) and k
	// (jsonb, the key as a JSON array of strings). Rows are read through a
	// cursor inside tx, a chunk at a time; fn's error is returned
	// unchanged.
	ScanUnseen(ctx context.Context, tx pgx.Tx, table string, seen pgx.Identifier, fn func(Item) error) error
}

// ExtraNamer is implemented by KeyScanner adapters whose reports name
// the target rows the source lacks (in samples) even without
// Options.OnDifference, at the cost of the temporary table KeyScanner
// describes.
type ExtraNamer interface {
	NamesExtras() bool
}

func namesExtras(a Adapter) bool {
	n, ok := a.(ExtraNamer)
	return ok && n.NamesExtras()
}

// KeyRouter is implemented by adapters that can place a source key
// without its record, for Recheck of keys the source no longer has.
type KeyRouter interface {
	// RouteKey returns the table and target key a record with the source
	// key key would have; ok is false when such a record would have no
	// place in the target (no table for its collection, a key the target
	// cannot hold, an object outside the compared bucket and prefix).
	RouteKey(key string) (table string, targetKey []string, ok bool)
}

// KeyString joins a key into one map key.
func KeyString(key []string) string { return strings.Join(key, "\x00") }

// lookupBatch is how many source records are looked up at once.
const lookupBatch = 500

// Compare streams every record of ex's source and every row of the
// adapter's tables and compares them. With opts.OnDifference set, every
// difference is handed to it as it is found; on the lookup path
// (KeyLookup) that needs the adapter to be a KeyScanner, and a role that
// may create temporary tables (see KeyScanner).
func Compare(ctx context.Context, ex extractors.Extractor, pool *pgxpool.Pool, a Adapter, opts Options) (*Report, error) {
	rep := &Report{SourceReads: -1}
	readTime, streams, err := extractors.PlanSnapshot(ctx, ex, 1)
	if err != nil {
		return nil, fmt.Errorf("listing the source: %w", err)
	}
	rep.ReadTime = readTime
	// Rows only the target has are named on the lookup path by keeping the
	// keys looked up in a temporary table, created before the transaction
	// turns read-only (it is dropped with it).
	var seen pgx.Identifier
	// With an erasure list (opts.Exclude), too, when the adapter can: a
	// row of an excluded key is then named as such, not counted as extra.
	if kl, ok := a.(KeyLookup); ok && (opts.OnDifference != nil || namesExtras(a) || opts.Exclude != nil) {
		for _, st := range streams {
			if kl.Ordered(st.Name) {
				continue
			}
			if _, ok := a.(KeyScanner); !ok {
				if opts.OnDifference == nil {
					continue
				}
				return nil, fmt.Errorf("comparing %ss: the source's records do not come in key order, and this kind cannot name the target rows the source lacks, "+
					"which every difference being reported requires", a.Kind())
			}
			seen = pgx.Identifier{"baasmigrate_diff_seen"}
		}
	}
	tx, err := beginSnapshot(ctx, pool, seen)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	c := newComparison(a, tx, opts)
	c.seen = seen
	for _, st := range streams {
		if err := c.stream(ctx, ex, st); err != nil {
			return nil, err
		}
	}
	// Tables no stream fed (a collection the source no longer has).
	for _, name := range a.Tables() {
		if err := c.drain(ctx, name); err != nil {
			return nil, err
		}
	}
	c.finish(rep)
	if m, ok := ex.(extractors.ReadMeter); ok {
		rep.SourceReads = m.BillableReads()
	}
	return rep, nil
}

// beginSnapshot starts the read-only, repeatable-read transaction a
// comparison reads the target in. With seen set, it first creates that
// temporary table (dropped when the transaction ends) to hold the keys
// looked up (see KeyScanner); a read-only transaction may write temporary
// tables but not create them.
func beginSnapshot(ctx context.Context, pool *pgxpool.Pool, seen pgx.Identifier) (pgx.Tx, error) {
	if seen == nil {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, fmt.Errorf("reading the target: %w", err)
		}
		return tx, nil
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("reading the target: %w", err)
	}
	for _, q := range []string{
		"CREATE TEMPORARY TABLE " + seen.Sanitize() + " (tbl text NOT NULL, k jsonb NOT NULL, PRIMARY KEY (tbl, k)) ON COMMIT DROP",
		"SET TRANSACTION READ ONLY",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("preparing to name the target rows the source lacks (a temporary table of the keys compared): %w", err)
		}
	}
	return tx, nil
}

func newComparison(a Adapter, tx pgx.Tx, opts Options) *comparison {
	if opts.Samples <= 0 {
		opts.Samples = 5
	}
	c := &comparison{a: a, tx: tx, opts: opts, tables: map[string]*tableState{}, compare: CompareKeys}
	if kc, ok := a.(KeyComparer); ok {
		c.compare = kc.CompareKeys
	}
	for _, name := range a.Tables() {
		c.report(name)
	}
	return c
}

// finish adds the tables' reports to rep, sorted by table.
func (c *comparison) finish(rep *Report) {
	for _, ts := range c.tables {
		ts.rep.sampled = nil
		rep.Tables = append(rep.Tables, ts.rep)
	}
	sort.Slice(rep.Tables, func(i, j int) bool { return rep.Tables[i].Table < rep.Tables[j].Table })
}

type comparison struct {
	a      Adapter
	tx     pgx.Tx
	opts   Options
	tables map[string]*tableState
	n      int
	// compare orders keys: the adapter's KeyComparer, or CompareKeys.
	compare func(a, b []string) int
	// seen, when set, is the temporary table of the keys looked up on the
	// lookup path (see KeyScanner).
	seen pgx.Identifier
}

type tableState struct {
	rep     *TableReport
	lastKey []string // the previous source key merged, to check the order
	cur     TargetCursor
	opened  bool
	head    *Item
	done    bool
}

func (c *comparison) report(table string) *tableState {
	ts := c.tables[table]
	if ts == nil {
		ts = &tableState{rep: &TableReport{Kind: c.a.Kind(), Table: table}}
		c.tables[table] = ts
	}
	return ts
}

// peek returns the table's next target row without consuming it.
func (c *comparison) peek(ctx context.Context, ts *tableState) (*Item, error) {
	if ts.head != nil || ts.done {
		return ts.head, nil
	}
	if !ts.opened {
		ts.opened = true
		c.n++
		cur, err := c.a.Open(ctx, c.tx, ts.rep.Table)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			ts.done = true
			return nil, nil
		}
		ts.cur = cur
	}
	it, ok, err := ts.cur.Next(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		ts.done = true
		return nil, nil
	}
	ts.head = &it
	return ts.head, nil
}

func (c *comparison) sample(ts *tableState, s Sample) {
	if ts.rep.sampled == nil {
		ts.rep.sampled = map[string]int{}
	}
	if ts.rep.sampled[s.Outcome] >= c.opts.Samples {
		return
	}
	ts.rep.sampled[s.Outcome]++
	ts.rep.Samples = append(ts.rep.Samples, s)
}

// differ hands a difference to Options.OnDifference, when set.
func (c *comparison) differ(ctx context.Context, ts *tableState, outcome, key string, rec *record.Record) error {
	if c.opts.OnDifference == nil {
		return nil
	}
	d := Difference{Outcome: outcome, Table: ts.rep.Table, Key: key}
	if rec != nil {
		r := *rec
		d.Source = &r
	}
	return c.opts.OnDifference(ctx, d)
}

// rejected tells OnRejected about a record admit refused.
func (c *comparison) rejected(ctx context.Context, rec record.Record, r Routed) error {
	if c.opts.OnRejected == nil {
		return nil
	}
	table := r.Table
	if table == "" {
		table = "(no table)"
	}
	return c.opts.OnRejected(ctx, Difference{Outcome: Rejected, Table: table, Key: rec.Key, Source: &rec})
}

// extra accounts for a target row the source does not have; key is the
// source key it stands for.
func (c *comparison) extra(ctx context.Context, ts *tableState, it *Item, key string) error {
	if it.Placeholder {
		ts.rep.Placeholders++
		return nil
	}
	if c.excludes(key) {
		c.excludedPresent(ts, it.Label)
		return nil
	}
	ts.rep.ExtraInTarget++
	c.sample(ts, Sample{Outcome: ExtraInTarget, Key: it.Label})
	return c.differ(ctx, ts, ExtraInTarget, key, nil)
}

// excludes reports whether Options.Exclude excludes key.
func (c *comparison) excludes(key string) bool {
	return c.opts.Exclude != nil && c.opts.Exclude(key)
}

// excludedPresent accounts for a target row of an excluded record.
func (c *comparison) excludedPresent(ts *tableState, label string) {
	ts.rep.ExcludedInTarget++
	if !c.opts.ExcludedUnnamed {
		c.sample(ts, Sample{Outcome: ExcludedInTarget, Key: label})
	}
}

// exclude counts an excluded source record against the table it would go
// to, and returns that table and the record's key there ("" when it would
// have none). An adapter that places keys (KeyRouter) places it by its key
// alone: the record is not transformed (no field transform, no vault
// lookup) and, for documents, not taken for a reference's source or
// target, as it is never migrated; Route is asked only for the label of a
// key with no place.
func (c *comparison) exclude(rec record.Record) (string, []string) {
	if kr, ok := c.a.(KeyRouter); ok {
		if table, key, ok := kr.RouteKey(rec.Key); ok {
			c.report(table).rep.Excluded++
			return table, key
		}
	}
	r := c.a.Route(rec)
	table := r.Table
	if table == "" {
		table = "(no table)"
	}
	c.report(table).rep.Excluded++
	if r.Reject != "" {
		return "", nil
	}
	return r.Table, r.Key
}

// missing accounts for a source record the target lacks.
func (c *comparison) missing(ctx context.Context, ts *tableState, rec record.Record, r Routed) error {
	ts.rep.MissingInTarget++
	c.sample(ts, Sample{Outcome: MissingInTarget, Key: r.Label})
	return c.differ(ctx, ts, MissingInTarget, rec.Key, &rec)
}

func (c *comparison) stream(ctx context.Context, ex extractors.Extractor, st extractors.Stream) error {
	rt := st.ReadTime
	if kl, ok := c.a.(KeyLookup); ok && !kl.Ordered(st.Name) {
		return c.lookupStream(ctx, kl, ex, st, rt)
	}
	for _, p := range st.Partitions {
		err := ex.Read(extractors.WithSkips(ctx), p, rt, "", func(rec record.Record) error {
			if rec.Skip != nil {
				return c.skipped(ctx, rec)
			}
			return c.record(ctx, rec)
		})
		if err != nil {
			return fmt.Errorf("reading the source (%s): %w", st.Name, err)
		}
	}
	for _, name := range c.a.StreamTables(st.Name) {
		if err := c.drain(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// routedRecord is a source record with where it goes.
type routedRecord struct {
	rec record.Record
	r   Routed
	// excluded: only its absence from the target is checked.
	excluded bool
}

// lookupStream compares an unordered stream batch by batch.
func (c *comparison) lookupStream(ctx context.Context, kl KeyLookup, ex extractors.Extractor, st extractors.Stream, rt time.Time) error {
	pending := map[string][]routedRecord{}
	found := map[string]int64{}
	flush := func(table string) error {
		batch := pending[table]
		if len(batch) == 0 {
			return nil
		}
		delete(pending, table)
		keys := make([][]string, len(batch))
		for i, b := range batch {
			keys[i] = b.r.Key
		}
		items, err := kl.Lookup(ctx, c.tx, table, keys)
		if err != nil {
			return err
		}
		if err := c.remember(ctx, table, keys); err != nil {
			return err
		}
		ts := c.report(table)
		for _, b := range batch {
			it, ok := items[KeyString(b.r.Key)]
			if b.excluded {
				if ok && !it.Placeholder {
					found[table]++
					c.excludedPresent(ts, b.r.Label)
				}
				continue
			}
			if !ok || it.Placeholder {
				if err := c.missing(ctx, ts, b.rec, b.r); err != nil {
					return err
				}
				continue
			}
			found[table]++
			if err := c.match(ctx, ts, b.rec, b.r, it); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range st.Partitions {
		err := ex.Read(extractors.WithSkips(ctx), p, rt, "", func(rec record.Record) error {
			if rec.Skip != nil {
				return c.skipped(ctx, rec)
			}
			var r Routed
			excluded := c.excludes(rec.Key)
			if excluded {
				table, key := c.exclude(rec)
				if table == "" {
					return nil
				}
				r = Routed{Table: table, Item: Item{Key: key, Label: rec.Key}}
			} else if r = c.a.Route(rec); !c.admit(rec, r) {
				return c.rejected(ctx, rec, r)
			}
			pending[r.Table] = append(pending[r.Table], routedRecord{rec, r, excluded})
			if len(pending[r.Table]) >= lookupBatch {
				return flush(r.Table)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading the source (%s): %w", st.Name, err)
		}
	}
	for _, table := range c.a.StreamTables(st.Name) {
		if err := flush(table); err != nil {
			return err
		}
		ts := c.report(table)
		if c.seen != nil {
			// Every row only the target has, named.
			err := c.a.(KeyScanner).ScanUnseen(ctx, c.tx, table, c.seen, func(it Item) error {
				return c.extra(ctx, ts, &it, it.Label)
			})
			if err != nil {
				return err
			}
		} else {
			n, err := kl.Count(ctx, c.tx, table)
			if err != nil {
				return err
			}
			ts.rep.ExtraInTarget += n - found[table]
		}
		// The table's rows are accounted for; the final drain must not
		// read them again.
		ts.opened, ts.done = true, true
	}
	return nil
}

// remember adds keys of table to the temporary table of keys looked up,
// when there is one.
func (c *comparison) remember(ctx context.Context, table string, keys [][]string) error {
	if c.seen == nil {
		return nil
	}
	texts := make([]string, len(keys))
	for i, k := range keys {
		b, err := json.Marshal(k)
		if err != nil {
			return err
		}
		texts[i] = string(b)
	}
	_, err := c.tx.Exec(ctx, "INSERT INTO "+c.seen.Sanitize()+" (tbl, k) SELECT $1, x::jsonb FROM unnest($2::text[]) x ON CONFLICT DO NOTHING", table, texts)
	if err != nil {
		return fmt.Errorf("noting the keys compared in %s: %w", table, err)
	}
	return nil
}

// skipped accounts for a record its extractor marked (record.Skip), as a
// run does: one skipped on purpose (an Amplify DataStore tombstone) is not
// data and has no place in the comparison; one that could not be read (a
// malformed line of an export) counts as rejected, with its reason, under
// the table its key routes to.
func (c *comparison) skipped(ctx context.Context, rec record.Record) error {
	if !rec.Skip.Reject {
		return nil
	}
	r := c.a.Route(rec)
	r.Reject = rec.Skip.Reason
	c.admit(rec, r)
	return c.rejected(ctx, rec, r)
}

// admit counts a routed source record against its table; it returns false
// for records that have no place in the target.
func (c *comparison) admit(rec record.Record, r Routed) bool {
	if r.Reject != "" {
		table := r.Table
		if table == "" {
			table = "(no table)"
		}
		ts := c.report(table)
		ts.rep.Rejected++
		c.sample(ts, Sample{Outcome: Rejected, Key: rec.Key, Reason: r.Reject})
		return false
	}
	ts := c.report(r.Table)
	ts.rep.Source++
	if len(r.Overflow) > 0 {
		ts.rep.Overflow++
		c.sample(ts, Sample{Outcome: Overflow, Key: r.Label, Fields: r.Overflow})
	}
	return true
}

// match compares a source record with the target row of the same key.
func (c *comparison) match(ctx context.Context, ts *tableState, rec record.Record, r Routed, it Item) error {
	if it.Problem != "" {
		ts.rep.Mismatched++
		c.sample(ts, Sample{Outcome: Mismatched, Key: r.Label, Reason: it.Problem})
		return c.differ(ctx, ts, Mismatched, rec.Key, &rec)
	}
	if Checksum(it.Fields) == Checksum(r.Fields) {
		ts.rep.Matching++
		return nil
	}
	ts.rep.Mismatched++
	c.sample(ts, Sample{Outcome: Mismatched, Key: r.Label, Fields: DifferingFields(r.Fields, it.Fields)})
	return c.differ(ctx, ts, Mismatched, rec.Key, &rec)
}

// drain counts a table's remaining target rows as extra.
func (c *comparison) drain(ctx context.Context, table string) error {
	ts := c.report(table)
	for {
		it, err := c.peek(ctx, ts)
		if err != nil || it == nil {
			return err
		}
		ts.head = nil
		if err := c.extra(ctx, ts, it, it.Label); err != nil {
			return err
		}
	}
}

// record merges one source record into its table's comparison. An
// excluded record is only counted: its target row, if any, is then met as
// a row the source lacks, and extra names it ExcludedInTarget.
func (c *comparison) record(ctx context.Context, rec record.Record) error {
	if c.excludes(rec.Key) {
		c.exclude(rec)
		return nil
	}
	r := c.a.Route(rec)
	if !c.admit(rec, r) {
		return c.rejected(ctx, rec, r)
	}
	ts := c.report(r.Table)
	if ts.lastKey != nil && c.compare(r.Key, ts.lastKey) <= 0 {
		return fmt.Errorf("the source delivered %q after %q: not in key order, so it cannot be merged with table %s", r.Label, KeyString(ts.lastKey), r.Table)
	}
	ts.lastKey = r.Key
	for {
		head, err := c.peek(ctx, ts)
		if err != nil {
			return err
		}
		if head == nil {
			return c.missing(ctx, ts, rec, r)
		}
		switch cmp := c.compare(head.Key, r.Key); {
		case cmp < 0:
			ts.head = nil
			if err := c.extra(ctx, ts, head, head.Label); err != nil {
				return err
			}
			continue
		case cmp > 0:
			return c.missing(ctx, ts, rec, r)
		}
		ts.head = nil
		if head.Placeholder {
			return c.missing(ctx, ts, rec, r)
		}
		return c.match(ctx, ts, rec, r, *head)
	}
}

// CompareKeys orders keys element by element, each by its bytes (the order
// of PostgreSQL's "C" collation), then the shorter key first.
func CompareKeys(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	return len(a) - len(b)
}

// Checksum is the canonical content checksum of a record's fields: SHA-256
// of their typed-JSON encoding (sorted keys, exact numbers).
func Checksum(fields map[string]record.Value) [32]byte {
	return sha256.Sum256(record.MarshalJSONFields(nil, fields))
}

// DifferingFields names the top-level fields whose values differ, sorted.
func DifferingFields(a, b map[string]record.Value) []string {
	var out []string
	for k, av := range a {
		if bv, ok := b[k]; !ok || !record.Equal(av, bv) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// DDLFrom lists the statements a sink would run (postgres.SchemaChanges,
// a sink's PlannedDDL) as the plan shows them, in the same order.
func DDLFrom(stmts []postgres.Statement) []DDL {
	out := make([]DDL, len(stmts))
	for i, s := range stmts {
		out[i] = DDL{What: s.What, SQL: s.SQL}
	}
	return out
}
