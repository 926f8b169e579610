package diff

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Files adapts the objects of a source bucket (an extractor of files, see
// extractors.Bucketed) and what the files sink (loaders/postgres.Files)
// made of them: a row of the metadata table and an object in the object
// store.
//
// An object is compared as one item of the table, keyed (bucket, name) and
// merged in the byte order of names — the order of the bucket's listing,
// and of the table read with COLLATE "C". Its content is every column of
// its row but the key, under the column's name (size, md5, crc32c,
// generation, content_type, metadata, download_tokens, created_at,
// target_key, ...). The source side is the record laid out by the sink
// itself (postgres.Files.Layout: the same decoding, key and target as
// migrate), so that objects the sink would refuse are reported with its
// reason.
//
// The target side also checks each row's object in the object store,
// under the key migrate copies it to: one objectstore.Inspect per chunk
// of rows, so a listing per chunk for S3 (a HEAD only for objects stored
// in parts) and a read-back for a directory. An object that is not what
// its row says adds a field only the target has: object (no object),
// object_size (another size) or object_checksum (same size, other bytes).
// The row itself is compared with the source field by field, so a target
// whose rows equal the source and whose objects equal their rows holds
// the source.
//
// Only rows of the compared bucket, and with names under the compared
// prefix, are read: a table may hold several buckets.
type Files struct {
	sink   *postgres.Files
	store  *objectstore.Store
	bucket string
	prefix string
	table  string // the report's table name: schema.table
	cols   []postgres.FilesColumn
	opened int
	chunk  int // rows read and inspected at a time

	copy copyTally
}

var (
	_ Adapter      = (*Files)(nil)
	_ TargetLookup = (*Files)(nil)
	_ KeyRouter    = (*Files)(nil)
)

// FilesConfig says what to compare files with.
type FilesConfig struct {
	// Store is the object store migrate copies to; it is only read.
	Store *objectstore.Store
	// Schema and Table name the metadata table ("" for public and
	// postgres.DefaultFilesTable).
	Schema, Table string
	// Bucket is the source bucket, and Prefix the start of the names
	// compared ("" for all): the extractor's (extractors.Bucketed).
	Bucket, Prefix string
	// ObjectURL, if set, names source objects in reasons as the source
	// does (extractors.ObjectURL); by default "bucket/name".
	ObjectURL func(bucket, name string) string
}

// fileChunk is how many rows are read, and their objects inspected, at a
// time.
const fileChunk = 500

// Names of the compared fields that are not columns: what the object
// store holds under an object's key when that is not what its row says.
const (
	FieldObject         = "object"
	FieldObjectSize     = "object_size"
	FieldObjectChecksum = "object_checksum"
)

// NewFiles prepares comparing the files of cfg.Bucket with the metadata
// table and the object store.
func NewFiles(cfg FilesConfig) *Files {
	sink := postgres.NewFiles(cfg.Store, cfg.Schema, cfg.Table)
	sink.SetObjectURL(cfg.ObjectURL)
	return &Files{
		sink: sink, store: cfg.Store, bucket: cfg.Bucket, prefix: cfg.Prefix,
		table: sink.Schema() + "." + sink.Name(), cols: postgres.FilesColumns(), chunk: fileChunk,
	}
}

// Kind is "file".
func (a *Files) Kind() string { return string(record.KindFile) }

// Tables is the metadata table, named with its schema.
func (a *Files) Tables() []string { return []string{a.table} }

// StreamTables is the metadata table for the bucket's one stream.
func (a *Files) StreamTables(string) []string { return []string{a.table} }

// Route lays the object out as the sink would and names the values its
// row should hold.
func (a *Files) Route(rec record.Record) Routed {
	row, reason := a.sink.Layout(rec)
	if reason != "" {
		return Routed{Table: a.table, Reject: reason}
	}
	it := a.item(row)
	it.Label = rec.Key
	a.copy.source(it, a.sizeOf(row))
	return Routed{Table: a.table, Item: it}
}

// item names the values of a row, as the sink hands them to pgx or as the
// cursor reads them; the key columns make the key, and NULLs are left out.
func (a *Files) item(row []any) Item {
	fields := make(map[string]record.Value, len(a.cols))
	var key [2]string
	for i, c := range a.cols {
		if i >= len(row) {
			break
		}
		if i < 2 {
			key[i], _ = row[i].(string)
			continue
		}
		if v, ok := fileColumnValue(c, row[i]); ok {
			fields[c.Name] = v
		}
	}
	return Item{Key: key[:], Label: key[1], Fields: fields}
}

// sizeOf returns the size column of a row (0 when it has none).
func (a *Files) sizeOf(row []any) int64 {
	for i, c := range a.cols {
		if c.Name == "size" && i < len(row) {
			n, _ := row[i].(int64)
			return n
		}
	}
	return 0
}

// fileColumnValue turns a value of a files column — as the sink hands it
// to pgx, or as the cursor reads it — into a compared value; false for
// NULL. jsonb is compared as canonical JSON text and text[] as an array
// of strings; text that is not what the type promises stays text, and so
// differs from any proper value.
func fileColumnValue(c postgres.FilesColumn, v any) (record.Value, bool) {
	switch x := v.(type) {
	case nil:
		return record.Value{}, false
	case string:
		switch c.Type {
		case "jsonb":
			return fileJSONValue([]byte(x)), true
		case "text[]":
			var elems []*string
			if err := json.Unmarshal([]byte(x), &elems); err != nil {
				return record.String(x), true
			}
			arr := make([]record.Value, len(elems))
			for i, e := range elems {
				if e != nil {
					arr[i] = record.String(*e)
				}
			}
			return record.Array(arr...), true
		}
		return record.String(x), true
	case []byte:
		if x == nil {
			return record.Value{}, false
		}
		if c.Type == "jsonb" {
			return fileJSONValue(x), true
		}
		return record.Bytes(x), true
	case []string:
		arr := make([]record.Value, len(x))
		for i, e := range x {
			arr[i] = record.String(e)
		}
		return record.Array(arr...), true
	case int64:
		return record.Int(x), true
	case int32:
		return record.Int(int64(x)), true
	case time.Time:
		return record.Timestamp(x), true
	}
	return record.String(fmt.Sprint(v)), true
}

// fileJSONValue is a jsonb value as canonical JSON text: jsonb reorders
// keys and drops spaces.
func fileJSONValue(text []byte) record.Value {
	if c, ok := canonicalJSON(text); ok {
		return record.String(c)
	}
	return record.String(string(text))
}

// query is the SELECT of the bucket's rows under the prefix (rows marked
// deleted excluded) that also meet cond ("" for none), with jsonb and
// text[] read as JSON text; ordered, in the byte order of names.
func (a *Files) query(ctx context.Context, tx pgx.Tx, cond string, ordered bool) (string, error) {
	var sel []string
	for _, c := range a.cols {
		q := pgx.Identifier{c.Name}.Sanitize()
		switch c.Type {
		case "jsonb":
			q += "::text" // the text: pgx would decode numbers as float64
		case "text[]":
			q = "array_to_json(" + q + ")::text"
		}
		sel = append(sel, q)
	}
	// Compared in bytes, whatever the columns' collations.
	where := "bucket = " + textLiteral(a.bucket) + ` COLLATE "C"`
	if a.prefix != "" {
		where += " AND starts_with(name, " + textLiteral(a.prefix) + ` COLLATE "C")`
	}
	live, err := postgres.LiveRows(ctx, tx, a.sink.Schema(), a.sink.Name(), "")
	if err != nil {
		return "", err
	}
	where += " AND " + live
	if cond != "" {
		where += " AND " + cond
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), pgx.Identifier{a.sink.Schema(), a.sink.Name()}.Sanitize(), where)
	if !ordered {
		return q, nil
	}
	// Byte order is COLLATE "C" in a UTF-8 database; in any other, the
	// names' UTF-8 bytes are compared.
	var utf8 bool
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_encoding') = 'UTF8'`).Scan(&utf8); err != nil {
		return "", fmt.Errorf("reading %s: %w", a.table, err)
	}
	order := `name COLLATE "C"`
	if !utf8 {
		order = `convert_to(name, 'UTF8')`
	}
	return q + " ORDER BY " + order, nil
}

// textLiteral writes s as an SQL expression that cannot be anything but
// the text s, whatever it holds and however the server quotes strings.
func textLiteral(s string) string {
	return "convert_from(decode('" + hex.EncodeToString([]byte(s)) + "', 'hex'), 'UTF8')"
}

// Open opens a cursor over the metadata table in key order, or returns nil
// when the table does not exist.
func (a *Files) Open(ctx context.Context, tx pgx.Tx, table string) (TargetCursor, error) {
	if table != a.table {
		return nil, nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.sink.Schema(), a.sink.Name())
	if err != nil {
		return nil, err
	}
	if !ok {
		a.copy.targetEnd()
		return nil, nil
	}
	q, err := a.query(ctx, tx, "", true)
	if err != nil {
		return nil, err
	}
	a.opened++
	c, err := postgres.OpenCursor(ctx, tx, fmt.Sprintf("diff_files_%d", a.opened), q, a.chunk)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", a.table, err)
	}
	return &fileCursor{a: a, c: c}, nil
}

// fileCursor reads the table a chunk at a time and inspects the chunk's
// objects in one go.
type fileCursor struct {
	a    *Files
	c    *postgres.Cursor
	buf  []Item
	last []string
}

func (c *fileCursor) Next(ctx context.Context) (Item, bool, error) {
	if len(c.buf) == 0 {
		if err := c.fill(ctx); err != nil {
			return Item{}, false, err
		}
	}
	if len(c.buf) == 0 {
		c.a.copy.targetEnd()
		return Item{}, false, nil
	}
	it := c.buf[0]
	c.buf = c.buf[1:]
	c.a.copy.target(it)
	return it, true, nil
}

// fill reads the next chunk of rows and adds to each what the object
// store holds for it.
func (c *fileCursor) fill(ctx context.Context) error {
	for len(c.buf) < c.a.chunk {
		vals, ok, err := c.c.Next(ctx)
		if err != nil {
			return fmt.Errorf("reading %s: %w", c.a.table, err)
		}
		if !ok {
			break
		}
		it := c.a.item(vals)
		if c.last != nil && CompareKeys(it.Key, c.last) <= 0 {
			return fmt.Errorf("reading %s: object %q came after %q, not in the byte order of names", c.a.table, it.Label, c.last[1])
		}
		c.last = it.Key
		c.buf = append(c.buf, it)
	}
	return c.a.inspect(ctx, c.buf)
}

// inspect adds to each item what the object store holds for its row.
func (a *Files) inspect(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	files := make([]record.File, len(items))
	for i, it := range items {
		files[i] = rowFile(it)
	}
	verdicts, err := a.store.Inspect(ctx, files)
	if err != nil {
		return err
	}
	for i, v := range verdicts {
		switch v {
		case objectstore.Absent:
			items[i].Fields[FieldObject] = record.String("missing")
		case objectstore.OtherSize:
			items[i].Fields[FieldObjectSize] = record.String("differs from the row")
		case objectstore.OtherChecksum:
			items[i].Fields[FieldObjectChecksum] = record.String("differs from the row")
		}
	}
	return nil
}

// Lookup reads the rows of keys (bucket, name) in the table, with what
// the object store holds for each (see TargetLookup). A Files adapter
// that looks rows up no longer adds up BytesToCopy: that follows a
// merge only.
func (a *Files) Lookup(ctx context.Context, tx pgx.Tx, table string, keys [][]string) (map[string]Item, error) {
	a.copy.off = true
	out := map[string]Item{}
	if table != a.table || len(keys) == 0 {
		return out, nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.sink.Schema(), a.sink.Name())
	if err != nil || !ok {
		return out, err
	}
	var names []string
	for _, k := range keys {
		if len(k) == 2 && k[0] == a.bucket {
			names = append(names, k[1])
		}
	}
	// Rows are keyed below by their own names: a row that a column's
	// collation takes as equal to a name looked up is not consulted.
	q, err := a.query(ctx, tx, "name = ANY($1::text[])", false)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, q, names)
	if err != nil {
		return nil, fmt.Errorf("looking up objects in %s: %w", a.table, err)
	}
	var items []Item
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("looking up objects in %s: %w", a.table, err)
		}
		items = append(items, a.item(vals))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up objects in %s: %w", a.table, err)
	}
	if err := a.inspect(ctx, items); err != nil {
		return nil, err
	}
	for _, it := range items {
		out[KeyString(it.Key)] = it
	}
	return out, nil
}

// Count returns the number of rows of the bucket's objects under the
// prefix (rows marked deleted excluded); 0 when the table does not exist.
func (a *Files) Count(ctx context.Context, tx pgx.Tx, table string) (int64, error) {
	if table != a.table {
		return 0, nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.sink.Schema(), a.sink.Name())
	if err != nil || !ok {
		return 0, err
	}
	q, err := a.query(ctx, tx, "", false)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM ("+q+") rows").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", a.table, err)
	}
	return n, nil
}

// RouteKey places an object name: the metadata table, keyed (bucket,
// name), for names under the compared prefix the table can hold.
func (a *Files) RouteKey(name string) (string, []string, bool) {
	if name == "" || !strings.HasPrefix(name, a.prefix) || record.TextProblem(name) != "" {
		return "", nil, false
	}
	return a.table, []string{a.bucket, name}, true
}

// rowFile is what a row says of its object: name, size and checksums. A
// checksum the row does not hold in the sink's form (lowercase hex) is
// left out, so the object cannot be found to match it.
func rowFile(it Item) record.File {
	f := record.File{Name: it.Key[1]}
	if v, ok := it.Fields["size"]; ok && v.Type() == record.TypeInt {
		f.Size = v.IntValue()
	}
	if v, ok := it.Fields["md5"]; ok && v.Type() == record.TypeString {
		if b, err := hex.DecodeString(v.StringValue()); err == nil && len(b) == 16 {
			f.MD5 = b
		}
	}
	if v, ok := it.Fields["crc32c"]; ok && v.Type() == record.TypeString && len(v.StringValue()) == 8 {
		if n, err := strconv.ParseUint(v.StringValue(), 16, 32); err == nil {
			f.CRC32C, f.HasCRC32C = uint32(n), true
		}
	}
	return f
}

// BytesToCopy returns the total size of the source objects that are
// missing in the target or differ from it (row or object): what migrate
// would copy at most. It is complete once the comparison has ended.
func (a *Files) BytesToCopy() int64 {
	a.copy.settle(true)
	return a.copy.bytes
}

// copyTally follows the engine's merge of the source with the table —
// both in key order, the target one row ahead at most — to add up the
// sizes of the source objects that find no equal row. It keeps only the
// objects not yet settled: a few at any time.
type copyTally struct {
	sources []copySource
	targets []copyTarget
	ended   bool
	bytes   int64
	// off stops the tally: the adapter looks rows up instead of merging.
	off bool
	// missing and mismatched count what the engine counts the same way,
	// so that tests can check the tally follows its merge.
	missing, mismatched int64
}

type copySource struct {
	key  []string
	sum  [32]byte
	size int64
}

type copyTarget struct {
	key []string
	sum [32]byte
}

// source notes a source item; the ones before it are settled by now: the
// engine has read the target past each of them.
func (t *copyTally) source(it Item, size int64) {
	if t.off {
		return
	}
	t.settle(false)
	t.sources = append(t.sources, copySource{key: it.Key, sum: Checksum(it.Fields), size: size})
}

// target notes a row the engine reads.
func (t *copyTally) target(it Item) {
	if t.off {
		return
	}
	t.targets = append(t.targets, copyTarget{key: it.Key, sum: Checksum(it.Fields)})
}

// targetEnd notes that the table has no more rows.
func (t *copyTally) targetEnd() { t.ended = true }

// settle decides the pending sources it can — all of them when final:
// each one with no row of its key, or a row with other content, adds its
// size.
func (t *copyTally) settle(final bool) {
	for len(t.sources) > 0 {
		s := t.sources[0]
		for len(t.targets) > 0 && CompareKeys(t.targets[0].key, s.key) < 0 {
			t.targets = t.targets[1:] // extra in the target
		}
		switch {
		case len(t.targets) > 0 && CompareKeys(t.targets[0].key, s.key) == 0:
			if t.targets[0].sum != s.sum {
				t.bytes += s.size
				t.mismatched++
			}
			t.targets = t.targets[1:]
		case len(t.targets) > 0 || t.ended || final:
			t.bytes += s.size
			t.missing++
		default:
			return
		}
		t.sources = t.sources[1:]
	}
}
