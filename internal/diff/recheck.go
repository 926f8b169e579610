package diff

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// recheckChunk is how many keys Recheck reads from the source, and looks
// up in the target, at a time.
const recheckChunk = 300

// Recheck compares the records of the given source keys only, as Compare
// compares every record: it reads them through g as the source was at
// readTime, routes them with the adapter, looks up the target rows of the
// same keys inside one read-only, repeatable-read transaction, and reports
// per table what Compare would report for those keys — matching,
// mismatched, missing in the target, rejected, overflow, and extra in the
// target: a key the source has no record for (any more) whose row the
// target still holds (placeholders are counted as such, not as extra).
// opts.OnDifference, when set, sees every difference as Compare's does.
//
// The adapter must be a TargetLookup and a KeyRouter (to place keys the
// source does not have). g nil means ex, which must then be an
// extractors.Getter; ex also meters the reads (SourceReads counts those
// of this re-check when ex or g is a ReadMeter). Keys come in any order
// and are read a few hundred at a time, so memory beyond keys itself is
// bounded by that; a key given twice is checked once. Report.ReadTime is
// readTime.
func Recheck(ctx context.Context, g extractors.Getter, ex extractors.Extractor, pool *pgxpool.Pool, a Adapter, keys []string, readTime time.Time, opts Options) (*Report, error) {
	if g == nil {
		var ok bool
		if g, ok = ex.(extractors.Getter); !ok {
			return nil, fmt.Errorf("re-checking %ss: the source cannot read records by key", a.Kind())
		}
	}
	tl, ok := a.(TargetLookup)
	kr, ok2 := a.(KeyRouter)
	if !ok || !ok2 {
		return nil, fmt.Errorf("re-checking %ss: this kind of record cannot be looked up by key in the target", a.Kind())
	}
	meter, _ := g.(extractors.ReadMeter)
	if meter == nil {
		meter, _ = ex.(extractors.ReadMeter)
	}
	var readsBefore int64
	if meter != nil {
		readsBefore = meter.BillableReads()
	}
	tx, err := beginSnapshot(ctx, pool, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	c := newComparison(a, tx, opts)
	r := &recheck{c: c, tl: tl, kr: kr}
	done := make(map[string]struct{}, len(keys)) // the keys checked, to check each once
	chunk := make([]string, 0, recheckChunk)
	for i, k := range keys {
		if _, dup := done[k]; !dup {
			done[k] = struct{}{}
			chunk = append(chunk, k)
		}
		if len(chunk) == recheckChunk || (i == len(keys)-1 && len(chunk) > 0) {
			if err := r.chunk(ctx, g, chunk, readTime); err != nil {
				return nil, err
			}
			chunk = chunk[:0]
		}
	}
	rep := &Report{ReadTime: readTime, SourceReads: -1}
	c.finish(rep)
	if meter != nil {
		rep.SourceReads = meter.BillableReads() - readsBefore
	}
	return rep, nil
}

// recheck is the state of one Recheck.
type recheck struct {
	c  *comparison
	tl TargetLookup
	kr KeyRouter
}

// checked is one key of a chunk: the source record, routed, or where the
// key would go when the source has no record for it.
type checked struct {
	key      string
	rec      *record.Record
	r        Routed
	table    string
	target   []string
	admitted bool
}

// chunk re-checks some distinct keys.
func (r *recheck) chunk(ctx context.Context, g extractors.Getter, keys []string, readTime time.Time) error {
	items := make([]checked, 0, len(keys))
	err := g.Get(ctx, keys, readTime, func(key string, rec *record.Record) error {
		ck := checked{key: key}
		if rec != nil && r.c.excludes(key) {
			// Excluded: counted, and its key checked as one the source
			// does not have; extra names a row of it ExcludedInTarget.
			r.c.exclude(r.c.a.Route(*rec))
			rec = nil
		}
		if rec != nil {
			ck.r = r.c.a.Route(*rec)
			if r.c.admit(*rec, ck.r) {
				ck.rec, ck.admitted = rec, true
				ck.table, ck.target = ck.r.Table, ck.r.Key
				items = append(items, ck)
				return nil
			}
			// A record with no place in the target: a row of its key is
			// one the source does not have, as Compare counts it.
		}
		if table, target, ok := r.kr.RouteKey(key); ok {
			ck.table, ck.target, ck.admitted = table, target, true
		}
		items = append(items, ck)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the source's records by key: %w", err)
	}
	byTable := map[string][][]string{}
	for _, ck := range items {
		if ck.admitted {
			byTable[ck.table] = append(byTable[ck.table], ck.target)
		}
	}
	found := make(map[string]map[string]Item, len(byTable))
	for table, tkeys := range byTable {
		if found[table], err = r.tl.Lookup(ctx, r.c.tx, table, tkeys); err != nil {
			return err
		}
	}
	for _, ck := range items {
		if !ck.admitted {
			continue
		}
		ts := r.c.report(ck.table)
		it, ok := found[ck.table][KeyString(ck.target)]
		switch {
		case ck.rec == nil && !ok:
			// Neither side holds it.
		case ck.rec == nil:
			if err := r.c.extra(ctx, ts, &it, ck.key); err != nil {
				return err
			}
		case !ok || it.Placeholder:
			if err := r.c.missing(ctx, ts, *ck.rec, ck.r); err != nil {
				return err
			}
		default:
			if err := r.c.match(ctx, ts, *ck.rec, ck.r, it); err != nil {
				return err
			}
		}
	}
	return nil
}

// StreamCount is the number of records of one source stream on either
// side.
type StreamCount struct {
	Stream string `json:"stream"`
	// Source is the number of the stream's records at the read time.
	Source int64 `json:"source"`
	// Target is the number of rows of the stream's tables that stand for
	// records: placeholders and rows marked deleted are not counted.
	Target int64 `json:"target"`
	// Tables are the stream's tables (Adapter.StreamTables).
	Tables []string `json:"tables"`
}

// CountRecords counts the records of every stream of ex's source as it
// was at readTime (ex must be an extractors.Counter), and the rows that
// stand for records in each stream's tables, in one read-only,
// repeatable-read transaction. A stream's counts differ when the target
// misses or holds records no change reported: records of a collection
// with no table yet count in the source only. A table of the adapter that
// no stream feeds (a root collection the source no longer has) and that
// holds rows is counted as a StreamCount of its own, with an empty Stream
// and Source 0. The adapter must be a TargetLookup.
func CountRecords(ctx context.Context, ex extractors.Extractor, pool *pgxpool.Pool, a Adapter, readTime time.Time) ([]StreamCount, error) {
	counter, ok := ex.(extractors.Counter)
	if !ok {
		return nil, fmt.Errorf("counting %ss: the source cannot count its records", a.Kind())
	}
	tl, ok := a.(TargetLookup)
	if !ok {
		return nil, fmt.Errorf("counting %ss: this kind of record cannot be counted in the target", a.Kind())
	}
	streams, err := ex.Plan(ctx, 1, readTime)
	if err != nil {
		return nil, fmt.Errorf("listing the source: %w", err)
	}
	tx, err := beginSnapshot(ctx, pool, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	out := make([]StreamCount, 0, len(streams))
	fed := map[string]bool{}
	for _, st := range streams {
		if st.ReadTime.IsZero() {
			st.ReadTime = readTime
		}
		sc := StreamCount{Stream: st.Name, Tables: a.StreamTables(st.Name)}
		if sc.Source, err = counter.Count(ctx, st); err != nil {
			return nil, fmt.Errorf("counting the source's records (%s): %w", st.Name, err)
		}
		for _, table := range sc.Tables {
			n, err := tl.Count(ctx, tx, table)
			if err != nil {
				return nil, err
			}
			sc.Target += n
		}
		out = append(out, sc)
		for _, t := range sc.Tables {
			fed[t] = true
		}
	}
	// Tables no stream feeds: the source has no record of them (a root
	// collection deleted whole).
	for _, table := range a.Tables() {
		if fed[table] {
			continue
		}
		n, err := tl.Count(ctx, tx, table)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, StreamCount{Target: n, Tables: []string{table}})
		}
	}
	return out, nil
}
