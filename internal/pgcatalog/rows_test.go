package pgcatalog

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSplitKey(t *testing.T) {
	for _, c := range []struct{ schema, table, rest string }{
		{"public", "tasks", `["1"]`},
		{"public", `Weird "Table".x; DROP`, `["a'b\"c"]`},
		{`s" "x`, `" [`, `["k", "2"]`},
	} {
		q := pgx.Identifier{c.schema, c.table}.Sanitize()
		gotQ, gotRest, err := SplitKey(q + " " + c.rest)
		if err != nil || gotQ != q || gotRest != c.rest {
			t.Errorf("SplitKey(%s %s) = %q, %q, %v", q, c.rest, gotQ, gotRest, err)
		}
	}
	for _, bad := range []string{"", "tasks [1]", `"public"."tasks"`, `"public" [1]`, `"a"."b`} {
		if _, _, err := SplitKey(bad); err == nil {
			t.Errorf("SplitKey(%q) accepted", bad)
		}
	}
}

func TestTuples(t *testing.T) {
	got := TextTuple([][]byte{[]byte("a\tb\nc\\d\re"), nil, {}, []byte(`\N`)})
	if want := "a\\tb\\nc\\\\d\\re\t\\N\t\t\\\\N\n"; string(got) != want {
		t.Errorf("TextTuple = %q, want %q", got, want)
	}
	got = BinaryTuple([][]byte{{1, 2}, nil, {}})
	if want := []byte{0, 3, 0, 0, 0, 2, 1, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("BinaryTuple = %v, want %v", got, want)
	}
}

func TestIndexName(t *testing.T) {
	for def, want := range map[string]string{
		`CREATE INDEX tasks_open ON public.tasks USING btree (org_id) WHERE flag`:   "tasks_open",
		`CREATE UNIQUE INDEX "idx ""weird""" ON public.t USING btree ("select")`:    `idx "weird"`,
		`CREATE INDEX "Ä ON x" ON public."Weird ""Table"".x; DROP" USING btree (a)`: "Ä ON x",
	} {
		if got := indexName(def); got != want {
			t.Errorf("indexName(%s) = %q, want %q", def, got, want)
		}
	}
}
