package extractors_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// plain is an extractor with no abilities: two streams, one of which
// sets its own read time.
type plain struct {
	planned time.Time // the readTime Plan got
	own     time.Time
	err     error
}

func (p *plain) Source() string { return "plain" }
func (p *plain) Close() error   { return nil }
func (p *plain) Read(context.Context, extractors.Partition, time.Time, string, func(record.Record) error) error {
	return nil
}

func (p *plain) Plan(_ context.Context, n int, readTime time.Time) ([]extractors.Stream, error) {
	p.planned = readTime
	if p.err != nil {
		return nil, p.err
	}
	return []extractors.Stream{
		{Name: "a", Partitions: make([]extractors.Partition, n)},
		{Name: "b", ReadTime: p.own, Partitions: make([]extractors.Partition, 1)},
	}, nil
}

// snap adds snapshot reads at a fixed time.
type snap struct {
	*plain
	at  time.Time
	err error
}

func (s snap) SnapshotTime(context.Context) (time.Time, error) { return s.at, s.err }
func (s snap) SnapshotWindow() time.Duration                   { return time.Hour }

// TestPlanSnapshot: streams are planned at the source's snapshot time and
// carry it unless they set their own; without snapshots the time is zero;
// errors say which step failed.
func TestPlanSnapshot(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	own := at.Add(-time.Minute)
	s := snap{plain: &plain{own: own}, at: at}
	rt, streams, err := extractors.PlanSnapshot(ctx, s, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Equal(at) || !s.planned.Equal(at) || len(streams) != 2 || len(streams[0].Partitions) != 3 ||
		!streams[0].ReadTime.Equal(at) || !streams[1].ReadTime.Equal(own) {
		t.Errorf("read time %v (planned at %v), streams %+v; want %v, the second stream at its own %v", rt, s.planned, streams, at, own)
	}

	p := &plain{}
	rt, streams, err = extractors.PlanSnapshot(ctx, p, 1)
	if err != nil || !rt.IsZero() || !streams[0].ReadTime.IsZero() {
		t.Errorf("without snapshots: %v %+v %v; want zero read times", rt, streams, err)
	}

	boom := errors.New("boom")
	if _, _, err := extractors.PlanSnapshot(ctx, snap{plain: &plain{}, err: boom}, 1); !errors.Is(err, boom) || !strings.Contains(err.Error(), "snapshot time") {
		t.Errorf("failing snapshot: %v", err)
	}
	if _, _, err := extractors.PlanSnapshot(ctx, &plain{err: boom}, 1); err != boom {
		t.Errorf("failing plan: %v, want Plan's error unchanged", err)
	}
}

type named struct{ *plain }

func (named) ObjectURL(bucket, name string) string { return "x://" + bucket + "/" + name }

type ordered struct{ *plain }

type reversed struct{}

func (reversed) Compare(a, b string) int   { return strings.Compare(b, a) }
func (reversed) OrderBy(col string) string { return col + " DESC" }

func (ordered) KeyOrder() record.KeyOrder { return reversed{} }

// TestAbilityDefaults: ObjectURL and KeyOrderOf use an extractor's own
// naming and order, and "bucket/name" and byte order otherwise.
func TestAbilityDefaults(t *testing.T) {
	if got := extractors.ObjectURL(&plain{}, "b", "n/m"); got != "b/n/m" {
		t.Errorf("default object URL %q", got)
	}
	if got := extractors.ObjectURL(named{}, "b", "n/m"); got != "x://b/n/m" {
		t.Errorf("object URL %q", got)
	}
	if o := extractors.KeyOrderOf(&plain{}); o != record.ByteOrder {
		t.Errorf("default key order %T", o)
	}
	if o := extractors.KeyOrderOf(ordered{}); o.Compare("a", "b") <= 0 {
		t.Errorf("key order %T is not the extractor's", o)
	}
}
