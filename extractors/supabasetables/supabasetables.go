// Package supabasetables reads the tables of a Supabase project's schemas
// (--schemas, default public) from its database: their definition from
// the catalog (internal/pgcatalog) and their rows.
//
// Each table is one stream, split by primary-key ranges into partitions
// of about equal count (from the planner's statistics for a one-column
// key, else by numbering the rows). A partition is read in key order by keyset pages
// (WHERE key > last ORDER BY key LIMIT --supabase-page-size), each row
// fetched in the binary (or, for tables whose types need it, text) format
// of PostgreSQL's COPY, so that the sink writes it with COPY FROM STDIN
// unchanged; a row's cursor is its key. A table without a primary key is
// one partition read in physical order by ctid windows; its cursor is the
// row's ctid. After every table come two more streams: the index stream
// (pgcatalog.IndexStream), a partition and one record per table with keys
// or indexes, on which the sink creates them (tables in parallel, as
// pg_restore -j builds them), then the finish stream
// (pgcatalog.FinishStream) of one record carrying the sequences' values:
// the sink creates the foreign keys and sets the sequences when it writes
// it.
//
// ForComparison makes it read as plan and verify need instead: one
// partition per table, every column as text, ordered by the key's text
// (COLLATE "C") or, for a keyless table, by the MD5 of the row's text,
// which the target's rows are read in too.
package supabasetables

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/supabase"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// SchemasOption names the schemas whose tables are copied.
var SchemasOption = plugin.Option{
	Name:    "schemas",
	Help:    "Comma-separated schemas of the Supabase database whose tables, types and sequences are copied (auth and storage move as the users and files kinds).",
	Default: "public",
}

// Name is the extractor's registered name.
const Name = "supabase-tables"

func init() {
	extractors.Register(extractors.Spec{
		Source: supabase.Source,
		Name:   Name,
		Kind:   record.KindTable,
		Help:   "The tables of the Supabase database's schemas (--schemas): their definition, then their rows, by primary-key ranges.",
		Options: []plugin.Option{
			supabase.DBOption, supabase.PageSizeOption, SchemasOption,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// Extractor reads the tables. It is safe for concurrent use.
type Extractor struct {
	db       *supabase.DB
	cat      *pgcatalog.Catalog
	schemas  []string
	pageSize int
	policy   retry.Policy
	compare  bool
	// confirmed is the LSN the target has committed (Confirm).
	confirmed atomic.Uint64
}

var (
	_ extractors.Extractor  = (*Extractor)(nil)
	_ extractors.Counter    = (*Extractor)(nil)
	_ extractors.Configured = (*Extractor)(nil)
)

// New connects to the database cfg names and reads the catalog of its
// schemas.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	e := &Extractor{}
	for _, s := range strings.Split(cfg.String(SchemasOption.Name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			e.schemas = append(e.schemas, s)
		}
	}
	if len(e.schemas) == 0 {
		e.schemas = []string{"public"}
	}
	for _, s := range e.schemas {
		if s == "auth" || s == "storage" {
			return nil, fmt.Errorf("--schemas: %s is Supabase's own schema; its users and files move as the users and files kinds", s)
		}
	}
	var err error
	if e.pageSize, err = supabase.PageSize(cfg); err != nil {
		return nil, err
	}
	if e.policy, err = retry.FromConfig(cfg); err != nil {
		return nil, err
	}
	if e.db, err = supabase.Connect(ctx, cfg, 8); err != nil {
		return nil, err
	}
	err = retry.Do(ctx, e.policy, "reading the catalog of "+e.Source(), func(ctx context.Context) error {
		e.cat, err = pgcatalog.Load(ctx, e.db.Pool, e.schemas)
		return err
	})
	if err != nil {
		e.db.Pool.Close()
		return nil, err
	}
	return e, nil
}

// ForComparison makes the extractor read as plan and verify need (see
// the package comment). Call it before Plan.
func (e *Extractor) ForComparison() { e.compare = true }

// Catalog is the definition of the schemas, read when the extractor was
// built.
func (e *Extractor) Catalog() *pgcatalog.Catalog { return e.cat }

// Source names the database's tables: "supabase-tables:host:port/db".
func (e *Extractor) Source() string { return "supabase-tables:" + e.db.Name }

// RunSettings are the schemas copied.
func (e *Extractor) RunSettings() map[string]string {
	return map[string]string{"schemas": strings.Join(e.schemas, ",")}
}

// Close closes the pool.
func (e *Extractor) Close() error {
	e.db.Pool.Close()
	return nil
}

// Plan lists one stream per table, split by key ranges into at most
// partitions partitions (one for a keyless table, and one for every table
// when comparing), then the index and finish streams (not when
// comparing).
func (e *Extractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	var out []extractors.Stream
	for _, t := range e.cat.Tables {
		st := extractors.Stream{Name: t.QName(), Kind: record.KindTable}
		if e.compare || len(t.Key) == 0 || partitions < 2 {
			st.Partitions = []extractors.Partition{{Stream: st.Name, ID: "0"}}
			out = append(out, st)
			continue
		}
		var keys []string
		for _, k := range t.Key {
			keys = append(keys, pgx.Identifier{k}.Sanitize()+"::text")
		}
		var points []string
		what := "splitting " + t.QName() + " of " + e.Source()
		err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			var err error
			if points, err = e.histogramPoints(ctx, t, partitions); err != nil || points != nil {
				return err
			}
			points, err = supabase.SplitPoints(ctx, e.db.Pool, "json_build_array("+strings.Join(keys, ", ")+")::text", t.KeyList(), "FROM "+t.QName(), nil, partitions)
			return err
		})
		if err != nil {
			return nil, retry.Describe(what, err)
		}
		start := ""
		for i, pt := range points {
			st.Partitions = append(st.Partitions, extractors.Partition{Stream: st.Name, ID: strconv.Itoa(i), Start: start, End: pt})
			start = pt
		}
		st.Partitions = append(st.Partitions, extractors.Partition{Stream: st.Name, ID: strconv.Itoa(len(points)), Start: start})
		out = append(out, st)
	}
	if !e.compare {
		// The tables with keys or indexes, dealt out to at most partitions
		// partitions; a partition's Start lists its tables (EncodeKey).
		var groups [][]string
		n := 0
		for _, t := range e.cat.Tables {
			if len(t.Keys) == 0 && len(t.Indexes) == 0 {
				continue
			}
			if len(groups) < max(partitions, 1) {
				groups = append(groups, nil)
			}
			i := n % len(groups)
			groups[i] = append(groups[i], t.QName())
			n++
		}
		if len(groups) > 0 {
			idx := extractors.Stream{Name: pgcatalog.IndexStream, Kind: record.KindTable}
			for i, g := range groups {
				idx.Partitions = append(idx.Partitions, extractors.Partition{Stream: idx.Name, ID: strconv.Itoa(i), Start: pgcatalog.EncodeKey(g)})
			}
			out = append(out, idx)
		}
		out = append(out, extractors.Stream{Name: pgcatalog.FinishStream, Kind: record.KindTable,
			Partitions: []extractors.Partition{{Stream: pgcatalog.FinishStream, ID: "0"}}})
	}
	return out, nil
}

// histogramPoints returns up to partitions-1 split points of a table
// with a one-column key from the planner's statistics (pg_stats'
// histogram_bounds: values that cut the column into runs of about equal
// count, as of the last ANALYZE), each as a cursor; nil when there are
// none. It costs one catalog read instead of a pass over the table; the
// runs are as equal as the statistics are fresh.
func (e *Extractor) histogramPoints(ctx context.Context, t *pgcatalog.Table, partitions int) ([]string, error) {
	if len(t.Key) != 1 {
		return nil, nil
	}
	var bounds []string
	err := e.db.Pool.QueryRow(ctx, `SELECT coalesce((SELECT histogram_bounds::text::text[] FROM pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3 AND NOT inherited), '{}')`, t.Schema, t.Name, t.Key[0]).Scan(&bounds)
	if err != nil || len(bounds) < partitions+1 {
		return nil, err
	}
	var points []string
	for k := 1; k < partitions; k++ {
		p := pgcatalog.EncodeKey([]string{bounds[k*(len(bounds)-1)/partitions]})
		if len(points) == 0 || points[len(points)-1] != p {
			points = append(points, p)
		}
	}
	return points, nil
}

// Count counts a table's rows (1 for the finish stream, and one per
// partition for the index stream).
func (e *Extractor) Count(ctx context.Context, st extractors.Stream) (int64, error) {
	if st.Name == pgcatalog.IndexStream {
		return int64(len(st.Partitions)), nil
	}
	t := e.cat.Find(st.Name)
	if t == nil {
		return 1, nil
	}
	var n int64
	what := "counting the rows of " + t.QName()
	err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
		return e.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+t.QName()).Scan(&n)
	})
	return n, retry.Describe(what, err)
}

// Read emits p's rows after the cursor after (see the package comment).
// A page that fails transiently is read again; emit is never called twice
// for a row.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	if p.Stream == pgcatalog.FinishStream {
		if after != "" {
			return nil
		}
		return e.finish(ctx, emit)
	}
	if p.Stream == pgcatalog.IndexStream {
		return readIndexes(p, after, emit)
	}
	t := e.cat.Find(p.Stream)
	if t == nil {
		return fmt.Errorf("reading %s: the table is no longer in the source's catalog", p.Stream)
	}
	if e.compare {
		if after != "" {
			return fmt.Errorf("reading %s for a comparison: cannot resume", p.Stream)
		}
		return e.readCompare(ctx, t, emit)
	}
	if len(t.Key) == 0 {
		return e.readKeyless(ctx, t, after, emit)
	}
	return e.readKeyed(ctx, t, p, after, emit)
}

// readIndexes emits a record of the index stream for each table of p
// after the cursor after (how many of p's tables were emitted).
func readIndexes(p extractors.Partition, after string, emit func(record.Record) error) error {
	tables, err := pgcatalog.DecodeKey(p.Start)
	if err != nil {
		return fmt.Errorf("reading partition %s of %s: %w", p.ID, p.Stream, err)
	}
	from := 0
	if after != "" {
		if from, err = strconv.Atoi(after); err != nil {
			return fmt.Errorf("reading partition %s of %s after %q: %w", p.ID, p.Stream, after, err)
		}
	}
	for i := from; i < len(tables); i++ {
		if err := emit(record.Record{Kind: record.KindTable, Key: pgcatalog.IndexStream + " " + tables[i], Cursor: strconv.Itoa(i + 1),
			Fields: map[string]record.Value{pgcatalog.FieldIndexes: record.String(tables[i])}}); err != nil {
			return err
		}
	}
	return nil
}

// row is a row read: its COPY tuple and its cursor.
type row struct {
	tuple  []byte
	cursor string
}

// page runs sql with text params and returns its rows: the first n
// columns in the table's format as a tuple, the others (text) as the
// cursor, a JSON array of them (or the one value when raw).
func (e *Extractor) page(ctx context.Context, t *pgcatalog.Table, sql string, params []string, raw bool) ([]row, error) {
	conn, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	pc := conn.Conn().PgConn()
	bin := t.Binary()
	if !bin {
		if err := pc.Exec(ctx, pgcatalog.SessionSettings).Close(); err != nil {
			return nil, err
		}
	}
	n := len(t.Copied())
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	var formats []int16
	if bin {
		formats = make([]int16, n, n+len(t.Key))
		for i := range formats {
			formats[i] = 1
		}
		formats = append(formats, make([]int16, max(len(t.Key), 1))...)
	}
	rr := pc.ExecParams(ctx, sql, vals, nil, nil, formats)
	var out []row
	for rr.NextRow() {
		v := rr.Values()
		r := row{}
		if bin {
			r.tuple = pgcatalog.BinaryTuple(v[:n])
		} else {
			r.tuple = pgcatalog.TextTuple(v[:n])
		}
		if raw {
			r.cursor = string(v[n])
		} else {
			keys := make([]string, len(v)-n)
			for i, k := range v[n:] {
				keys[i] = string(k)
			}
			r.cursor = pgcatalog.EncodeKey(keys)
		}
		out = append(out, r)
	}
	if _, err := rr.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func (e *Extractor) readKeyed(ctx context.Context, t *pgcatalog.Table, p extractors.Partition, after string, emit func(record.Record) error) error {
	what := fmt.Sprintf("reading partition %s of %s", p.ID, t.QName())
	qname := t.QName() // once, not per row: quoting costs
	table := record.String(qname)
	var rng pgcatalog.PartitionRange
	var err error
	if p.Start != "" {
		if rng.Start, err = pgcatalog.DecodeKey(p.Start); err != nil {
			return err
		}
	}
	if p.End != "" {
		if rng.End, err = pgcatalog.DecodeKey(p.End); err != nil {
			return err
		}
	}
	clear, _ := json.Marshal(rng)
	first := after == ""
	// The page's statement but for its conditions. ORDER BY names the
	// input columns (src.k): an output column of the same name would be
	// ambiguous.
	var keys, order []string
	for _, k := range t.Key {
		keys = append(keys, pgx.Identifier{k}.Sanitize()+"::text")
		order = append(order, "src."+pgx.Identifier{k}.Sanitize())
	}
	selectSQL := "SELECT " + t.CopyColumns() + ", " + strings.Join(keys, ", ") + " FROM " + qname + " AS src"
	orderSQL := " ORDER BY " + strings.Join(order, ", ") + " LIMIT " + strconv.Itoa(e.pageSize)
	for {
		var conds []string
		var params []string
		if after != "" {
			a, err := pgcatalog.DecodeKey(after)
			if err != nil {
				return err
			}
			conds = append(conds, t.KeyCond(">", len(params)+1))
			params = append(params, a...)
		} else if rng.Start != nil {
			conds = append(conds, t.KeyCond(">=", len(params)+1))
			params = append(params, rng.Start...)
		}
		if rng.End != nil {
			conds = append(conds, t.KeyCond("<", len(params)+1))
			params = append(params, rng.End...)
		}
		sql := selectSQL
		if len(conds) > 0 {
			sql += " WHERE " + strings.Join(conds, " AND ")
		}
		sql += orderSQL
		var rows []row
		err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			var err error
			rows, err = e.page(ctx, t, sql, params, false)
			return err
		})
		if err != nil {
			return retry.Describe(what, err)
		}
		for _, r := range rows {
			rec := record.Record{Kind: record.KindTable, Key: qname + " " + r.cursor, Cursor: r.cursor,
				Fields: map[string]record.Value{pgcatalog.FieldTable: table, pgcatalog.FieldTuple: record.Bytes(r.tuple)}}
			if first {
				rec.Fields[pgcatalog.FieldClear] = record.String(string(clear))
				first = false
			}
			if err := emit(rec); err != nil {
				return err
			}
			after = r.cursor
		}
		if len(rows) < e.pageSize {
			return nil
		}
	}
}

// ctidWindow is how many heap blocks a keyless table's page spans.
const ctidWindow = 128

func (e *Extractor) readKeyless(ctx context.Context, t *pgcatalog.Table, after string, emit func(record.Record) error) error {
	what := "reading " + t.QName()
	qname := t.QName() // once, not per row: quoting costs
	table := record.String(qname)
	first := after == ""
	cursor := after
	if cursor == "" {
		cursor = "(0,0)"
	}
	block, err := ctidBlock(cursor)
	if err != nil {
		return err
	}
	for {
		var blocks int64
		err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			return e.db.Pool.QueryRow(ctx, "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint", t.QName()).Scan(&blocks)
		})
		if err != nil {
			return retry.Describe(what, err)
		}
		if block >= blocks {
			return nil
		}
		end := fmt.Sprintf("(%d,0)", block+ctidWindow)
		// ORDER BY names the input column (src.ctid): a bare ctid would be
		// the output column, the ctid's text, whose order is not the
		// rows' ((0,10) before (0,2)), and a resumed read would repeat rows.
		sql := "SELECT " + t.CopyColumns() + ", ctid::text FROM " + t.QName() + " AS src WHERE ctid > $1::tid AND ctid < $2::tid ORDER BY src.ctid"
		var rows []row
		err = retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			var err error
			rows, err = e.page(ctx, t, sql, []string{cursor, end}, true)
			return err
		})
		if err != nil {
			return retry.Describe(what, err)
		}
		for _, r := range rows {
			rec := record.Record{Kind: record.KindTable, Key: qname + " " + r.cursor, Cursor: r.cursor,
				Fields: map[string]record.Value{pgcatalog.FieldTable: table, pgcatalog.FieldTuple: record.Bytes(r.tuple)}}
			if first {
				rec.Fields[pgcatalog.FieldClear] = record.String("{}")
				first = false
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
		block += ctidWindow
		cursor = end
	}
}

// ctidBlock returns the block number of a ctid's text, "(block,offset)".
func ctidBlock(ctid string) (int64, error) {
	s, _, ok := strings.Cut(strings.TrimPrefix(ctid, "("), ",")
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("reading the row position %q", ctid)
	}
	return n, nil
}

// readCompare streams every row of t as text, in the comparison's order
// (Table.CompareQuery). Rows of a keyless table are keyed by their MD5 and
// their rank among equal rows.
func (e *Extractor) readCompare(ctx context.Context, t *pgcatalog.Table, emit func(record.Record) error) error {
	what := "reading " + t.QName() + " for a comparison"
	conn, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		return retry.Describe(what, err)
	}
	defer conn.Release()
	pc := conn.Conn().PgConn()
	if err := pc.Exec(ctx, pgcatalog.SessionSettings).Close(); err != nil {
		return retry.Describe(what, err)
	}
	rr := pc.ExecParams(ctx, t.CompareQuery(), nil, nil, nil, nil)
	var emitErr error
	cr := pgcatalog.NewCompareReader(t)
	for rr.NextRow() {
		fields, key := cr.Row(rr.Values())
		c := pgcatalog.EncodeKey(key)
		if emitErr = emit(record.Record{Kind: record.KindTable, Key: t.QName() + " " + c, Cursor: c, Fields: fields}); emitErr != nil {
			break
		}
	}
	_, err = rr.Close()
	if emitErr != nil {
		return emitErr
	}
	if err != nil {
		return retry.Describe(what, err)
	}
	return nil
}

// finish emits the finish stream's record: the sequences' values now.
func (e *Extractor) finish(ctx context.Context, emit func(record.Record) error) error {
	var vals []pgcatalog.SequenceValue
	what := "reading the sequences of " + e.Source()
	err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
		vals = vals[:0]
		for _, s := range e.cat.Sequences {
			v := pgcatalog.SequenceValue{Name: s.Ident()}
			if err := e.db.Pool.QueryRow(ctx, "SELECT last_value, is_called FROM "+s.Ident()).Scan(&v.Value, &v.IsCalled); err != nil {
				return err
			}
			vals = append(vals, v)
		}
		for _, t := range e.cat.Tables {
			for _, c := range t.Columns {
				if c.Identity == "" {
					continue
				}
				var name string
				if err := e.db.Pool.QueryRow(ctx, "SELECT pg_get_serial_sequence($1, $2)", t.QName(), c.Name).Scan(&name); err != nil {
					return err
				}
				// name is already quoted and qualified.
				v := pgcatalog.SequenceValue{Table: t.QName(), Column: c.Name}
				if err := e.db.Pool.QueryRow(ctx, "SELECT last_value, is_called FROM "+name).Scan(&v.Value, &v.IsCalled); err != nil {
					return err
				}
				vals = append(vals, v)
			}
		}
		return nil
	})
	if err != nil {
		return retry.Describe(what, err)
	}
	b, _ := json.Marshal(vals)
	return emit(record.Record{Kind: record.KindTable, Key: pgcatalog.FinishStream, Cursor: "done",
		Fields: map[string]record.Value{pgcatalog.FieldSequences: record.String(string(b))}})
}
