// Package syncer keeps the target converging with a live source after the
// copy (`baasmigrate sync`) and proves them equal at the switch
// (`baasmigrate cutover`).
//
// A job is followed in one of two modes, chosen by what its extractor can
// do: sources with a change feed (extractors.ChangeStreamer) are streamed
// from the read time the copy recorded; the others are polled, each poll
// comparing the whole source with the target (the engine of plan and
// verify) and applying what differs. Either way every change is applied in
// a transaction that also stores the new resume position
// (baasmigrate.sync_streams), so a sync killed at any instant continues
// exactly where its last commit left off. The phase is always derived from
// that stored state, never from memory.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Modes of a followed job (postgres.SyncStream.Mode).
const (
	ModeStream = "stream"
	ModePoll   = "poll"
)

// What happens to documents of collections the mapping has no table for.
const (
	NewCollectionsInfer  = "infer"
	NewCollectionsReject = "reject"
)

// Job is one kind of record followed from one source.
type Job struct {
	// Name is the job followed: postgres.Job of its copy.
	Name      string
	Kind      record.Kind
	Extractor extractors.Extractor
	// Sink writes records; it must implement loaders.Deleter.
	Sink loaders.Sink
	// Adapter compares source and target (catch-up, polls, cutover).
	Adapter diff.Adapter
	// Mapping is the documents mapping in use (nil for other kinds), and
	// Remap builds the sink and adapter of an extended one (new
	// collections).
	Mapping *mappings.Mapping
	Remap   func(m *mappings.Mapping) (loaders.Sink, diff.Adapter, error)
	// Config is stored with the sync's run (no secrets).
	Config map[string]string
	// Exclude, when set, names the source keys an erasure list excludes:
	// their upserts are never written, and comparisons (catch-up, polls,
	// cutover) count them as excluded (diff.Options.Exclude).
	Exclude func(key string) bool
	// Consumer names the job and its target at a source that keeps
	// changes for named consumers (extractors.ChangeKeeper).
	Consumer string
	// Finish, when set, runs once a cutover found the job identical,
	// before the verdict is recorded (tables: the target's sequences set
	// past the source's); it says what it did.
	Finish func(ctx context.Context) (string, error)
}

// ChangeApplier is implemented by sinks that apply a change stream's
// changes themselves, in order, inside the transaction given (row changes
// of a PostgreSQL source: partial updates, truncates, the delete of one of
// several equal rows), rather than as upserts of whole records and deletes
// by key. Their changes are never merged by key, and all changes applied
// together go in one transaction. It returns how many changes wrote and
// deleted rows.
type ChangeApplier interface {
	ApplyChanges(ctx context.Context, tx pgx.Tx, changes []record.Change, soft bool) (applied, deleted int64, err error)
}

// ordered reports whether the job's sink applies changes in order.
func (j *Job) ordered() bool {
	_, ok := j.Sink.(ChangeApplier)
	return ok
}

// Mode is the mode job is followed in.
func (j *Job) Mode() string {
	if _, ok := j.Extractor.(extractors.ChangeStreamer); ok {
		return ModeStream
	}
	return ModePoll
}

// Options tune sync.
type Options struct {
	// BatchSize bounds the changes applied per transaction.
	BatchSize int
	// BatchBytes bounds the changes gathered for one transaction by the
	// memory their records hold (record.Record.MemSize), as
	// migration.Options.BatchBytes does; 0 means
	// migration.DefaultBatchBytes.
	BatchBytes int64
	// SoftDeletes keeps deleted records' rows, marked with the deletion
	// time, instead of removing them.
	SoftDeletes bool
	// NewCollections is NewCollectionsInfer or NewCollectionsReject.
	NewCollections string
	// PollInterval is the pause between two polls (mode poll).
	PollInterval time.Duration
	// FlushInterval is how long changes may wait to be applied together
	// (mode stream); small, so lag stays low.
	FlushInterval time.Duration
	// Until, when set, makes Follow return once the target reflects the
	// source up to it (cutover catching up by itself).
	Until time.Time
	// CountInterval is how often a streamed job compares the source's
	// record counts with the target's rows (extractors.Counter; cheap at
	// the source: Firestore bills 1 read per 1,000 documents counted), at a
	// consistent point the target reflects exactly: at the first
	// consistent point after starting, then every CountInterval (not when
	// following Until: a cutover reports, it does not repair). Counts that
	// disagree mean the stream missed something (a collection it had not
	// found): the job then catches up by a snapshot comparison. Zero means
	// 10 minutes.
	CountInterval time.Duration
	// WaitForLock makes Follow wait while another process follows the job
	// (a cutover catching up by itself) instead of failing.
	WaitForLock bool
	Log         *slog.Logger
	Retry       retry.Policy
	Metrics     *Metrics
}

func (o *Options) defaults() {
	if o.BatchSize < 1 {
		o.BatchSize = 500
	}
	if o.BatchBytes < 1 {
		o.BatchBytes = migration.DefaultBatchBytes
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Minute
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.CountInterval <= 0 {
		o.CountInterval = 10 * time.Minute
	}
	if o.NewCollections == "" {
		o.NewCollections = NewCollectionsInfer
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Retry.Attempts == 0 {
		o.Retry = retry.Default
	}
}

// errReached ends a follower that reached Options.Until.
var errReached = errors.New("reached the requested read time")

// Follow keeps job's target converging with its source until ctx ends
// (it then returns nil: everything applied is committed) or, with
// Options.Until, until the target reflects the source up to that time.
// The copy must have finished: the stream starts from the read time it
// recorded. Only one process follows a job at a time (an advisory lock).
func Follow(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, job *Job, opts Options) error {
	opts.defaults()
	if job.ordered() && opts.SoftDeletes {
		return fmt.Errorf("%ss are synced with hard deletes only (--deletes hard): a soft-deleted row would need a column the source's table does not have", job.Kind)
	}
	if _, ok := job.Sink.(loaders.Deleter); !ok && !job.ordered() {
		return fmt.Errorf("the %s sink cannot delete records, so it cannot be synced", job.Kind)
	}
	lockConn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the target: %w", err)
	}
	defer lockConn.Release()
	name := postgres.SyncJob(job.Name)
	for waited := false; ; waited = true {
		err := postgres.LockJob(ctx, lockConn, name)
		if err == nil {
			break
		}
		if !errors.Is(err, postgres.ErrJobLocked) || !opts.WaitForLock {
			return fmt.Errorf("%w (is a sync or cutover already running?)", err)
		}
		if !waited {
			opts.Log.Warn("another process follows this job now (a cutover catching up?); waiting for it to finish", "job", job.Name)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		bg := context.WithoutCancel(ctx)
		_ = postgres.UnlockJob(bg, lockConn, name)
		lockConn.Conn().Close(bg)
	}()
	if s, ok := job.Sink.(loaders.SoftDeleter); ok {
		s.SetSoftDeletes(opts.SoftDeletes)
	}
	if err := job.Sink.Prepare(ctx, pool); err != nil {
		return fmt.Errorf("preparing the target for syncing %ss: %w", job.Kind, err)
	}
	f := &follower{pool: pool, state: state, job: job, opts: opts, log: opts.Log.With("job", job.Name)}
	f.configureGrowth(job.Sink)
	if err := f.start(ctx); err != nil {
		return err
	}
	if job.Mode() == ModeStream {
		err = f.stream(ctx)
	} else {
		err = f.poll(ctx)
	}
	if errors.Is(err, errReached) || (err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return nil
	}
	return err
}

// follower is one job being followed.
type follower struct {
	pool  *pgxpool.Pool
	state *postgres.State
	job   *Job
	opts  Options
	log   *slog.Logger
	st    *postgres.SyncStream
	// lastCount is when counts were last compared (zero: not since the
	// start), and lastMismatch what they disagreed by, so that a
	// disagreement a catch-up does not mend is not caught up forever.
	lastCount    time.Time
	lastMismatch string
	held         heldPoint
	// grownSeen is how many growths of a growing sink followGrowth took.
	grownSeen int
}

// start loads the job's sync state, or records it from the copy's last
// finished run.
func (f *follower) start(ctx context.Context) error {
	st, err := retried(ctx, f, "reading the sync state", func(ctx context.Context) (*postgres.SyncStream, error) {
		return f.state.SyncStream(ctx, f.job.Name)
	})
	if err != nil {
		return err
	}
	if st == nil {
		run, err := retried(ctx, f, "reading the copy's last finished run", func(ctx context.Context) (*postgres.Run, error) {
			return f.state.LastFinishedRun(ctx, f.job.Name)
		})
		if err != nil {
			return err
		}
		if run == nil {
			return fmt.Errorf("%s has no finished copy to follow: run migrate first (sync runs it for you)", f.job.Name)
		}
		mode, pos := f.job.Mode(), ""
		// The change stream starts at the earliest read time any stream of
		// the copy started with: every change after it is applied again
		// (idempotently), none is missed.
		var from time.Time
		for _, s := range run.Streams {
			if t := s.FirstReadTime; !t.IsZero() && (from.IsZero() || t.Before(from)) {
				from = t
			}
		}
		ck, keeper := f.job.Extractor.(extractors.ChangeKeeper)
		switch {
		case mode == ModeStream && keeper:
			// The stream starts where the source began keeping changes;
			// a copy that started before then is not covered, and the
			// position says so: the stream reports it, and the job
			// catches up by a snapshot comparison.
			var covered bool
			if pos, from, covered, err = ck.StartAfter(ctx, f.job.Consumer, run.Started); err != nil {
				return fmt.Errorf("starting the change stream: %w", err)
			}
			if !covered {
				f.log.Warn("the copy was made before the source kept its changes: sync catches up by comparing the source with the target first", "copy started", run.Started.Format(time.RFC3339))
			}
		case mode == ModeStream:
			if from.IsZero() {
				from = run.Started
			}
			if pos, err = f.job.Extractor.(extractors.ChangeStreamer).PositionAt(from); err != nil {
				return fmt.Errorf("starting the change stream at the copy's read time: %w", err)
			}
		}
		if st, err = f.state.StartSync(ctx, f.job.Name, f.job.Kind, mode, pos, from, f.job.Config); err != nil {
			return err
		}
		f.log.Info("sync starts where the copy's snapshot was taken", "mode", mode, "from", from.Format(time.RFC3339Nano), "copy run", run.ID)
	}
	if st.Mapping != "" && f.job.Remap != nil {
		m, err := mappings.Parse([]byte(st.Mapping), "(mapping extended by sync)")
		if err != nil {
			return err
		}
		if err := f.remap(ctx, m, false); err != nil {
			return err
		}
	}
	f.st = st
	f.opts.Metrics.started(f.job.Name, st)
	return nil
}

// remap switches to an extended mapping and prepares its tables. With
// store, the mapping is recorded as the sync's in the transaction that
// creates the tables, so a sync killed at any moment never leaves a table
// that its stored mapping does not describe.
func (f *follower) remap(ctx context.Context, m *mappings.Mapping, store bool) error {
	sink, adapter, err := f.job.Remap(m)
	if err != nil {
		return err
	}
	if s, ok := sink.(loaders.SoftDeleter); ok {
		s.SetSoftDeletes(f.opts.SoftDeletes)
	}
	f.configureGrowth(sink)
	var text []byte
	if store {
		if text, err = m.Marshal(); err != nil {
			return err
		}
	}
	if err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if err := sink.Prepare(ctx, tx); err != nil {
			return fmt.Errorf("creating the tables of new collections: %w", err)
		}
		if !store {
			return nil
		}
		return f.state.SetSyncMapping(ctx, tx, f.job.Name, string(text))
	}); err != nil {
		return err
	}
	if store {
		f.st.Mapping = string(text)
	}
	f.job.Sink, f.job.Adapter, f.job.Mapping = sink, adapter, m
	return nil
}

// retried runs fn, a read of the state, under f's retry policy.
func retried[T any](ctx context.Context, f *follower, what string, fn func(context.Context) (T, error)) (T, error) {
	return retry.Value(ctx, f.log, f.opts.Retry, what, fn)
}

// pending is a set of changes to apply together, the last change per key
// winning, in the order keys were last changed.
type pending struct {
	changes  []record.Change
	index    map[string]int
	position string
	readTime time.Time
	mem      int64 // the changes' records' MemSize, for Options.BatchBytes
}

func (p *pending) add(b record.ChangeBatch, ordered bool) {
	if p.index == nil {
		p.index = map[string]int{}
	}
	for _, c := range b.Changes {
		if i, ok := p.index[c.Record.Key]; ok && !ordered {
			p.changes[i].Op = 0 // superseded
		}
		p.index[c.Record.Key] = len(p.changes)
		p.changes = append(p.changes, c)
		p.mem += int64(c.Record.MemSize())
	}
	p.position, p.readTime = b.Position, b.ReadTime
}

func (p *pending) live() []record.Change {
	out := p.changes[:0:0]
	for _, c := range p.changes {
		if c.Op != 0 {
			out = append(out, c)
		}
	}
	return out
}

func (p *pending) empty() bool { return p.position == "" && p.readTime.IsZero() && len(p.changes) == 0 }

// apply applies changes and, with the last chunk, moves the stored
// position to position and read time to readTime (either may be unset:
// unchanged). Changes are applied BatchSize at a time (fewer when their
// records reach BatchBytes), each chunk in one transaction; a chunk that
// fails transiently is retried. mem is what the caller measured of the
// changes' records while gathering them (record.Record.MemSize, at least
// what they hold): below BatchBytes they are not measured again.
func (f *follower) apply(ctx context.Context, changes []record.Change, mem int64, position string, readTime time.Time, sourceReads int64) error {
	if f.job.Mapping != nil && f.job.Remap != nil {
		if err := f.newCollections(ctx, changes); err != nil {
			return err
		}
	}
	size, bytes := f.opts.BatchSize, f.opts.BatchBytes
	if f.job.ordered() {
		// Changes replayed from a partly applied transaction would not
		// converge (a keyless table's insert): all in one.
		size, bytes = max(len(changes), 1), math.MaxInt64
	}
	measure := mem >= bytes
	start := 0
	for {
		end, held := start, int64(0)
		for end < len(changes) && end-start < size && held < bytes {
			if measure {
				held += int64(changes[end].Record.MemSize())
			}
			end++
		}
		var b postgres.SyncBatch
		if end == len(changes) {
			b.Position, b.ReadTime, b.SourceReads = position, readTime, sourceReads
		}
		if err := f.commit(ctx, changes[start:end], b); err != nil {
			return err
		}
		if end == len(changes) {
			return nil
		}
		start = end
	}
}

// commit applies one chunk with its share of the sync state, retrying
// transient failures. A retry after an ambiguous COMMIT finds the
// position already moved and stops: the chunk is in.
func (f *follower) commit(ctx context.Context, chunk []record.Change, b postgres.SyncBatch) error {
	what := fmt.Sprintf("applying %d changes", len(chunk))
	err := retry.Do(retry.WithLogger(ctx, f.log), f.opts.Retry, what, func(actx context.Context) error {
		bb := b
		err := f.commitOnce(actx, chunk, &bb)
		if err == nil {
			if ck, ok := f.job.Extractor.(extractors.ChangeKeeper); ok && bb.Position != "" {
				ck.Confirm(bb.Position)
			}
			f.st.Apply(bb)
			f.opts.Metrics.applied(f.job.Name, f.st, bb, chunk)
		}
		if err != nil && ctx.Err() != nil {
			return failure.Mark(err, failure.Permanent)
		}
		return err
	})
	if errors.Is(err, postgres.ErrCheckpointMoved) {
		stored, serr := retried(ctx, f, "reading the sync position", func(ctx context.Context) (*postgres.SyncStream, error) {
			return f.state.SyncStream(ctx, f.job.Name)
		})
		if serr != nil {
			return serr
		}
		if stored != nil && stored.Position == b.Position {
			f.st = stored
			return f.followGrowth(ctx)
		}
		return fmt.Errorf("%w; is another process syncing into the same target?", err)
	}
	if err != nil {
		return err
	}
	return f.followGrowth(ctx)
}

// dropExcluded returns the changes of chunk whose keys Job.Exclude does
// not exclude; the others only advance b.LastCommit. They are neither
// written nor deleted (the target must not hold them; verify names a row
// of one), and their keys are not kept among the changed keys (they are
// personal data; a cutover under the list compares in full).
func (f *follower) dropExcluded(chunk []record.Change, b *postgres.SyncBatch) []record.Change {
	if f.job.Exclude == nil {
		return chunk
	}
	kept := make([]record.Change, 0, len(chunk))
	for _, c := range chunk {
		if !f.job.Exclude(c.Record.Key) {
			kept = append(kept, c)
			continue
		}
		if c.CommitTime.After(b.LastCommit) {
			b.LastCommit = c.CommitTime
		}
	}
	return kept
}

func (f *follower) commitOnce(ctx context.Context, chunk []record.Change, b *postgres.SyncBatch) error {
	tx := migration.LazyTx(f.pool)
	defer tx.Rollback(context.WithoutCancel(ctx))
	var ups []record.Record
	deletes := map[time.Time][]string{}
	chunk = f.dropExcluded(chunk, b)
	if a, ok := f.job.Sink.(ChangeApplier); ok {
		// Changes are not merged by key, but a key is recorded once: its
		// last change.
		seen := map[string]int{}
		for _, c := range chunk {
			if c.CommitTime.After(b.LastCommit) {
				b.LastCommit = c.CommitTime
			}
			k := postgres.ChangedKey{Key: c.Record.Key, CommitTime: c.CommitTime, Deleted: c.Op == record.OpDelete}
			if i, ok := seen[k.Key]; ok {
				b.Changed[i] = k
				continue
			}
			seen[k.Key] = len(b.Changed)
			b.Changed = append(b.Changed, k)
		}
		if len(chunk) > 0 {
			// Begin the transaction (a lazy one begins with its first
			// statement): the sink runs on its connection.
			if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
				return err
			}
			applied, deleted, err := a.ApplyChanges(ctx, tx, chunk, f.opts.SoftDeletes)
			if err != nil {
				return err
			}
			b.Applied, b.Deleted = applied, deleted
		}
		if err := f.state.AdvanceSync(ctx, tx, f.st, *b); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("committing %d changes: %w", len(chunk), err)
		}
		return nil
	}
	for _, c := range chunk {
		switch c.Op {
		case record.OpUpsert:
			ups = append(ups, c.Record)
		case record.OpDelete:
			// A document of a collection without a table was never stored
			// (created and deleted before sync applied it): nothing to
			// delete, nothing to reject.
			if f.job.Mapping != nil {
				if p, _, err := mappings.PatternOf(c.Record.Key); err == nil && f.job.Mapping.TableFor(p) == nil {
					break
				}
			}
			deletes[c.CommitTime] = append(deletes[c.CommitTime], c.Record.Key)
		}
		if c.CommitTime.After(b.LastCommit) {
			b.LastCommit = c.CommitTime
		}
		b.Changed = append(b.Changed, postgres.ChangedKey{Key: c.Record.Key, CommitTime: c.CommitTime, Deleted: c.Op == record.OpDelete})
	}
	if len(ups) > 0 {
		out, err := f.job.Sink.Write(ctx, tx, ups)
		if err != nil {
			return err
		}
		_, rejects, err := migration.Tally(ups, out, 0)
		if err != nil {
			return err
		}
		b.Rejects = append(b.Rejects, rejects...)
		b.Applied += int64(len(ups) - len(rejects))
	}
	if len(deletes) > 0 {
		times := make([]time.Time, 0, len(deletes))
		for t := range deletes {
			times = append(times, t)
		}
		slices.SortFunc(times, time.Time.Compare)
		del := f.job.Sink.(loaders.Deleter)
		for _, t := range times {
			keys := deletes[t]
			out, err := del.Delete(ctx, tx, keys, t, f.opts.SoftDeletes)
			if err != nil {
				return fmt.Errorf("deleting %d records: %w", len(keys), err)
			}
			recs := make([]record.Record, len(keys))
			for i, k := range keys {
				recs[i] = record.Record{Kind: f.job.Kind, Key: k}
			}
			_, rejects, err := migration.Tally(recs, out, 0)
			if err != nil {
				return err
			}
			b.Rejects = append(b.Rejects, rejects...)
			b.Deleted += int64(len(keys) - len(rejects))
		}
	}
	if err := f.state.AdvanceSync(ctx, tx, f.st, *b); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing %d changes: %w", len(chunk), err)
	}
	if p, ok := f.job.Sink.(loaders.Purger); ok && len(deletes) > 0 && !f.opts.SoftDeletes {
		var keys []string
		for _, ks := range deletes {
			keys = append(keys, ks...)
		}
		if err := p.Purge(ctx, keys); err != nil {
			f.log.Warn("the rows of deleted files are gone, but removing their bytes failed; the objects are orphaned", "files", len(keys), "err", err)
		}
	}
	return nil
}
