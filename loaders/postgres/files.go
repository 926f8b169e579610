package postgres

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// DefaultFilesTable is the table file metadata goes to by default.
const DefaultFilesTable = "files"

// fileColumns are the columns of the files table, in row order, with their
// types. The key is (bucket, name).
var fileColumns = []struct{ name, ddlType string }{
	{"bucket", "text"},
	{"name", "text"},
	{"size", "bigint"},
	{"md5", "text"},    // lowercase hex; null for composite objects
	{"crc32c", "text"}, // 8 lowercase hex digits
	{"generation", "bigint"},
	{"metageneration", "bigint"},
	{"content_type", "text"},
	{"cache_control", "text"},
	{"content_disposition", "text"},
	{"content_encoding", "text"},
	{"content_language", "text"},
	{"storage_class", "text"},
	{"metadata", "jsonb"},
	{"download_tokens", "text[]"},
	{"created_at", "timestamptz"},
	{"updated_at", "timestamptz"},
	{"target", "text"},
	{"target_key", "text"},
}

// Files loads file records: it copies each object's bytes into an object
// store and records its metadata in one table, one row per object.
//
// A row is written in the batch's transaction only after its object was
// copied and verified (or found already present with the same checksum),
// so a committed checkpoint never covers an object that is not safely in
// the target.
type Files struct {
	store  *objectstore.Store
	name   pgx.Identifier
	label  string
	schema string
	def    *tableDef
	// tableOwner is the source the table is claimed for (SetTableOwner);
	// owner is the job writing through Files, and shareTarget lets it
	// write into a store another job writes into (SetOwner).
	tableOwner  Owner
	owner       string
	shareTarget bool
	// objectURL names source objects in messages (SetObjectURL).
	objectURL func(bucket, name string) string
	// soft is the table's soft-delete state (SetSoftDeletes); once it
	// has read whether the table has the column, def clears it.
	soft softColumn
	// bucket restricts Delete to rows of one bucket (SetBucket).
	bucket string
	// db is the database Prepare was given, for Purge.
	db loaders.DB
}

// SetObjectURL makes messages about a source object (target key
// collisions, also stored in baasmigrate.object_keys) name it with fn, the
// source's way of writing an object's address; by default an object is
// named "bucket/name".
func (f *Files) SetObjectURL(fn func(bucket, name string) string) { f.objectURL = fn }

// SetTableOwner makes Prepare claim the table for o, refusing a table
// another source owns (see ClaimTables); PlannedDDL then says so.
func (f *Files) SetTableOwner(o Owner) { f.tableOwner = o }

var (
	_ loaders.Sink        = (*Files)(nil)
	_ loaders.Reporter    = (*Files)(nil)
	_ loaders.Deleter     = (*Files)(nil)
	_ loaders.SoftDeleter = (*Files)(nil)
	_ loaders.Purger      = (*Files)(nil)
)

// NewFiles loads into schema.table ("" means "public" and
// DefaultFilesTable) and copies bytes with store.
func NewFiles(store *objectstore.Store, schema, table string) *Files {
	if schema == "" {
		schema = "public"
	}
	if table == "" {
		table = DefaultFilesTable
	}
	names := make([]string, len(fileColumns))
	types := make([]string, len(fileColumns))
	for i, c := range fileColumns {
		names[i], types[i] = c.name, c.ddlType
	}
	name := pgx.Identifier{schema, table}
	f := &Files{store: store, name: name, label: table, schema: schema,
		def: newTableDef(name, names, types, []string{"bucket", "name"})}
	f.soft = softColumn{schema: schema, table: table, id: name, detected: f.filesDetected}
	return f
}

// Table is the label of the table in outcomes and summaries.
func (f *Files) Table() string { return f.label }

// Schema is the schema of the table.
func (f *Files) Schema() string { return f.schema }

// Name is the name of the table, without its schema.
func (f *Files) Name() string { return f.name[1] }

// FilesColumn is a column of the files table.
type FilesColumn struct {
	Name string
	// Type is the column's PostgreSQL type as Prepare creates it.
	Type string
}

// FilesColumns lists the columns of the files table in the order of a
// row's values (Layout); the key is the first two, bucket and name.
func FilesColumns() []FilesColumn {
	out := make([]FilesColumn, len(fileColumns))
	for i, c := range fileColumns {
		out[i] = FilesColumn{Name: c.name, Type: c.ddlType}
	}
	return out
}

// ddl is what Prepare runs in PostgreSQL.
func (f *Files) ddl() []string {
	defs := make([]string, len(fileColumns))
	for i, c := range fileColumns {
		defs[i] = pgx.Identifier{c.name}.Sanitize() + " " + c.ddlType
	}
	return []string{
		"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{f.schema}.Sanitize(),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s,\n  PRIMARY KEY (bucket, name)\n)", f.name.Sanitize(), strings.Join(defs, ",\n  ")),
	}
}

// PlannedDDL returns what Prepare would run in db, for `plan`: nothing
// when the table exists, else the statements creating it (and its schema
// when missing); with soft deletes, the deletion-time column when the
// table lacks it. It only reads the catalog. The bucket or directory
// Prepare also creates is not DDL and is not listed.
func (f *Files) PlannedDDL(ctx context.Context, db loaders.DB) ([]Statement, error) {
	var schema, table bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), to_regclass($2) IS NOT NULL`,
		f.schema, f.name.Sanitize()).Scan(&schema, &table)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if err := CheckTableOwners(ctx, db, f.tableOwner, []pgx.Identifier{f.name}); err != nil {
		return nil, err
	}
	var out []Statement
	if !table {
		for _, stmt := range f.ddl() {
			if schema && strings.HasPrefix(stmt, "CREATE SCHEMA") {
				continue
			}
			out = append(out, Statement{What: describeDDL(stmt), SQL: stmt})
		}
	}
	soft, err := f.soft.changes(ctx, db)
	if err != nil {
		return nil, err
	}
	return append(out, soft...), nil
}

// Layout lays rec out exactly as Write would store it once its object is
// in the target — the values of its row, in the order of FilesColumns, as
// handed to pgx — or, with nil values, returns the reason Write would
// reject it before trying an upload (a record that is not a file, a key or
// metadata the target cannot hold). It writes nothing. Write may still
// reject an object Layout accepts: when the source or the target fails it
// for good, or PostgreSQL refuses a value.
func (f *Files) Layout(rec record.Record) ([]any, string) {
	file, err := record.FileFrom(rec)
	if err != nil {
		return nil, err.Error()
	}
	if reason := rowProblem(file); reason != "" {
		return nil, reason
	}
	if reason := f.store.Problem(file); reason != "" {
		return nil, reason
	}
	return f.row(file, f.store.Key(file.Name)), ""
}

// rowProblem says why the files table cannot hold file's row exactly, or
// returns "": a text value with a NUL byte or invalid UTF-8, which
// PostgreSQL text and jsonb refuse. Such an object is rejected before its
// bytes are copied, with the name written as Go's %q does.
func rowProblem(file record.File) string {
	if why := record.TextProblem(file.Name); why != "" {
		return fmt.Sprintf("object name %q %s, which the files table's text key cannot hold", file.Name, why)
	}
	if why := record.TextProblem(file.Bucket); why != "" {
		return fmt.Sprintf("object %q: bucket name %q %s, which the files table's text key cannot hold", file.Name, file.Bucket, why)
	}
	for _, v := range []string{file.ContentType, file.CacheControl, file.ContentDisposition, file.ContentEncoding, file.ContentLanguage, file.StorageClass} {
		if why := record.TextProblem(v); why != "" {
			return fmt.Sprintf("object %q: metadata value %q %s, which a text column cannot hold", file.Name, v, why)
		}
	}
	for k, v := range file.Metadata {
		for _, x := range []string{k, v} {
			if why := record.TextProblem(x); why != "" {
				return fmt.Sprintf("object %q: custom metadata %q %s, which a jsonb column cannot hold", file.Name, x, why)
			}
		}
	}
	return ""
}

// Prepare claims the table (see SetTableOwner), creates the schema and
// table when missing, and the target bucket or directory; it records the
// owner of the store and refuses a store another job writes into unless
// told to share it (see SetOwner and prepareKeys).
func (f *Files) Prepare(ctx context.Context, db loaders.DB) error {
	err := pgx.BeginFunc(ctx, beginner{db}, func(tx pgx.Tx) error {
		// Two processes preparing the same target serialise here.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
			return err
		}
		if err := ClaimTables(ctx, tx, f.tableOwner, []pgx.Identifier{f.name}); err != nil {
			return err
		}
		for _, s := range f.ddl() {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return f.soft.prepare(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("creating the files table %s: %w", f.name.Sanitize(), err)
	}
	f.db = db
	if err := f.store.Prepare(ctx); err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, beginner{db}, func(tx pgx.Tx) error { return f.prepareKeys(ctx, tx) })
	if err != nil {
		return fmt.Errorf("recording the keys of %s: %w", f.store, err)
	}
	return nil
}

// Write copies the batch's objects (concurrently, within the store's
// limits) and upserts a metadata row for each one copied or already
// present. Outcome.Changed counts the objects whose bytes were copied plus
// the rows of already-present objects that were inserted or changed;
// objects present with unchanged rows are the skipped ones (loaded minus
// changed). Objects the store rejects, rows PostgreSQL refuses, objects
// whose key another object holds or wants in the same batch (claimKeys),
// and objects whose key holds something this tool did not write (unless
// the store replaces foreign objects) are rejects. An error means the batch failed as a whole; it is marked
// retryable when the store says so.
func (f *Files) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(recs))}
	for i := range out.Tables {
		out.Tables[i] = f.label
	}
	if err := f.soft.detect(ctx, tx); err != nil {
		return out, err
	}
	// Every key is claimed before any object is copied: an object landing
	// on a key another object holds is rejected, never written over it.
	// An object whose row the table cannot hold claims none (it cannot be
	// stored, so it collides with nothing) and is rejected with that
	// reason; claims of objects rejected below are released at the end.
	// Each record is decoded once, here, for the claims and the copy.
	files := decodeFiles(recs)
	taken, claims, err := f.claimKeys(ctx, tx, recs, files)
	if err != nil {
		return out, err
	}
	var copyIdx []int
	var toCopy []record.Record
	var toCopyFiles []*record.File
	var guard []bool
	for i, rec := range recs {
		if _, ok := taken[i]; ok {
			continue
		}
		copyIdx = append(copyIdx, i)
		toCopy = append(toCopy, rec)
		toCopyFiles = append(toCopyFiles, files[i])
		// A key this tool has no record of writing may hold someone
		// else's object: it is not replaced.
		guard = append(guard, claims[i].fresh)
	}
	copiedResults, err := f.store.CopyDecoded(ctx, toCopy, toCopyFiles, guard)
	if err != nil {
		return out, err
	}
	results := make([]objectstore.Result, len(recs))
	for j, r := range copiedResults {
		results[copyIdx[j]] = r
	}
	for i := range taken {
		results[i].Outcome = objectstore.Rejected
		results[i].Reason = taken[i]
	}
	var copied, present [][]any
	var copiedIdx, presentIdx []int
	for i, r := range results {
		switch r.Outcome {
		case objectstore.Rejected:
			out.Reject(i, r.Reason)
		case objectstore.Copied:
			copied = append(copied, f.liveRow(r.File, r.Key))
			copiedIdx = append(copiedIdx, i)
		case objectstore.Skipped:
			present = append(present, f.liveRow(r.File, r.Key))
			presentIdx = append(presentIdx, i)
		default:
			return out, fmt.Errorf("object %q: the store reported no outcome", recs[i].Key)
		}
	}
	_, rejects, err := f.def.upsert(ctx, tx, copied)
	if err != nil {
		return out, err
	}
	for j, reason := range rejects {
		out.Reject(copiedIdx[j], reason)
	}
	out.AddChanged(f.label, int64(len(copied)-len(rejects)))
	changed, rejects, err := f.def.upsert(ctx, tx, present)
	if err != nil {
		return out, err
	}
	for j, reason := range rejects {
		out.Reject(presentIdx[j], reason)
	}
	out.AddChanged(f.label, changed)
	// Keys claimed by this batch for objects it did not store go back.
	var release [][]byte
	for i := range out.Rejects {
		if c, ok := claims[i]; ok && c.fresh {
			release = append(release, c.fold)
		}
	}
	return out, f.releaseKeys(ctx, tx, release)
}

// decodeFiles decodes each record of recs (record.FileFrom); an entry is
// nil for a record that is not a file, which the store then rejects with
// the reason.
func decodeFiles(recs []record.Record) []*record.File {
	files := make([]*record.File, len(recs))
	for i, rec := range recs {
		if file, err := record.FileFrom(rec); err == nil {
			files[i] = &file
		}
	}
	return files
}

// row is the table row of an object copied or present under key.
func (f *Files) row(file record.File, key string) []any {
	var md5, crc any
	if file.MD5 != nil {
		md5 = hex.EncodeToString(file.MD5)
	}
	if file.HasCRC32C {
		crc = fmt.Sprintf("%08x", file.CRC32C)
	}
	meta := file.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	metaJSON, _ := json.Marshal(meta) // a map of strings always encodes
	tokens := file.DownloadTokens
	if tokens == nil {
		tokens = []string{}
	}
	return []any{
		file.Bucket, file.Name, file.Size, md5, crc, nullInt(file.Generation), nullInt(file.Metageneration),
		nullText(file.ContentType), nullText(file.CacheControl), nullText(file.ContentDisposition),
		nullText(file.ContentEncoding), nullText(file.ContentLanguage), nullText(file.StorageClass),
		metaJSON, tokens, nullTimestamp(file.Created), nullTimestamp(file.Updated),
		f.store.String(), key,
	}
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullTimestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
