package extractors

import (
	"fmt"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// RangeStream is the stream name of records of kind, cut at points (keys
// in increasing order) into len(points)+1 partitions "p0000", "p0001", …:
// the first from the stream's start, the last to its end, each starting
// at the point where the one before it ends.
func RangeStream(name string, kind record.Kind, points []string) Stream {
	s := Stream{Name: name, Kind: kind}
	bounds := append(append([]string{""}, points...), "")
	for i := 0; i+1 < len(bounds); i++ {
		s.Partitions = append(s.Partitions, Partition{Stream: name, ID: fmt.Sprintf("p%04d", i), Start: bounds[i], End: bounds[i+1]})
	}
	return s
}
