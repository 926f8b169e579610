// Package migration runs a migration job: it plans (or resumes) a run,
// reads every partition with bounded concurrency, hands batches to the sink
// and commits each batch together with its partition's checkpoint.
//
// The run's phase is always derived from the state stored in the target
// (Vitess-style), never from memory: a fresh run is planned and stored in
// one transaction; a run interrupted at any instant continues from the last
// committed cursor of each partition.
package migration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Job is one kind of record moved from one source to the target.
type Job struct {
	Kind      record.Kind
	Extractor extractors.Extractor
	Sink      loaders.Sink
	// Config is stored with a new run (it must hold no secrets). A resumed
	// run must be started with the same Config: resuming with, say, a
	// different mapping would mix two layouts in one target.
	Config map[string]string
}

// DefaultBatchBytes is Options.BatchBytes when none is given: batches of
// small documents end at their record count, a few large ones at this.
const DefaultBatchBytes = 16 << 20

// DefaultBatchSize is Options.BatchSize when none is given: 2,000
// documents, whose commits then cost PostgreSQL about 20% less CPU than
// at 500 (BENCHMARKS.md), and 500 users, table rows or files (a batch of
// files copies its objects inside its transaction, which a larger batch
// would hold open longer).
func DefaultBatchSize(kind record.Kind) int {
	if kind == record.KindDocument {
		return 2000
	}
	return 500
}

// Options tune a run.
type Options struct {
	// Workers is how many partitions are read and written at once.
	Workers int
	// BatchSize is the most records committed per transaction; 0 means
	// DefaultBatchSize of the job's kind.
	BatchSize int
	// BatchBytes bounds a batch by the memory its records hold
	// (record.Record.MemSize): a batch ends with the record that reaches
	// it, or at BatchSize records, whichever comes first. A partition holds
	// at most four batches at a time (one filling, two waiting, one being
	// written), so the records a run holds stay below about
	// 4 × BatchBytes × Workers plus one record per batch. 0 means
	// DefaultBatchBytes.
	BatchBytes int64
	// Restart abandons an unfinished or finished run and starts anew.
	Restart bool
	// Progress, if not nil, is told about progress per stream.
	Progress Progress
	// Log receives warnings (snapshot renewals, retries) and progress notes.
	Log *slog.Logger
	// Retry is the policy for retrying a batch after a transient target
	// error; zero means retry.Default.
	Retry retry.Policy
	// Stop, when closed, asks the run to stop early (an interrupt): reading
	// stops at once and no new batch is begun, while the batches in flight
	// commit (or, when ctx ends first, roll back). Execute then returns
	// ErrInterrupted; everything committed stays, and the next Execute
	// resumes from there. Nil never stops.
	Stop <-chan struct{}
	// Exclude, when set, names the source keys an erasure list excludes
	// (see internal/erasure): such records are read (their cursor is
	// checkpointed like any other's) but never handed to the sink, and are
	// counted as excluded under the table ExcludedTable in the checkpoint
	// of their batch. The caller stores the list's digest in Job.Config,
	// so a run resumes only with the same list.
	Exclude func(key string) bool
}

// ExcludedTable is the pseudo-table excluded records are counted under
// (Options.Exclude): read = excluded there, nothing loaded or rejected.
const ExcludedTable = "(excluded)"

// SkippedTable is the pseudo-table under which records an extractor
// skipped on purpose (record.Skip without Reject: an Amplify DataStore
// tombstone) are counted, per target table and reason: read = excluded
// there, nothing loaded or rejected. The run asks for such records
// (extractors.WithSkips) and checkpoints their cursors like any other's,
// so each is counted once however often the run resumes.
func SkippedTable(table, reason string) string {
	return table + " (skipped: " + reason + ")"
}

// ErrInterrupted is returned by Execute when the run stopped early because
// Options.Stop was closed or ctx ended: every committed batch is kept with
// its checkpoint, and the next Execute of the job resumes the run.
var ErrInterrupted = errors.New("interrupted")

// Progress receives progress reports. Implementations must be safe for
// concurrent use.
type Progress interface {
	// StartStream is called before a stream is read.
	StartStream(StreamInfo) StreamProgress
}

// StreamInfo describes a stream about to be read.
type StreamInfo struct {
	Kind record.Kind
	Name string
	// Done is how many records earlier attempts of the run committed.
	Done int64
}

// StreamProgress follows one stream.
type StreamProgress interface {
	// Add reports records committed and, for files, their bytes.
	Add(records, bytes int64)
	// SetTotal reports how many records the stream holds and, for files,
	// their bytes (-1: unknown), when the extractor can tell cheaply
	// (extractors.Counter, extractors.Sizer). The stream is sized while
	// it is read, so SetTotal may come after Adds; it comes at most once,
	// before Finish, and not at all when sizing failed or the stream
	// ended first without completing.
	SetTotal(records, bytes int64)
	// Finish is called once when the stream is complete (err is nil) or
	// abandoned: err is ErrInterrupted when the run was stopped, else why
	// the stream failed.
	Finish(err error)
}

// Result describes a finished (or already finished) run, or as much as is
// known of one that failed or was interrupted.
type Result struct {
	Job string
	// Run is the run executed: started, resumed, or (AlreadyFinished) the
	// one that had completed. Nil when Execute failed before choosing one.
	Run *postgres.Run
	// AlreadyFinished is true when nothing was done because the job's last
	// run had completed (use Options.Restart to copy again). Tables and
	// Rejects are then empty: this Execute read and wrote nothing.
	AlreadyFinished bool
	// EarlierRejects is, when AlreadyFinished, how many records the
	// completed run rejected: they are still not in the target (their
	// reasons are in baasmigrate.rejects), so a no-op re-run reports them.
	EarlierRejects int64
	// Tables are the run's counts per target table, over every attempt of
	// the run (a resumed run includes what earlier attempts committed).
	// After a failure they are what the checkpoints cover, when the target
	// still answered.
	Tables  []postgres.TableSummary
	Rejects []postgres.RejectSample
	// WriteTimes is, per target table, the wall-clock time this Execute
	// spent writing and committing batches holding its rows: the union of
	// those intervals over all workers, so never more than Elapsed.
	WriteTimes map[string]time.Duration
	// SnapshotRenewals counts streams continued at a new read time because
	// the run outlived the source's snapshot window.
	SnapshotRenewals int
	// BillableReads is the source's billable reads by this process, when the
	// extractor meters them (-1 otherwise).
	BillableReads int64
	// Warnings are the sink's findings about the loaded data.
	Warnings []string
	// Notes say how the run came about when that is not obvious (a new run
	// because the settings changed).
	Notes   []string
	Elapsed time.Duration
}

// Execute runs job to completion against the target pool, resuming the
// job's unfinished run when there is one. On failure it returns the error
// with a Result holding what is known (see Result); when the run was
// stopped (Options.Stop, or ctx ended) the error is ErrInterrupted, joined
// with the failure that happened while stopping if it was not just the
// cancellation.
func Execute(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, job Job, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.BatchSize < 1 {
		opts.BatchSize = DefaultBatchSize(job.Kind)
	}
	if opts.BatchBytes < 1 {
		opts.BatchBytes = DefaultBatchBytes
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Retry.Attempts == 0 {
		opts.Retry = retry.Default
	}
	// stopCtx ends when the run is asked to stop: planning and reading use
	// it, while commits use ctx so that the batches in flight finish.
	stopCtx, cancelStop := context.WithCancel(ctx)
	defer cancelStop()
	if opts.Stop != nil {
		go func() {
			select {
			case <-opts.Stop:
				cancelStop()
			case <-stopCtx.Done():
			}
		}()
	}
	e := &executor{pool: pool, state: state, job: job, opts: opts, stopCtx: stopCtx, walls: map[string]*wallTime{}}
	res := &Result{Job: postgres.Job(job.Kind, job.Extractor.Source()), BillableReads: -1}
	err := e.execute(ctx, res)
	if err != nil && e.stopping() {
		if err = e.stopped(ctx, err); !errors.Is(err, ErrInterrupted) {
			err = fmt.Errorf("%w; while stopping: %w", ErrInterrupted, err)
		}
	}
	if err != nil && res.Run != nil && !res.AlreadyFinished {
		// Report what the checkpoints cover, with a context of its own: ctx
		// may be why the run stopped.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := summarize(sctx, state, res, opts); serr != nil {
			opts.Log.Warn("could not read the run's counts for the summary", "run", res.Run.ID, "err", serr)
		}
	}
	res.WriteTimes = e.writeTimes()
	res.Elapsed = time.Since(start)
	return res, err
}

// execute is Execute's work. It fills res as far as it gets.
func (e *executor) execute(ctx context.Context, res *Result) error {
	job, opts, state, pool, name := e.job, e.opts, e.state, e.pool, res.Job
	rctx := e.stopCtx
	lockConn, err := pool.Acquire(rctx)
	if err != nil {
		return fmt.Errorf("connecting to the target: %w", err)
	}
	defer lockConn.Release()
	if err := postgres.LockJob(rctx, lockConn, name); err != nil {
		return err
	}
	defer func() {
		// Unlock, then close the session rather than return it to the pool:
		// if the unlock failed, closing still releases the lock.
		bg := context.WithoutCancel(ctx)
		_ = postgres.UnlockJob(bg, lockConn, name)
		lockConn.Conn().Close(bg)
	}()

	// The phase comes from the stored state: an interrupted run resumes
	// (with the settings it started with), a finished one with the same
	// settings is done, anything else plans a new run.
	var run *postgres.Run
	if !opts.Restart {
		if run, err = retried(rctx, opts, "reading the job's unfinished run", func(ctx context.Context) (*postgres.Run, error) {
			return state.RunningRun(ctx, name)
		}); err != nil {
			return err
		}
	}
	if run != nil {
		if !maps.Equal(run.Config, job.Config) {
			return fmt.Errorf("the interrupted run %d of %s was started with different settings (%s); "+
				"re-run with the original settings to resume it, or pass --restart to start over",
				run.ID, name, configDiff(run.Config, job.Config))
		}
		opts.Log.Info("resuming interrupted run", "job", name, "run", run.ID)
		res.Run, e.run = run, run
	} else if !opts.Restart {
		last, err := retried(rctx, opts, "reading the job's last finished run", func(ctx context.Context) (*postgres.Run, error) {
			return state.LastFinishedRun(ctx, name)
		})
		if err != nil {
			return err
		}
		if last != nil && maps.Equal(last.Config, job.Config) {
			// Nothing to copy, and nothing done: no counts to report. A
			// sink whose target an earlier version laid out differently
			// still upgrades it (loaders.Upgrader), so that this re-run is
			// the upgrade the docs promise; nothing else is touched.
			if u, ok := job.Sink.(loaders.Upgrader); ok {
				if err := u.Upgrade(rctx, pool); err != nil {
					return fmt.Errorf("upgrading the target to this version's layout: %w", err)
				}
			}
			res.Run, res.AlreadyFinished = last, true
			tables, err := retried(rctx, opts, "reading the counts of the finished run", func(ctx context.Context) ([]postgres.TableSummary, error) {
				return state.Summary(ctx, last)
			})
			if err != nil {
				return err
			}
			for _, t := range tables {
				res.EarlierRejects += t.Rejected
			}
			return nil
		}
		if last != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("the settings changed since run %d (%s): a new run copies everything again; unchanged rows are not rewritten",
				last.ID, configDiff(last.Config, job.Config)))
		}
	}
	// The sink prepares the target before a new run is recorded: when it
	// refuses (tables another source owns, claimed since the job was
	// built), no run is left behind to resume.
	// A sink that can leave work to the end of the run (foreign keys built
	// after the rows) is finished below, after the last batch and before
	// the run is recorded finished, on every attempt that gets there.
	fin, finishing := job.Sink.(loaders.Finisher)
	if finishing {
		err = fin.PrepareToFinish(rctx, pool)
	} else {
		err = job.Sink.Prepare(rctx, pool)
	}
	if err != nil {
		return err
	}
	if run == nil {
		if run, err = plan(rctx, state, name, job, opts); err != nil {
			return err
		}
		res.Run, e.run = run, run
	}
	for _, st := range run.Streams {
		if e.stopping() {
			return ErrInterrupted
		}
		if err := e.stream(ctx, st); err != nil {
			return err
		}
	}
	if finishing {
		if _, err := retried(rctx, opts, "finishing the target after the last batch", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, fin.Finish(ctx, pool)
		}); err != nil {
			return err
		}
	}
	if _, err := retried(ctx, opts, "recording the run as finished", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, state.FinishRun(ctx, run)
	}); err != nil {
		return err
	}
	res.SnapshotRenewals = e.renewals
	if m, ok := job.Extractor.(extractors.ReadMeter); ok {
		res.BillableReads = m.BillableReads()
	}
	if r, ok := job.Sink.(loaders.Reporter); ok {
		if res.Warnings, err = r.Warnings(ctx, pool); err != nil {
			return err
		}
	}
	return summarize(ctx, state, res, opts)
}

// summarize reads res.Run's counts and first rejects.
func summarize(ctx context.Context, state *postgres.State, res *Result, opts Options) error {
	var err error
	if res.Tables, err = retried(ctx, opts, "reading the run's counts", func(ctx context.Context) ([]postgres.TableSummary, error) {
		return state.Summary(ctx, res.Run)
	}); err != nil {
		return err
	}
	res.Rejects, err = retried(ctx, opts, "reading the run's first rejects", func(ctx context.Context) ([]postgres.RejectSample, error) {
		return state.Rejects(ctx, res.Run, 10)
	})
	return err
}

// retried runs fn, a read or an idempotent write of the tool's state
// outside a batch, under the run's retry policy: a target that restarts
// or drops a connection between batches costs a retry, not the run.
func retried[T any](ctx context.Context, opts Options, what string, fn func(context.Context) (T, error)) (T, error) {
	return retry.Value(ctx, opts.Log, opts.Retry, what, fn)
}

func configDiff(was, now map[string]string) string {
	keys := slices.Sorted(maps.Keys(was))
	for k := range now {
		if _, ok := was[k]; !ok {
			keys = append(keys, k)
		}
	}
	var diffs []string
	for _, k := range keys {
		switch {
		case was[k] == now[k]:
		case len(was[k]) > 60 || len(now[k]) > 60:
			diffs = append(diffs, k+" changed")
		default:
			diffs = append(diffs, fmt.Sprintf("%s was %q, now %q", k, was[k], now[k]))
		}
	}
	if len(diffs) > 3 {
		diffs = append(diffs[:3], "…")
	}
	return fmt.Sprint(diffs)
}

// plan asks the extractor for streams and partitions, takes one snapshot
// time for all of them, and stores the plan as a new run.
func plan(ctx context.Context, state *postgres.State, name string, job Job, opts Options) (*postgres.Run, error) {
	_, streams, err := extractors.PlanSnapshot(ctx, job.Extractor, opts.Workers)
	if err != nil {
		return nil, fmt.Errorf("planning %s: %w", name, err)
	}
	return state.StartRun(ctx, name, job.Kind, job.Config, streams)
}

type executor struct {
	pool  *pgxpool.Pool
	state *postgres.State
	job   Job
	opts  Options
	run   *postgres.Run
	// stopCtx ends when the run is to stop (Options.Stop, or ctx ended).
	stopCtx context.Context

	mu       sync.Mutex // guards renewals, stream read times and walls
	renewals int
	walls    map[string]*wallTime // per target table
}

// stopping reports whether the run was asked to stop.
func (e *executor) stopping() bool { return e.stopCtx.Err() != nil }

// stream reads the unfinished partitions of st, Workers at a time. When
// the run is asked to stop, it lets the batches in flight commit and
// returns ErrInterrupted.
func (e *executor) stream(ctx context.Context, st *postgres.StreamState) (err error) {
	var todo []*postgres.PartitionState
	for _, p := range st.Partitions {
		if !p.Done {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	var sp StreamProgress = nopProgress{}
	if e.opts.Progress != nil {
		info, err := e.streamInfo(e.stopCtx, st)
		if err != nil {
			return err
		}
		sp = e.opts.Progress.StartStream(info)
	}
	defer func() { sp.Finish(err) }()
	if e.opts.Progress != nil {
		sized := e.sizeStream(st, sp)
		defer func() { sized(err == nil) }()
	}

	// A partition that stops because the run is stopping returns nil, so
	// that the others' batches in flight are not cancelled.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.Workers)
	for _, p := range todo {
		if e.stopping() {
			break
		}
		g.Go(func() error { return e.partition(gctx, st, p, sp) })
	}
	return e.stopped(ctx, g.Wait())
}

// stopped turns err into ErrInterrupted when it is the run stopping (or
// ctx ending) rather than a failure: no error at all while stopping, a
// cancellation, or anything once ctx ended (a statement cut off
// mid-way fails in many ways).
func (e *executor) stopped(ctx context.Context, err error) error {
	if !e.stopping() {
		return err
	}
	if err == nil || errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return ErrInterrupted
	}
	return err
}

// streamInfo gathers what progress reporting wants to know of a stream
// before it is read: what earlier attempts committed.
func (e *executor) streamInfo(ctx context.Context, st *postgres.StreamState) (StreamInfo, error) {
	info := StreamInfo{Kind: e.job.Kind, Name: st.Name}
	done, err := retried(ctx, e.opts, fmt.Sprintf("reading the progress of stream %q", st.Name), func(ctx context.Context) (int64, error) {
		return e.state.StreamRead(ctx, e.run, st.Name)
	})
	if err != nil {
		return info, err
	}
	info.Done = done
	return info, nil
}

// sizeStream sizes st with the extractor, when it can tell cheaply
// (extractors.Sizer, extractors.Counter), and hands the total to sp, while
// the stream is read: counting a large collection takes Firestore seconds
// (and the emulator's CPU), which the read need not wait for. A failed
// count only costs the progress its total and ETA. The returned function
// ends the sizing: after a complete stream it waits for the total at most
// sizeGrace (a count runs beside the whole read, so it is nearly always in
// by then; one still retrying a throttled source is not worth holding the
// run for); otherwise it abandons the count at once.
func (e *executor) sizeStream(st *postgres.StreamState, sp StreamProgress) (end func(complete bool)) {
	planned := extractors.Stream{Name: st.Name, Kind: e.job.Kind, ReadTime: st.ReadTime}
	for _, p := range st.Partitions {
		planned.Partitions = append(planned.Partitions, p.Partition)
	}
	ctx, cancel := context.WithCancel(e.stopCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		total, bytes := int64(-1), int64(-1)
		var err error
		switch x := e.job.Extractor.(type) {
		case extractors.Sizer:
			total, bytes, err = x.Size(ctx, planned)
		case extractors.Counter:
			total, err = x.Count(ctx, planned)
		default:
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				e.opts.Log.Warn("could not size the stream for progress", "stream", st.Name, "err", err)
			}
			return
		}
		sp.SetTotal(total, bytes)
	}()
	return func(complete bool) {
		if complete {
			select {
			case <-done:
			case <-time.After(sizeGrace):
			}
		}
		cancel()
		<-done
	}
}

// sizeGrace is how long a complete stream waits for its count.
const sizeGrace = 3 * time.Second

// batch is a run of consecutive records of one partition.
type batch struct {
	recs   []record.Record
	cursor string // cursor after the last record (the partition's cursor when empty)
	done   bool   // the partition has no records after this batch
	bytes  int64  // files: the objects' size, for progress
	mem    int64  // the records' MemSize, for Options.BatchBytes
}

// partition reads p from its checkpoint and commits it batch by batch. A
// reader goroutine fills batches while the current one is written, so
// reading and writing overlap; at most two batches wait in between. When
// the run is asked to stop, reading ends at once, the batch being committed
// finishes, and the batches read but not begun are dropped (the next run
// reads them again from the checkpoint); it then returns nil.
func (e *executor) partition(ctx context.Context, st *postgres.StreamState, p *postgres.PartitionState, sp StreamProgress) error {
	batches := make(chan batch, 2)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		rctx, cancel := context.WithCancel(gctx)
		defer cancel()
		defer context.AfterFunc(e.stopCtx, cancel)()
		err := e.read(rctx, st, p, batches)
		if err != nil && e.stopping() {
			return nil // what was not committed is read again on resume
		}
		return err
	})
	g.Go(func() error {
		for b := range batches {
			if e.stopping() {
				return nil
			}
			if err := e.commit(gctx, p, b); err != nil {
				if errors.Is(err, ErrInterrupted) {
					return nil
				}
				return err
			}
			sp.Add(int64(len(b.recs)), b.bytes)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("stream %q partition %s: %w", st.Name, p.ID, err)
	}
	return nil
}

// read emits p's records from its cursor in batches, continuing at a new
// snapshot if the stream's read time expires on the way.
func (e *executor) read(ctx context.Context, st *postgres.StreamState, p *postgres.PartitionState, out chan<- batch) error {
	cur := batch{cursor: p.Cursor}
	send := func(done bool) error {
		cur.done = done
		select {
		case out <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		cur = batch{cursor: cur.cursor}
		return nil
	}
	emit := func(r record.Record) error {
		cur.recs = append(cur.recs, r)
		cur.cursor = r.Cursor
		cur.mem += int64(r.MemSize())
		if r.Kind == record.KindFile {
			if v, ok := r.Fields[record.FileFieldSize]; ok {
				cur.bytes += v.IntValue()
			}
		}
		// A batch never ends with an excluded record (Options.Exclude), so
		// that no checkpoint stores the cursor of one: it may be the
		// record's key, which is personal data. (A run of excluded
		// records makes the batch longer, by at most the list's length.)
		full := len(cur.recs) >= e.opts.BatchSize || cur.mem >= e.opts.BatchBytes
		if full && !e.excluded(r) {
			return send(false)
		}
		return nil
	}
	for {
		readTime := e.readTime(st)
		err := e.job.Extractor.Read(extractors.WithSkips(ctx), p.Partition, readTime, cur.cursor, emit)
		if errors.Is(err, extractors.ErrSnapshotExpired) {
			if err := e.renew(ctx, st, readTime); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		return send(true)
	}
}

func (e *executor) readTime(st *postgres.StreamState) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return st.ReadTime
}

// renew moves st to a new snapshot after expired stopped being readable.
// Partitions hitting the same expiry renew once.
func (e *executor) renew(ctx context.Context, st *postgres.StreamState, expired time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !st.ReadTime.Equal(expired) {
		return nil // another partition renewed it already
	}
	s, ok := e.job.Extractor.(extractors.Snapshotter)
	if !ok {
		return fmt.Errorf("stream %q: %w, and the source offers no new snapshot", st.Name, extractors.ErrSnapshotExpired)
	}
	t, err := s.SnapshotTime(ctx)
	if err != nil {
		return fmt.Errorf("taking a new snapshot time for stream %q: %w", st.Name, err)
	}
	if _, err := retried(ctx, e.opts, "recording the new read time", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, e.state.RenewReadTime(ctx, e.run, st.Name, t)
	}); err != nil {
		return err
	}
	e.opts.Log.Warn("the run outlived the source's snapshot window; continuing at a new read time. "+
		"Documents read before and after may come from different moments; an incremental sync from the first read time reconciles them",
		"stream", st.Name, "first_read_time", st.FirstReadTime, "new_read_time", t, "window", s.SnapshotWindow())
	st.ReadTime = t
	st.Renewals++
	e.renewals++
	return nil
}

// commit writes b and its checkpoint in one transaction, retrying
// transient failures. A retry after an ambiguous COMMIT (the connection
// died before the reply) finds the checkpoint already advanced and stops:
// the batch is in.
func (e *executor) commit(ctx context.Context, p *postgres.PartitionState, b batch) error {
	b.cursor = e.checkpointCursor(p, b)
	// Only what failure.Classify calls transient is retried, and not when
	// an inner retry loop (an object's upload) already gave up on it, nor
	// once ctx ended or the run is stopping (a cancelled statement is not a
	// target failure). Retries are logged to the run's logger: debug, and a
	// warning past retry.WarnAfter.
	what := fmt.Sprintf("writing a batch of %d records of partition %s/%s", len(b.recs), p.Stream, p.ID)
	err := retry.Do(retry.WithLogger(ctx, e.opts.Log), e.opts.Retry, what, func(actx context.Context) error {
		err := e.commitOnce(actx, p, b)
		if err != nil && (ctx.Err() != nil || e.stopping()) {
			return failure.Mark(err, failure.Permanent)
		}
		return err
	})
	if errors.Is(err, postgres.ErrCheckpointMoved) {
		type position struct {
			cursor string
			done   bool
		}
		pos, cerr := retried(ctx, e.opts, "reading the partition's checkpoint", func(ctx context.Context) (position, error) {
			c, d, err := e.state.PartitionCursor(ctx, e.run, p)
			return position{c, d}, err
		})
		cursor, done := pos.cursor, pos.done
		if cerr != nil {
			return cerr
		}
		if cursor == b.cursor && done == b.done {
			err = nil // an earlier attempt committed
		} else {
			return fmt.Errorf("%w: expected %q, found %q; is another process migrating into the same target?", err, p.Cursor, cursor)
		}
	}
	if err != nil {
		return err
	}
	p.Cursor, p.Done = b.cursor, b.done
	return nil
}

func (e *executor) commitOnce(ctx context.Context, p *postgres.PartitionState, b batch) error {
	if e.stopping() {
		// Stopping between two attempts: leave the batch to the next run.
		return ErrInterrupted
	}
	// The transaction begins with the sink's first statement (see lazyTx).
	tx := &lazyTx{pool: e.pool}
	defer tx.Rollback(context.WithoutCancel(ctx))

	began := time.Now()
	recs, excluded := e.exclude(b.recs)
	recs, held := holdSkips(recs)
	var out loaders.Outcome
	var err error
	if len(recs) > 0 || (excluded == 0 && len(held) == 0) {
		if out, err = e.job.Sink.Write(ctx, tx, recs); err != nil {
			return err
		}
	}
	counts, rejects, err := Tally(recs, out, time.Since(began))
	if err != nil {
		return err
	}
	written := slices.Collect(maps.Keys(counts))
	if excluded > 0 {
		counts[ExcludedTable] = postgres.TableCounts{Read: excluded, Excluded: excluded}
	}
	rejects = append(rejects, tallySkips(held, p.Stream, e.job.Sink, counts)...)
	if err := e.state.Checkpoint(ctx, tx, e.run, p, b.cursor, b.done, counts, rejects); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing a batch of %d records: %w", len(b.recs), err)
	}
	e.wrote(written, began, time.Now())
	return nil
}

// holdSkips returns the records of recs to hand to the sink and those an
// extractor marked as skipped or unreadable (record.Skip). recs is
// returned as is when none is marked.
func holdSkips(recs []record.Record) (kept, held []record.Record) {
	return split(recs, func(r record.Record) bool { return r.Skip != nil })
}

// split returns the records of recs for which out is false, then those for
// which it is true, each in recs' order. recs is returned as is, and
// nothing is allocated, when out is false for all of them.
func split(recs []record.Record, out func(record.Record) bool) (kept, left []record.Record) {
	for i, r := range recs {
		if !out(r) {
			if left != nil {
				kept = append(kept, r)
			}
			continue
		}
		if left == nil {
			kept = append(kept, recs[:i]...)
		}
		left = append(left, r)
	}
	if left == nil {
		return recs, nil
	}
	return kept, left
}

// tallySkips adds to counts the records held back from the sink because
// their extractor marked them (record.Skip), and returns the rejects to
// store. They are counted under the target table the sink names for their
// key (loaders.Labeler), or else (no such sink, or no table yet: a label
// in parentheses) under stream: a reject (Skip.Reject) as read and
// rejected there, stored with its reason; a record skipped on purpose as
// read and excluded under SkippedTable.
func tallySkips(held []record.Record, stream string, sink loaders.Sink, counts map[string]postgres.TableCounts) []postgres.Reject {
	var rejects []postgres.Reject
	for _, r := range held {
		table := stream
		if l, ok := sink.(loaders.Labeler); ok {
			if t := l.TableLabel(r.Key); !strings.HasPrefix(t, "(") {
				table = t
			}
		}
		if !r.Skip.Reject {
			t := SkippedTable(table, r.Skip.Reason)
			c := counts[t]
			c.Read++
			c.Excluded++
			counts[t] = c
			continue
		}
		c := counts[table]
		c.Read++
		c.Rejected++
		counts[table] = c
		raw, _ := r.MarshalJSON()
		rejects = append(rejects, postgres.Reject{Table: table, SourceKey: r.Key, Reason: r.Skip.Reason, Record: raw})
	}
	return rejects
}

// excluded reports whether Options.Exclude excludes r.
func (e *executor) excluded(r record.Record) bool {
	return e.opts.Exclude != nil && e.opts.Exclude(r.Key)
}

// checkpointCursor is the cursor b's checkpoint stores. Only the last
// batch of a partition can end with excluded records (read never ends
// another there); as nothing reads a finished partition again, its
// checkpoint stores the cursor of its last record not excluded instead,
// or the partition's cursor when there is none, so that no excluded
// record's cursor is stored.
func (e *executor) checkpointCursor(p *postgres.PartitionState, b batch) string {
	if !b.done || len(b.recs) == 0 || !e.excluded(b.recs[len(b.recs)-1]) {
		return b.cursor
	}
	for i := len(b.recs) - 1; i >= 0; i-- {
		if !e.excluded(b.recs[i]) {
			return b.recs[i].Cursor
		}
	}
	return p.Cursor
}

// exclude returns the records of recs the sink may write, and how many
// Options.Exclude left out. recs is returned as is when nothing is.
func (e *executor) exclude(recs []record.Record) ([]record.Record, int64) {
	if e.opts.Exclude == nil {
		return recs, 0
	}
	kept, left := split(recs, e.excluded)
	return kept, int64(len(left))
}

// wrote records that a batch with rows of these tables was written and
// committed from began to ended.
func (e *executor) wrote(tables []string, began, ended time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range tables {
		w := e.walls[t]
		if w == nil {
			w = &wallTime{}
			e.walls[t] = w
		}
		w.add(began, ended)
	}
}

// writeTimes returns the wall-clock writing time per table so far.
func (e *executor) writeTimes() map[string]time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]time.Duration, len(e.walls))
	for t, w := range e.walls {
		out[t] = w.total()
	}
	return out
}

// wallTime is the length of a union of time intervals: how long at least
// one of several workers was busy.
type wallTime struct {
	spans []span
	limit int // merge when spans reaches it
}

type span struct{ from, to time.Time }

func (w *wallTime) add(from, to time.Time) {
	w.spans = append(w.spans, span{from, to})
	if len(w.spans) >= w.limit {
		w.merge()
		// Amortised: merge again only when the list has doubled.
		w.limit = max(64, 2*len(w.spans))
	}
}

// merge sorts the spans and joins those that overlap or touch.
func (w *wallTime) merge() {
	slices.SortFunc(w.spans, func(a, b span) int { return a.from.Compare(b.from) })
	out := w.spans[:0]
	for _, s := range w.spans {
		if n := len(out); n > 0 && !s.from.After(out[n-1].to) {
			if s.to.After(out[n-1].to) {
				out[n-1].to = s.to
			}
			continue
		}
		out = append(out, s)
	}
	w.spans = out
}

func (w *wallTime) total() time.Duration {
	w.merge()
	var d time.Duration
	for _, s := range w.spans {
		d += s.to.Sub(s.from)
	}
	return d
}

// Tally turns a sink's outcome into per-table counts and stored rejects.
func Tally(recs []record.Record, out loaders.Outcome, took time.Duration) (map[string]postgres.TableCounts, []postgres.Reject, error) {
	if len(out.Tables) != len(recs) {
		return nil, nil, fmt.Errorf("sink reported %d outcomes for %d records", len(out.Tables), len(recs))
	}
	counts := map[string]postgres.TableCounts{}
	var rejects []postgres.Reject
	for i, r := range recs {
		t := out.Tables[i]
		c := counts[t]
		c.Read++
		if reason, ok := out.Rejects[i]; ok {
			c.Rejected++
			if out.Stored != nil {
				r = out.Stored[i] // field transforms applied
			}
			raw, _ := r.MarshalJSON()
			rejects = append(rejects, postgres.Reject{Table: t, SourceKey: r.Key, Reason: reason, Record: raw})
		}
		counts[t] = c
	}
	for t, n := range out.Changed {
		c := counts[t]
		c.Changed += n
		counts[t] = c
	}
	for t, c := range counts {
		c.WriteTime = took * time.Duration(c.Read) / time.Duration(max(len(recs), 1))
		counts[t] = c
	}
	return counts, rejects, nil
}

type nopProgress struct{}

func (nopProgress) Add(int64, int64)      {}
func (nopProgress) SetTotal(int64, int64) {}
func (nopProgress) Finish(error)          {}
