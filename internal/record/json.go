package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Typed JSON is the lossless JSON encoding of Values used wherever a Value
// is stored as jsonb (map and mixed-array columns, the overflow column,
// rejected records). It is plain JSON wherever plain JSON is unambiguous, so
// that `data->>'city'` works as users expect, and a one-key tagged object
// otherwise:
//
//	null, true/false, strings, arrays, maps   plain JSON
//	integer                                    a JSON integer: 42
//	decimal (exact, DynamoDB's N)              {"$decimal": "-12.5"}
//	double                                     a JSON number that always has a
//	                                           fraction: 1.0, 0.25, 1000000.0
//	NaN, ±Infinity, -0                         {"$double": "NaN" | "Infinity" | "-Infinity" | "-0"}
//	timestamp                                  {"$timestamp": "2024-05-01T10:00:00.123456Z"}
//	bytes                                      {"$bytes": "<standard base64>"}
//	reference                                  {"$ref": "users/alice"}
//	geo point                                  {"$geopoint": [latitude, longitude]}
//	vector                                     {"$vector": [0.5, 1.0]}
//	string jsonb cannot hold (NUL, bad UTF-8)  {"$stringb64": "<base64 of the bytes>"}
//	such a reference                           {"$refb64": "<base64 of the path>"}
//
// Map keys that start with "$" are escaped by doubling the dollar ("$x" is
// written "$$x"), so a user's map can never be mistaken for a tag; a key
// jsonb cannot hold is written "$b64:" followed by its base64. The encoding
// is total: every Value has one. Integers
// and doubles stay distinct through PostgreSQL's jsonb, which keeps the
// scale of numbers ("1.0" stays "1.0").
const (
	tagDouble    = "$double"
	tagDecimal   = "$decimal"
	tagTimestamp = "$timestamp"
	tagBytes     = "$bytes"
	tagRef       = "$ref"
	tagGeo       = "$geopoint"
	tagVector    = "$vector"
	tagStringB64 = "$stringb64"
	tagRefB64    = "$refb64"
	keyB64Prefix = "$b64:"
)

// MarshalJSONValue appends the typed JSON encoding of v to dst.
func MarshalJSONValue(dst []byte, v Value) []byte {
	switch v.typ {
	case TypeNull:
		return append(dst, "null"...)
	case TypeBool:
		return strconv.AppendBool(dst, v.BoolValue())
	case TypeInt:
		return strconv.AppendInt(dst, v.IntValue(), 10)
	case TypeDouble:
		return appendDouble(dst, v.DoubleValue())
	case TypeDecimal:
		return appendTagged(dst, tagDecimal, v.s)
	case TypeTimestamp:
		dst = append(dst, `{"`+tagTimestamp+`":"`...)
		dst = v.TimeValue().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
		return append(dst, `"}`...)
	case TypeString:
		if TextProblem(v.s) != "" {
			return appendTagged(dst, tagStringB64, base64.StdEncoding.EncodeToString([]byte(v.s)))
		}
		return appendJSONString(dst, v.s)
	case TypeBytes:
		return appendTagged(dst, tagBytes, base64.StdEncoding.EncodeToString([]byte(v.s)))
	case TypeReference:
		if TextProblem(v.s) != "" {
			return appendTagged(dst, tagRefB64, base64.StdEncoding.EncodeToString([]byte(v.s)))
		}
		return appendTagged(dst, tagRef, v.s)
	case TypeGeoPoint:
		g := v.GeoValue()
		dst = append(dst, `{"`+tagGeo+`":[`...)
		dst = appendDouble(dst, g.Lat)
		dst = append(dst, ',')
		dst = appendDouble(dst, g.Lng)
		return append(dst, "]}"...)
	case TypeVector:
		dst = append(dst, `{"`+tagVector+`":[`...)
		for i, f := range v.VectorValue() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendDouble(dst, f)
		}
		return append(dst, "]}"...)
	case TypeArray:
		dst = append(dst, '[')
		for i, e := range v.ArrayValue() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = MarshalJSONValue(dst, e)
		}
		return append(dst, ']')
	case TypeMap:
		return MarshalJSONFields(dst, v.MapValue())
	}
	panic(fmt.Sprintf("record: unknown value type %d", v.typ))
}

// MarshalJSONFields appends the typed JSON encoding of a map's entries (a
// JSON object, keys in byte order) to dst.
func MarshalJSONFields(dst []byte, m map[string]Value) []byte {
	// The keys of small maps are sorted on the stack.
	var small [16]string
	keys := small[:0]
	if len(m) > len(small) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, escapeKey(k))
		dst = append(dst, ':')
		dst = MarshalJSONValue(dst, m[k])
	}
	return append(dst, '}')
}

// escapeKey applies the map-key escapes of typed JSON.
func escapeKey(k string) string {
	switch {
	case TextProblem(k) != "":
		return keyB64Prefix + base64.StdEncoding.EncodeToString([]byte(k))
	case strings.HasPrefix(k, "$"):
		return "$" + k
	}
	return k
}

// unescapeKey is the inverse of escapeKey.
func unescapeKey(k string) (string, error) {
	switch {
	case strings.HasPrefix(k, "$$"):
		return k[1:], nil
	case strings.HasPrefix(k, keyB64Prefix):
		b, err := base64.StdEncoding.DecodeString(k[len(keyB64Prefix):])
		if err != nil {
			return "", fmt.Errorf("key %q: %w", k, err)
		}
		return string(b), nil
	case strings.HasPrefix(k, "$"):
		return "", fmt.Errorf("unknown tag or unescaped key %q", k)
	}
	return k, nil
}

// TextProblem says why PostgreSQL text and jsonb strings (UTF8 database)
// cannot hold s exactly ("contains a NUL byte", "is not valid UTF-8"), or
// returns "".
func TextProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}

func appendTagged(dst []byte, tag, s string) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, tag...)
	dst = append(dst, `":`...)
	dst = appendJSONString(dst, s)
	return append(dst, '}')
}

// appendDouble writes f as a JSON number that always has a fraction, or as a
// $double tag for values JSON numbers cannot carry.
func appendDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return appendTagged(dst, tagDouble, "NaN")
	case math.IsInf(f, 1):
		return appendTagged(dst, tagDouble, "Infinity")
	case math.IsInf(f, -1):
		return appendTagged(dst, tagDouble, "-Infinity")
	case f == 0 && math.Signbit(f):
		return appendTagged(dst, tagDouble, "-0")
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	if !bytes.ContainsRune(dst[start:], '.') {
		dst = append(dst, ".0"...)
	}
	return dst
}

// appendJSONString quotes s as a JSON string without HTML escaping. s must be
// valid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// UnmarshalJSONValue decodes typed JSON (see MarshalJSONValue) into a Value.
func UnmarshalJSONValue(data []byte) (Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return Value{}, fmt.Errorf("decoding typed JSON: %w", err)
	}
	return FromJSON(raw)
}

// UnmarshalJSONFields decodes a typed JSON object into a field map.
func UnmarshalJSONFields(data []byte) (map[string]Value, error) {
	v, err := UnmarshalJSONValue(data)
	if err != nil {
		return nil, err
	}
	if v.Type() != TypeMap {
		return nil, fmt.Errorf("decoding typed JSON: want an object, got %s", v.Type())
	}
	return v.MapValue(), nil
}

// FromJSON converts a decoded JSON tree (from encoding/json with UseNumber,
// or from pgx's jsonb decoding with json.Number) in typed JSON form into a
// Value. Plain float64 numbers are accepted as doubles.
func FromJSON(raw any) (Value, error) {
	switch x := raw.(type) {
	case nil:
		return Null(), nil
	case bool:
		return Bool(x), nil
	case string:
		return String(x), nil
	case float64:
		return Double(x), nil
	case json.Number:
		return numberValue(string(x))
	case []any:
		out := make([]Value, len(x))
		for i, e := range x {
			v, err := FromJSON(e)
			if err != nil {
				return Value{}, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = v
		}
		return Array(out...), nil
	case map[string]any:
		if len(x) == 1 {
			for k, e := range x {
				if v, ok, err := fromTag(k, e); ok || err != nil {
					return v, err
				}
			}
		}
		out := make(map[string]Value, len(x))
		for k, e := range x {
			k, err := unescapeKey(k)
			if err != nil {
				return Value{}, err
			}
			v, err := FromJSON(e)
			if err != nil {
				return Value{}, fmt.Errorf("%q: %w", k, err)
			}
			out[k] = v
		}
		return Map(out), nil
	}
	return Value{}, fmt.Errorf("unexpected JSON value of Go type %T", raw)
}

func numberValue(s string) (Value, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Int(i), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Value{}, fmt.Errorf("number %q: %w", s, err)
	}
	return Double(f), nil
}

// fromTag decodes a one-key tagged object. ok is false when k is not a tag.
func fromTag(k string, e any) (v Value, ok bool, err error) {
	str := func() (string, error) {
		s, isStr := e.(string)
		if !isStr {
			return "", fmt.Errorf("%s: want a string, got %T", k, e)
		}
		return s, nil
	}
	switch k {
	case tagDecimal:
		s, err := str()
		if err != nil {
			return v, true, err
		}
		c, err := CanonicalDecimal(s)
		if err != nil {
			return v, true, fmt.Errorf("%s: %w", k, err)
		}
		return Decimal(c), true, nil
	case tagDouble:
		s, err := str()
		if err != nil {
			return v, true, err
		}
		switch s {
		case "NaN":
			return Double(math.NaN()), true, nil
		case "Infinity":
			return Double(math.Inf(1)), true, nil
		case "-Infinity":
			return Double(math.Inf(-1)), true, nil
		case "-0":
			return Double(math.Copysign(0, -1)), true, nil
		}
		return v, true, fmt.Errorf("%s: unknown special double %q", k, s)
	case tagTimestamp:
		s, err := str()
		if err != nil {
			return v, true, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return v, true, fmt.Errorf("%s: %w", k, err)
		}
		return Timestamp(t), true, nil
	case tagBytes, tagStringB64:
		s, err := str()
		if err != nil {
			return v, true, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return v, true, fmt.Errorf("%s: %w", k, err)
		}
		if k == tagBytes {
			return Bytes(b), true, nil
		}
		return String(string(b)), true, nil
	case tagRef:
		s, err := str()
		if err != nil {
			return v, true, err
		}
		return Reference(s), true, nil
	case tagRefB64:
		s, err := str()
		if err != nil {
			return v, true, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return v, true, fmt.Errorf("%s: %w", k, err)
		}
		return Reference(string(b)), true, nil
	case tagGeo, tagVector:
		arr, isArr := e.([]any)
		if !isArr {
			return v, true, fmt.Errorf("%s: want an array, got %T", k, e)
		}
		fs := make([]float64, len(arr))
		for i, x := range arr {
			ev, err := FromJSON(x)
			if err != nil {
				return v, true, fmt.Errorf("%s[%d]: %w", k, i, err)
			}
			switch ev.Type() {
			case TypeDouble:
				fs[i] = ev.DoubleValue()
			case TypeInt:
				fs[i] = float64(ev.IntValue())
			default:
				return v, true, fmt.Errorf("%s[%d]: want a number, got %s", k, i, ev.Type())
			}
		}
		if k == tagVector {
			return Vector(fs), true, nil
		}
		if len(fs) != 2 {
			return v, true, fmt.Errorf("%s: want [latitude, longitude], got %d numbers", k, len(fs))
		}
		return Geo(fs[0], fs[1]), true, nil
	}
	return v, false, nil
}
