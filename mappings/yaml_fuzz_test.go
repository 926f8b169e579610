package mappings

import (
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// FuzzParse feeds arbitrary text to the mapping parser: it never panics,
// refuses with problems located in the file, and a mapping it accepts
// marshals to YAML that parses to the same mapping (Marshal is then a
// fixed point).
func FuzzParse(f *testing.F) {
	in := NewInferrer(InferOptions{})
	in.Observe("users/a", map[string]record.Value{"id": record.Int(1), "name": record.String("x"), "tags": record.Array(record.String("t"))})
	in.Observe("users/a/orders/o", map[string]record.Value{"usersId": record.String("a"), "total": record.Double(1.5)})
	in.Observe("ユーザー/名前", map[string]record.Value{"with space": record.Bool(true), "a.b": record.Map(nil)})
	if text, err := in.Mapping().Marshal(); err == nil {
		f.Add(text)
	}
	for _, s := range []string{
		"", "version: 1\n", "version: 1\nschema: s\ntables: []\n", "version: 2\n", "- a\n", "version: [1]\n",
		"version: 1\ntables:\n  - collection: users\n    table: users\n    id_column: id\n",
		"version: 1\ntables:\n  - collection: users\n    table: users\n    id_column: id\n    columns:\n      - field: '`a.b`'\n        column: a_b\n        type: TEXT\n        source: string\n",
		"version: 1\ntables:\n  - collection: users\n    table: t\n    id_column: id\n  - collection: users\n    table: t\n    id_column: id\n",
		"version: 1\ntables:\n  - collection: a/{}/b\n    table: ab\n    id_column: id\n    parent_columns: [a_id]\n    exclude: [x, x.y]\n",
		"version: 1\ntables:\n  - collection: \"c\\0l\"\n    table: \"t\\0\"\n    id_column: id\n",
		"a: &x [*x]\n", "version: 1\nversion: 1\n", "version: 1\nunknown: 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("Parse failed with %T, not a *ValidationError: %v", err, err)
			}
			return
		}
		text, err := m.Marshal()
		if err != nil {
			t.Fatalf("marshalling a parsed mapping: %v", err)
		}
		back, err := Parse(text, "again.yaml")
		if err != nil {
			t.Fatalf("parsing its own output: %v\n%s\nfrom:\n%q", err, text, data)
		}
		again, err := back.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(text) {
			t.Fatalf("Marshal(Parse(Marshal(m))) differs:\n%s\n---\n%s", text, again)
		}
	})
}
