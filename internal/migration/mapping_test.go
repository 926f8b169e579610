package migration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// docSource is a tiny in-memory document source: streams of documents, each
// stream in as many partitions as asked (at most its documents), read at a
// snapshot time it hands out, metering one read per document.
type docSource struct {
	source  string
	streams map[string][]record.Record // root collection → documents, in order
	at      time.Time                  // the snapshot time

	mu    sync.Mutex
	reads int64
	times []time.Time // read times Read was called with
}

func (s *docSource) Source() string { return s.source }
func (s *docSource) Close() error   { return nil }

func (s *docSource) SnapshotTime(context.Context) (time.Time, error) { return s.at, nil }
func (s *docSource) SnapshotWindow() time.Duration                   { return time.Hour }

func (s *docSource) BillableReads() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// Plan splits each stream into at most n partitions by document index.
func (s *docSource) Plan(_ context.Context, n int, readTime time.Time) ([]extractors.Stream, error) {
	if !readTime.Equal(s.at) {
		return nil, errors.New("planned at another time than the snapshot's")
	}
	var out []extractors.Stream
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.streams {
			if !yield(k) {
				return
			}
		}
	}) {
		docs := s.streams[name]
		parts := max(min(n, len(docs)), 1)
		st := extractors.Stream{Name: name, Kind: record.KindDocument}
		for i := range parts {
			st.Partitions = append(st.Partitions, extractors.Partition{
				Stream: name, ID: string(rune('a' + i)),
				Start: itoa(i * len(docs) / parts), End: itoa((i + 1) * len(docs) / parts),
			})
		}
		out = append(out, st)
	}
	return out, nil
}

func itoa(i int) string { return string(rune('0' + i)) }

func (s *docSource) Read(ctx context.Context, p extractors.Partition, readTime time.Time, _ string, emit func(record.Record) error) error {
	s.mu.Lock()
	s.times = append(s.times, readTime)
	s.mu.Unlock()
	docs := s.streams[p.Stream]
	for i := int(p.Start[0] - '0'); i < int(p.End[0]-'0'); i++ {
		s.mu.Lock()
		s.reads++
		s.mu.Unlock()
		if err := emit(docs[i]); err != nil {
			return err
		}
	}
	return nil
}

func doc(key string, fields map[string]record.Value) record.Record {
	return record.Record{Kind: record.KindDocument, Key: key, Fields: fields, Cursor: key}
}

func newDocSource() *docSource {
	return &docSource{
		source: "memory:docs",
		at:     time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		streams: map[string][]record.Record{
			"users": {
				doc("users/a", map[string]record.Value{"name": record.String("Ann")}),
				doc("users/b", map[string]record.Value{"name": record.String("Bob")}),
				doc("users/c", map[string]record.Value{"age": record.Int(3)}),
			},
			"orders": {
				doc("orders/1", map[string]record.Value{"total": record.Int(5)}),
				doc("orders/2", map[string]record.Value{"total": record.Int(6), "late": record.Bool(true)}),
			},
		},
	}
}

// TestInferScansEverythingAtOneSnapshot: without a sample every document
// is observed, in every partition, at the snapshot time; the reads are the
// source's meter.
func TestInferScansEverythingAtOneSnapshot(t *testing.T) {
	src := newDocSource()
	res, err := migration.Infer(context.Background(), src, 3, 0, mappings.InferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Documents != 5 || res.Reads != 5 {
		t.Errorf("observed %d documents, %d reads; want 5 and 5", res.Documents, res.Reads)
	}
	if len(src.times) != 5 { // 3 partitions of users, 2 of orders
		t.Errorf("%d partitions read, want 5", len(src.times))
	}
	for _, rt := range src.times {
		if !rt.Equal(src.at) {
			t.Errorf("a partition was read at %v, want the snapshot time %v", rt, src.at)
		}
	}
	users, orders := res.Mapping.TableFor("users"), res.Mapping.TableFor("orders")
	if users == nil || orders == nil {
		t.Fatalf("tables %v, want users and orders", res.Mapping.Tables)
	}
	var fields []string
	for _, c := range append(slices.Clone(users.Columns), orders.Columns...) {
		fields = append(fields, c.Field)
	}
	slices.Sort(fields)
	if strings.Join(fields, ",") != "age,late,name,total" {
		t.Errorf("columns for fields %v, want age, late, name, total", fields)
	}
}

// TestInferSampleReadsTheFirstDocumentsOfEachStream: with a sample, each
// stream is one partition and only its first sample documents are seen.
func TestInferSampleReadsTheFirstDocumentsOfEachStream(t *testing.T) {
	src := newDocSource()
	res, err := migration.Infer(context.Background(), src, 4, 1, mappings.InferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Documents != 2 || len(src.times) != 2 {
		t.Errorf("observed %d documents in %d partitions, want 2 in 2", res.Documents, len(src.times))
	}
	var fields []string
	for _, tb := range res.Mapping.Tables {
		for _, c := range tb.Columns {
			fields = append(fields, c.Field)
		}
	}
	slices.Sort(fields)
	if strings.Join(fields, ",") != "name,total" {
		t.Errorf("columns for fields %v, want those of users/a and orders/1 only", fields)
	}
}

// TestInferSaysWhatFailed: a failing read is returned, saying it was the
// scan.
func TestInferSaysWhatFailed(t *testing.T) {
	src := newDocSource()
	src.streams["broken"] = []record.Record{{Kind: record.KindDocument, Key: "broken/x"}}
	boom := errors.New("boom")
	_, err := migration.Infer(context.Background(), failingReads{src, boom}, 1, 0, mappings.InferOptions{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "scanning documents") {
		t.Errorf("error %v, want the read's, saying it was scanning", err)
	}
}

type failingReads struct {
	*docSource
	err error
}

func (f failingReads) Read(context.Context, extractors.Partition, time.Time, string, func(record.Record) error) error {
	return f.err
}

// TestChooseMappingInOrder: the file wins; then the mapping stored with the
// job's running run, else its last finished one (not with Restart, and not
// another source's); then inference, unless forbidden.
func TestChooseMappingInOrder(t *testing.T) {
	ctx := context.Background()
	src := newDocSource()

	// The file.
	stored := mappings.NewInferrer(mappings.InferOptions{})
	stored.Observe("stored/x", map[string]record.Value{"kept": record.String("k")})
	storedMapping := stored.Mapping()
	text, err := storedMapping.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := migration.ChooseMapping(ctx, src, migration.MappingRequest{Path: path, NoInfer: true})
	if err != nil || got.From != migration.MappingFromFile || got.Mapping.TableFor("stored") == nil {
		t.Fatalf("with a file: %+v, %v", got, err)
	}

	// No state, no file: inferred, or refused.
	got, err = migration.ChooseMapping(ctx, src, migration.MappingRequest{Workers: 2})
	if err != nil || got.From != migration.MappingFromInferred || got.Inference == nil || got.Inference.Documents != 5 || got.Mapping.TableFor("users") == nil {
		t.Fatalf("inferred: %+v, %v", got, err)
	}
	if _, err := migration.ChooseMapping(ctx, src, migration.MappingRequest{NoInfer: true}); !errors.Is(err, migration.ErrNoMapping) {
		t.Fatalf("nothing to use, inference forbidden: %v, want ErrNoMapping", err)
	}

	// Stored with a run of the job.
	pool := testenv.NewPool(t)
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	job := postgres.Job(record.KindDocument, src.Source())
	run, err := state.StartRun(ctx, job, record.KindDocument, map[string]string{"mapping": string(text)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err = migration.ChooseMapping(ctx, src, migration.MappingRequest{State: state, NoInfer: true})
	if err != nil || got.From != migration.MappingFromRun || got.Run != run.ID || got.Mapping.TableFor("stored") == nil || got.RunConfig["mapping"] == "" {
		t.Fatalf("running run: %+v, %v", got, err)
	}
	if err := state.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	got, err = migration.ChooseMapping(ctx, src, migration.MappingRequest{State: state, NoInfer: true})
	if err != nil || got.From != migration.MappingFromRun || got.Run != run.ID {
		t.Fatalf("finished run: %+v, %v", got, err)
	}
	got, err = migration.ChooseMapping(ctx, src, migration.MappingRequest{State: state, Restart: true})
	if err != nil || got.From != migration.MappingFromInferred {
		t.Fatalf("restart: %+v, %v; want inferred again", got, err)
	}
	other := newDocSource()
	other.source = "memory:other"
	if _, err := migration.ChooseMapping(ctx, other, migration.MappingRequest{State: state, NoInfer: true}); !errors.Is(err, migration.ErrNoMapping) {
		t.Fatalf("another source's runs were used: %v", err)
	}
	// The file still wins over the stored mapping.
	inferred := mappings.NewInferrer(mappings.InferOptions{})
	inferred.Observe("fromfile/x", nil)
	text2, _ := inferred.Mapping().Marshal()
	if err := os.WriteFile(path, text2, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = migration.ChooseMapping(ctx, src, migration.MappingRequest{Path: path, State: state})
	if err != nil || got.From != migration.MappingFromFile || got.Mapping.TableFor("fromfile") == nil {
		t.Fatalf("file and a stored mapping: %+v, %v", got, err)
	}
}

// TestAutoSample: 1% of a stream, at least 25 (all of a smaller one), at
// most 1000; 100 when the source cannot count.
func TestAutoSample(t *testing.T) {
	for n, want := range map[int64]int{-1: 100, 0: 0, 3: 3, 25: 25, 2600: 26, 1000: 25, 50_000: 500, 10_000_000: 1000} {
		if got := migration.AutoSample(n); got != want {
			t.Errorf("AutoSample(%d) = %d, want %d", n, got, want)
		}
	}
}

// countingSource is a docSource that counts streams cheaply (one metered
// read per count).
type countingSource struct {
	*docSource
	counted, firsts int
}

func (c *countingSource) Count(_ context.Context, s extractors.Stream) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counted++
	c.reads++
	return int64(len(c.streams[s.Name])), nil
}

// TestInferAutoSampleCountsAndReadsOnlyTheSample: SampleAuto counts every
// stream, reads AutoSample of each with ReadFirst, and skips empty ones.
func TestInferAutoSampleCountsAndReadsOnlyTheSample(t *testing.T) {
	src := newDocSource()
	var big []record.Record
	for i := range 3000 {
		big = append(big, doc(fmt.Sprintf("big/%05d", i), map[string]record.Value{"i": record.Int(int64(i))}))
	}
	src.streams["big"] = big
	src.streams["empty"] = nil
	// One partition per document index digit: Plan's itoa handles < 10.
	c := &countingSource{docSource: src}
	res, err := migration.Infer(context.Background(), bigReads{c}, 2, migration.SampleAuto, mappings.InferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// big: 30 of 3000; users: 3; orders: 2; empty: nothing.
	if res.Documents != 35 || c.counted != 4 || c.firsts != 3 {
		t.Fatalf("observed %d documents, counted %d streams, %d sample reads; want 35, 4, 3", res.Documents, c.counted, c.firsts)
	}
	if res.Mapping.TableFor("big") == nil || res.Mapping.TableFor("empty") != nil {
		t.Fatalf("tables %v: want big, and none for the empty stream", res.Mapping.Tables)
	}
	if res.Reads != 35+4 {
		t.Fatalf("reads %d, want 39 (35 documents, 4 counts)", res.Reads)
	}
}

// bigReads lets the docSource's one-character partition bounds address
// more than ten documents: with one partition per stream (a sample), the
// partition is the whole stream.
type bigReads struct{ *countingSource }

func (b bigReads) Read(ctx context.Context, p extractors.Partition, readTime time.Time, _ string, emit func(record.Record) error) error {
	for _, d := range b.streams[p.Stream] {
		b.mu.Lock()
		b.reads++
		b.mu.Unlock()
		if err := emit(d); err != nil {
			return err
		}
	}
	return nil
}

func (b bigReads) ReadFirst(ctx context.Context, p extractors.Partition, readTime time.Time, n int, emit func(record.Record) error) error {
	b.mu.Lock()
	b.firsts++
	b.mu.Unlock()
	for _, d := range b.streams[p.Stream][:min(n, len(b.streams[p.Stream]))] {
		b.mu.Lock()
		b.reads++
		b.mu.Unlock()
		if err := emit(d); err != nil {
			return err
		}
	}
	return nil
}
