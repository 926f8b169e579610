package demoapp

import (
	"fmt"
	"reflect"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/genproto/googleapis/type/latlng"

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
			v, err := recordValue(x)
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

// recordValue converts a demo app value (as the Firestore Go client takes
// it) into the record value the extractor reads back.
func recordValue(x any) (record.Value, error) {
	switch v := x.(type) {
	case nil:
		return record.Null(), nil
	case bool:
		return record.Bool(v), nil
	case int64:
		return record.Int(v), nil
	case float64:
		return record.Double(v), nil
	case time.Time:
		return record.Timestamp(v), nil
	case string:
		return record.String(v), nil
	case []byte:
		return record.Bytes(v), nil
	case *latlng.LatLng:
		return record.Geo(v.Latitude, v.Longitude), nil
	case firestore.Vector64:
		return record.Vector(append([]float64(nil), v...)), nil
	case []string:
		out := make([]record.Value, len(v))
		for i, s := range v {
			out[i] = record.String(s)
		}
		return record.Array(out...), nil
	case []any:
		out := make([]record.Value, len(v))
		for i, e := range v {
			var err error
			if out[i], err = recordValue(e); err != nil {
				return record.Value{}, err
			}
		}
		return record.Array(out...), nil
	case map[string]any:
		out := make(map[string]record.Value, len(v))
		for k, e := range v {
			var err error
			if out[k], err = recordValue(e); err != nil {
				return record.Value{}, err
			}
		}
		return record.Map(out), nil
	}
	if rv := reflect.ValueOf(x); rv.Kind() == reflect.String {
		return record.Reference(rv.String()), nil // a docRef
	}
	return record.Value{}, fmt.Errorf("demo value of Go type %T", x)
}
