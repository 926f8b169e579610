package extractors

import (
	"reflect"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

func TestRangeStream(t *testing.T) {
	got := RangeStream("s", record.KindFile, []string{"g", "p"})
	want := Stream{Name: "s", Kind: record.KindFile, Partitions: []Partition{
		{Stream: "s", ID: "p0000", End: "g"}, {Stream: "s", ID: "p0001", Start: "g", End: "p"}, {Stream: "s", ID: "p0002", Start: "p"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := RangeStream("s", record.KindUser, nil); len(got.Partitions) != 1 || got.Partitions[0] != (Partition{Stream: "s", ID: "p0000"}) {
		t.Errorf("no points: %+v, want one partition of the whole stream", got)
	}
}
