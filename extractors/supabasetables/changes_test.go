package supabasetables

import (
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

func TestPositionRoundTrip(t *testing.T) {
	x := extra{Skips: []skip{{Table: `"public"."log"`, Xmin: 10, Xmax: 20, Xip: []uint64{12, 15}, Until: "0/16B3748"}}}
	pos := encodePosition("baasmigrate_0123456789abcdef", 0x16B3748, x)
	slot, lsn, got, err := parsePosition(pos)
	if err != nil || slot != "baasmigrate_0123456789abcdef" || lsn != 0x16B3748 || len(got.Skips) != 1 || got.Skips[0].Until != "0/16B3748" || len(got.Skips[0].Xip) != 2 {
		t.Fatalf("parsePosition(%q) = %q, %v, %+v, %v", pos, slot, lsn, got, err)
	}
	if p := encodePosition("baasmigrate_0123456789abcdef", 0x10, extra{}); p != "baasmigrate_0123456789abcdef@0/10" {
		t.Errorf("a position without extra: %q", p)
	}
	// The marker of a copy the slot does not cover.
	if _, lsn, _, err := parsePosition(SlotName("job") + "@"); err != nil || lsn != 0 {
		t.Errorf(`parsePosition(SlotName("job") + "@") = %v, %v; want LSN 0`, lsn, err)
	}
	// Only slot names SlotName gives: the slot goes into replication commands.
	for _, bad := range []string{"", "0/10", "other@0/10", SlotName("job") + "@zz", SlotName("job") + "@0/10 {",
		"baasmigrate_x@0/10", "baasmigrate_0123456789abcdeg@0/10", "baasmigrate_0123456789ABCDEF@0/10", `baasmigrate_0123456789abcdef"; DROP@0/10`} {
		if _, _, _, err := parsePosition(bad); err == nil {
			t.Errorf("parsePosition(%q) accepted it", bad)
		}
	}
}

func TestSkipShows(t *testing.T) {
	k, err := parseSnapshot("100:110:102,105")
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]bool{99: true, 100: true, 101: true, 102: false, 105: false, 109: true, 110: false, 500: false} {
		if got := k.shows(xid); got != want {
			t.Errorf("snapshot 100:110:102,105 shows %d: %v, want %v", xid, got, want)
		}
	}
	// xid8 values beyond the first epoch compare by their 32-bit xid.
	k, err = parseSnapshot("4294967396:4294967400:")
	if err != nil {
		t.Fatal(err)
	}
	if !k.shows(99) || k.shows(104) {
		t.Errorf("epoch 1 snapshot: shows 99 %v (want true), 104 %v (want false)", k.shows(99), k.shows(104))
	}
	if _, err := parseSnapshot("1:2"); err == nil {
		t.Error("parseSnapshot accepted a malformed snapshot")
	}
}

func tuple(vals ...any) *pglogrepl.TupleData {
	td := &pglogrepl.TupleData{}
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			td.Columns = append(td.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull})
		case byte:
			td.Columns = append(td.Columns, &pglogrepl.TupleDataColumn{DataType: v})
		case string:
			td.Columns = append(td.Columns, &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(v)})
		}
	}
	td.ColumnNum = uint16(len(td.Columns))
	return td
}

func TestChangeMapping(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	tbl := &pgcatalog.Table{Schema: "public", Name: "t", Key: []string{"id"}, Columns: []pgcatalog.Column{{Name: "id"}, {Name: "body"}, {Name: "n"}}}
	r := &relation{t: tbl, qname: tbl.QName(), identity: []int{0}, key: []int{0}}

	ins := r.insert(&pglogrepl.InsertMessage{Tuple: tuple("7", "hello", nil)}, at)
	ins.Record.Key = r.keyOf(ins, 0)
	if ins.Op != record.OpUpsert || ins.Record.Key != `"public"."t" ["7"]` || ins.Record.Fields[pgcatalog.FieldOp].StringValue() != "insert" ||
		!ins.Record.Fields[pgcatalog.FieldNew].ArrayValue()[2].IsNull() || !ins.CommitTime.Equal(at) {
		t.Errorf("insert: %+v", ins)
	}

	// An unchanged TOASTed value is listed, not sent.
	up := r.update(&pglogrepl.UpdateMessage{NewTuple: tuple("7", byte(pglogrepl.TupleDataTypeToast), "3")}, at)
	up.Record.Key = r.keyOf(up, 1)
	if u := up.Record.Fields[pgcatalog.FieldUnchanged].ArrayValue(); len(u) != 1 || u[0].IntValue() != 1 || up.Record.Key != `"public"."t" ["7"]` {
		t.Errorf("update with an unchanged TOASTed value: %+v", up)
	}
	if _, ok := up.Record.Fields[pgcatalog.FieldOld]; ok {
		t.Errorf("an update that kept its key carries an old identity: %+v", up)
	}

	// A key change names the old key.
	mv := r.update(&pglogrepl.UpdateMessage{OldTupleType: pglogrepl.UpdateMessageTupleTypeKey, OldTuple: tuple("7", nil, nil), NewTuple: tuple("8", "x", "1")}, at)
	mv.Record.Key = r.keyOf(mv, 2)
	if mv.Record.Key != `"public"."t" ["7"]` || mv.Record.Fields[pgcatalog.FieldOldFull].BoolValue() {
		t.Errorf("key change: %+v", mv)
	}

	del := r.delete(&pglogrepl.DeleteMessage{OldTupleType: pglogrepl.DeleteMessageTupleTypeKey, OldTuple: tuple("8", nil, nil)}, at)
	del.Record.Key = r.keyOf(del, 3)
	if del.Op != record.OpDelete || del.Record.Key != `"public"."t" ["8"]` {
		t.Errorf("delete: %+v", del)
	}

	// Keyless (REPLICA IDENTITY FULL): the whole old row, a key unique to
	// the change.
	kl := &pgcatalog.Table{Schema: "public", Name: "log", Columns: []pgcatalog.Column{{Name: "m"}, {Name: "n"}}}
	kr := &relation{t: kl, qname: kl.QName(), identity: []int{0, 1}}
	d1 := kr.delete(&pglogrepl.DeleteMessage{OldTupleType: pglogrepl.DeleteMessageTupleTypeOld, OldTuple: tuple("dup", "1")}, at)
	d2 := d1
	if k1, k2 := kr.keyOf(d1, 0), kr.keyOf(d2, 1); k1 == k2 || !d1.Record.Fields[pgcatalog.FieldOldFull].BoolValue() {
		t.Errorf("keyless deletes of equal rows: keys %q, %q; old full %v", k1, k2, d1.Record.Fields[pgcatalog.FieldOldFull])
	}
	tr := kr.truncate(at)
	if tr.Op != record.OpDelete || tr.Record.Fields[pgcatalog.FieldOp].StringValue() != "truncate" {
		t.Errorf("truncate: %+v", tr)
	}
}

func TestPageStart(t *testing.T) {
	const seg = 16 << 20
	for lsn, want := range map[pglogrepl.LSN]pglogrepl.LSN{
		3*8192 + 24: 3 * 8192, // just past a page header
		seg + 40:    seg,      // just past a segment's long header
		8192 + 40:   8192 + 40,
		8192 + 48:   8192 + 48,
		0x16B3748:   0x16B3748,
	} {
		if got := pageStart(lsn, seg); got != want {
			t.Errorf("pageStart(%s) = %s, want %s", lsn, got, want)
		}
	}
}
