package demoapp

import (
	"fmt"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Records returns the demo app's documents (Documents(seed, s)) as the
// Firestore extractor hands them on — every value as the record value it
// reads back, fixed create times and distinct update times — with the
// mapping infer makes for them, for benchmarks of the stages after the
// read.
func Records(seed uint64, s Scale) ([]record.Record, *mappings.Mapping, error) {
	docs := Documents(seed, s)
	created := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	recs := make([]record.Record, len(docs))
	in := mappings.NewInferrer(mappings.InferOptions{})
	for i, d := range docs {
		f := make(map[string]record.Value, len(d.Fields))
		for k, x := range d.Fields {
			v, err := goValue("", x)
			if err != nil {
				return nil, nil, fmt.Errorf("document %s field %s: %w", d.Path, k, err)
			}
			f[k] = v
		}
		recs[i] = record.Record{Kind: record.KindDocument, Key: d.Path, Fields: f, Cursor: d.Path,
			CreateTime: created, UpdateTime: created.Add(time.Duration(i) * time.Millisecond)}
		in.Observe(d.Path, f)
	}
	return recs, in.Mapping(), nil
}
