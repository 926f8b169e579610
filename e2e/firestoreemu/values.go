package firestoreemu

import (
	"bytes"
	"cmp"
	"math"
	"math/big"
	"slices"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Values are kept as the protobuf messages the API carries. Stored values
// are never mutated: writes build new maps and share unchanged sub-values.

// typeRank is a value's position in Firestore's cross-type order:
// null < boolean < number < timestamp < string < bytes < reference <
// geo point < array < vector < map.
type typeRank int

const (
	rankNull typeRank = iota
	rankBool
	rankNumber
	rankTimestamp
	rankString
	rankBytes
	rankReference
	rankGeoPoint
	rankArray
	rankVector
	rankMap
)

// vectorTypeKey and vectorTypeValue mark a map that is a vector embedding:
// {"__type__": "__vector__", "value": [doubles]}.
const (
	vectorTypeKey   = "__type__"
	vectorTypeValue = "__vector__"
	vectorValueKey  = "value"
)

func isVector(m *pb.MapValue) bool {
	if m == nil {
		return false
	}
	t, ok := m.Fields[vectorTypeKey]
	if !ok {
		return false
	}
	s, ok := t.ValueType.(*pb.Value_StringValue)
	return ok && s.StringValue == vectorTypeValue
}

func rankOf(v *pb.Value) typeRank {
	switch x := v.GetValueType().(type) {
	case *pb.Value_BooleanValue:
		return rankBool
	case *pb.Value_IntegerValue, *pb.Value_DoubleValue:
		return rankNumber
	case *pb.Value_TimestampValue:
		return rankTimestamp
	case *pb.Value_StringValue:
		return rankString
	case *pb.Value_BytesValue:
		return rankBytes
	case *pb.Value_ReferenceValue:
		return rankReference
	case *pb.Value_GeoPointValue:
		return rankGeoPoint
	case *pb.Value_ArrayValue:
		return rankArray
	case *pb.Value_MapValue:
		if isVector(x.MapValue) {
			return rankVector
		}
		return rankMap
	default:
		return rankNull
	}
}

// compareValues orders two values the way Firestore queries do. Integers and
// doubles compare by exact numeric value (1 == 1.0, -0.0 == 0) with NaN
// before every other number and equal to itself; strings and bytes compare
// by bytes; references segment by segment.
func compareValues(a, b *pb.Value) int {
	ra, rb := rankOf(a), rankOf(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case rankNull:
		return 0
	case rankBool:
		x, y := a.GetBooleanValue(), b.GetBooleanValue()
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		default:
			return 1
		}
	case rankNumber:
		return compareNumbers(a, b)
	case rankTimestamp:
		x, y := a.GetTimestampValue(), b.GetTimestampValue()
		if c := cmp.Compare(x.GetSeconds(), y.GetSeconds()); c != 0 {
			return c
		}
		return cmp.Compare(x.GetNanos(), y.GetNanos())
	case rankString:
		return strings.Compare(a.GetStringValue(), b.GetStringValue())
	case rankBytes:
		return bytes.Compare(a.GetBytesValue(), b.GetBytesValue())
	case rankReference:
		return compareReferences(a.GetReferenceValue(), b.GetReferenceValue())
	case rankGeoPoint:
		x, y := a.GetGeoPointValue(), b.GetGeoPointValue()
		if c := compareFloats(x.GetLatitude(), y.GetLatitude()); c != 0 {
			return c
		}
		return compareFloats(x.GetLongitude(), y.GetLongitude())
	case rankArray:
		return compareArrays(a.GetArrayValue().GetValues(), b.GetArrayValue().GetValues())
	case rankVector:
		x := a.GetMapValue().GetFields()[vectorValueKey].GetArrayValue().GetValues()
		y := b.GetMapValue().GetFields()[vectorValueKey].GetArrayValue().GetValues()
		if c := cmp.Compare(len(x), len(y)); c != 0 {
			return c
		}
		return compareArrays(x, y)
	default:
		return compareMaps(a.GetMapValue().GetFields(), b.GetMapValue().GetFields())
	}
}

func compareArrays(x, y []*pb.Value) int {
	for i := 0; i < len(x) && i < len(y); i++ {
		if c := compareValues(x[i], y[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(x), len(y))
}

// compareMaps compares key/value pairs in key order, then by size.
func compareMaps(x, y map[string]*pb.Value) int {
	kx, ky := sortedKeys(x), sortedKeys(y)
	for i := 0; i < len(kx) && i < len(ky); i++ {
		if c := strings.Compare(kx[i], ky[i]); c != 0 {
			return c
		}
		if c := compareValues(x[kx[i]], y[ky[i]]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(kx), len(ky))
}

func sortedKeys(m map[string]*pb.Value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// compareReferences compares two document names segment by segment.
func compareReferences(a, b string) int {
	return strings.Compare(encodePath(strings.Split(a, "/")), encodePath(strings.Split(b, "/")))
}

// compareFloats orders doubles with NaN first and -0.0 == 0.0.
func compareFloats(x, y float64) int {
	xn, yn := math.IsNaN(x), math.IsNaN(y)
	switch {
	case xn && yn:
		return 0
	case xn:
		return -1
	case yn:
		return 1
	}
	return cmp.Compare(x, y)
}

func compareNumbers(a, b *pb.Value) int {
	ai, aInt := a.ValueType.(*pb.Value_IntegerValue)
	bi, bInt := b.ValueType.(*pb.Value_IntegerValue)
	switch {
	case aInt && bInt:
		return cmp.Compare(ai.IntegerValue, bi.IntegerValue)
	case aInt:
		return -compareFloatInt(b.GetDoubleValue(), ai.IntegerValue)
	case bInt:
		return compareFloatInt(a.GetDoubleValue(), bi.IntegerValue)
	default:
		return compareFloats(a.GetDoubleValue(), b.GetDoubleValue())
	}
}

// compareFloatInt compares a double with an integer exactly (no rounding of
// the integer to a double).
func compareFloatInt(f float64, i int64) int {
	switch {
	case math.IsNaN(f):
		return -1
	case math.IsInf(f, 1):
		return 1
	case math.IsInf(f, -1):
		return -1
	}
	if f >= -9007199254740992 && f <= 9007199254740992 && i >= -9007199254740992 && i <= 9007199254740992 {
		return cmp.Compare(f, float64(i))
	}
	bf := new(big.Float).SetFloat64(f)
	bi := new(big.Float).SetInt64(i)
	return bf.Cmp(bi)
}

// valuesEqual is query equality: compareValues == 0 (so 1 == 1.0 and
// NaN == NaN).
func valuesEqual(a, b *pb.Value) bool { return compareValues(a, b) == 0 }

// identical reports whether two values are the same stored value: same types
// and same bits (1 and 1.0 differ, -0.0 and 0.0 differ, NaN is identical to
// NaN). It decides whether a write changed a document.
func identical(a, b *pb.Value) bool {
	switch x := a.GetValueType().(type) {
	case *pb.Value_NullValue:
		_, ok := b.GetValueType().(*pb.Value_NullValue)
		return ok
	case *pb.Value_BooleanValue:
		y, ok := b.GetValueType().(*pb.Value_BooleanValue)
		return ok && x.BooleanValue == y.BooleanValue
	case *pb.Value_IntegerValue:
		y, ok := b.GetValueType().(*pb.Value_IntegerValue)
		return ok && x.IntegerValue == y.IntegerValue
	case *pb.Value_DoubleValue:
		y, ok := b.GetValueType().(*pb.Value_DoubleValue)
		return ok && math.Float64bits(x.DoubleValue) == math.Float64bits(y.DoubleValue)
	case *pb.Value_TimestampValue:
		y, ok := b.GetValueType().(*pb.Value_TimestampValue)
		return ok && x.TimestampValue.GetSeconds() == y.TimestampValue.GetSeconds() && x.TimestampValue.GetNanos() == y.TimestampValue.GetNanos()
	case *pb.Value_StringValue:
		y, ok := b.GetValueType().(*pb.Value_StringValue)
		return ok && x.StringValue == y.StringValue
	case *pb.Value_BytesValue:
		y, ok := b.GetValueType().(*pb.Value_BytesValue)
		return ok && bytes.Equal(x.BytesValue, y.BytesValue)
	case *pb.Value_ReferenceValue:
		y, ok := b.GetValueType().(*pb.Value_ReferenceValue)
		return ok && x.ReferenceValue == y.ReferenceValue
	case *pb.Value_GeoPointValue:
		y, ok := b.GetValueType().(*pb.Value_GeoPointValue)
		return ok && math.Float64bits(x.GeoPointValue.GetLatitude()) == math.Float64bits(y.GeoPointValue.GetLatitude()) &&
			math.Float64bits(x.GeoPointValue.GetLongitude()) == math.Float64bits(y.GeoPointValue.GetLongitude())
	case *pb.Value_ArrayValue:
		y, ok := b.GetValueType().(*pb.Value_ArrayValue)
		if !ok || len(x.ArrayValue.GetValues()) != len(y.ArrayValue.GetValues()) {
			return false
		}
		for i, v := range x.ArrayValue.GetValues() {
			if !identical(v, y.ArrayValue.Values[i]) {
				return false
			}
		}
		return true
	case *pb.Value_MapValue:
		y, ok := b.GetValueType().(*pb.Value_MapValue)
		return ok && identicalFields(x.MapValue.GetFields(), y.MapValue.GetFields())
	default:
		return b.GetValueType() == nil
	}
}

// identicalFields compares two field maps with identical.
func identicalFields(a, b map[string]*pb.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !identical(v, w) {
			return false
		}
	}
	return true
}

// Constructors for values the server makes.

func nullValue() *pb.Value {
	return &pb.Value{ValueType: &pb.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
}
func intValue(i int64) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_IntegerValue{IntegerValue: i}}
}
func doubleValue(f float64) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_DoubleValue{DoubleValue: f}}
}
func refValue(name string) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_ReferenceValue{ReferenceValue: name}}
}
func timestampValue(us int64) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_TimestampValue{TimestampValue: microsToProto(us)}}
}

// microsToProto converts microseconds since the Unix epoch to a Timestamp.
func microsToProto(us int64) *timestamppb.Timestamp {
	sec := us / 1e6
	rem := us % 1e6
	if rem < 0 {
		sec--
		rem += 1e6
	}
	return &timestamppb.Timestamp{Seconds: sec, Nanos: int32(rem * 1000)}
}

// protoToMicros converts a Timestamp to microseconds, truncating nanoseconds.
func protoToMicros(t *timestamppb.Timestamp) int64 {
	return t.GetSeconds()*1e6 + int64(t.GetNanos()/1000)
}
