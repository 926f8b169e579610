// Package loaders defines what a loader (a sink for one kind of record) is.
// Implementations live in sub-packages: postgres (documents and users as
// rows, plus the tool's state) and objectstore (file bytes).
package loaders

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Sink stores records of one kind in the target.
//
// Every batch is written inside a PostgreSQL transaction that also carries
// the batch's checkpoint, so the rows (or, for files, the metadata rows of
// objects already uploaded and verified) and the new cursor commit together.
type Sink interface {
	// Prepare creates or updates what the sink writes to (tables, buckets).
	// It is idempotent. It is called before a new run is recorded: an error
	// (a target the sink refuses to write, such as tables another source
	// owns) leaves no run behind.
	Prepare(ctx context.Context, db DB) error
	// Write stores recs inside tx and reports, per record, where it went or
	// why it was rejected. tx begins with its first statement: slow work
	// that needs no transaction (uploads) belongs before it, so that no
	// session idles in a transaction meanwhile. It must neither commit nor roll back tx, and must
	// leave tx usable after rejecting records (use savepoints). A returned
	// error means the batch as a whole failed (the caller rolls back and may
	// retry it); records that cannot be stored are Outcome rejects instead.
	Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (Outcome, error)
}

// Finisher is implemented by sinks that can leave part of preparing the
// target to the end of a run, where it costs less (the documents sink
// builds foreign keys after the rows, as pg_restore does). A caller that
// calls Finish once the run's last batch committed calls PrepareToFinish
// instead of Prepare.
type Finisher interface {
	// PrepareToFinish is Prepare, except that it may leave work to Finish.
	// What it leaves is recorded in the target, so that a resumed run, in
	// any process, finishes it; a plain Prepare does it at once.
	PrepareToFinish(ctx context.Context, db DB) error
	// Finish does what PrepareToFinish (of this run's attempts) left,
	// exactly once, before the run is recorded finished. It is idempotent.
	// An error leaves the run unfinished; the next run of it calls Finish
	// again.
	Finish(ctx context.Context, db DB) error
}

// Upgrader is implemented by sinks whose target an earlier version of
// baasmigrate may have laid out differently (the users tables). Upgrade
// brings such a target to this version's layout and does nothing else: no
// statement at all when the target is absent or already current. It is
// idempotent. The engine calls it when a re-run finds nothing to copy (a
// run that copies calls Prepare, which upgrades as well), so that the
// re-run users are told to make is the upgrade.
type Upgrader interface {
	Upgrade(ctx context.Context, db DB) error
}

// Deleter is implemented by sinks that can remove records the source
// deleted (used by `sync`). Its contract is in loadertest.
type Deleter interface {
	// Delete removes the records with keys inside tx, as Write stores
	// records: it must neither commit nor roll back tx. at is when the
	// source deleted them. With soft set (see SoftDeleter) rows are kept
	// and marked deleted at at instead of removed. A key without a row is
	// no error, and deleting twice changes nothing. For documents, a
	// document whose subcollections still have rows becomes a placeholder
	// (no fields, as for a parent that exists only through its
	// subcollections) so its children keep their parent row; a placeholder
	// left with no child is removed. The outcome has one entry per key
	// (Tables[i] the table of keys[i]); Changed counts rows deleted,
	// emptied or marked.
	Delete(ctx context.Context, tx pgx.Tx, keys []string, at time.Time, soft bool) (Outcome, error)
}

// SoftDeleter is implemented by Deleters that can mark rows deleted
// instead of removing them. SetSoftDeletes(true), before Prepare, adds a
// deletion-time column to the sink's tables (loaders.DeletedAtColumn); a
// record written again clears it, and every reader of the target (verify,
// plan, exports) treats a marked row as absent.
type SoftDeleter interface {
	SetSoftDeletes(on bool)
}

// DeletedAtColumn is the column soft deletes set to the source's deletion
// time (NULL for live rows).
const DeletedAtColumn = "_deleted_at"

// Purger is implemented by sinks that keep bytes outside the database
// (files): after the transaction that deleted their rows (hard) committed,
// the engine calls Purge with the same keys to remove the bytes. A failure
// leaves orphaned bytes, never a row without bytes; it is reported, and
// Purge of an absent object is no error.
type Purger interface {
	Purge(ctx context.Context, keys []string) error
}

// Reporter is implemented by sinks with findings about the loaded data as
// a whole (users sharing an e-mail address, say). Warnings is called once
// after a run completes; what it returns is added to the summary. It must
// not reveal secrets.
type Reporter interface {
	Warnings(ctx context.Context, db DB) ([]string, error)
}

// Labeler is implemented by sinks that can name the target table a
// record's key belongs in without its values: a run counts the records an
// extractor marked as skipped or unreadable (record.Skip), which never
// reach the sink, under that table.
type Labeler interface {
	TableLabel(key string) string
}

// DB is the part of a pgx pool or connection sinks need outside batches.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Outcome reports what happened to each record of a batch.
type Outcome struct {
	// Tables[i] is the target table of record i ("" when it has none, e.g.
	// a document whose collection has no table in the mapping).
	Tables []string
	// Rejects maps a record's index to the reason it was not stored. The
	// reason is shown to users and stored with the record: it must not
	// contain secrets.
	Rejects map[int]string
	// Stored, when not nil, holds each record as the sink stores it, after
	// the mapping's field transforms (package transformers/pii): rejects
	// keep Stored[i] instead of the record read, so a transformed field's
	// clear value never reaches them.
	Stored []record.Record
	// Changed counts, per table, the rows actually inserted or updated;
	// rows equal to what the target already holds are not rewritten.
	Changed map[string]int64
}

// Reject records that recs[i] could not be stored.
func (o *Outcome) Reject(i int, reason string) {
	if o.Rejects == nil {
		o.Rejects = map[int]string{}
	}
	o.Rejects[i] = reason
}

// AddChanged adds n changed rows for table.
func (o *Outcome) AddChanged(table string, n int64) {
	if o.Changed == nil {
		o.Changed = map[string]int64{}
	}
	o.Changed[table] += n
}
