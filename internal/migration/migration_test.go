package migration_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/genproto/googleapis/type/latlng"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/memory"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// failingSink wraps the real documents sink and fails one chosen batch
// after the rows are written into its transaction.
type failingSink struct {
	loaders.Sink
	failAt int64 // 1-based batch number to fail; 0: never
	err    error
	calls  atomic.Int64
}

func (s *failingSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out, err := s.Sink.Write(ctx, tx, recs)
	if n := s.calls.Add(1); err == nil && n == s.failAt {
		return out, s.err
	}
	return out, err
}

type fixture struct {
	pool    *pgxpool.Pool
	state   *postgres.State
	mapping *mappings.Mapping
	recs    []record.Record // the source's documents
	docs    int
}

// newFixture makes the sample application's documents (demoapp's
// generator, as the e2e tests seed them into Firestore) a source held in
// memory, with a mapping inferred from their paths, and a fresh target.
// The engine's behaviour under test does not depend on Firestore: the
// Firestore extractor passes the same extractortest suite as
// extractors/memory.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	docs := demoapp.Documents(9, demoapp.Scale{Users: 300, Posts: 200, CommentsPerPost: 2, Orders: 100, ItemsPerOrder: 2, Archive: 10})
	in := mappings.NewInferrer(mappings.InferOptions{})
	recs := make([]record.Record, len(docs))
	written := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for i, d := range docs {
		in.Observe(d.Path, nil)
		recs[i] = record.Record{Kind: record.KindDocument, Key: d.Path, Fields: goFields(t, d.Fields),
			CreateTime: written, UpdateTime: written.Add(time.Duration(i) * time.Microsecond)}
	}
	pool := testenv.NewPool(t)
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, state: state, mapping: in.Mapping(), recs: recs, docs: len(docs)}
}

// goFields converts demoapp's field values (as the Firestore Go client
// takes them) into record values, as the Firestore extractor reads them.
func goFields(t *testing.T, m map[string]any) map[string]record.Value {
	t.Helper()
	out := make(map[string]record.Value, len(m))
	for k, v := range m {
		out[k] = goValue(t, v)
	}
	return out
}

func goValue(t *testing.T, v any) record.Value {
	t.Helper()
	switch x := v.(type) {
	case nil:
		return record.Null()
	case bool:
		return record.Bool(x)
	case int64:
		return record.Int(x)
	case float64:
		return record.Double(x)
	case time.Time:
		return record.Timestamp(x)
	case string:
		return record.String(x)
	case []byte:
		return record.Bytes(x)
	case *latlng.LatLng:
		return record.Geo(x.Latitude, x.Longitude)
	case firestore.Vector64:
		return record.Vector([]float64(x))
	case []string:
		vals := make([]record.Value, len(x))
		for i, e := range x {
			vals[i] = record.String(e)
		}
		return record.Array(vals...)
	case []any:
		vals := make([]record.Value, len(x))
		for i, e := range x {
			vals[i] = goValue(t, e)
		}
		return record.Array(vals...)
	case map[string]any:
		return record.Map(goFields(t, x))
	}
	// demoapp's document references are a string type of its own.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		return record.Reference(rv.String())
	}
	t.Fatalf("demoapp value %T has no record value", v)
	return record.Value{}
}

func (f *fixture) job(t *testing.T, sink loaders.Sink) migration.Job {
	t.Helper()
	return f.jobWith(t, sink, memory.Options{})
}

// jobWith is job with a source made with opts (its Name is set).
func (f *fixture) jobWith(t *testing.T, sink loaders.Sink, opts memory.Options) migration.Job {
	t.Helper()
	opts.Name = "demoapp"
	ex, err := memory.New(f.recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return migration.Job{Kind: record.KindDocument, Extractor: ex, Sink: sink, Config: map[string]string{"test": "1"}}
}

// sink returns the documents sink of the fixture's mapping.
func (f *fixture) sink(t *testing.T) loaders.Sink {
	t.Helper()
	sink, err := postgres.NewDocuments(f.mapping)
	if err != nil {
		t.Fatal(err)
	}
	return sink
}

func (f *fixture) rows(t *testing.T) int64 {
	t.Helper()
	var total int64
	for _, tb := range f.mapping.Tables {
		var n int64
		if err := f.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{f.mapping.Schema, tb.Name}.Sanitize()+" WHERE NOT _missing").Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// committed is the number of records the checkpoints cover.
func (f *fixture) committed(t *testing.T) int64 {
	t.Helper()
	n, err := testenv.CommittedRecords(context.Background(), f.pool)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRowsAndCheckpointCommitTogether fails a batch after its rows were
// written: neither the rows nor the checkpoint may survive, everything
// before it must, and the re-run completes the target exactly.
func TestRowsAndCheckpointCommitTogether(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sink := f.sink(t)
	boom := errors.New("the sink fails after writing")
	failing := &failingSink{Sink: sink, failAt: 5, err: boom}
	opts := migration.Options{Workers: 1, BatchSize: 40}
	if _, err := migration.Execute(ctx, f.pool, f.state, f.job(t, failing), opts); !errors.Is(err, boom) {
		t.Fatalf("Execute = %v, want the sink's error", err)
	}
	// Four batches committed (streams end batches early, so not 4×40).
	if rows, committed := f.rows(t), f.committed(t); rows != committed || committed == 0 || committed >= 4*40 {
		t.Fatalf("after a failed 5th batch: %d rows, checkpoints cover %d records; want equal, and at most four batches", rows, committed)
	}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, sink), migration.Options{Workers: 4, BatchSize: 40})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Run.Resumed || f.rows(t) != int64(f.docs) || f.committed(t) != int64(f.docs) {
		t.Fatalf("resumed=%v, %d rows, %d committed; want %d", res.Run.Resumed, f.rows(t), f.committed(t), f.docs)
	}
}

// TestTransientBatchFailuresAreRetriedOnce makes a batch fail with a
// retryable error after writing its rows; the batch is retried, counted
// once, and the run completes.
func TestTransientBatchFailuresAreRetriedOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sink := f.sink(t)
	failing := &failingSink{Sink: sink, failAt: 3, err: retry.Mark(errors.New("connection reset"), true)}
	opts := migration.Options{Workers: 4, BatchSize: 25, Retry: retry.Policy{Attempts: 3}}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, failing), opts)
	if err != nil {
		t.Fatal(err)
	}
	var read, changed int64
	for _, tb := range res.Tables {
		read += tb.Read
		changed += tb.Changed
	}
	if read != int64(f.docs) || changed != int64(f.docs) || f.rows(t) != int64(f.docs) {
		t.Fatalf("read %d, changed %d, rows %d; want %d each", read, changed, f.rows(t), f.docs)
	}
	// A finished job is not run again.
	res, err = migration.Execute(ctx, f.pool, f.state, f.job(t, sink), opts)
	if err != nil || !res.AlreadyFinished {
		t.Fatalf("second Execute: %+v, %v; want AlreadyFinished", res, err)
	}
}

// slowSink makes writing a batch of root "users" documents slow, as a busy
// target would, and can close a channel at its nth batch.
type slowSink struct {
	loaders.Sink
	delay  time.Duration
	stopAt int64
	stop   chan struct{}
	calls  atomic.Int64
}

func (s *slowSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	if len(recs) > 0 && strings.HasPrefix(recs[0].Key, "users/") && strings.Count(recs[0].Key, "/") == 1 {
		time.Sleep(s.delay) // the slow write under test, not synchronisation
	}
	out, err := s.Sink.Write(ctx, tx, recs)
	if n := s.calls.Add(1); n == s.stopAt {
		close(s.stop)
	}
	return out, err
}

// TestTableSecondsAreWallTime writes one table's batches slowly on four
// workers at once: the table's seconds are the wall-clock time its batches
// took, which can never exceed the run, not the sum over the workers.
func TestTableSecondsAreWallTime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sink := f.sink(t)
	slow := &slowSink{Sink: sink, delay: 150 * time.Millisecond}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, slow), migration.Options{Workers: 4, BatchSize: 25})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) == 0 {
		t.Fatal("no tables in the result")
	}
	for _, tb := range res.Tables {
		if w := res.WriteTimes[tb.Table]; w <= 0 || w > res.Elapsed {
			t.Errorf("table %s: %s of writing in a run of %s", tb.Table, w, res.Elapsed)
		}
	}
}

// TestStopLetsTheBatchInFlightCommit closes Options.Stop while a batch is
// being written: that batch commits, no other starts, Execute says the run
// was interrupted and reports what is committed; the next Execute resumes
// and completes the target.
func TestStopLetsTheBatchInFlightCommit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sink := f.sink(t)
	stop := make(chan struct{})
	stopping := &slowSink{Sink: sink, stopAt: 3, stop: stop}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, stopping), migration.Options{Workers: 1, BatchSize: 30, Stop: stop})
	if !errors.Is(err, migration.ErrInterrupted) || err.Error() != migration.ErrInterrupted.Error() {
		t.Fatalf("Execute = %v, want just ErrInterrupted", err)
	}
	if n := stopping.calls.Load(); n != 3 {
		t.Fatalf("%d batches written; want the 3 started before the stop", n)
	}
	var read int64
	for _, tb := range res.Tables {
		read += tb.Read
	}
	if rows, committed := f.rows(t), f.committed(t); rows != committed || committed == 0 || read != committed {
		t.Fatalf("after the stop: %d rows, checkpoints cover %d, result reads %d; want equal and not 0", rows, committed, read)
	}
	res, err = migration.Execute(ctx, f.pool, f.state, f.job(t, sink), migration.Options{Workers: 4, BatchSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Run.Resumed || f.rows(t) != int64(f.docs) || f.committed(t) != int64(f.docs) {
		t.Fatalf("resumed=%v, %d rows, %d committed; want %d", res.Run.Resumed, f.rows(t), f.committed(t), f.docs)
	}
}

// cancellingSink cancels the run's context during its nth batch and fails
// that batch the way an upload cut off by the cancellation fails: marked
// retryable.
type cancellingSink struct {
	loaders.Sink
	at     int64
	cancel context.CancelFunc
	calls  atomic.Int64
}

func (s *cancellingSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	if s.calls.Add(1) == s.at {
		s.cancel()
		<-ctx.Done()
		return loaders.Outcome{}, retry.Mark(fmt.Errorf("uploading: %w", ctx.Err()), true)
	}
	return s.Sink.Write(ctx, tx, recs)
}

// TestCancelledBatchIsNotRetried cancels the run while a batch is written:
// the batch is not retried (no "retrying" warning), Execute reports an
// interruption, not an error, and what committed before stays.
func TestCancelledBatchIsNotRetried(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	sink := &cancellingSink{Sink: f.sink(t), at: 3, cancel: cancel}
	_, err := migration.Execute(ctx, f.pool, f.state, f.job(t, sink), migration.Options{Workers: 1, BatchSize: 30, Log: log})
	if !errors.Is(err, migration.ErrInterrupted) || err.Error() != migration.ErrInterrupted.Error() {
		t.Fatalf("Execute = %v, want just ErrInterrupted", err)
	}
	if strings.Contains(logs.String(), "retrying") || sink.calls.Load() != 3 {
		t.Fatalf("%d batches written; the cancelled one was retried:\n%s", sink.calls.Load(), logs.String())
	}
	if rows, committed := f.rows(t), f.committed(t); rows != committed || committed == 0 {
		t.Fatalf("%d rows, checkpoints cover %d; want equal and not 0", rows, committed)
	}
}

// TestRefusedPrepareRecordsNoRun: when another source claims the tables
// after the job was built (between its early check and Prepare), Execute
// fails with the refusal before recording a run, so that no run of the
// refused job is left to resume.
func TestRefusedPrepareRecordsNoRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other, err := postgres.NewDocuments(f.mapping)
	if err != nil {
		t.Fatal(err)
	}
	other.SetOwner(postgres.Owner{Source: "firestore:projects/another/databases/(default)"})
	if err := other.Prepare(ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	sink, err := postgres.NewDocuments(f.mapping)
	if err != nil {
		t.Fatal(err)
	}
	job := f.job(t, sink)
	sink.SetOwner(postgres.Owner{Source: job.Extractor.Source()})
	if _, err := migration.Execute(ctx, f.pool, f.state, job, migration.Options{Workers: 1}); err == nil || !strings.Contains(err.Error(), "projects/another/") {
		t.Fatalf("Execute = %v; want the refusal", err)
	}
	var runs int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM baasmigrate.runs`).Scan(&runs); err != nil || runs != 0 {
		t.Fatalf("%d runs recorded (%v); want none", runs, err)
	}
}

// terminatingProgress ends every session the target's pool holds when a
// stream is finished, as a PostgreSQL restart does between two batches:
// the next state statement (the next stream's progress, or the end of
// the run) meets a dead connection.
type terminatingProgress struct{ terminate func() }

func (p terminatingProgress) StartStream(migration.StreamInfo) migration.StreamProgress {
	return terminatingStream(p)
}

type terminatingStream struct{ terminate func() }

func (terminatingStream) Add(int64, int64)      {}
func (terminatingStream) SetTotal(int64, int64) {}
func (s terminatingStream) Finish(error)        { s.terminate() }

// recordingProgress keeps what progress was told of every stream.
type recordingProgress struct {
	mu      sync.Mutex
	streams map[string]*recordingStream
}

func (p *recordingProgress) StartStream(info migration.StreamInfo) migration.StreamProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &recordingStream{total: -1}
	p.streams[info.Name] = s
	return s
}

type recordingStream struct {
	mu                    sync.Mutex
	added, total          int64
	totalAfterFinish      bool
	finished, totalCalled bool
}

func (s *recordingStream) Add(records, _ int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.added += records
}

func (s *recordingStream) SetTotal(records, _ int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total, s.totalCalled = records, true
	s.totalAfterFinish = s.finished
}

func (s *recordingStream) Finish(error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
}

// waitingCounter counts a stream only after the target has committed a
// batch of it: a run that waited for the count before reading would
// never get there.
type waitingCounter struct {
	extractors.Extractor
	committed <-chan struct{}
}

func (c waitingCounter) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	select {
	case <-c.committed:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, errors.New("no batch was committed while the stream was being counted: the read waited for the count")
	}
	return c.Extractor.(extractors.Counter).Count(ctx, s)
}

// signallingSink closes committed after its first write.
type signallingSink struct {
	loaders.Sink
	once      sync.Once
	committed chan struct{}
}

func (s *signallingSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out, err := s.Sink.Write(ctx, tx, recs)
	s.once.Do(func() { close(s.committed) })
	return out, err
}

// sizingSink records the largest batch it was given, in records and in
// memory (record.Record.MemSize), and the largest record.
type sizingSink struct {
	loaders.Sink
	mu                      sync.Mutex
	maxRecs, maxMem, maxRec int
	writes                  int
}

func (s *sizingSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	mem := 0
	s.mu.Lock()
	for i := range recs {
		n := recs[i].MemSize()
		mem += n
		s.maxRec = max(s.maxRec, n)
	}
	s.maxRecs, s.maxMem = max(s.maxRecs, len(recs)), max(s.maxMem, mem)
	s.writes++
	s.mu.Unlock()
	return s.Sink.Write(ctx, tx, recs)
}

// TestBatchesAreBoundedByBytes: with a byte bound far below what
// BatchSize records hold, batches end at the bound (they never exceed it
// by more than their last record), and the target is still exact.
func TestBatchesAreBoundedByBytes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sink := &sizingSink{Sink: f.sink(t)}
	const bound = 8 << 10
	opts := migration.Options{Workers: 2, BatchSize: 100000, BatchBytes: bound}
	if _, err := migration.Execute(ctx, f.pool, f.state, f.job(t, sink), opts); err != nil {
		t.Fatal(err)
	}
	if sink.maxMem >= bound+sink.maxRec {
		t.Errorf("a batch held %d bytes of records; the bound is %d and the largest record %d", sink.maxMem, bound, sink.maxRec)
	}
	if sink.maxRecs >= f.docs/2 || sink.writes < 10 {
		t.Errorf("%d batches, the largest of %d records: the byte bound did not end them", sink.writes, sink.maxRecs)
	}
	if rows, committed := f.rows(t), f.committed(t); rows != int64(f.docs) || committed != int64(f.docs) {
		t.Fatalf("%d rows, checkpoints cover %d; want %d", rows, committed, f.docs)
	}
}

// TestStreamsAreCountedWhileRead: the count behind the progress's total
// runs beside the read, not before it (Firestore takes seconds to count a
// large collection), and still reaches the progress of every stream
// before it is finished, equal to what was committed.
func TestStreamsAreCountedWhileRead(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sink := &signallingSink{Sink: f.sink(t), committed: make(chan struct{})}
	job := f.job(t, sink)
	job.Extractor = waitingCounter{Extractor: job.Extractor, committed: sink.committed}
	progress := &recordingProgress{streams: map[string]*recordingStream{}}
	opts := migration.Options{Workers: 2, BatchSize: 40, Progress: progress}
	if _, err := migration.Execute(ctx, f.pool, f.state, job, opts); err != nil {
		t.Fatal(err)
	}
	if len(progress.streams) == 0 {
		t.Fatal("no stream was reported")
	}
	var sum int64
	for name, s := range progress.streams {
		if !s.totalCalled || s.totalAfterFinish || s.total != s.added {
			t.Errorf("stream %s: total told %v (after Finish: %v) = %d; %d records committed", name, s.totalCalled, s.totalAfterFinish, s.total, s.added)
		}
		sum += s.total
	}
	if sum != int64(f.docs) {
		t.Errorf("totals add up to %d; the source holds %d", sum, f.docs)
	}
}

// TestStateReadsSurviveLostSessions ends the target's sessions before every
// stream (what a PostgreSQL restart does): the reads and writes of the
// tool's state between batches are retried like batches, and the run
// completes exactly instead of failing on the first dead connection.
func TestStateReadsSurviveLostSessions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	admin, err := pgx.Connect(ctx, testenv.PostgresAdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var db string
	if err := f.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	terminations := 0
	terminate := func() {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&n); err != nil {
			t.Errorf("ending the target's sessions: %v", err)
			return
		}
		terminations += n
		// Wait until they are gone, so that the next statement meets a
		// dead connection rather than a dying one.
		for {
			var left int
			if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&left); err != nil || left == 0 {
				return
			}
		}
	}
	job := f.job(t, f.sink(t))
	opts := migration.Options{Workers: 2, BatchSize: 40, Progress: terminatingProgress{terminate: terminate},
		Retry: retry.Policy{Attempts: 4, Initial: time.Millisecond, Max: 10 * time.Millisecond}}
	if _, err := migration.Execute(ctx, f.pool, f.state, job, opts); err != nil {
		t.Fatalf("Execute with the target's sessions ended before each stream: %v", err)
	}
	if terminations == 0 {
		t.Fatal("no session was ended; the test did not test anything")
	}
	if rows, committed := f.rows(t), f.committed(t); rows != int64(f.docs) || committed != int64(f.docs) {
		t.Fatalf("%d rows, checkpoints cover %d; want %d", rows, committed, f.docs)
	}
}

// clockSink moves the source's clock by its window during its nth batch,
// as a run outliving the window does.
type clockSink struct {
	loaders.Sink
	clock *memory.Clock
	by    time.Duration
	at    int64
	calls atomic.Int64
}

func (s *clockSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	if s.calls.Add(1) == s.at {
		s.clock.Advance(s.by)
	}
	return s.Sink.Write(ctx, tx, recs)
}

// TestExpiredSnapshotIsRenewed lets the source's snapshot window pass
// while a stream is read (its 3rd batch of 30 is written, the reader
// ahead): the partition continues at a new read time from the last record
// it read, each later stream renews too (recorded, and counted in the
// result), and the target ends up exact, no record counted twice.
func TestExpiredSnapshotIsRenewed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clock := memory.NewClock(memory.Epoch)
	sink := &clockSink{Sink: f.sink(t), clock: clock, by: 2 * time.Minute, at: 4}
	job := f.jobWith(t, sink, memory.Options{Clock: clock, Window: time.Minute})
	res, err := migration.Execute(ctx, f.pool, f.state, job, migration.Options{Workers: 1, BatchSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	var renewed int
	var first, now time.Time
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE renewals > 0), min(first_read_time), max(read_time) FROM baasmigrate.streams`).
		Scan(&renewed, &first, &now); err != nil {
		t.Fatal(err)
	}
	if res.SnapshotRenewals == 0 || renewed != res.SnapshotRenewals || !first.Equal(memory.Epoch) || !now.Equal(memory.Epoch.Add(2*time.Minute)) {
		t.Fatalf("%d renewals reported, %d streams renewed, read times from %v to %v; want renewals, at %v then %v",
			res.SnapshotRenewals, renewed, first, now, memory.Epoch, memory.Epoch.Add(2*time.Minute))
	}
	if f.rows(t) != int64(f.docs) || f.committed(t) != int64(f.docs) {
		t.Fatalf("%d rows, %d committed; want %d", f.rows(t), f.committed(t), f.docs)
	}
}

// upgradingSink counts the calls to its sink's Prepare and to Upgrade.
type upgradingSink struct {
	loaders.Sink
	prepared, upgraded int
}

func (s *upgradingSink) Prepare(ctx context.Context, db loaders.DB) error {
	s.prepared++
	return s.Sink.Prepare(ctx, db)
}

func (s *upgradingSink) Upgrade(context.Context, loaders.DB) error {
	s.upgraded++
	return nil
}

// TestNoOpReRunUpgradesOnly: a re-run of a finished job with the same
// settings copies nothing and prepares nothing, but has a sink that can
// upgrade its target do so, so that tables an earlier version made are
// upgraded by the re-run the docs tell users to make.
func TestNoOpReRunUpgradesOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	first := &upgradingSink{Sink: f.sink(t)}
	if _, err := migration.Execute(ctx, f.pool, f.state, f.job(t, first), migration.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	again := &upgradingSink{Sink: f.sink(t)}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, again), migration.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !res.AlreadyFinished {
		t.Fatalf("the re-run was not a no-op: %+v", res)
	}
	if first.prepared != 1 || again.prepared != 0 || again.upgraded != 1 {
		t.Fatalf("run: Prepare ×%d; no-op re-run: Prepare ×%d, Upgrade ×%d; want 1; 0, 1", first.prepared, again.prepared, again.upgraded)
	}
}
