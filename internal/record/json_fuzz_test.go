package record

import (
	"bytes"
	"testing"
)

// FuzzUnmarshalTypedJSON feeds arbitrary bytes to the typed-JSON decoder: it never
// panics, and whatever it accepts re-encodes to a form that decodes to an
// equal value and re-encodes to the same bytes (the encoding is canonical
// and lossless on its own output).
func FuzzUnmarshalTypedJSON(f *testing.F) {
	for _, v := range sampleValues() {
		f.Add(MarshalJSONValue(nil, v))
	}
	f.Add(MarshalJSONFields(nil, sampleValues()))
	for _, s := range []string{
		`null`, `1`, `1.0`, `-0.0`, `1e400`, `"x"`, `[]`, `{}`, `{"$double":"NaN"}`, `{"$double":"x"}`,
		`{"$timestamp":"2024-05-01T10:00:00.123456Z"}`, `{"$timestamp":"not a time"}`, `{"$bytes":"AA=="}`,
		`{"$ref":"a/b"}`, `{"$geopoint":[1,2]}`, `{"$geopoint":[1]}`, `{"$vector":[0.5]}`, `{"$stringb64":"AA=="}`,
		`{"$refb64":"/w=="}`, `{"$$x":1}`, `{"$b64:AA==":1}`, `{"$unknown":1}`, `{"a":1,"a":2}`, `[1,{"b":[null]}]`,
		`{"$double":"NaN","x":1}`, "\"\\u0000\"", `"\ud800"`, `9223372036854775808`, `-9223372036854775809`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := UnmarshalJSONValue(data)
		if err != nil {
			return
		}
		enc := MarshalJSONValue(nil, v)
		back, err := UnmarshalJSONValue(enc)
		if err != nil {
			t.Fatalf("decoding its own encoding %s of %s: %v", enc, data, err)
		}
		if !Equal(v, back) {
			t.Fatalf("round trip of %s through %s: %v became %v", data, enc, v, back)
		}
		if again := MarshalJSONValue(nil, back); !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not stable: %s then %s", enc, again)
		}
	})
}
