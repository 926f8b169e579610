package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

// Documents loads document records into the tables of a mapping.
type Documents struct {
	mapping *mappings.Mapping
	tr      *transformers.Documents
	defs    map[*mappings.Table]*tableDef
	// placeholderSQL inserts missing-parent rows per table.
	placeholderSQL map[*mappings.Table]string
	// lockSQL share-locks rows per table, in key order, by key.
	lockSQL map[*mappings.Table]string
	order   []*mappings.Table // parents before children
	owner   Owner
	// soft makes Prepare add loaders.DeletedAtColumn to every table
	// (SetSoftDeletes); marked lists the tables that have it, whose
	// upserts clear it (nil until Prepare or the first batch reads the
	// catalog, under detecting).
	soft      bool
	marked    map[*mappings.Table]bool
	detecting sync.Mutex
	// paths says which tables take the direct load path (direct.go):
	// those Prepare created. None until Prepare. EvolvingDocuments
	// shares it between the sinks of a growing mapping.
	paths *directPaths
	// links holds, per table with reference columns, the statements that
	// link the references of a batch's rows (refLinkSQL), built once.
	links map[*mappings.Table][]refLink
	// fields are the mapping's field transforms, applied to every record
	// before anything else sees it; vault keeps tokenize's tokens.
	fields *pii.Set
	vault  *pii.Vault
}

var (
	_ loaders.Sink        = (*Documents)(nil)
	_ loaders.Finisher    = (*Documents)(nil)
	_ loaders.Deleter     = (*Documents)(nil)
	_ loaders.SoftDeleter = (*Documents)(nil)
)

// NewDocuments prepares loading into the tables of m (validated).
func NewDocuments(m *mappings.Mapping) (*Documents, error) {
	tr, err := transformers.NewDocuments(m)
	if err != nil {
		return nil, err
	}
	fields, err := pii.Compile(m, nil)
	if err != nil {
		return nil, err
	}
	d := &Documents{mapping: m, tr: tr, defs: map[*mappings.Table]*tableDef{}, placeholderSQL: map[*mappings.Table]string{}, lockSQL: map[*mappings.Table]string{}, order: tablesByDepth(m), paths: &directPaths{}, fields: fields, vault: &pii.Vault{}}
	d.buildDefs(nil)
	d.links = refLinks(m)
	for _, t := range m.Tables {
		name := pgx.Identifier{m.Schema, t.Name}
		params := make([]string, len(t.KeyColumns()))
		for i := range params {
			params[i] = fmt.Sprintf("$%d::text[]", i+1)
		}
		d.placeholderSQL[t] = fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT *, true FROM unnest(%s) ON CONFLICT DO NOTHING",
			name.Sanitize(), quoteAll(t.KeyColumns()), pgx.Identifier{mappings.ColMissing}.Sanitize(), strings.Join(params, ", "))
		d.lockSQL[t] = fmt.Sprintf("SELECT 1 FROM %s t WHERE %s ORDER BY %s FOR KEY SHARE", name.Sanitize(), keyIn(t, "t"), quoteAll(t.KeyColumns()))
	}
	return d, nil
}

// buildDefs prepares the upserts into the mapping's tables; those of the
// tables in marked also set loaders.DeletedAtColumn to NULL, so that a
// document written again after a soft delete is live again.
func (d *Documents) buildDefs(marked map[*mappings.Table]bool) {
	d.marked = marked
	for _, t := range d.mapping.Tables {
		var names, types []string
		for _, c := range documentColumns(t) {
			names = append(names, c.name)
			types = append(types, c.ddlType)
		}
		if marked[t] {
			names = append(names, loaders.DeletedAtColumn)
			types = append(types, "timestamptz")
		}
		d.defs[t] = newTableDef(pgx.Identifier{d.mapping.Schema, t.Name}, names, types, t.KeyColumns())
	}
}

// SetVault makes tokenize keep its tokens in v (the target database's
// baasmigrate_vault.tokens by default). Call it before Prepare.
func (d *Documents) SetVault(v *pii.Vault) { d.vault = v }

// SetOwner makes Prepare claim the mapping's tables for o, refusing
// tables another source owns (see ClaimTables).
func (d *Documents) SetOwner(o Owner) { d.owner = o }

// TableLabel names the target table of a document key (loaders.Labeler):
// its table in the mapping, or a label saying why it has none.
func (d *Documents) TableLabel(key string) string { return d.tr.TableLabel(key) }

// SetSoftDeletes makes Prepare give every table of the mapping the column
// loaders.DeletedAtColumn, which Delete with soft set marks. Call it before
// Prepare.
func (d *Documents) SetSoftDeletes(on bool) { d.soft = on }

// Prepare claims the mapping's tables and creates its schema, tables,
// columns and foreign keys (and, with soft deletes, the deletion-time
// column). Tables that have a deletion-time column, whether added now or
// by an earlier run with soft deletes, get upserts that clear it.
//
// The tables Prepare creates — and only those — start on the direct load
// path: their batches are COPied straight in, falling back to staging and
// the upsert for a batch whose keys turn out to exist (see direct.go).
//
// Foreign keys that a PrepareToFinish left to the end of its run are
// built here, before any row is written: a plain Prepare leaves no table
// without its foreign key.
func (d *Documents) Prepare(ctx context.Context, db loaders.DB) error {
	return d.prepare(ctx, db, false)
}

// PrepareToFinish is Prepare for a run that calls Finish once its last
// batch committed (loaders.Finisher; the engine does): the tables it
// creates get their foreign keys only then, as pg_restore does, and the
// tables whose key an earlier attempt of the run left to its end keep
// waiting. Checking a child's parent row during the load costs PostgreSQL
// about as much as inserting the row; one check of the whole table at the
// end costs a fraction of that. What is left is recorded in the target
// (baasmigrate.deferred_foreign_keys) in the transaction that creates the
// tables, so a resumed run, in any process, still builds it.
//
// The rows do not need the key to be right: every row gets a parent row
// (or a placeholder) whether the key exists or not.
func (d *Documents) PrepareToFinish(ctx context.Context, db loaders.DB) error {
	return d.prepare(ctx, db, true)
}

// Finish builds the foreign keys PrepareToFinish left to the end of the
// run (BuildDeferredForeignKeys): once, however many processes and
// attempts the run took; a row without a parent row is an error that
// leaves the run unfinished.
func (d *Documents) Finish(ctx context.Context, db loaders.DB) error {
	if _, err := BuildDeferredForeignKeys(ctx, db, d.mapping); err != nil {
		return err
	}
	_, err := FinishReferences(ctx, db, d.mapping)
	return err
}

func (d *Documents) prepare(ctx context.Context, db loaders.DB, deferKeys bool) error {
	d.paths.reset(nil)
	fresh, err := freshTables(ctx, db, d.mapping)
	if err != nil {
		return err
	}
	if err := ApplySchemaWith(ctx, db, d.mapping, d.owner, SchemaOptions{SoftDeletes: d.soft, DeferForeignKeys: deferKeys}); err != nil {
		return err
	}
	if d.fields.Tokenizes() && d.vault.DB == nil {
		if err := d.vault.Ensure(ctx, db); err != nil {
			return err
		}
	}
	d.paths.reset(fresh)
	d.detecting.Lock()
	d.marked = nil
	d.detecting.Unlock()
	return d.detectMarked(ctx, db)
}

// detectMarked reads, once (Prepare, or the first batch of a sink not
// prepared), which tables have the deletion-time column — added by this
// run or an earlier one with soft deletes — and makes their upserts clear
// it.
func (d *Documents) detectMarked(ctx context.Context, db loaders.DB) error {
	d.detecting.Lock()
	defer d.detecting.Unlock()
	if d.marked != nil {
		return nil
	}
	marked := map[*mappings.Table]bool{}
	for _, t := range d.mapping.Tables {
		ok, err := ColumnExists(ctx, db, d.mapping.Schema, t.Name, loaders.DeletedAtColumn)
		if err != nil {
			return err
		}
		marked[t] = ok
	}
	d.buildDefs(marked)
	return nil
}

// Write upserts the documents of one batch, table by table, parents first.
// Every ancestor of a document gets a placeholder row (_missing = true)
// unless it already has a row, so documents under parents that exist only
// through their subcollections load too, and foreign keys hold whatever
// order partitions commit in.
func (d *Documents) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(recs))}
	if err := d.detectMarked(ctx, tx); err != nil {
		return out, err
	}
	type pending struct {
		rows [][]any
		idx  []int
	}
	arena := rowArenas.Get().(*rowArena)
	defer arena.release()
	rows := map[*mappings.Table]*pending{}
	holders := map[*mappings.Table]map[string][]string{}
	kidIdx := map[*mappings.Table][]int{} // documents with child tables
	kidRows := map[int]transformers.Row{}
	var fieldErrs []error
	if !d.fields.Empty() {
		recs, fieldErrs = d.fields.Apply(ctx, recs, d.vault.Writer(tx))
		out.Stored = recs
	}
	for i, rec := range recs {
		if fieldErrs != nil && fieldErrs[i] != nil {
			out.Tables[i] = d.tr.TableLabel(rec.Key)
			out.Reject(i, fieldErrs[i].Error())
			continue
		}
		row, err := d.tr.Transform(rec)
		if err != nil {
			out.Tables[i] = d.tr.TableLabel(rec.Key)
			out.Reject(i, err.Error())
			continue
		}
		out.Tables[i] = row.Table.Name
		for _, a := range d.tr.RowAncestors(row) {
			if holders[a.Table] == nil {
				holders[a.Table] = map[string][]string{}
			}
			holders[a.Table][strings.Join(a.Key, "\x00")] = a.Key
		}
		p := rows[row.Table]
		if p == nil {
			p = &pending{}
			rows[row.Table] = p
		}
		vals := arena.rowValues(row, d.marked[row.Table])
		p.rows = append(p.rows, vals)
		p.idx = append(p.idx, i)
		if len(row.Children) > 0 {
			kidIdx[row.Table] = append(kidIdx[row.Table], i)
			kidRows[i] = row
		}
	}
	written := map[*mappings.Table][][]any{} // tables with references
	inserted := map[*mappings.Table]bool{}   // tables loaded on the direct path
	for _, t := range d.order {
		if p := rows[t]; p != nil {
			changed, rejects, direct, err := d.load(ctx, tx, t, d.defs[t], p.rows)
			if err != nil {
				return out, err
			}
			out.AddChanged(t.Name, changed)
			for j, reason := range rejects {
				out.Reject(p.idx[j], reason)
			}
			inserted[t] = direct
			if direct && len(holders[t]) > 0 {
				// Rows this transaction inserted are locked by it and
				// exist: their children need no placeholder, and no
				// share lock on them.
				key := make([]string, len(t.KeyColumns()))
				for _, row := range p.rows {
					for i := range key {
						key[i] = row[i].(string)
					}
					delete(holders[t], strings.Join(key, "\x00"))
				}
			}
		}
		if p := rows[t]; p != nil && len(d.links[t]) > 0 {
			written[t] = p.rows
		}
		if keys := holders[t]; len(keys) > 0 {
			d.paths.placeholders.Add(1)
			if err := d.insertPlaceholders(ctx, tx, t, keys); err != nil {
				return out, err
			}
		}
	}
	if err := d.writeChildren(ctx, tx, childrenOf(kidIdx, kidRows, out.Rejects), inserted); err != nil {
		return out, err
	}
	if err := d.linkReferences(ctx, tx, written); err != nil {
		return out, err
	}
	return out, nil
}

// insertPlaceholders inserts missing-parent rows for keys that have no row,
// in key order so concurrent batches take row locks in the same order.
func (d *Documents) insertPlaceholders(ctx context.Context, tx pgx.Tx, t *mappings.Table, keys map[string][]string) error {
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	cols := make([][]string, len(t.KeyColumns()))
	for _, k := range sorted {
		for i, id := range keys[k] {
			cols[i] = append(cols[i], id)
		}
	}
	args := make([]any, len(cols))
	for i := range cols {
		args[i] = cols[i]
	}
	// The parent rows that exist are share-locked first: a concurrent
	// Delete that would remove one (a placeholder it sees without
	// children) waits for this batch and then sees its children, or, when
	// it went first, the row is gone and inserted again below — never a
	// child left without its parent row.
	// Both statements go in one round trip: this runs for every batch.
	b := &pgx.Batch{}
	b.Queue(d.lockSQL[t], args...)
	b.Queue(d.placeholderSQL[t], args...)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("locking %d parent rows of %s and inserting those missing: %w", len(keys), t.Name, err)
	}
	return nil
}

// rowArena holds the values of a batch's laid-out rows (rowValues) in a
// few large chunks instead of a slice and two boxed times per row. A
// batch's rows are used only while its Write runs (its COPYs have read
// them when they return), so Write hands its arena back for the next
// batch, cleared.
type rowArena struct {
	vals  arenaChunks[any]
	times arenaChunks[pgtype.Timestamptz]
}

var rowArenas = sync.Pool{New: func() any { return &rowArena{} }}

// arenaChunks hands out slices of chunks of T; cur and off are where the
// next slice starts.
type arenaChunks[T any] struct {
	chunks   [][]T
	cur, off int
}

// arenaChunk is how many values one chunk holds; arenaKeep is how many
// chunks a released arena keeps.
const arenaChunk, arenaKeep = 4096, 16

// take returns an empty slice with room for n elements.
func (a *arenaChunks[T]) take(n int) []T {
	for a.cur < len(a.chunks) && a.off+n > len(a.chunks[a.cur]) {
		a.cur, a.off = a.cur+1, 0
	}
	if a.cur == len(a.chunks) {
		a.chunks = append(a.chunks, make([]T, max(n, arenaChunk)))
	}
	s := a.chunks[a.cur][a.off : a.off : a.off+n]
	a.off += n
	return s
}

// reset clears what was handed out, so that no old value stays reachable.
func (a *arenaChunks[T]) reset() {
	for i := 0; i <= a.cur && i < len(a.chunks); i++ {
		clear(a.chunks[i])
	}
	if len(a.chunks) > arenaKeep {
		a.chunks = a.chunks[:arenaKeep]
	}
	a.cur, a.off = 0, 0
}

func (a *rowArena) release() {
	a.vals.reset()
	a.times.reset()
	rowArenas.Put(a)
}

// time is t as a row time (a *pgtype.Timestamptz, which pgx and
// transformers.AppendCopyField encode as the timestamptz it points to), or
// nil (NULL) for the zero time.
func (a *rowArena) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	p := a.times.take(1)[:1]
	p[0] = pgtype.Timestamptz{Time: t, Valid: true}
	return &p[0]
}

// rowValues lays a transformed row out in documentColumns order, with
// loaders.DeletedAtColumn NULL (live) at the end when live.
func (a *rowArena) rowValues(r transformers.Row, live bool) []any {
	n := len(r.Key) + len(r.Values) + 4
	if live {
		n++
	}
	vals := a.vals.take(n)
	for _, k := range r.Key {
		vals = append(vals, k)
	}
	vals = append(vals, r.Values...)
	vals = append(vals, a.time(r.CreateTime), a.time(r.UpdateTime))
	if r.Overflow == nil {
		vals = append(vals, nil)
	} else {
		vals = append(vals, r.Overflow)
	}
	vals = append(vals, false)
	if live {
		vals = append(vals, nil)
	}
	return vals
}
