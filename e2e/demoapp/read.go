package demoapp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/type/latlng"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Groups are the collection IDs Documents writes.
var Groups = []string{"users", "posts", "comments", "orders", "items", "adjustments", "archive", "months", "entries", "kitchen_sink"}

// ReadAll reads every document of the given collection groups through the
// official Firestore client — independently of baasmigrate's extractor — as
// records keyed by path relative to the database root.
func ReadAll(ctx context.Context, client *firestore.Client, project string, groups ...string) (map[string]record.Record, error) {
	prefix := fmt.Sprintf("projects/%s/databases/(default)/documents/", project)
	out := map[string]record.Record{}
	for _, g := range groups {
		it := client.CollectionGroup(g).Documents(ctx)
		for {
			snap, err := it.Next()
			if err == iterator.Done {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading collection group %s: %w", g, err)
			}
			fields := map[string]record.Value{}
			for k, v := range snap.Data() {
				if fields[k], err = goValue(prefix, v); err != nil {
					return nil, fmt.Errorf("%s: field %q: %w", snap.Ref.Path, k, err)
				}
			}
			key := strings.TrimPrefix(snap.Ref.Path, prefix)
			out[key] = record.Record{
				Kind: record.KindDocument, Key: key, Fields: fields, Cursor: key,
				CreateTime: snap.CreateTime.UTC(), UpdateTime: snap.UpdateTime.UTC(),
			}
		}
	}
	return out, nil
}

// goValue converts a value as the Go client returns it (references
// relative to prefix), or as Documents writes it (docRef placeholders,
// string lists), into a record value.
func goValue(prefix string, v any) (record.Value, error) {
	switch x := v.(type) {
	case nil:
		return record.Null(), nil
	case bool:
		return record.Bool(x), nil
	case int64:
		return record.Int(x), nil
	case float64:
		return record.Double(x), nil
	case time.Time:
		return record.Timestamp(x), nil
	case string:
		return record.String(x), nil
	case []byte:
		return record.Bytes(x), nil
	case *firestore.DocumentRef:
		return record.Reference(strings.TrimPrefix(x.Path, prefix)), nil
	case docRef:
		return record.Reference(string(x)), nil
	case []string:
		out := make([]record.Value, len(x))
		for i, s := range x {
			out[i] = record.String(s)
		}
		return record.Array(out...), nil
	case *latlng.LatLng:
		return record.Geo(x.Latitude, x.Longitude), nil
	case firestore.Vector64:
		return record.Vector([]float64(x)), nil
	case []any:
		out := make([]record.Value, len(x))
		for i, e := range x {
			var err error
			if out[i], err = goValue(prefix, e); err != nil {
				return record.Value{}, err
			}
		}
		return record.Array(out...), nil
	case map[string]any:
		out := make(map[string]record.Value, len(x))
		for k, e := range x {
			var err error
			if out[k], err = goValue(prefix, e); err != nil {
				return record.Value{}, err
			}
		}
		return record.Map(out), nil
	}
	return record.Value{}, fmt.Errorf("unexpected value of Go type %T from the Firestore client", v)
}
