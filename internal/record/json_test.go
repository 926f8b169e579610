package record

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// sampleValues covers every type and the edge values the encoding must keep
// apart (integers vs doubles, special doubles, strings jsonb cannot hold,
// map keys that look like tags).
func sampleValues() map[string]Value {
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)
	return map[string]Value{
		"null":                    Null(),
		"true":                    Bool(true),
		"false":                   Bool(false),
		"int0":                    Int(0),
		"intMax":                  Int(math.MaxInt64),
		"intMin":                  Int(math.MinInt64),
		"double1":                 Double(1),
		"doubleBig":               Double(1e18),
		"double300":               Double(1e300),
		"doubleTiny":              Double(5e-324),
		"doubleNeg":               Double(-2.5),
		"nan":                     Double(math.NaN()),
		"inf":                     Double(math.Inf(1)),
		"ninf":                    Double(math.Inf(-1)),
		"negzero":                 Double(math.Copysign(0, -1)),
		"ts":                      Timestamp(ts),
		"tsZero":                  Timestamp(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)),
		"str":                     String(`quote " backslash \ <tag> & é 日本 🎉`),
		"strCtl":                  String("line\nbreak\ttab\x01"),
		"strNUL":                  String("a\x00b"),
		"strBadUTF8":              String("\xff\xfe"),
		"bytes":                   Bytes([]byte{0, 1, 2, 255}),
		"bytesEmpty":              Bytes(nil),
		"ref":                     Reference("users/alice/orders/o1"),
		"refNUL":                  Reference("users/a\x00b"),
		"geo":                     Geo(-33.8688, 151.2093),
		"vector":                  Vector([]float64{0.5, 1, -3}),
		"emptyArray":              Array(),
		"mixedArray":              Array(Int(1), Double(1), String("1"), Null(), Map(map[string]Value{"x": Int(2)})),
		"emptyMap":                Map(nil),
		"$ref":                    String("a user key that looks like a tag"),
		"$$double":                Int(7),
		"nul\x00key":              Bool(true),
		"bad\xffkey":              Bool(false),
		"nested":                  Map(map[string]Value{"$bytes": String("not bytes"), "deep": Map(map[string]Value{"a": Array(Timestamp(ts))})}),
		strings.Repeat("k", 1500): Int(1),
	}
}

func TestTypedJSONRoundTrip(t *testing.T) {
	for name, v := range sampleValues() {
		enc := MarshalJSONValue(nil, v)
		got, err := UnmarshalJSONValue(enc)
		if err != nil {
			t.Errorf("%.40q: decoding %s: %v", name, enc, err)
			continue
		}
		want := v
		if v.Type() == TypeTimestamp {
			want = Timestamp(v.TimeValue())
		}
		if !Equal(got, want) {
			t.Errorf("%.40q: round trip of %v via %s gave %v", name, v, enc, got)
		}
	}
	all := Map(sampleValues())
	got, err := UnmarshalJSONValue(MarshalJSONValue(nil, all))
	if err != nil || !Equal(got, all) {
		t.Fatalf("whole map did not round-trip: %v", err)
	}
}

func TestTypedJSONKeepsIntAndDoubleApart(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{Int(1), "1"},
		{Double(1), "1.0"},
		{Double(1e18), "1000000000000000000.0"},
		{Double(0.25), "0.25"},
		{String("<&>"), `"<&>"`},
		{Map(map[string]Value{"$x": Int(1)}), `{"$$x":1}`},
	} {
		if got := string(MarshalJSONValue(nil, tc.v)); got != tc.want {
			t.Errorf("MarshalJSONValue(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestTypedJSONRejectsUnknownTags(t *testing.T) {
	for _, in := range []string{`{"$nope":1}`, `{"$timestamp":"yesterday"}`, `{"$geopoint":[1]}`, `{"$bytes":"!!"}`, `{"a":1,"$b":2}`} {
		if _, err := UnmarshalJSONValue([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSONValue(%s) succeeded, want an error", in)
		}
	}
}

// FuzzTypedJSON checks that random doubles and strings survive the encoding.
func FuzzTypedJSON(f *testing.F) {
	f.Add(1.5, "x", []byte{0})
	f.Fuzz(func(t *testing.T, d float64, s string, b []byte) {
		v := Map(map[string]Value{s: Array(Double(d), String(s), Bytes(b), Int(int64(rand.Uint64())))})
		got, err := UnmarshalJSONValue(MarshalJSONValue(nil, v))
		if err != nil || !Equal(got, v) {
			t.Fatalf("round trip of %v: got %v, %v", v, got, err)
		}
	})
}
