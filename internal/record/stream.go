package record

import "time"

// Partition is a contiguous, disjoint slice of a stream that one worker reads
// in order. Partitions are planned once per run and persisted with the run,
// so a resumed run reads exactly the same partitions.
type Partition struct {
	// Stream is the name of the stream the partition belongs to.
	Stream string `json:"stream"`
	// ID identifies the partition within its stream; stable once planned.
	ID string `json:"id"`
	// Start is the inclusive lower bound and End the exclusive upper bound,
	// in the extractor's own key space; "" means the start / end of the
	// stream.
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Stream is an independently resumable sequence of records of one kind: a
// root collection with everything under it, a project's users, a bucket's
// objects.
type Stream struct {
	Name string
	Kind Kind
	// ReadTime is the source snapshot every partition of the stream is read
	// at; zero when the source has no snapshot reads.
	ReadTime time.Time
	// Partitions cover the stream exactly once.
	Partitions []Partition
}
