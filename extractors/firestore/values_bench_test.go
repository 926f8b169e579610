package firestore

import (
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/genproto/googleapis/type/latlng"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

const benchRoot = "projects/demo-bench/databases/(default)/documents"

// pbValue encodes a demo app value (as the Firestore Go client takes it)
// the way Firestore sends it.
func pbValue(tb testing.TB, x any) *pb.Value {
	switch v := x.(type) {
	case nil:
		return &pb.Value{ValueType: &pb.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
	case bool:
		return &pb.Value{ValueType: &pb.Value_BooleanValue{BooleanValue: v}}
	case int64:
		return &pb.Value{ValueType: &pb.Value_IntegerValue{IntegerValue: v}}
	case float64:
		return &pb.Value{ValueType: &pb.Value_DoubleValue{DoubleValue: v}}
	case time.Time:
		return &pb.Value{ValueType: &pb.Value_TimestampValue{TimestampValue: timestamppb.New(v)}}
	case string:
		return &pb.Value{ValueType: &pb.Value_StringValue{StringValue: v}}
	case []byte:
		return &pb.Value{ValueType: &pb.Value_BytesValue{BytesValue: v}}
	case *latlng.LatLng:
		return &pb.Value{ValueType: &pb.Value_GeoPointValue{GeoPointValue: v}}
	case firestore.Vector64:
		elems := make([]any, len(v))
		for i, f := range v {
			elems[i] = f
		}
		return pbValue(tb, map[string]any{"__type__": "__vector__", "value": elems})
	case []string:
		elems := make([]any, len(v))
		for i, s := range v {
			elems[i] = s
		}
		return pbValue(tb, elems)
	case []any:
		arr := &pb.ArrayValue{}
		for _, e := range v {
			arr.Values = append(arr.Values, pbValue(tb, e))
		}
		return &pb.Value{ValueType: &pb.Value_ArrayValue{ArrayValue: arr}}
	case map[string]any:
		m := &pb.MapValue{Fields: map[string]*pb.Value{}}
		for k, e := range v {
			m.Fields[k] = pbValue(tb, e)
		}
		return &pb.Value{ValueType: &pb.Value_MapValue{MapValue: m}}
	}
	if rv := reflect.ValueOf(x); rv.Kind() == reflect.String { // demoapp's docRef
		return &pb.Value{ValueType: &pb.Value_ReferenceValue{ReferenceValue: benchRoot + "/" + rv.String()}}
	}
	tb.Fatalf("demo value of Go type %T", x)
	return nil
}

// BenchmarkToRecord measures the conversion of the demo app's documents,
// as Firestore sends them, into records (ns/op and allocs/op are per
// document).
func BenchmarkToRecord(b *testing.B) {
	docs := demoapp.Documents(1, demoapp.Scale{Users: 500, Posts: 250, CommentsPerPost: 3, Orders: 125, ItemsPerOrder: 3, Archive: 25})
	at := timestamppb.New(time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC))
	pbs := make([]*pb.Document, len(docs))
	for i, d := range docs {
		f := map[string]*pb.Value{}
		for k, x := range d.Fields {
			f[k] = pbValue(b, x)
		}
		pbs[i] = &pb.Document{Name: benchRoot + "/" + d.Path, Fields: f, CreateTime: at, UpdateTime: at}
	}
	e := &Extractor{root: benchRoot}
	b.ReportAllocs()
	b.ResetTimer()
	defer testenv.ReportCPU(b)()
	for i := 0; i < b.N; i++ {
		if _, err := e.toRecord(pbs[i%len(pbs)]); err != nil {
			b.Fatal(err)
		}
	}
}
