package mappings

import (
	"fmt"
	"sort"
	"strings"
)

// Sources name what source values a column holds (Column.Source). Scalar
// sources are record.Type names plus "number" (integers and doubles) and
// "any" (every value, jsonb only); an array source is its element source
// followed by "[]".
const (
	SourceString    = "string"
	SourceReference = "reference"
	SourceInteger   = "integer"
	SourceDouble    = "double"
	// SourceDecimal is exact decimals (record.TypeDecimal) and integers.
	SourceDecimal   = "decimal"
	SourceNumber    = "number"
	SourceBoolean   = "boolean"
	SourceTimestamp = "timestamp"
	SourceBytes     = "bytes"
	SourceGeoPoint  = "geopoint"
	SourceVector    = "vector"
	SourceAny       = "any"
)

// typeSources lists, for every column type a mapping may use (canonical
// spelling), the sources it can hold; the first is the default when a column
// leaves source out.
var typeSources = map[string][]string{
	"text":               {SourceString, SourceReference},
	"bigint":             {SourceInteger},
	"integer":            {SourceInteger},
	"double precision":   {SourceDouble, SourceNumber, SourceInteger},
	"real":               {SourceDouble, SourceNumber, SourceInteger},
	"numeric":            {SourceNumber, SourceInteger, SourceDouble, SourceDecimal},
	"boolean":            {SourceBoolean},
	"timestamptz":        {SourceTimestamp},
	"date":               {SourceTimestamp, SourceString},
	"uuid":               {SourceString},
	"bytea":              {SourceBytes},
	"point":              {SourceGeoPoint},
	"jsonb":              {SourceAny},
	"text[]":             {SourceString + "[]", SourceReference + "[]"},
	"bigint[]":           {SourceInteger + "[]"},
	"integer[]":          {SourceInteger + "[]"},
	"double precision[]": {SourceDouble + "[]", SourceNumber + "[]", SourceInteger + "[]", SourceVector},
	"real[]":             {SourceDouble + "[]", SourceNumber + "[]", SourceInteger + "[]", SourceVector},
	"boolean[]":          {SourceBoolean + "[]"},
	"timestamptz[]":      {SourceTimestamp + "[]"},
	"bytea[]":            {SourceBytes + "[]"},
}

// typeAliases maps other spellings PostgreSQL accepts to the canonical one
// mappings store. Keys are lower-case with single spaces.
var typeAliases = map[string]string{
	"int8":                     "bigint",
	"int":                      "integer",
	"int4":                     "integer",
	"float8":                   "double precision",
	"float":                    "double precision",
	"float4":                   "real",
	"decimal":                  "numeric",
	"bool":                     "boolean",
	"timestamp with time zone": "timestamptz",
	"json":                     "jsonb",
}

// SupportedTypes returns the column types a mapping may use, in their
// canonical spelling, sorted.
func SupportedTypes() []string {
	ts := make([]string, 0, len(typeSources))
	for t := range typeSources {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// AllowedSources returns the sources a column of type typ may declare
// (default first), or nil when typ is not a supported canonical type.
func AllowedSources(typ string) []string {
	return append([]string(nil), typeSources[typ]...)
}

// ColumnSource returns the source a column holds: Source when set, else the
// default for its type.
func (c *Column) ColumnSource() string {
	if c.Source != "" {
		return c.Source
	}
	if s := typeSources[c.Type]; len(s) > 0 {
		return s[0]
	}
	return ""
}

// canonicalType returns the canonical spelling of a type name written by a
// user (case and spacing do not matter; common aliases and "T ARRAY" are
// accepted), or an error explaining what is supported.
func canonicalType(typ string) (string, error) {
	t := strings.ToLower(strings.Join(strings.Fields(typ), " "))
	array := false
	switch {
	case strings.HasSuffix(t, "[]"):
		array, t = true, strings.TrimSpace(strings.TrimSuffix(t, "[]"))
	case strings.HasSuffix(t, " array"):
		array, t = true, strings.TrimSuffix(t, " array")
	}
	if a, ok := typeAliases[t]; ok {
		t = a
	}
	if array {
		t += "[]"
	}
	if _, ok := typeSources[t]; ok {
		return t, nil
	}
	base := strings.TrimSuffix(t, "[]")
	switch {
	case base == "timestamp" || base == "timestamp without time zone":
		return "", fmt.Errorf("type %q drops the time zone; use timestamptz", typ)
	case strings.Contains(base, "("):
		return "", fmt.Errorf("type %q has a length, precision or scale, which would cut values; use the type without it (text, numeric, ...)", typ)
	case strings.HasSuffix(t, "[][]"):
		return "", fmt.Errorf("type %q: multidimensional arrays are not supported; use jsonb", typ)
	case array:
		if _, ok := typeSources[base]; ok {
			return "", fmt.Errorf("type %q: arrays of %s are not supported; use jsonb", typ, base)
		}
	}
	return "", fmt.Errorf("type %q is not supported; use one of: %s", typ, strings.Join(SupportedTypes(), ", "))
}
