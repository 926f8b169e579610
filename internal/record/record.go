package record

import (
	"context"
	"io"
	"time"
	"unsafe"
)

// Kind says what a record describes.
type Kind string

// The kinds of records, one per kind of thing a BaaS holds.
const (
	KindDocument Kind = "document"
	KindUser     Kind = "user"
	KindFile     Kind = "file"
	// KindTable is a row of a PostgreSQL source's table (Supabase): see
	// extractors/supabasetables.
	KindTable Kind = "table"
)

// Kinds lists every kind, in the order a full migration moves them.
var Kinds = []Kind{KindUser, KindDocument, KindTable, KindFile}

// Record is one item read from a source: a document, a user or a file.
//
// Records are produced by extractors in the order of their partition and are
// treated as immutable afterwards.
type Record struct {
	// Kind is what the record describes.
	Kind Kind
	// Key is the record's stable identity within its source: a document's
	// path relative to the database root ("users/alice/orders/o1"), a user's
	// uid, a file's object name. Keys are kept exactly (case, unicode).
	Key string
	// CreateTime and UpdateTime are the source's own timestamps; zero when the
	// source has none.
	CreateTime, UpdateTime time.Time
	// Fields are the record's values. For documents they are the document's
	// fields; users and files use the field names documented by their
	// extractor.
	Fields map[string]Value
	// Cursor is the position just after this record in its partition:
	// reading the partition again from Cursor yields exactly the records that
	// follow. It is what a checkpoint stores.
	Cursor string
	// Open returns the content of a file record; nil for other kinds. It may
	// be called more than once (each call reads from the start).
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Skip, when not nil, marks a record read from the source that is not
	// data to load: an item skipped on purpose, or one that could not be
	// read (see Skip). Extractors emit such records only to readers that
	// ask for them (extractors.WithSkips); they have a Key and a Cursor
	// like any other, and Fields that say where they were read, never the
	// source's values.
	Skip *Skip
}

// Skip says why a record read is not loaded.
type Skip struct {
	// Reason is shown to users and stored with the run's counts or
	// rejects: it must not quote the source's values.
	Reason string
	// Reject is true for a record that could not be read as data (a
	// malformed line of an export file): the run stores it as a reject
	// with Reason and counts it as rejected. Otherwise it was skipped on
	// purpose (an Amplify DataStore tombstone) and counts as excluded,
	// under a label naming Reason.
	Reject bool
}

// MarshalJSON encodes the record (kind, key, times and fields; not the file
// content) as a typed JSON object, the form rejected records are stored in:
//
//	{"kind": "document", "key": "users/alice", "createTime": {"$timestamp": ...},
//	 "updateTime": {...}, "fields": {...}}
func (r Record) MarshalJSON() ([]byte, error) {
	m := map[string]Value{
		"kind":   String(string(r.Kind)),
		"key":    String(r.Key),
		"fields": Map(r.Fields),
	}
	if !r.CreateTime.IsZero() {
		m["createTime"] = Timestamp(r.CreateTime)
	}
	if !r.UpdateTime.IsZero() {
		m["updateTime"] = Timestamp(r.UpdateTime)
	}
	return MarshalJSONFields(nil, m), nil
}

// MemSize estimates the bytes r holds in memory: the record itself, its
// key and cursor, and its fields (Value.MemSize). Batches are bounded by
// it (migration.Options.BatchBytes); a file's content is not counted,
// since it is streamed, never held.
func (r *Record) MemSize() int {
	return int(unsafe.Sizeof(*r)) + len(r.Key) + len(r.Cursor) + FieldsMemSize(r.Fields)
}
