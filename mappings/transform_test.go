package mappings

import (
	"reflect"
	"strings"
	"testing"
)

const transformsYAML = `version: 1
schema: public
tables:
  - collection: people
    table: people
    id_column: id
    columns:
      - field: phone
        column: phone
        type: text
        transform: mask
        mask: {keep_last: 4}
      - field: email
        column: email
        type: text
        transform: mask
        mask: {email: true}
      - field: contact.email
        column: email_hash
        type: text
        transform: hash
        hash: {key_env: PII_HASH_KEY}
      - field: ssn
        column: ssn
        type: text
        transform: tokenize
        tokenize: {key_env: PII_TOKEN_KEY}
      - field: born
        column: born
        type: timestamptz
        transform: truncate
      - field: seen
        column: seen
        type: timestamptz
        transform: truncate
        truncate: {unit: hour}
      - field: home
        column: home
        type: point
        transform: truncate
        truncate: {grid: 0.1}
      - field: salary
        column: salary
        type: bigint
        transform: truncate
        truncate: {digits: -3}
      - field: notes
        transform: drop
      - field: '` + "`a.b`" + `.c'
        transform: drop
`

// TestTransformsParseAndRoundTrip reads every transform and its
// parameters, and writes them back unchanged.
func TestTransformsParseAndRoundTrip(t *testing.T) {
	m, err := Parse([]byte(transformsYAML), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tb := m.Tables[0]
	if len(tb.Columns) != 8 || len(tb.Drop) != 2 {
		t.Fatalf("got %d columns and %d dropped fields, want 8 and 2", len(tb.Columns), len(tb.Drop))
	}
	want := []string{
		"mask (keep_last: 4)", "mask (email)", "hash (HMAC-SHA-256, key from $PII_HASH_KEY)", "tokenize (HMAC-SHA-256, key from $PII_TOKEN_KEY)",
		"truncate (unit: day)", "truncate (unit: hour)", "truncate (grid: 0.1 degrees)", "truncate (digits: -3)",
	}
	for i, c := range tb.Columns {
		if got := c.Transform.Describe(); got != want[i] {
			t.Errorf("column %s: %q, want %q", c.Name, got, want[i])
		}
	}
	if tb.Drop[0].Field != "notes" || tb.Drop[1].Field != "`a.b`.c" {
		t.Errorf("dropped: %+v", tb.Drop)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(clearTransformLines(m), clearTransformLines(back)) {
		t.Errorf("round trip changed the mapping:\n%s", out)
	}
}

// clearTransformLines is clearLines, dropped fields' lines too.
func clearTransformLines(m *Mapping) *Mapping {
	for _, t := range m.Tables {
		for i := range t.Drop {
			t.Drop[i].Line = 0
		}
	}
	return clearLines(m)
}

// TestTransformsChangeTheMappingText: the mapping text is what a run
// records (its digest), so another transform or parameter is another
// setting and a resumed run refuses it.
func TestTransformsChangeTheMappingText(t *testing.T) {
	base, err := Parse([]byte(transformsYAML), "")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := base.Marshal()
	for _, edit := range [][2]string{
		{"mask: {keep_last: 4}", "mask: {keep_last: 3}"},
		{"truncate: {unit: hour}", "truncate: {unit: minute}"},
		{"hash: {key_env: PII_HASH_KEY}", "hash: {key_env: OTHER_KEY}"},
		{"      - field: notes\n        transform: drop\n", ""},
	} {
		m, err := Parse([]byte(strings.Replace(transformsYAML, edit[0], edit[1], 1)), "")
		if err != nil {
			t.Fatalf("%s → %s: %v", edit[0], edit[1], err)
		}
		b, _ := m.Marshal()
		if string(a) == string(b) {
			t.Errorf("%q → %q left the mapping text unchanged", edit[0], edit[1])
		}
	}
}

// TestTransformValidation: each misfit is an error naming the field.
func TestTransformValidation(t *testing.T) {
	col := func(body string) string {
		return "version: 1\ntables:\n  - collection: c\n    table: c\n    id_column: id\n    columns:\n" + body + "\n    exclude: [secret]\n"
	}
	for _, tc := range []struct{ body, want string }{
		{"      - {field: prefs, column: prefs, type: jsonb, transform: mask, mask: {keep_last: 2}}", `field prefs): transform mask gives text: the column must be type text with source string, not jsonb`},
		{"      - {field: n, column: n, type: bigint, transform: hash, hash: {key_env: K}}", `field n): transform hash gives text`},
		{"      - {field: e, column: e, type: text, transform: hash}", `field e): hash needs key_env`},
		{"      - {field: e, column: e, type: text, transform: tokenize, tokenize: {key_env: 'not a name'}}", `key_env "not a name" is not an environment variable name`},
		{"      - {field: e, column: e, type: text, transform: truncate}", `field e): transform truncate does not fit a text column`},
		{"      - {field: g, column: g, type: point, transform: truncate}", `field g): truncate of geo points needs grid`},
		{"      - {field: x, column: x, type: double precision, transform: truncate, truncate: {unit: day}}", `field x): truncate of numbers needs digits`},
		{"      - {field: d, column: d, type: date, transform: truncate, truncate: {unit: hour}}", `a date column holds whole days`},
		{"      - {field: s, column: s, type: timestamptz, transform: truncate, truncate: {unit: week}}", `unit "week" is not one of`},
		{"      - {field: e, column: e, type: text, transform: ''}", `transform is empty; use one of drop, mask`},
		{"      - {field: e, column: e, type: text, transform: scramble}", `transform "scramble" is not one of drop, mask, hash, tokenize, truncate`},
		{"      - {field: e, column: e, type: text, transform: hash, mask: {keep_last: 1}}", `mask parameters given but the column's transform is not mask`},
		{"      - {field: e, column: e, type: text, transform: mask, mask: {keep_last: 1, colour: red}}", `unknown key "colour" in mask parameters`},
		{"      - {field: e, column: e, transform: drop}", `field e is dropped (transform: drop): it has no column, so column is not allowed`},
		{"      - {field: secret.x, transform: drop}", `field secret.x (a dropped field) lies inside field secret (an exclusion`},
		{"      - {field: a, column: a, type: jsonb}\n      - {field: a, transform: drop}", `field a is used by a dropped field and again by column "a"`},
	} {
		_, err := Parse([]byte(col(tc.body)), "m.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", tc.body, err, tc.want)
		}
	}
}
