package mappings

import (
	"fmt"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

func BenchmarkEvolveNothingNew(b *testing.B) {
	var recs []record.Record
	var docs []obs
	for i := range 500 {
		f := map[string]record.Value{}
		for k := range 20 {
			f[fmt.Sprintf("field%d", k)] = record.Int(int64(i))
		}
		path := fmt.Sprintf("users/u%02d/orders/o%04d", i/10, i)
		recs = append(recs, record.Record{Kind: record.KindDocument, Key: path, Fields: f})
		docs = append(docs, obs{path, f})
	}
	in := NewInferrer(InferOptions{})
	for _, d := range docs {
		in.Observe(d.path, d.fields)
	}
	m := in.Mapping()
	b.ReportAllocs()
	for b.Loop() {
		if ev, err := Evolve(m, recs, EvolveOptions{Columns: true}); ev != nil || err != nil {
			b.Fatal(ev, err)
		}
	}
}
