package transformers

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// AppendCopyField appends x as one field of a row in PostgreSQL's binary
// COPY format — its length as a big-endian int32 (-1 for NULL), then its
// bytes — for a column of type oid, and returns the extended buffer.
//
// The bytes are exactly those pgx's CopyFrom sends for the same value and
// column type (TestAppendCopyFieldMatchesPgx compares them for every
// column type and source of a mapping, edge and random values, NULLs and
// arrays with NULL elements). The Go types Row.Values holds for the
// column types a mapping supports, the loader's key strings, row times
// (pgtype.Timestamptz, or a pointer to one) and overflow (jsonb []byte)
// are written directly, without pgx's per-value plan lookup or boxing;
// any other value, or a value for a column of another type, is encoded by
// m as pgx does (with pgx's second try through the text form).
func AppendCopyField(buf []byte, oid uint32, x any, m *pgtype.Map) ([]byte, error) {
	switch v := x.(type) {
	case nil:
		return appendNull(buf), nil
	case string:
		if oid == pgtype.TextOID {
			return append(appendLen(buf, len(v)), v...), nil
		}
	case []byte:
		switch oid {
		case pgtype.ByteaOID:
			if v == nil {
				return appendNull(buf), nil
			}
			return append(appendLen(buf, len(v)), v...), nil
		case pgtype.JSONBOID:
			if v == nil {
				return appendNull(buf), nil
			}
			// jsonb's binary form: version 1, then the JSON text.
			return append(append(appendLen(buf, len(v)+1), 1), v...), nil
		}
	case bool:
		if oid == pgtype.BoolOID {
			return appendBool(appendLen(buf, 1), v), nil
		}
	case int64:
		if oid == pgtype.Int8OID {
			return binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(v)), nil
		}
	case int32:
		if oid == pgtype.Int4OID {
			return binary.BigEndian.AppendUint32(appendLen(buf, 4), uint32(v)), nil
		}
	case float64:
		if oid == pgtype.Float8OID {
			return binary.BigEndian.AppendUint64(appendLen(buf, 8), math.Float64bits(v)), nil
		}
	case float32:
		if oid == pgtype.Float4OID {
			return binary.BigEndian.AppendUint32(appendLen(buf, 4), math.Float32bits(v)), nil
		}
	case pgtype.Timestamptz:
		if oid == pgtype.TimestamptzOID && v.InfinityModifier == pgtype.Finite {
			if !v.Valid {
				return appendNull(buf), nil
			}
			return appendTimestamptz(appendLen(buf, 8), v.Time), nil
		}
	case *pgtype.Timestamptz:
		if oid == pgtype.TimestamptzOID && v != nil && v.InfinityModifier == pgtype.Finite {
			if !v.Valid {
				return appendNull(buf), nil
			}
			return appendTimestamptz(appendLen(buf, 8), v.Time), nil
		}
	case time.Time:
		switch oid {
		case pgtype.TimestamptzOID:
			return appendTimestamptz(appendLen(buf, 8), v), nil
		case pgtype.DateOID:
			return appendDate(appendLen(buf, 4), v), nil
		}
	case pgtype.UUID:
		if oid == pgtype.UUIDOID {
			if !v.Valid {
				return appendNull(buf), nil
			}
			return append(appendLen(buf, 16), v.Bytes[:]...), nil
		}
	case pgtype.Point:
		if oid == pgtype.PointOID {
			if !v.Valid {
				return appendNull(buf), nil
			}
			buf = binary.BigEndian.AppendUint64(appendLen(buf, 16), math.Float64bits(v.P.X))
			return binary.BigEndian.AppendUint64(buf, math.Float64bits(v.P.Y)), nil
		}
	case []string:
		if oid == pgtype.TextArrayOID {
			return appendArray(buf, pgtype.TextOID, v, appendText), nil
		}
	case []*string:
		if oid == pgtype.TextArrayOID {
			return appendPtrArray(buf, pgtype.TextOID, v, appendText), nil
		}
	case []int64:
		if oid == pgtype.Int8ArrayOID {
			return appendArray(buf, pgtype.Int8OID, v, appendInt64), nil
		}
	case []*int64:
		if oid == pgtype.Int8ArrayOID {
			return appendPtrArray(buf, pgtype.Int8OID, v, appendInt64), nil
		}
	case []int32:
		if oid == pgtype.Int4ArrayOID {
			return appendArray(buf, pgtype.Int4OID, v, appendInt32), nil
		}
	case []*int32:
		if oid == pgtype.Int4ArrayOID {
			return appendPtrArray(buf, pgtype.Int4OID, v, appendInt32), nil
		}
	case []float64:
		if oid == pgtype.Float8ArrayOID {
			return appendArray(buf, pgtype.Float8OID, v, appendFloat64), nil
		}
	case []*float64:
		if oid == pgtype.Float8ArrayOID {
			return appendPtrArray(buf, pgtype.Float8OID, v, appendFloat64), nil
		}
	case []float32:
		if oid == pgtype.Float4ArrayOID {
			return appendArray(buf, pgtype.Float4OID, v, appendFloat32), nil
		}
	case []*float32:
		if oid == pgtype.Float4ArrayOID {
			return appendPtrArray(buf, pgtype.Float4OID, v, appendFloat32), nil
		}
	case []bool:
		if oid == pgtype.BoolArrayOID {
			return appendArray(buf, pgtype.BoolOID, v, appendBoolElem), nil
		}
	case []*bool:
		if oid == pgtype.BoolArrayOID {
			return appendPtrArray(buf, pgtype.BoolOID, v, appendBoolElem), nil
		}
	case []time.Time:
		if oid == pgtype.TimestamptzArrayOID {
			return appendArray(buf, pgtype.TimestamptzOID, v, appendTimeElem), nil
		}
	case []*time.Time:
		if oid == pgtype.TimestamptzArrayOID {
			return appendPtrArray(buf, pgtype.TimestamptzOID, v, appendTimeElem), nil
		}
	case [][]byte:
		if oid == pgtype.ByteaArrayOID {
			return appendByteaArray(buf, v), nil
		}
	}
	return appendByPgx(buf, oid, x, m)
}

// appendByPgx encodes x as pgx's CopyFrom does: a length placeholder
// of -1, replaced by the length when m encodes a value (not NULL); when m
// cannot encode x in binary, x is read as text (x itself when a string,
// else m's text form of it) into the column type's Go value, which m then
// encodes — so that a string such as "(1,2)" loads into a point column.
func appendByPgx(buf []byte, oid uint32, x any, m *pgtype.Map) ([]byte, error) {
	at := len(buf)
	buf = appendNull(buf)
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, x, buf)
	if err != nil {
		if out, err = encodeFromText(buf, oid, x, m, err); err != nil {
			return nil, err
		}
	}
	if out == nil {
		return buf, nil
	}
	binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	return out, nil
}

// encodeFromText is pgx's CopyFrom's second try at a value m could not
// encode in binary (failed with err, which it returns when this fails
// too): x as text, scanned into the column type's Go value (an array
// keeps its dimensions), encoded in binary.
func encodeFromText(buf []byte, oid uint32, x any, m *pgtype.Map, err error) ([]byte, error) {
	s, ok := x.(string)
	if !ok {
		text, textErr := m.Encode(oid, pgtype.TextFormatCode, x, nil)
		if textErr != nil {
			return nil, err
		}
		s = string(text)
	}
	if typ, ok := m.TypeForOID(oid); ok {
		if _, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
			var arr pgtype.Array[any]
			if m.Scan(oid, pgtype.TextFormatCode, []byte(s), &arr) == nil {
				out, encErr := m.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
				if encErr != nil {
					return nil, err
				}
				return out, nil
			}
		}
	}
	var v any
	if scanErr := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &v); scanErr != nil {
		return nil, err
	}
	out, encErr := m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
	if encErr != nil {
		return nil, err
	}
	return out, nil
}

func appendLen(buf []byte, n int) []byte { return binary.BigEndian.AppendUint32(buf, uint32(n)) }

func appendNull(buf []byte) []byte { return append(buf, 0xff, 0xff, 0xff, 0xff) }

func appendBool(buf []byte, b bool) []byte {
	if b {
		return append(buf, 1)
	}
	return append(buf, 0)
}

// Element encoders: the length, then the bytes.

func appendText(buf []byte, s string) []byte { return append(appendLen(buf, len(s)), s...) }
func appendInt64(buf []byte, i int64) []byte {
	return binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(i))
}
func appendInt32(buf []byte, i int32) []byte {
	return binary.BigEndian.AppendUint32(appendLen(buf, 4), uint32(i))
}
func appendFloat64(buf []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(appendLen(buf, 8), math.Float64bits(f))
}
func appendFloat32(buf []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(appendLen(buf, 4), math.Float32bits(f))
}
func appendBoolElem(buf []byte, b bool) []byte { return appendBool(appendLen(buf, 1), b) }
func appendTimeElem(buf []byte, t time.Time) []byte {
	return appendTimestamptz(appendLen(buf, 8), t)
}

// microsecondsToY2K is the Unix time of 2000-01-01 00:00 UTC, PostgreSQL's
// timestamp epoch, in microseconds.
const microsecondsToY2K = 946_684_800 * 1_000_000

// appendTimestamptz appends t as microseconds since 2000-01-01 UTC, the
// nanoseconds below a microsecond dropped (as pgx does).
func appendTimestamptz(buf []byte, t time.Time) []byte {
	us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - microsecondsToY2K
	return binary.BigEndian.AppendUint64(buf, uint64(us))
}

// appendDate appends t's calendar day (in t's location, as pgx reads it)
// as days since 2000-01-01.
func appendDate(buf []byte, t time.Time) []byte {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix()
	days := int32((day - 946_684_800) / 86400)
	return binary.BigEndian.AppendUint32(buf, uint32(days))
}

// beginArray appends a field's length placeholder and the header of a
// one-dimensional array of n elements of type elem, without NULLs; it
// returns the buffer and where the field starts.
func beginArray(buf []byte, elem uint32, n int) ([]byte, int) {
	at := len(buf)
	buf = appendLen(buf, 0)
	buf = binary.BigEndian.AppendUint32(buf, 1) // dimensions
	buf = binary.BigEndian.AppendUint32(buf, 0) // no NULLs (yet)
	buf = binary.BigEndian.AppendUint32(buf, elem)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = binary.BigEndian.AppendUint32(buf, 1) // lower bound
	return buf, at
}

// endArray sets the length of the array field at at, and its has-NULLs
// flag when nulls.
func endArray(buf []byte, at int, nulls bool) []byte {
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	if nulls {
		binary.BigEndian.PutUint32(buf[at+8:], 1)
	}
	return buf
}

func appendArray[T any](buf []byte, elem uint32, xs []T, enc func([]byte, T) []byte) []byte {
	if xs == nil {
		return appendNull(buf)
	}
	buf, at := beginArray(buf, elem, len(xs))
	for _, x := range xs {
		buf = enc(buf, x)
	}
	return endArray(buf, at, false)
}

func appendPtrArray[T any](buf []byte, elem uint32, xs []*T, enc func([]byte, T) []byte) []byte {
	if xs == nil {
		return appendNull(buf)
	}
	buf, at := beginArray(buf, elem, len(xs))
	nulls := false
	for _, x := range xs {
		if x == nil {
			buf, nulls = appendNull(buf), true
			continue
		}
		buf = enc(buf, *x)
	}
	return endArray(buf, at, nulls)
}

func appendByteaArray(buf []byte, xs [][]byte) []byte {
	if xs == nil {
		return appendNull(buf)
	}
	buf, at := beginArray(buf, pgtype.ByteaOID, len(xs))
	nulls := false
	for _, x := range xs {
		if x == nil {
			buf, nulls = appendNull(buf), true
			continue
		}
		buf = append(appendLen(buf, len(x)), x...)
	}
	return endArray(buf, at, nulls)
}
