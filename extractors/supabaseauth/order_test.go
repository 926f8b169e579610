package supabaseauth

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestUUIDOrderIsByteOrder checks what KeyOrder declares: PostgreSQL's
// ORDER BY of uuids (how Read pages) is the byte order of their text (how
// plan and verify read the users table: uid COLLATE "C", and Compare).
func TestUUIDOrderIsByteOrder(t *testing.T) {
	p := supabasetest.NewProject(t)
	ctx := context.Background()
	p.Exec(t, `CREATE TABLE ids (id uuid PRIMARY KEY)`)
	p.Exec(t, `INSERT INTO ids SELECT gen_random_uuid() FROM generate_series(1, 2000) ON CONFLICT DO NOTHING`)
	p.Exec(t, `INSERT INTO ids VALUES ('00000000-0000-0000-0000-000000000000'), ('ffffffff-ffff-ffff-ffff-ffffffffffff'),
		('9fffffff-0000-4000-8000-000000000000'), ('a0000000-0000-4000-8000-000000000000'), ('0a000000-0000-4000-8000-000000000000')
		ON CONFLICT DO NOTHING`)
	query := func(sql string) []string {
		rows, err := p.Pool.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	byUUID := query(`SELECT id::text FROM ids ORDER BY id`)
	byText := query(`SELECT id::text FROM ids ORDER BY ` + record.ByteOrder.OrderBy("id::text"))
	inGo := slices.Clone(byUUID)
	slices.SortFunc(inGo, record.ByteOrder.Compare)
	if !slices.Equal(byUUID, byText) || !slices.Equal(byUUID, inGo) {
		t.Fatal("ORDER BY id, ORDER BY id::text COLLATE \"C\" and ByteOrder.Compare disagree")
	}
	if len(byUUID) < 2000 {
		t.Fatalf("only %d ids", len(byUUID))
	}
}

func TestE164(t *testing.T) {
	for in, want := range map[string]string{"15551234567": "+15551234567", "+4420": "+4420", "": ""} {
		got := e164(&in)
		if (want == "") != (got == nil) || (got != nil && *got != want) {
			t.Errorf("e164(%q) = %v, want %q", in, got, want)
		}
	}
	if e164(nil) != nil {
		t.Error("e164(nil) is not nil")
	}
}
