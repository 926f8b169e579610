// Package record holds the source-neutral data model every extractor produces
// and every transformer and loader consumes: records (users, documents, files)
// carrying typed values.
//
// The type system is the richest document model among the sources
// baasmigrate reads, and every source maps into it: null, bool, int64,
// double, timestamp (µs), string, bytes, reference, geo point, array, map
// and vector.
package record

import (
	"fmt"
	"math"
	"sort"
	"time"
	"unsafe"
)

// Type is the type of a Value.
type Type uint8

// The value types, in their cross-type sort order (Compare relies on
// it): null < bool < number < timestamp < string < bytes < reference <
// geo point < array < vector < map. TypeInt and TypeDouble share one rank.
const (
	TypeNull Type = iota
	TypeBool
	TypeInt
	TypeDouble
	TypeTimestamp
	TypeString
	TypeBytes
	TypeReference
	TypeGeoPoint
	TypeArray
	TypeVector
	TypeMap
	// TypeDecimal is an exact decimal number (DynamoDB's N). It comes
	// last so that the numbering of the other types never changes; it
	// ranks with the numbers.
	TypeDecimal
)

var typeNames = [...]string{
	TypeNull:      "null",
	TypeBool:      "boolean",
	TypeInt:       "integer",
	TypeDouble:    "double",
	TypeTimestamp: "timestamp",
	TypeString:    "string",
	TypeBytes:     "bytes",
	TypeReference: "reference",
	TypeGeoPoint:  "geopoint",
	TypeArray:     "array",
	TypeVector:    "vector",
	TypeMap:       "map",
	TypeDecimal:   "decimal",
}

// String returns the type's name as used in mappings and reports.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", t)
}

// GeoPoint is a latitude/longitude pair in degrees.
type GeoPoint struct {
	Lat, Lng float64
}

// Value is one immutable typed value. The zero Value is null.
//
// Values are built with the constructors (Null, Bool, Int, ...) and read with
// the accessor matching Type(); an accessor called on another type returns
// its zero value.
//
// A Value is small (56 bytes on 64-bit platforms) because documents hold
// many of them in maps and every stage copies them: each type uses the
// fields it needs, and arrays, vectors and maps share x. Values are not
// comparable with ==; use Equal.
type Value struct {
	_   [0]func() // not comparable: x may hold a map
	typ Type
	n   uint64 // bool (0/1), int64 bits, float64 bits, geo latitude bits, timestamp Unix seconds
	n2  uint64 // geo longitude bits, timestamp nanoseconds (whole microseconds)
	s   string // string, reference path, bytes
	x   any    // []Value (array), []float64 (vector), map[string]Value (map)
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	v := Value{typ: TypeBool}
	if b {
		v.n = 1
	}
	return v
}

// Int returns a 64-bit integer value.
func Int(i int64) Value { return Value{typ: TypeInt, n: uint64(i)} }

// Double returns a double value; NaN, ±Inf and -0 are kept as given.
func Double(f float64) Value { return Value{typ: TypeDouble, n: math.Float64bits(f)} }

// Decimal returns an exact decimal number value. s must be in the
// canonical form CanonicalDecimal returns (callers with other text use
// ParseDecimal).
func Decimal(s string) Value { return Value{typ: TypeDecimal, s: s} }

// Timestamp returns a timestamp value truncated to microseconds (the
// model's precision), in UTC.
func Timestamp(t time.Time) Value {
	t = t.Truncate(time.Microsecond)
	return Value{typ: TypeTimestamp, n: uint64(t.Unix()), n2: uint64(t.Nanosecond())}
}

// String returns a string value.
func String(s string) Value { return Value{typ: TypeString, s: s} }

// Bytes returns a bytes value holding a copy of b.
func Bytes(b []byte) Value { return Value{typ: TypeBytes, s: string(b)} }

// Reference returns a reference to the document at path. Paths are relative
// to the database root ("users/alice/orders/o1") when the reference points
// into the migrated database, and full resource names otherwise.
func Reference(path string) Value { return Value{typ: TypeReference, s: path} }

// Geo returns a geo point value.
func Geo(lat, lng float64) Value {
	return Value{typ: TypeGeoPoint, n: math.Float64bits(lat), n2: math.Float64bits(lng)}
}

// Array returns an array value. The slice is retained; callers must not
// modify it afterwards.
func Array(elems ...Value) Value {
	if elems == nil {
		elems = []Value{}
	}
	return Value{typ: TypeArray, x: elems}
}

// Vector returns a vector value (a vector embedding). The
// slice is retained.
func Vector(elems []float64) Value {
	if elems == nil {
		elems = []float64{}
	}
	return Value{typ: TypeVector, x: elems}
}

// Map returns a map value. The map is retained; callers must not modify it
// afterwards.
func Map(m map[string]Value) Value {
	if m == nil {
		m = map[string]Value{}
	}
	return Value{typ: TypeMap, x: m}
}

// Type reports the value's type.
func (v Value) Type() Type { return v.typ }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.typ == TypeNull }

// BoolValue returns the boolean of a TypeBool value.
func (v Value) BoolValue() bool { return v.typ == TypeBool && v.n == 1 }

// IntValue returns the integer of a TypeInt value.
func (v Value) IntValue() int64 {
	if v.typ != TypeInt {
		return 0
	}
	return int64(v.n)
}

// DoubleValue returns the double of a TypeDouble value.
func (v Value) DoubleValue() float64 {
	if v.typ != TypeDouble {
		return 0
	}
	return math.Float64frombits(v.n)
}

// TimeValue returns the time of a TypeTimestamp value (UTC, µs precision).
func (v Value) TimeValue() time.Time {
	if v.typ != TypeTimestamp {
		return time.Time{}
	}
	return time.Unix(int64(v.n), int64(v.n2)).UTC()
}

// StringValue returns the string of a TypeString value or the path of a
// TypeReference value.
func (v Value) StringValue() string {
	if v.typ != TypeString && v.typ != TypeReference {
		return ""
	}
	return v.s
}

// DecimalValue returns the canonical decimal text of a TypeDecimal value.
func (v Value) DecimalValue() string {
	if v.typ != TypeDecimal {
		return ""
	}
	return v.s
}

// BytesValue returns a copy of the bytes of a TypeBytes value.
func (v Value) BytesValue() []byte {
	if v.typ != TypeBytes {
		return nil
	}
	return []byte(v.s)
}

// GeoValue returns the point of a TypeGeoPoint value.
func (v Value) GeoValue() GeoPoint {
	if v.typ != TypeGeoPoint {
		return GeoPoint{}
	}
	return GeoPoint{Lat: math.Float64frombits(v.n), Lng: math.Float64frombits(v.n2)}
}

// ArrayValue returns the elements of a TypeArray value. Callers must not
// modify the returned slice.
func (v Value) ArrayValue() []Value {
	if v.typ != TypeArray {
		return nil
	}
	return v.x.([]Value)
}

// VectorValue returns the elements of a TypeVector value. Callers must not
// modify the returned slice.
func (v Value) VectorValue() []float64 {
	if v.typ != TypeVector {
		return nil
	}
	return v.x.([]float64)
}

// MapValue returns the entries of a TypeMap value. Callers must not modify
// the returned map.
func (v Value) MapValue() map[string]Value {
	if v.typ != TypeMap {
		return nil
	}
	return v.x.(map[string]Value)
}

// SortedKeys returns the keys of m in byte order, the canonical order of
// map entries.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Equal reports whether a and b are the same value: same type and same
// content, with integers and doubles compared exactly as stored (Int(1) is
// not Equal to Double(1)) and NaN equal to NaN. It is the identity used by
// round-trip checks; Compare gives the model's query order.
func Equal(a, b Value) bool {
	if a.typ != b.typ {
		return false
	}
	switch a.typ {
	case TypeNull:
		return true
	case TypeBool, TypeInt, TypeTimestamp:
		return a.n == b.n && a.n2 == b.n2
	case TypeDouble:
		fa, fb := math.Float64frombits(a.n), math.Float64frombits(b.n)
		if math.IsNaN(fa) && math.IsNaN(fb) {
			return true
		}
		return a.n == b.n
	case TypeString, TypeBytes, TypeReference, TypeDecimal:
		return a.s == b.s
	case TypeGeoPoint:
		return a.n == b.n && a.n2 == b.n2
	case TypeArray:
		aa, ba := a.ArrayValue(), b.ArrayValue()
		if len(aa) != len(ba) {
			return false
		}
		for i := range aa {
			if !Equal(aa[i], ba[i]) {
				return false
			}
		}
		return true
	case TypeVector:
		av, bv := a.VectorValue(), b.VectorValue()
		if len(av) != len(bv) {
			return false
		}
		for i := range av {
			if math.Float64bits(av[i]) != math.Float64bits(bv[i]) &&
				!(math.IsNaN(av[i]) && math.IsNaN(bv[i])) {
				return false
			}
		}
		return true
	case TypeMap:
		am, bm := a.MapValue(), b.MapValue()
		if len(am) != len(bm) {
			return false
		}
		for k, av := range am {
			bv, ok := bm[k]
			if !ok || !Equal(av, bv) {
				return false
			}
		}
		return true
	}
	return false
}

// String renders v for messages and test failures (not a stable format).
func (v Value) String() string {
	switch v.typ {
	case TypeNull:
		return "null"
	case TypeBool:
		return fmt.Sprint(v.BoolValue())
	case TypeInt:
		return fmt.Sprint(v.IntValue())
	case TypeDouble:
		return fmt.Sprintf("%gd", v.DoubleValue())
	case TypeDecimal:
		return v.s + "m"
	case TypeTimestamp:
		return v.TimeValue().Format(time.RFC3339Nano)
	case TypeString:
		return fmt.Sprintf("%q", v.s)
	case TypeBytes:
		return fmt.Sprintf("b%x", v.s)
	case TypeReference:
		return "ref:" + v.s
	case TypeGeoPoint:
		g := v.GeoValue()
		return fmt.Sprintf("geo(%g,%g)", g.Lat, g.Lng)
	case TypeArray:
		return fmt.Sprint(v.ArrayValue())
	case TypeVector:
		return fmt.Sprintf("vector%v", v.VectorValue())
	case TypeMap:
		s := "{"
		m := v.MapValue()
		for i, k := range SortedKeys(m) {
			if i > 0 {
				s += " "
			}
			s += fmt.Sprintf("%q:%v", k, m[k])
		}
		return s + "}"
	}
	return "?"
}

// valueSize is the size of a Value itself (its struct), and mapEntrySize
// what a map entry costs besides its key's bytes and its value: the key's
// string header and the map's bucket share, roughly.
const (
	valueSize    = int(unsafe.Sizeof(Value{}))
	mapEntrySize = 32
)

// MemSize estimates the bytes v holds in memory: its struct, its string
// or bytes, and its elements or entries, recursively. It is what bounds a
// batch's memory (migration.Options.BatchBytes), not an encoded size; it
// costs a walk of v, without allocating.
func (v Value) MemSize() int {
	n := valueSize + len(v.s)
	switch v.typ {
	case TypeArray:
		for _, e := range v.x.([]Value) {
			n += e.MemSize()
		}
	case TypeVector:
		n += 8 * len(v.x.([]float64))
	case TypeMap:
		n += FieldsMemSize(v.x.(map[string]Value))
	}
	return n
}

// FieldsMemSize is Value.MemSize of a map's entries (without the map's own
// Value).
func FieldsMemSize(m map[string]Value) int {
	n := 0
	for k, e := range m {
		n += mapEntrySize + len(k) + e.MemSize()
	}
	return n
}
