package diff

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// countingSource is an extractor that can count its streams and meters its
// reads: planning costs planReads, each count one read.
type countingSource struct {
	streams    []extractors.Stream
	counts     map[string]int64
	planReads  int64
	snapshot   time.Time
	reads      int64
	countedAt  map[string]time.Time
	partitions int
	countErr   error
}

func (s *countingSource) Source() string { return "test:counting" }
func (s *countingSource) Close() error   { return nil }
func (s *countingSource) Read(context.Context, extractors.Partition, time.Time, string, func(record.Record) error) error {
	return errors.New("EstimateReads must not read records")
}

func (s *countingSource) Plan(_ context.Context, partitions int, readTime time.Time) ([]extractors.Stream, error) {
	s.partitions = partitions
	s.reads += s.planReads
	out := append([]extractors.Stream(nil), s.streams...)
	return out, nil
}

func (s *countingSource) Count(_ context.Context, st extractors.Stream) (int64, error) {
	if s.countErr != nil {
		return 0, s.countErr
	}
	s.reads++
	if s.countedAt == nil {
		s.countedAt = map[string]time.Time{}
	}
	s.countedAt[st.Name] = st.ReadTime
	return s.counts[st.Name], nil
}

func (s *countingSource) BillableReads() int64 { return s.reads }

func (s *countingSource) SnapshotTime(context.Context) (time.Time, error) { return s.snapshot, nil }
func (s *countingSource) SnapshotWindow() time.Duration                   { return time.Hour }

func TestEstimateReads(t *testing.T) {
	snap := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	own := snap.Add(-time.Minute)
	src := &countingSource{
		streams: []extractors.Stream{
			{Name: "users"},
			{Name: "orders", ReadTime: own},
		},
		counts:    map[string]int64{"users": 1200, "orders": 98800},
		planReads: 3,
		snapshot:  snap,
		reads:     1000, // reads before the estimate are not its cost
	}
	e, err := EstimateReads(context.Background(), src, 4, 0.06)
	if err != nil {
		t.Fatal(err)
	}
	if e.Records != 100000 {
		t.Errorf("Records = %d, want 100000", e.Records)
	}
	// One read per record, plus planning (3) and the two counts.
	if e.Reads != 100005 {
		t.Errorf("Reads = %d, want 100005", e.Reads)
	}
	if want := 100005 * 0.06 / 100000; math.Abs(e.Cost-want) > 1e-12 || e.PricePer100k != 0.06 {
		t.Errorf("Cost = %v at %v, want %v at 0.06", e.Cost, e.PricePer100k, want)
	}
	if src.partitions != 4 {
		t.Errorf("planned into %d partitions, want 4", src.partitions)
	}
	if !src.countedAt["users"].Equal(snap) || !src.countedAt["orders"].Equal(own) {
		t.Errorf("streams counted at %v, want users at the snapshot %v and orders at its own %v", src.countedAt, snap, own)
	}
}

// unmetered can count but does not meter its reads.
type unmetered struct {
	extractors.Extractor
	extractors.Counter
}

func TestEstimateReadsUnmetered(t *testing.T) {
	src := &countingSource{streams: []extractors.Stream{{Name: "a"}}, counts: map[string]int64{"a": 7}, planReads: 50}
	e, err := EstimateReads(context.Background(), unmetered{src, src}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Records != 7 || e.Reads != 7 {
		t.Errorf("Records, Reads = %d, %d; want 7, 7 (planning is not metered)", e.Records, e.Reads)
	}
}

func TestEstimateReadsCannotCount(t *testing.T) {
	src := &countingSource{streams: []extractors.Stream{{Name: "a"}}}
	e, err := EstimateReads(context.Background(), struct{ extractors.Extractor }{src}, 1, 1)
	if err != nil || e != nil {
		t.Errorf("EstimateReads of a source that cannot count = %v, %v; want nil, nil", e, err)
	}
}

func TestEstimateReadsCountError(t *testing.T) {
	boom := errors.New("aggregation refused")
	src := &countingSource{streams: []extractors.Stream{{Name: "a"}}, countErr: boom}
	if _, err := EstimateReads(context.Background(), src, 1, 1); !errors.Is(err, boom) {
		t.Errorf("error %v, want the count's", err)
	}
}

func TestReadCost(t *testing.T) {
	for _, c := range []struct {
		reads int64
		price float64
		want  float64
	}{{0, 0.06, 0}, {100000, 0.06, 0.06}, {250000, 0.06, 0.15}, {1, 0.03, 0.0000003}} {
		if got := ReadCost(c.reads, c.price); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("ReadCost(%d, %v) = %v, want %v", c.reads, c.price, got, c.want)
		}
	}
}
