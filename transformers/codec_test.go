package transformers

import (
	"math/rand/v2"
	"strings"
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

// TestLookupMatchesPatternOf checks the path walk Transform uses against
// mappings.PatternOf: for random and hostile paths, lookup finds a table
// exactly when PatternOf parses the path into a mapped pattern, with the
// same table and document IDs.
func TestLookupMatchesPatternOf(t *testing.T) {
	d := mustDocuments(t, parseMapping(t, `version: 1
tables:
  - {collection: users, table: users, id_column: id}
  - {collection: "users/{}/orders", table: orders, id_column: id, parent_columns: [user_id]}
  - {collection: "a/{}/b/{}/c", table: c, id_column: id, parent_columns: [a_id, b_id]}
`))
	pool := []string{"users", "orders", "a", "b", "c", "", "{}", "u1", "\x00", "\xff", "users/", "/"}
	r := rand.New(rand.NewPCG(5, 6))
	found := 0
	for range 20000 {
		n := r.IntN(8)
		path := ""
		for i := range n {
			if i > 0 {
				path += "/"
			}
			path += pool[r.IntN(len(pool))]
		}
		ct, ids := d.lookup(path)
		pattern, pids, err := mappings.PatternOf(path)
		var want *compiledTable
		if err == nil {
			want = d.byPattern[pattern]
		}
		if ct != want {
			t.Fatalf("lookup(%q) found %v, PatternOf gives pattern %q (err %v)", path, ct != nil, pattern, err)
		}
		if ct != nil {
			found++
			if strings.Join(ids, "\x01") != strings.Join(pids, "\x01") || len(ids) != len(pids) {
				t.Fatalf("lookup(%q) ids %q, PatternOf %q", path, ids, pids)
			}
		}
	}
	if found < 100 {
		t.Fatalf("only %d random paths were documents of mapped collections", found)
	}
}

// TestDecimalCodec: numeric columns of source decimal hold exact decimals
// and integers, and give back what record.ParseDecimal reads from the
// source: an integer when whole and within 64 bits, a decimal otherwise.
func TestDecimalCodec(t *testing.T) {
	c, err := newCodec("numeric", mappings.SourceDecimal)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []record.Value{
		record.Int(0), record.Int(-7), record.Int(9223372036854775807),
		record.Decimal("0.1"), record.Decimal("-12.5"), record.Decimal("99999999999999999999"),
		record.Decimal("123456789012345678901234567890123456.5"), record.Decimal("-0." + strings.Repeat("0", 129) + "1"),
	} {
		x, exact, ok := c.encode(v)
		if !ok || !exact {
			t.Errorf("%v: encode ok=%v exact=%v", v, ok, exact)
			continue
		}
		back, err := c.decode(x)
		if err != nil || !record.Equal(back, v) {
			t.Errorf("%v: decoded %v, %v", v, back, err)
		}
	}
	for _, v := range []record.Value{record.Double(0.5), record.String("1"), record.Bool(true)} {
		if _, _, ok := c.encode(v); ok {
			t.Errorf("a numeric decimal column took %v", v)
		}
	}
}
