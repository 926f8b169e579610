package record

import (
	"strings"
	"testing"
)

func TestCanonicalDecimal(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0", "0"}, {"-0", "0"}, {"000.000", "0"}, {"+7", "7"}, {"007", "7"},
		{"1.50", "1.5"}, {"-12.500", "-12.5"}, {".5", "0.5"}, {"5.", "5"},
		{"1E+2", "100"}, {"1.5e3", "1500"}, {"12e-1", "1.2"}, {"1E-3", "0.001"},
		{"-1E-130", "-0." + strings.Repeat("0", 129) + "1"},
		{"123456789012345678901234567890123456.5", "123456789012345678901234567890123456.5"},
		{"9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + strings.Repeat("0", 88)},
	} {
		got, err := CanonicalDecimal(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalDecimal(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "1e", "e5", "1.2.3", "0x10", "NaN", "Infinity", "1 ", "1e999999"} {
		if got, err := CanonicalDecimal(bad); err == nil {
			t.Errorf("CanonicalDecimal(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Value
	}{
		{"42", Int(42)}, {"-9223372036854775808", Int(-9223372036854775808)}, {"1E+3", Int(1000)},
		{"9223372036854775808", Decimal("9223372036854775808")}, {"0.1", Decimal("0.1")}, {"2.50", Decimal("2.5")},
	} {
		got, err := ParseDecimal(c.in)
		if err != nil || !Equal(got, c.want) {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// A decimal goes through typed JSON exactly, and stays distinct from
// doubles, integers and strings.
func TestDecimalJSON(t *testing.T) {
	v := Map(map[string]Value{"d": Decimal("0.1"), "i": Int(1), "f": Double(0.1), "s": String("0.1")})
	b := MarshalJSONValue(nil, v)
	if want := `{"d":{"$decimal":"0.1"},"f":0.1,"i":1,"s":"0.1"}`; string(b) != want {
		t.Fatalf("typed JSON %s, want %s", b, want)
	}
	back, err := UnmarshalJSONValue(b)
	if err != nil || !Equal(back, v) {
		t.Fatalf("round trip: %v, %v; want %v", back, err, v)
	}
	if Equal(Decimal("1"), Int(1)) || !Equal(Decimal("1.5"), Decimal("1.5")) {
		t.Error("Equal on decimals")
	}
}
