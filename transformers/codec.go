package transformers

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// codec converts the values of one column between record.Value and the Go
// values pgx encodes for (and scans from) the column's type.
type codec struct {
	// encode returns the column value for a non-null v and whether decode
	// gives v back exactly (record.Equal), or ok=false when the column
	// cannot hold v. exact is decided from v alone, without decoding.
	encode func(v record.Value) (x any, exact, ok bool)
	// decode turns a non-NULL column value back into a Value.
	decode func(x any) (record.Value, error)
}

// scalar converts one non-null value (a column's or an array element's)
// to and from T, the Go type pgx encodes for it.
type scalar[T any] struct {
	// enc returns the Go value for v and whether dec gives v back exactly,
	// or ok=false when the type cannot hold v.
	enc func(v record.Value) (x T, exact, ok bool)
	dec func(x any) (record.Value, error)
	// zeroIsNull marks a T whose zero value pgx encodes as NULL ([]byte:
	// nil); enc never returns it for a value, so arrays of T can hold
	// NULL elements without pointers.
	zeroIsNull bool
}

// elemCodec is the codec of a scalar column together with the codecs of
// the array and vector columns of its element type.
type elemCodec struct {
	codec
	array  func() codec // nil when the type has no array column
	vector func() codec // nil when the type cannot hold a vector
}

// newCodec returns the codec for a canonical column type and source.
func newCodec(typ, source string) (codec, error) {
	if typ == "jsonb" {
		return jsonbCodec(), nil
	}
	if base, ok := strings.CutSuffix(typ, "[]"); ok {
		if source == mappings.SourceVector {
			ec, err := newElemCodec(base, mappings.SourceDouble)
			if err != nil {
				return codec{}, err
			}
			if ec.vector == nil {
				return codec{}, fmt.Errorf("a %s column cannot hold a vector", typ)
			}
			return ec.vector(), nil
		}
		elemSource, ok := strings.CutSuffix(source, "[]")
		if !ok {
			return codec{}, fmt.Errorf("type %s needs an array source, got %q", typ, source)
		}
		ec, err := newElemCodec(base, elemSource)
		if err != nil {
			return codec{}, err
		}
		if ec.array == nil {
			return codec{}, fmt.Errorf("type %s has no array column", base)
		}
		return ec.array(), nil
	}
	ec, err := newElemCodec(typ, source)
	return ec.codec, err
}

// elem builds the column, array and vector codecs of one scalar.
func elem[T any](s scalar[T]) elemCodec {
	return elemCodec{
		codec: codec{
			encode: func(v record.Value) (any, bool, bool) {
				x, exact, ok := s.enc(v)
				if !ok {
					return nil, false, false
				}
				return x, exact, true
			},
			decode: s.dec,
		},
		array:  func() codec { return arrayCodec(s) },
		vector: func() codec { return vectorCodec(s) },
	}
}

// noArray drops the array and vector codecs of a type that has neither.
func noArray(ec elemCodec) elemCodec {
	ec.array, ec.vector = nil, nil
	return ec
}

func newElemCodec(typ, source string) (elemCodec, error) {
	switch typ + "/" + source {
	case "text/string":
		return textCodec(record.TypeString, record.String), nil
	case "text/reference":
		return textCodec(record.TypeReference, record.Reference), nil
	case "bigint/integer":
		return elem(scalar[int64]{
			enc: func(v record.Value) (int64, bool, bool) {
				return v.IntValue(), true, v.Type() == record.TypeInt
			},
			dec: func(x any) (record.Value, error) {
				i, err := asInt64(x)
				return record.Int(i), err
			},
		}), nil
	case "integer/integer":
		return elem(scalar[int32]{
			enc: func(v record.Value) (int32, bool, bool) {
				i := v.IntValue()
				if v.Type() != record.TypeInt || i < math.MinInt32 || i > math.MaxInt32 {
					return 0, false, false
				}
				return int32(i), true, true
			},
			dec: func(x any) (record.Value, error) {
				i, err := asInt64(x)
				return record.Int(i), err
			},
		}), nil
	case "double precision/double", "double precision/number", "double precision/integer":
		return elem(floatCodec(source, func(f float64) (float64, bool) { return f, true })), nil
	case "real/double", "real/number", "real/integer":
		return elem(floatCodec(source, func(f float64) (float32, bool) {
			return float32(f), math.IsNaN(f) || float64(float32(f)) == f
		})), nil
	case "numeric/number", "numeric/integer", "numeric/double":
		return elem(numericCodec(source)), nil
	case "numeric/decimal":
		return elem(decimalCodec()), nil
	case "boolean/boolean":
		return elem(scalar[bool]{
			enc: func(v record.Value) (bool, bool, bool) {
				return v.BoolValue(), true, v.Type() == record.TypeBool
			},
			dec: func(x any) (record.Value, error) {
				b, ok := x.(bool)
				if !ok {
					return record.Value{}, fmt.Errorf("want bool, got %T", x)
				}
				return record.Bool(b), nil
			},
		}), nil
	case "timestamptz/timestamp":
		return elem(scalar[time.Time]{
			enc: func(v record.Value) (time.Time, bool, bool) {
				t := v.TimeValue()
				if v.Type() != record.TypeTimestamp || t.Year() < 1 || t.Year() > 9999 {
					return time.Time{}, false, false
				}
				return t, true, true
			},
			dec: func(x any) (record.Value, error) {
				t, err := asTime(x)
				return record.Timestamp(t), err
			},
		}), nil
	case "date/timestamp":
		return elem(scalar[time.Time]{
			enc: func(v record.Value) (time.Time, bool, bool) {
				t := v.TimeValue()
				if v.Type() != record.TypeTimestamp || t.Year() < 1 || t.Year() > 9999 || !t.Equal(midnight(t)) {
					return time.Time{}, false, false
				}
				return t, true, true
			},
			dec: func(x any) (record.Value, error) {
				t, err := asTime(x)
				return record.Timestamp(midnight(t)), err
			},
		}), nil
	case "date/string":
		return elem(scalar[time.Time]{
			enc: func(v record.Value) (time.Time, bool, bool) {
				if v.Type() != record.TypeString {
					return time.Time{}, false, false
				}
				s := v.StringValue()
				t, err := time.Parse(time.DateOnly, s)
				if err != nil || t.Year() < 1 || t.Format(time.DateOnly) != s {
					return time.Time{}, false, false
				}
				return t, true, true
			},
			dec: func(x any) (record.Value, error) {
				t, err := asTime(x)
				return record.String(midnight(t).Format(time.DateOnly)), err
			},
		}), nil
	case "uuid/string":
		return elem(scalar[pgtype.UUID]{
			enc: func(v record.Value) (pgtype.UUID, bool, bool) {
				u, ok := parseCanonicalUUID(v.StringValue())
				if v.Type() != record.TypeString || !ok {
					return pgtype.UUID{}, false, false
				}
				return pgtype.UUID{Bytes: u, Valid: true}, true, true
			},
			dec: func(x any) (record.Value, error) {
				switch u := x.(type) {
				case pgtype.UUID:
					return record.String(formatUUID(u.Bytes)), nil
				case [16]byte:
					return record.String(formatUUID(u)), nil
				case string:
					if _, ok := parseCanonicalUUID(strings.ToLower(u)); ok {
						return record.String(strings.ToLower(u)), nil
					}
				}
				return record.Value{}, fmt.Errorf("want a uuid (pgtype.UUID, [16]byte or string), got %T", x)
			},
		}), nil
	case "bytea/bytes":
		return elem(scalar[[]byte]{
			enc: func(v record.Value) ([]byte, bool, bool) {
				if v.Type() != record.TypeBytes {
					return nil, false, false
				}
				b := v.BytesValue()
				if b == nil {
					b = []byte{} // nil would be NULL
				}
				return b, true, true
			},
			dec: func(x any) (record.Value, error) {
				b, ok := x.([]byte)
				if !ok {
					return record.Value{}, fmt.Errorf("want []byte, got %T", x)
				}
				return record.Bytes(b), nil
			},
			zeroIsNull: true,
		}), nil
	case "point/geopoint":
		return noArray(elem(scalar[pgtype.Point]{
			enc: func(v record.Value) (pgtype.Point, bool, bool) {
				g := v.GeoValue()
				return pgtype.Point{P: pgtype.Vec2{X: g.Lng, Y: g.Lat}, Valid: true}, true, v.Type() == record.TypeGeoPoint
			},
			dec: func(x any) (record.Value, error) {
				p, ok := x.(pgtype.Point)
				if !ok || !p.Valid {
					return record.Value{}, fmt.Errorf("want a valid pgtype.Point, got %T", x)
				}
				return record.Geo(p.P.Y, p.P.X), nil
			},
		})), nil
	}
	return elemCodec{}, fmt.Errorf("a %s column cannot hold source %q", typ, source)
}

// textCodec stores values of type typ (strings or references) in text,
// when PostgreSQL text can hold them exactly; mk rebuilds them.
func textCodec(typ record.Type, mk func(string) record.Value) elemCodec {
	return elem(scalar[string]{
		enc: func(v record.Value) (string, bool, bool) {
			if v.Type() != typ || record.TextProblem(v.StringValue()) != "" {
				return "", false, false
			}
			return v.StringValue(), true, true
		},
		dec: func(x any) (record.Value, error) {
			s, err := asString(x)
			return mk(s), err
		},
	})
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// floatCodec handles double precision (T float64) and real (T float32)
// columns; conv converts a double to T and reports whether T holds it
// exactly (NaN counts as exact). Source double reads every value back as a
// double, integer as an integer; number reads back integral values (other
// than -0) as integers and the rest as doubles, so an integral double like
// 5.0 is stored but not exact: the overflow keeps its type.
func floatCodec[T float32 | float64](source string, conv func(float64) (T, bool)) scalar[T] {
	return scalar[T]{
		enc: func(v record.Value) (T, bool, bool) {
			switch {
			case v.Type() == record.TypeDouble && source != mappings.SourceInteger:
				f := v.DoubleValue()
				x, ok := conv(f)
				if !ok {
					return 0, false, false
				}
				if source == mappings.SourceNumber {
					_, integral := float64ToInt(f)
					return x, !integral, true
				}
				return x, true, true
			case v.Type() == record.TypeInt && source != mappings.SourceDouble:
				i := v.IntValue()
				f := float64(i)
				x, ok := conv(f)
				if i64, isInt := float64ToInt(f); !isInt || i64 != i || !ok {
					return 0, false, false
				}
				return x, true, true
			}
			return 0, false, false
		},
		dec: func(x any) (record.Value, error) {
			var f float64
			switch n := x.(type) {
			case float64:
				f = n
			case float32:
				f = float64(n)
			default:
				return record.Value{}, fmt.Errorf("want float64 or float32, got %T", x)
			}
			switch source {
			case mappings.SourceDouble:
				return record.Double(f), nil
			case mappings.SourceInteger:
				if i, ok := float64ToInt(f); ok {
					return record.Int(i), nil
				}
				return record.Value{}, fmt.Errorf("%v is not an integer", f)
			}
			return numberFromFloat(f), nil
		},
	}
}

// float64ToInt converts an integral f in int64 range (not -0).
func float64ToInt(f float64) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || (f == 0 && math.Signbit(f)) ||
		f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// numberFromFloat reads a value of a "number" column: integral values are
// integers, everything else doubles.
func numberFromFloat(f float64) record.Value {
	if i, ok := float64ToInt(f); ok {
		return record.Int(i)
	}
	return record.Double(f)
}

// numericCodec handles numeric columns. Integers are written with scale 0
// and doubles (finite, not -0) with their shortest exact decimal and at
// least one fractional digit, so under source number the scale tells them
// apart when read back. Zero loses its scale in pgx's binary decoding, so a
// double zero reads back as an integer and keeps its type in the overflow.
func numericCodec(source string) scalar[pgtype.Numeric] {
	return scalar[pgtype.Numeric]{
		enc: func(v record.Value) (pgtype.Numeric, bool, bool) {
			switch {
			case v.Type() == record.TypeInt && source != mappings.SourceDouble:
				return pgtype.Numeric{Int: big.NewInt(v.IntValue()), Valid: true}, true, true
			case v.Type() == record.TypeDouble && source != mappings.SourceInteger:
				f := v.DoubleValue()
				if math.IsNaN(f) || math.IsInf(f, 0) || (f == 0 && math.Signbit(f)) {
					return pgtype.Numeric{}, false, false
				}
				s := strconv.FormatFloat(f, 'f', -1, 64)
				if !strings.Contains(s, ".") {
					s += ".0"
				}
				n, ok := parseDecimal(s)
				// Under source number a zero reads back as an integer.
				return n, !(source == mappings.SourceNumber && f == 0), ok
			}
			return pgtype.Numeric{}, false, false
		},
		dec: func(x any) (record.Value, error) {
			var n pgtype.Numeric
			switch d := x.(type) {
			case pgtype.Numeric:
				n = d
			case string:
				var ok bool
				if n, ok = parseDecimal(d); !ok {
					return record.Value{}, fmt.Errorf("numeric %q is not a finite decimal", d)
				}
			default:
				return record.Value{}, fmt.Errorf("want pgtype.Numeric or string (a float would lose the scale), got %T", x)
			}
			if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite {
				return record.Value{}, fmt.Errorf("numeric is not a finite number")
			}
			integral := n.Exp >= 0 || n.Int == nil || n.Int.Sign() == 0
			if source == mappings.SourceInteger && !integral && !wholeNumber(n) {
				return record.Value{}, fmt.Errorf("numeric %s has a fraction; the column holds integers", numericString(n))
			}
			if source == mappings.SourceInteger || (source == mappings.SourceNumber && integral) {
				i := numericInt(n)
				if !i.IsInt64() {
					return record.Value{}, fmt.Errorf("numeric %s is not a 64-bit integer", i)
				}
				return record.Int(i.Int64()), nil
			}
			f, err := strconv.ParseFloat(numericString(n), 64)
			if err != nil {
				return record.Value{}, fmt.Errorf("numeric as double: %w", err)
			}
			return record.Double(f), nil
		},
	}
}

// decimalCodec handles numeric columns of exact decimals (source decimal):
// integers and decimals are written with every digit; a value read back is
// an integer when it is whole and fits 64 bits, and a decimal otherwise,
// which is how record.ParseDecimal reads them from the source.
func decimalCodec() scalar[pgtype.Numeric] {
	return scalar[pgtype.Numeric]{
		enc: func(v record.Value) (pgtype.Numeric, bool, bool) {
			switch v.Type() {
			case record.TypeInt:
				return pgtype.Numeric{Int: big.NewInt(v.IntValue()), Valid: true}, true, true
			case record.TypeDecimal:
				n, ok := parseDecimal(v.DecimalValue())
				return n, true, ok
			}
			return pgtype.Numeric{}, false, false
		},
		dec: func(x any) (record.Value, error) {
			var s string
			switch d := x.(type) {
			case pgtype.Numeric:
				if !d.Valid || d.NaN || d.InfinityModifier != pgtype.Finite {
					return record.Value{}, fmt.Errorf("numeric is not a finite number")
				}
				s = numericString(d)
			case string:
				s = d
			default:
				return record.Value{}, fmt.Errorf("want pgtype.Numeric or string (a float would lose digits), got %T", x)
			}
			return record.ParseDecimal(s)
		},
	}
}

// parseDecimal parses "-123.4500" into a Numeric keeping every digit (the
// scale is the number of fractional digits).
func parseDecimal(s string) (pgtype.Numeric, bool) {
	intPart, frac, _ := strings.Cut(s, ".")
	digits := intPart + frac
	i, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return pgtype.Numeric{}, false
	}
	return pgtype.Numeric{Int: i, Exp: -int32(len(frac)), Valid: true}, true
}

// wholeNumber reports whether n (with a negative exponent) has no
// fractional part, like 1.00.
func wholeNumber(n pgtype.Numeric) bool {
	if n.Int == nil || n.Exp >= 0 {
		return true
	}
	div := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil)
	return new(big.Int).Rem(n.Int, div).Sign() == 0
}

// numericInt returns the integer value of an integral numeric.
func numericInt(n pgtype.Numeric) *big.Int {
	i := new(big.Int)
	if n.Int != nil {
		i.Set(n.Int)
	}
	if n.Exp > 0 {
		i.Mul(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil))
	} else if n.Exp < 0 {
		i.Quo(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil))
	}
	return i
}

// numericString renders n as a plain decimal.
func numericString(n pgtype.Numeric) string {
	s := "0"
	if n.Int != nil {
		s = n.Int.String()
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	switch {
	case n.Exp > 0:
		s += strings.Repeat("0", int(n.Exp))
	case n.Exp < 0:
		scale := int(-n.Exp)
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func jsonbCodec() codec {
	return codec{
		encode: func(v record.Value) (any, bool, bool) {
			// Typed JSON is lossless by construction.
			return record.MarshalJSONValue(make([]byte, 0, 64), v), true, true
		},
		decode: func(x any) (record.Value, error) {
			var b []byte
			switch d := x.(type) {
			case []byte:
				b = d
			case json.RawMessage:
				b = d
			case string:
				b = []byte(d)
			default:
				return record.Value{}, fmt.Errorf("want jsonb as raw JSON text ([]byte or string; decoded JSON would lose integer/double types), got %T", x)
			}
			return record.UnmarshalJSONValue(b)
		},
	}
}

// vectorCodec stores a vector as a float array without NULL elements, as
// the []*T it has always been written as; the elements share one backing
// array.
func vectorCodec[T any](s scalar[T]) codec {
	return codec{
		encode: func(v record.Value) (any, bool, bool) {
			if v.Type() != record.TypeVector {
				return nil, false, false
			}
			fs := v.VectorValue()
			vals := make([]T, len(fs))
			out := make([]*T, len(fs))
			exact := true
			for i, f := range fs {
				x, ex, ok := s.enc(record.Double(f))
				if !ok {
					return nil, false, false
				}
				vals[i], out[i] = x, &vals[i]
				exact = exact && ex
			}
			return out, exact, true
		},
		decode: func(x any) (record.Value, error) {
			elems, err := sliceElems(x)
			if err != nil {
				return record.Value{}, err
			}
			fs := make([]float64, len(elems))
			for i, e := range elems {
				if e == nil {
					return record.Value{}, fmt.Errorf("vector element %d is NULL", i)
				}
				v, err := s.dec(e)
				if err != nil {
					return record.Value{}, fmt.Errorf("vector element %d: %w", i, err)
				}
				fs[i] = v.DoubleValue()
			}
			return record.Vector(fs), nil
		},
	}
}

// arrayCodec stores an array whose elements are null or held by s. An
// array without NULL elements is a []T, which pgx encodes without
// reflection; one with NULL elements is a []*T (elements sharing one
// backing array) with nil for NULL, or a []T when T's zero value is NULL.
func arrayCodec[T any](s scalar[T]) codec {
	return codec{
		encode: func(v record.Value) (any, bool, bool) {
			if v.Type() != record.TypeArray {
				return nil, false, false
			}
			elems := v.ArrayValue()
			vals := make([]T, len(elems))
			exact, nulls := true, false
			for i, e := range elems {
				if e.IsNull() {
					nulls = true
					continue
				}
				x, ex, ok := s.enc(e)
				if !ok {
					return nil, false, false
				}
				vals[i] = x
				exact = exact && ex
			}
			if !nulls || s.zeroIsNull {
				return vals, exact, true
			}
			out := make([]*T, len(elems))
			for i, e := range elems {
				if !e.IsNull() {
					out[i] = &vals[i]
				}
			}
			return out, exact, true
		},
		decode: func(x any) (record.Value, error) {
			elems, err := sliceElems(x)
			if err != nil {
				return record.Value{}, err
			}
			out := make([]record.Value, len(elems))
			for i, e := range elems {
				if e == nil {
					continue
				}
				if out[i], err = s.dec(e); err != nil {
					return record.Value{}, fmt.Errorf("array element %d: %w", i, err)
				}
			}
			return record.Array(out...), nil
		},
	}
}

// sliceElems returns the elements of any slice a column value may be scanned
// into ([]*T, []T, []any, [][]byte), with nil for NULL elements (a nil
// pointer, a nil interface or a nil []byte).
func sliceElems(x any) ([]any, error) {
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("want a slice for an array column, got %T", x)
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = deref(rv.Index(i).Interface())
	}
	return out, nil
}

// deref follows pointers and reports NULL-like values as nil.
func deref(x any) any {
	for {
		rv := reflect.ValueOf(x)
		switch {
		case x == nil:
			return nil
		case rv.Kind() == reflect.Pointer:
			if rv.IsNil() {
				return nil
			}
			x = rv.Elem().Interface()
		case rv.Kind() == reflect.Slice && rv.IsNil():
			return nil
		default:
			return x
		}
	}
}

func asString(x any) (string, error) {
	switch s := x.(type) {
	case string:
		return s, nil
	case []byte:
		return string(s), nil
	}
	return "", fmt.Errorf("want string, got %T", x)
}

func asInt64(x any) (int64, error) {
	switch i := x.(type) {
	case int64:
		return i, nil
	case int32:
		return int64(i), nil
	case int16:
		return int64(i), nil
	case int:
		return int64(i), nil
	}
	return 0, fmt.Errorf("want an integer, got %T", x)
}

func asTime(x any) (time.Time, error) {
	t, ok := x.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("want time.Time, got %T", x)
	}
	return t.UTC(), nil
}

// parseCanonicalUUID accepts only the lower-case 8-4-4-4-12 form, the one
// PostgreSQL prints, so every accepted string reads back identical.
func parseCanonicalUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' || strings.ToLower(s) != s {
		return u, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, false
	}
	return u, true
}

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
