package record

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// ParseDecimal parses a decimal number written in plain or scientific
// notation ("-12.50", "1.5E+3", "0.001e-2") into an exact Value: an Int
// when the number is whole and fits 64 bits, a Decimal (in canonical form)
// otherwise. No digit is lost, and no binary floating point is involved.
func ParseDecimal(s string) (Value, error) {
	c, err := CanonicalDecimal(s)
	if err != nil {
		return Value{}, err
	}
	if !strings.Contains(c, ".") {
		if i, err := strconv.ParseInt(c, 10, 64); err == nil {
			return Int(i), nil
		}
	}
	return Decimal(c), nil
}

// CanonicalDecimal rewrites a decimal number in its canonical plain form:
// no exponent, no leading zeros in the whole part, no trailing zeros in
// the fraction (and no point when there is none left), "-" only before a
// non-zero number. Two texts of one number give the same canonical text.
// The error does not quote s (a source's values may be personal data).
func CanonicalDecimal(s string) (string, error) {
	bad := errNotDecimal
	t := s
	neg := false
	switch {
	case strings.HasPrefix(t, "-"):
		neg, t = true, t[1:]
	case strings.HasPrefix(t, "+"):
		t = t[1:]
	}
	mant, exp := t, 0
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		mant = t[:i]
		e, err := strconv.Atoi(t[i+1:])
		if err != nil || e > 100000 || e < -100000 {
			return "", bad
		}
		exp = e
	}
	whole, frac, _ := strings.Cut(mant, ".")
	if whole == "" && frac == "" {
		return "", bad
	}
	digits := whole + frac
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", bad
		}
	}
	// The number is digits × 10^(exp - len(frac)).
	scale := len(frac) - exp
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", nil
	}
	for scale > 0 && strings.HasSuffix(digits, "0") {
		digits, scale = digits[:len(digits)-1], scale-1
	}
	var out string
	switch {
	case scale <= 0:
		out = digits + strings.Repeat("0", -scale)
	case scale >= len(digits):
		out = "0." + strings.Repeat("0", scale-len(digits)) + digits
	default:
		out = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		out = "-" + out
	}
	return out, nil
}

// errNotDecimal is CanonicalDecimal's error, made once: numbers are
// parsed per value on a migration's path.
var errNotDecimal = errors.New("not a decimal number")

// DecimalRat returns the exact rational value of a TypeDecimal or TypeInt
// value (nil for other types), for ordering numbers.
func DecimalRat(v Value) *big.Rat {
	switch v.typ {
	case TypeInt:
		return new(big.Rat).SetInt64(v.IntValue())
	case TypeDecimal:
		r, ok := new(big.Rat).SetString(v.s)
		if ok {
			return r
		}
	}
	return nil
}
