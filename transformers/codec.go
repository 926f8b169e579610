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
	// encode returns the column value for a non-null v, or ok=false when
	// the column cannot hold v.
	encode func(v record.Value) (x any, ok bool)
	// decode turns a non-NULL column value back into a Value.
	decode func(x any) (record.Value, error)
}

// elemCodec is a codec for one non-null scalar (a column or an array
// element) together with how to pack a list of its Go values into the
// slice type pgx encodes for the array type.
type elemCodec struct {
	codec
	pack func(xs []any) any
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
			return vectorCodec(ec), nil
		}
		elemSource, ok := strings.CutSuffix(source, "[]")
		if !ok {
			return codec{}, fmt.Errorf("type %s needs an array source, got %q", typ, source)
		}
		ec, err := newElemCodec(base, elemSource)
		if err != nil {
			return codec{}, err
		}
		return arrayCodec(ec), nil
	}
	ec, err := newElemCodec(typ, source)
	return ec.codec, err
}

func newElemCodec(typ, source string) (elemCodec, error) {
	switch typ + "/" + source {
	case "text/string":
		return textCodec(record.TypeString, record.String), nil
	case "text/reference":
		return textCodec(record.TypeReference, record.Reference), nil
	case "bigint/integer":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				if v.Type() != record.TypeInt {
					return nil, false
				}
				return v.IntValue(), true
			},
			decode: func(x any) (record.Value, error) {
				i, err := asInt64(x)
				return record.Int(i), err
			},
		}, packPtr[int64]}, nil
	case "integer/integer":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				i := v.IntValue()
				if v.Type() != record.TypeInt || i < math.MinInt32 || i > math.MaxInt32 {
					return nil, false
				}
				return int32(i), true
			},
			decode: func(x any) (record.Value, error) {
				i, err := asInt64(x)
				return record.Int(i), err
			},
		}, packPtr[int32]}, nil
	case "double precision/double", "double precision/number", "double precision/integer":
		return elemCodec{floatCodec(source, 64), packPtr[float64]}, nil
	case "real/double", "real/number", "real/integer":
		return elemCodec{floatCodec(source, 32), packPtr[float32]}, nil
	case "numeric/number", "numeric/integer", "numeric/double":
		return elemCodec{numericCodec(source), packPtr[pgtype.Numeric]}, nil
	case "boolean/boolean":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				return v.BoolValue(), v.Type() == record.TypeBool
			},
			decode: func(x any) (record.Value, error) {
				b, ok := x.(bool)
				if !ok {
					return record.Value{}, fmt.Errorf("want bool, got %T", x)
				}
				return record.Bool(b), nil
			},
		}, packPtr[bool]}, nil
	case "timestamptz/timestamp":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				t := v.TimeValue()
				if v.Type() != record.TypeTimestamp || t.Year() < 1 || t.Year() > 9999 {
					return nil, false
				}
				return t, true
			},
			decode: func(x any) (record.Value, error) {
				t, err := asTime(x)
				return record.Timestamp(t), err
			},
		}, packPtr[time.Time]}, nil
	case "date/timestamp":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				t := v.TimeValue()
				if v.Type() != record.TypeTimestamp || t.Year() < 1 || t.Year() > 9999 || !t.Equal(midnight(t)) {
					return nil, false
				}
				return t, true
			},
			decode: func(x any) (record.Value, error) {
				t, err := asTime(x)
				return record.Timestamp(midnight(t)), err
			},
		}, packPtr[time.Time]}, nil
	case "date/string":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				if v.Type() != record.TypeString {
					return nil, false
				}
				s := v.StringValue()
				t, err := time.Parse(time.DateOnly, s)
				if err != nil || t.Year() < 1 || t.Format(time.DateOnly) != s {
					return nil, false
				}
				return t, true
			},
			decode: func(x any) (record.Value, error) {
				t, err := asTime(x)
				return record.String(midnight(t).Format(time.DateOnly)), err
			},
		}, packPtr[time.Time]}, nil
	case "uuid/string":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				u, ok := parseCanonicalUUID(v.StringValue())
				if v.Type() != record.TypeString || !ok {
					return nil, false
				}
				return pgtype.UUID{Bytes: u, Valid: true}, true
			},
			decode: func(x any) (record.Value, error) {
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
		}, packPtr[pgtype.UUID]}, nil
	case "bytea/bytes":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				if v.Type() != record.TypeBytes {
					return nil, false
				}
				b := v.BytesValue()
				if b == nil {
					b = []byte{} // nil would be NULL
				}
				return b, true
			},
			decode: func(x any) (record.Value, error) {
				b, ok := x.([]byte)
				if !ok {
					return record.Value{}, fmt.Errorf("want []byte, got %T", x)
				}
				return record.Bytes(b), nil
			},
		}, packBytes}, nil
	case "point/geopoint":
		return elemCodec{codec{
			encode: func(v record.Value) (any, bool) {
				g := v.GeoValue()
				return pgtype.Point{P: pgtype.Vec2{X: g.Lng, Y: g.Lat}, Valid: true}, v.Type() == record.TypeGeoPoint
			},
			decode: func(x any) (record.Value, error) {
				p, ok := x.(pgtype.Point)
				if !ok || !p.Valid {
					return record.Value{}, fmt.Errorf("want a valid pgtype.Point, got %T", x)
				}
				return record.Geo(p.P.Y, p.P.X), nil
			},
		}, nil}, nil
	}
	return elemCodec{}, fmt.Errorf("a %s column cannot hold source %q", typ, source)
}

// textCodec stores values of type typ (strings or references) in text,
// when PostgreSQL text can hold them exactly; mk rebuilds them.
func textCodec(typ record.Type, mk func(string) record.Value) elemCodec {
	return elemCodec{codec{
		encode: func(v record.Value) (any, bool) {
			if v.Type() != typ || record.TextProblem(v.StringValue()) != "" {
				return nil, false
			}
			return v.StringValue(), true
		},
		decode: func(x any) (record.Value, error) {
			s, err := asString(x)
			return mk(s), err
		},
	}, packPtr[string]}
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// floatCodec handles double precision (bits 64) and real (bits 32)
// columns. Source double reads every value back as a double, integer as an
// integer; number reads back integral values (other than -0) as integers and
// the rest as doubles, so an integral double like 5.0 needs the overflow to
// keep its type.
func floatCodec(source string, bits int) codec {
	exact := func(f float64) bool { return bits == 64 || math.IsNaN(f) || float64(float32(f)) == f }
	out := func(f float64) any {
		if bits == 32 {
			return float32(f)
		}
		return f
	}
	return codec{
		encode: func(v record.Value) (any, bool) {
			switch {
			case v.Type() == record.TypeDouble && source != mappings.SourceInteger:
				f := v.DoubleValue()
				if !exact(f) {
					return nil, false
				}
				return out(f), true
			case v.Type() == record.TypeInt && source != mappings.SourceDouble:
				i := v.IntValue()
				f := float64(i)
				if i64, ok := float64ToInt(f); !ok || i64 != i || !exact(f) {
					return nil, false
				}
				return out(f), true
			}
			return nil, false
		},
		decode: func(x any) (record.Value, error) {
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
func numericCodec(source string) codec {
	return codec{
		encode: func(v record.Value) (any, bool) {
			switch {
			case v.Type() == record.TypeInt && source != mappings.SourceDouble:
				return pgtype.Numeric{Int: big.NewInt(v.IntValue()), Valid: true}, true
			case v.Type() == record.TypeDouble && source != mappings.SourceInteger:
				f := v.DoubleValue()
				if math.IsNaN(f) || math.IsInf(f, 0) || (f == 0 && math.Signbit(f)) {
					return nil, false
				}
				s := strconv.FormatFloat(f, 'f', -1, 64)
				if !strings.Contains(s, ".") {
					s += ".0"
				}
				n, ok := parseDecimal(s)
				return n, ok
			}
			return nil, false
		},
		decode: func(x any) (record.Value, error) {
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
		encode: func(v record.Value) (any, bool) {
			return record.MarshalJSONValue(nil, v), true
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

// vectorCodec stores a vector as a float array without NULL elements.
func vectorCodec(ec elemCodec) codec {
	return codec{
		encode: func(v record.Value) (any, bool) {
			if v.Type() != record.TypeVector {
				return nil, false
			}
			fs := v.VectorValue()
			xs := make([]any, len(fs))
			for i, f := range fs {
				x, ok := ec.encode(record.Double(f))
				if !ok {
					return nil, false
				}
				xs[i] = x
			}
			return ec.pack(xs), true
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
				v, err := ec.decode(e)
				if err != nil {
					return record.Value{}, fmt.Errorf("vector element %d: %w", i, err)
				}
				fs[i] = v.DoubleValue()
			}
			return record.Vector(fs), nil
		},
	}
}

// arrayCodec stores an array whose elements are null or held by ec.
func arrayCodec(ec elemCodec) codec {
	return codec{
		encode: func(v record.Value) (any, bool) {
			if v.Type() != record.TypeArray {
				return nil, false
			}
			elems := v.ArrayValue()
			xs := make([]any, len(elems))
			for i, e := range elems {
				if e.IsNull() {
					continue
				}
				x, ok := ec.encode(e)
				if !ok {
					return nil, false
				}
				xs[i] = x
			}
			return ec.pack(xs), true
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
				if out[i], err = ec.decode(e); err != nil {
					return record.Value{}, fmt.Errorf("array element %d: %w", i, err)
				}
			}
			return record.Array(out...), nil
		},
	}
}

// packPtr builds the []*T pgx encodes as an array with NULL elements.
func packPtr[T any](xs []any) any {
	out := make([]*T, len(xs))
	for i, x := range xs {
		if x != nil {
			v := x.(T)
			out[i] = &v
		}
	}
	return out
}

// packBytes builds a [][]byte where a nil element is NULL.
func packBytes(xs []any) any {
	out := make([][]byte, len(xs))
	for i, x := range xs {
		if x != nil {
			out[i] = x.([]byte)
		}
	}
	return out
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
