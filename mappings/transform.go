package mappings

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The field transforms a mapping may declare (Column.Transform.Kind, or
// Table.Drop for TransformDrop). docs/mapping.md ("Field transforms") and
// docs/compliance.md describe them; package transformers/pii applies them.
const (
	TransformDrop     = "drop"
	TransformMask     = "mask"
	TransformHash     = "hash"
	TransformTokenize = "tokenize"
	TransformTruncate = "truncate"
)

// TransformKinds lists the transforms in the order documentation gives them.
var TransformKinds = []string{TransformDrop, TransformMask, TransformHash, TransformTokenize, TransformTruncate}

// Truncation units of timestamps, coarsest first.
var TruncateUnits = []string{"year", "month", "day", "hour", "minute", "second"}

// Transform is what happens to a column's field value before it is stored,
// compared or kept anywhere (rejects, overflow): see package
// transformers/pii. It never holds a secret: keys are named by the
// environment variable that holds them.
type Transform struct {
	// Kind is one of TransformMask, TransformHash, TransformTokenize,
	// TransformTruncate (a dropped field is a Table.Drop entry, not a
	// column).
	Kind string
	// Mask parameters: KeepFirst and KeepLast code points are kept, the
	// others replaced by '*'; Email masks the local part of an address and
	// keeps the domain.
	KeepFirst, KeepLast int
	Email               bool
	// KeyEnv names the environment variable holding the HMAC key of hash
	// and tokenize.
	KeyEnv string
	// Truncate parameters: Unit for timestamps (one of TruncateUnits;
	// "" means day), Grid (degrees, > 0) for geo points, Digits (decimal
	// places kept; negative rounds integers to tens, hundreds, …) for
	// numbers. HasDigits says Digits was given.
	Unit      string
	Grid      float64
	Digits    int
	HasDigits bool
}

// DropField is a field a mapping drops: it never reaches the target (no
// column, no overflow, not the rejects). YAML: a columns entry
// {field: PATH, transform: drop}.
type DropField struct {
	Field string
	Line  int
}

// Describe renders t as in the mapping, e.g. "mask (keep_last: 4)",
// "hash (key from $PII_KEY)". It names no secret; audit manifests record it.
func (t *Transform) Describe() string {
	switch t.Kind {
	case TransformMask:
		if t.Email {
			return "mask (email)"
		}
		var ps []string
		if t.KeepFirst > 0 {
			ps = append(ps, fmt.Sprintf("keep_first: %d", t.KeepFirst))
		}
		if t.KeepLast > 0 || t.KeepFirst == 0 {
			ps = append(ps, fmt.Sprintf("keep_last: %d", t.KeepLast))
		}
		return "mask (" + strings.Join(ps, ", ") + ")"
	case TransformHash, TransformTokenize:
		return fmt.Sprintf("%s (HMAC-SHA-256, key from $%s)", t.Kind, t.KeyEnv)
	case TransformTruncate:
		switch {
		case t.Grid > 0:
			return fmt.Sprintf("truncate (grid: %s degrees)", formatFloat(t.Grid))
		case t.HasDigits:
			return fmt.Sprintf("truncate (digits: %d)", t.Digits)
		default:
			return "truncate (unit: " + t.TruncateUnit() + ")"
		}
	}
	return t.Kind
}

// TruncateUnit is Unit, or "day" when it is empty.
func (t *Transform) TruncateUnit() string {
	if t.Unit == "" {
		return "day"
	}
	return t.Unit
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateTransform reports what is wrong with column c's transform: its
// parameters, and whether the column's type and source fit it. A transform
// whose output is text (mask, hash, tokenize) needs a text column of
// strings; truncate keeps the value's type, so its parameter must fit the
// column's (unit for timestamps, grid for geo points, digits for numbers).
func validateTransform(c *Column, cw string, p *problems) {
	t := c.Transform
	src := c.ColumnSource()
	textOnly := func() {
		if c.Type != "text" || src != SourceString {
			p.addf(c.Line, "%s: transform %s gives text: the column must be type text with source string, not %s (source %s)", cw, t.Kind, c.Type, src)
		}
	}
	switch t.Kind {
	case TransformMask:
		textOnly()
		if t.KeepFirst < 0 || t.KeepLast < 0 {
			p.addf(c.Line, "%s: mask: keep_first and keep_last must not be negative", cw)
		}
		if t.Email && (t.KeepFirst != 0 || t.KeepLast != 0) {
			p.addf(c.Line, "%s: mask: email cannot be combined with keep_first or keep_last", cw)
		}
	case TransformHash, TransformTokenize:
		textOnly()
		switch {
		case t.KeyEnv == "":
			p.addf(c.Line, "%s: %s needs key_env: the environment variable holding its HMAC key (never the key itself)", cw, t.Kind)
		case !envNameRE.MatchString(t.KeyEnv):
			p.addf(c.Line, "%s: %s: key_env %q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", cw, t.Kind, t.KeyEnv)
		}
	case TransformTruncate:
		given := 0
		for _, b := range []bool{t.Unit != "", t.Grid != 0, t.HasDigits} {
			if b {
				given++
			}
		}
		if given > 1 {
			p.addf(c.Line, "%s: truncate takes one of unit, grid or digits", cw)
			return
		}
		switch {
		case src == SourceTimestamp && (c.Type == "timestamptz" || c.Type == "date"):
			if t.Grid != 0 || t.HasDigits {
				p.addf(c.Line, "%s: truncate of timestamps takes unit (%s), not grid or digits", cw, strings.Join(TruncateUnits, ", "))
			} else if t.Unit != "" && !contains(TruncateUnits, t.Unit) {
				p.addf(c.Line, "%s: truncate: unit %q is not one of %s", cw, t.Unit, strings.Join(TruncateUnits, ", "))
			} else if c.Type == "date" && !contains([]string{"year", "month", "day"}, t.TruncateUnit()) {
				p.addf(c.Line, "%s: truncate: a date column holds whole days; unit %q would send every value to %s", cw, t.Unit, ColOverflow)
			}
		case src == SourceGeoPoint && c.Type == "point":
			if t.Grid <= 0 || math.IsInf(t.Grid, 0) || math.IsNaN(t.Grid) || t.Grid > 180 {
				p.addf(c.Line, "%s: truncate of geo points needs grid: the cell size in degrees (0 < grid <= 180)", cw)
			}
		case (src == SourceInteger || src == SourceDouble || src == SourceNumber) && !strings.HasSuffix(c.Type, "[]"):
			if !t.HasDigits {
				p.addf(c.Line, "%s: truncate of numbers needs digits: the decimal places kept (negative: tens, hundreds, …)", cw)
			} else if t.Digits < -18 || t.Digits > 17 {
				p.addf(c.Line, "%s: truncate: digits %d is outside -18…17", cw, t.Digits)
			}
		default:
			p.addf(c.Line, "%s: transform truncate does not fit a %s column of source %s: it takes timestamps (timestamptz, date), geo points (point) or numbers", cw, c.Type, src)
		}
	default:
		p.addf(c.Line, "%s: transform %q is not one of %s", cw, t.Kind, strings.Join(TransformKinds, ", "))
	}
}
