package mappings

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// clearLines zeroes what Parse adds beyond the content.
func clearLines(m *Mapping) *Mapping {
	m.File = ""
	for _, t := range m.Tables {
		t.Line, t.excludeLines = 0, nil
		for _, c := range t.Columns {
			c.Line = 0
		}
	}
	return m
}

func TestMarshalParseRoundTrip(t *testing.T) {
	in := NewInferrer(InferOptions{Schema: "app"})
	for _, n := range hostileNames() {
		if n == "" || strings.IndexByte(n, 0) >= 0 {
			continue
		}
		in.Observe("users/u1", map[string]record.Value{n: record.String("x"), "n": record.Int(1)})
	}
	in.Observe("users/u1/`odd` coll: #x/d1", map[string]record.Value{"null": record.Null(), "true": record.Bool(true)})
	want := in.Mapping()
	want.Tables[0].Exclude = []string{"`not.there`", "x.y"}
	want.Tables[0].Columns[0].Source = ""
	data, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data, "m.yaml")
	if err != nil {
		t.Fatalf("Parse(Marshal): %v\n%s", err, data)
	}
	if got.Tables[0].Line == 0 || got.Tables[0].Columns[0].Line == 0 || got.File != "m.yaml" {
		t.Error("Parse did not record lines and file")
	}
	if !reflect.DeepEqual(clearLines(got), want) {
		t.Fatalf("Parse(Marshal(m)) != m\n%s", data)
	}
	again, _ := got.Marshal()
	if string(again) != string(data) {
		t.Error("Marshal is not stable")
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(path, []byte("version: 1\ntables: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil || m.Schema != "public" || m.File != path {
		t.Fatalf("Load: %+v, %v", m, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "reading mapping") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

var problemRE = regexp.MustCompile(`^m\.yaml:(\d+): `)

// expectProblems parses src and checks that every want (line, substring)
// is reported and every message is located.
func expectProblems(t *testing.T, src string, want map[int][]string) {
	t.Helper()
	_, err := Parse([]byte(src), "m.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	lines := map[int]string{}
	for _, p := range ve.Problems {
		if !problemRE.MatchString(p.String()) || p.Line == 0 {
			t.Errorf("problem not located: %q", p)
		}
		lines[p.Line] += p.Message + "\n"
	}
	for line, subs := range want {
		for _, s := range subs {
			if !strings.Contains(lines[line], s) {
				t.Errorf("line %d: want a problem containing %q; got:\n%s", line, s, err)
			}
		}
	}
	if t.Failed() {
		t.Logf("all problems:\n%v", err)
	}
}

func TestParseStrict(t *testing.T) {
	expectProblems(t, `version: 1
schema: public
colour: blue
tables:
  - collection: users
    table: users
    id_column: id
    primary: yes
    columns:
      - field: name
        column: name
        type: text
        nullable: false
      - field: null
        column: [a]
        type: text
    exclude: secret
  - collection: users
    collection: users2
`, map[int][]string{
		3:  {`unknown key "colour" in the mapping`},
		8:  {`unknown key "primary" in a table`},
		13: {`unknown key "nullable" in a column`},
		14: {`field is YAML's null; quote it`},
		15: {`column must be a string, got a list`},
		17: {`exclude must be a list of strings`},
		19: {`key "collection" appears twice`},
	})
	expectProblems(t, "version: 1\ntables: [\n", map[int][]string{2: {"invalid YAML"}})
	expectProblems(t, "tables: []\n", map[int][]string{1: {"version is missing"}})
	expectProblems(t, "version: x\nschema: baasmigrate\n", map[int][]string{1: {"version must be an integer", "own state"}})
}

func TestValidateProblems(t *testing.T) {
	expectProblems(t, `version: 1
schema: public
tables:
  - collection: users
    table: users
    id_column: id
    parent_columns: [x]
    columns:
      - field: id
        column: id
        type: text
      - field: zip-code
        column: zip
        type: varchar(10)
      - field: a
        column: _overflow
        type: timestamp
      - field: b
        column: b
        type: text
        source: integer
      - field: address
        column: address
        type: jsonb
      - field: address.city
        column: city
        type: text
      - field: c
        column: b
        type: FLOAT8
      - field: secret
        column: secret
        type: text
    exclude: [secret, a.x]
  - collection: users/x/orders
    table: users
    id_column: ""
  - collection: users/{}/orders
    table: orders
    id_column: id
    parent_columns: [id, id]
  - collection: users
    table: users_again
    id_column: id
  - collection: logs
    table: "a_name_that_is_much_too_long_for_postgresql_which_keeps_63_bytes"
    id_column: "has\u0000nul"
    columns:
      - field: "t"
        column: t
        type: text[][]
      - field: "u"
        column: u
        type: uuid[]
`, map[int][]string{
		4:  {`parent_columns has 1 names but the pattern has 0`},
		9:  {`is named "id", which is already the name of the id column`},
		12: {"segment \"zip-code\" must be quoted with backticks: `zip-code`", `length, precision or scale`},
		15: {`already the name of the meta column _overflow`, `use timestamptz`},
		18: {`cannot hold source "integer"`},
		25: {`field address.city (column "city") lies inside field address`},
		28: {`already the name of the column for field b`},
		34: {`field secret is used by an exclusion and again by column "secret"`, `field a.x (an exclusion) lies inside field a (column "_overflow"`},
		35: {`segment 2 must be {}`, `id_column: name is empty`, `the name is already used by the table for "users"`},
		38: {`parent_columns has 2 names but the pattern has 1`, `parent column 2 is named "id"`, `the id column is named "id"`},
		42: {`collection pattern "users" is already mapped`},
		45: {`PostgreSQL keeps only 63`, `contains a NUL byte`},
		49: {`multidimensional arrays`},
		52: {`arrays of uuid are not supported`},
	})
}

func TestValidateCodeBuilt(t *testing.T) {
	m := &Mapping{Version: 1, Schema: "public", Tables: []*Table{{Collection: "a/{}", Name: "a", IDColumn: "id"}}}
	m.Tables = append(m.Tables, &Table{Collection: "b", Name: "b", IDColumn: "id", Columns: []*Column{{Field: "x", Name: "x", Type: "FLOAT8"}}})
	err := m.Validate()
	if err == nil || !strings.Contains(err.Error(), `write type "FLOAT8" as "double precision"`) {
		t.Errorf("alias in a code-built mapping: %v", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "mapping:0: ") || !strings.Contains(err.Error(), "must end with a collection ID") {
		t.Errorf("code-built mapping: %v", err)
	}
}

// A user-edited mapping: renamed table and column, a changed type, an
// exclusion and a map flattened into columns — all accepted as written.
func TestParseUserEdits(t *testing.T) {
	m, err := Parse([]byte(`version: 1
schema: app
tables:
  - collection: users
    table: app_users
    id_column: uid
    columns:
      - field: displayName
        column: name
        type: TEXT
      - field: age
        column: age
        type: int4
        source: integer
      - field: address.city
        column: city
        type: text
      - field: address.geo.lat
        column: lat
        type: numeric
      - field: "`+"`zip-code`"+`"
        column: zip
        type: text
    exclude:
      - passwordHint
      - address.secret
`), "users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tb := m.TableFor("users")
	if tb.Name != "app_users" || tb.IDColumn != "uid" || tb.Columns[0].Type != "text" || tb.Columns[1].Type != "integer" ||
		tb.Columns[3].ColumnSource() != "number" || tb.Columns[4].Field != "`zip-code`" || len(tb.Exclude) != 2 {
		t.Errorf("parsed %+v", tb)
	}
}
