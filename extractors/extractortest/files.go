package extractortest

import (
	"context"
	"io"
	"testing"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// File is a file record read by ReadFiles with the bytes its Open gave.
type File struct {
	record.Record
	Data []byte
}

// ReadFiles plans ex in at most partitions partitions, reads every
// partition of every stream from its start, and opens and reads every
// record, in the order read. It fails t on any error.
func ReadFiles(t *testing.T, ex extractors.Extractor, partitions int) []File {
	t.Helper()
	ctx := context.Background()
	_, streams, err := extractors.PlanSnapshot(ctx, ex, partitions)
	if err != nil {
		t.Fatalf("planning: %v", err)
	}
	var out []File
	for _, st := range streams {
		for _, p := range st.Partitions {
			for _, r := range readAll(t, ex, p, st.ReadTime, "") {
				if r.Open == nil {
					t.Fatalf("%q: no Open", r.Key)
				}
				rc, err := r.Open(ctx)
				if err != nil {
					t.Fatalf("opening %q: %v", r.Key, err)
				}
				data, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatalf("reading %q: %v", r.Key, err)
				}
				out = append(out, File{Record: r, Data: data})
			}
		}
	}
	return out
}
