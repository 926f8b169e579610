package transformers

import (
	"math/rand/v2"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestExactMatchesDecode checks the exactness every codec reports from the
// value alone against what decoding the column value gives back (the
// check Transform used to make by decoding every value): for every type and
// source, edge values and random ones, exact is true exactly when decode
// returns a value Equal to the source.
func TestExactMatchesDecode(t *testing.T) {
	values := edgeValues()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		values = append(values, randValue(r, 0))
	}
	checked := 0
	for _, typ := range mappings.SupportedTypes() {
		for _, src := range mappings.AllowedSources(typ) {
			c, err := newCodec(typ, src)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if v.IsNull() {
					continue // store handles null before the codec
				}
				x, exact, ok := c.encode(v)
				if !ok {
					if x != nil {
						t.Errorf("%s/%s: refused %v but returned %#v", typ, src, v, x)
					}
					continue
				}
				back, err := c.decode(x)
				want := err == nil && record.Equal(back, v)
				if exact != want {
					t.Errorf("%s/%s: %v: exact = %v, but decode gives %v (err %v)", typ, src, v, exact, back, err)
				}
				checked++
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d values were held by a column", checked)
	}
}
