package diff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/extractors/memory"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// mapGetter is a Getter over the records of a source as it is now (the
// read time is not checked), which counts its reads and refuses more keys
// at once than Recheck is to ask for.
type mapGetter struct {
	recs  map[string]record.Record
	reads int64
	max   int // the most keys asked at once
}

var (
	_ extractors.Getter    = (*mapGetter)(nil)
	_ extractors.ReadMeter = (*mapGetter)(nil)
)

func newMapGetter(recs []record.Record) *mapGetter {
	g := &mapGetter{recs: map[string]record.Record{}}
	for _, r := range recs {
		g.recs[r.Key] = r
	}
	return g
}

func (g *mapGetter) Get(_ context.Context, keys []string, _ time.Time, emit func(string, *record.Record) error) error {
	g.max = max(g.max, len(keys))
	for _, k := range keys {
		g.reads++
		var rec *record.Record
		if r, ok := g.recs[k]; ok {
			rec = &r
		}
		if err := emit(k, rec); err != nil {
			return err
		}
	}
	return nil
}

func (g *mapGetter) BillableReads() int64 { return g.reads }

// differences collects what OnDifference sees, as "outcome key" lines,
// checking each difference's source record.
type differences struct {
	t     *testing.T
	lines []string
}

func (d *differences) on(_ context.Context, x Difference) error {
	d.t.Helper()
	switch x.Outcome {
	case Mismatched, MissingInTarget:
		if x.Source == nil || x.Source.Key != x.Key {
			d.t.Errorf("%s %s: source record %+v, want the record of the key", x.Outcome, x.Key, x.Source)
		}
	case ExtraInTarget:
		if x.Source != nil {
			d.t.Errorf("%s %s: a source record %+v", x.Outcome, x.Key, x.Source)
		}
	default:
		d.t.Errorf("a difference of outcome %q", x.Outcome)
	}
	if x.Table == "" {
		d.t.Errorf("%s %s: no table", x.Outcome, x.Key)
	}
	d.lines = append(d.lines, x.Outcome+" "+x.Key)
	return nil
}

func (d *differences) sorted() []string {
	out := slices.Clone(d.lines)
	slices.Sort(out)
	return out
}

var docTime = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

func doc(path string, n int64) record.Record {
	return record.Record{Kind: record.KindDocument, Key: path, Fields: map[string]record.Value{"n": record.Int(n)}, CreateTime: docTime, UpdateTime: docTime}
}

// loadDocuments writes recs through the documents sink into a fresh
// database, with a mapping inferred from them and from also (documents
// of collections the target is to have tables for, not written).
func loadDocuments(t *testing.T, recs []record.Record, also ...record.Record) (*pgxpool.Pool, *mappings.Mapping) {
	t.Helper()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	for _, r := range append(slices.Clone(recs), also...) {
		in.Observe(r.Key, r.Fields)
	}
	m := in.Mapping()
	sink, err := postgres.NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		out, err := sink.Write(ctx, tx, recs)
		if err == nil && len(out.Rejects) > 0 {
			err = fmt.Errorf("rejects: %v", out.Rejects)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return pool, m
}

// docsDiffer is a source of documents and a target that differs from it
// by nDiff documents of each outcome: the target holds changed copies of
// mismatched ones, lacks missing ones and holds extra ones; a placeholder
// parent (p/x, of p/x/s/y) is in the target only, and is no difference.
func docsDiffer(t *testing.T, nDiff int) (src []record.Record, pool *pgxpool.Pool, m *mappings.Mapping, want []string) {
	t.Helper()
	var target []record.Record
	for i := range 3*nDiff + 10 {
		r := doc(fmt.Sprintf("c/d%03d", i), int64(i))
		src = append(src, r)
		switch {
		case i < nDiff:
			target = append(target, doc(r.Key, -1))
			want = append(want, "mismatched "+r.Key)
		case i < 2*nDiff:
			want = append(want, "missing_in_target "+r.Key)
		default:
			target = append(target, r)
		}
	}
	for i := range nDiff {
		key := fmt.Sprintf("c/extra%03d", i)
		target = append(target, doc(key, 1))
		want = append(want, "extra_in_target "+key)
	}
	sub := doc("p/x/s/y", 7)
	src, target = append(src, sub), append(target, sub)
	pool, m = loadDocuments(t, target)
	slices.Sort(want)
	return src, pool, m, want
}

// TestOnDifferenceSeesEveryDifference: OnDifference is called once for
// every difference — many more than the samples kept — with the source
// record of mismatched and missing documents, and not for a placeholder;
// an error from it stops Compare and is returned.
func TestOnDifferenceSeesEveryDifference(t *testing.T) {
	ctx := context.Background()
	const nDiff = 12
	src, pool, m, want := docsDiffer(t, nDiff)
	ex, err := memory.New(src, memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewDocuments(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &differences{t: t}
	rep, err := Compare(ctx, ex, pool, a, Options{Samples: 2, OnDifference: d.on})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.sorted(); !slices.Equal(got, want) {
		t.Errorf("OnDifference saw\n %q\nwant\n %q", got, want)
	}
	c := tableOf(t, rep, m.TableFor("c").Name)
	if c.Mismatched != nDiff || c.MissingInTarget != nDiff || c.ExtraInTarget != nDiff || len(c.Samples) != 6 {
		t.Errorf("table c: %+v", c)
	}
	if p := tableOf(t, rep, m.TableFor("p").Name); p.Placeholders != 1 || !p.Identical() {
		t.Errorf("table p: %+v", p)
	}

	stop := errors.New("stop here")
	calls := 0
	_, err = Compare(ctx, ex, pool, a, Options{OnDifference: func(context.Context, Difference) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("an error from OnDifference: Compare returned %v after %d calls", err, calls)
	}
}

func tableOf(t *testing.T, rep *Report, table string) *TableReport {
	t.Helper()
	for _, tr := range rep.Tables {
		if tr.Table == table {
			return tr
		}
	}
	t.Fatalf("no table %s in %+v", table, rep.Tables)
	return nil
}

// TestOnDifferenceUsers: users compared by merge (an API's uid order) and
// by lookup (an export file, in any order) hand every difference to
// OnDifference — on the lookup path too, the users only the target has,
// each named — and rows marked deleted count as absent.
func TestOnDifferenceUsers(t *testing.T) {
	ctx := context.Background()
	pool, sink := usersDB(t, firebasescrypt.Params{})
	var src, target []record.Record
	var want []string
	for i := range 40 {
		u := record.User{UID: fmt.Sprintf("u%02d", i), DisplayName: sp("name")}
		src = append(src, u.Record("c"))
		switch {
		case i < 7:
			u.DisplayName = sp("changed")
			want = append(want, "mismatched "+u.UID)
		case i < 14:
			want = append(want, "missing_in_target "+u.UID)
			continue
		}
		target = append(target, u.Record("c"))
	}
	for i := range 9 {
		uid := fmt.Sprintf("x%02d", i)
		target = append(target, record.User{UID: uid}.Record("c"))
		want = append(want, "extra_in_target "+uid)
	}
	writeUserRecords(t, pool, sink, target)
	// Soft deletes: a marked extra row is no difference, a marked row of
	// a source user is missing.
	for _, q := range []string{
		`ALTER TABLE firebase_auth.users ADD COLUMN ` + loaders.DeletedAtColumn + ` timestamptz`,
		`UPDATE firebase_auth.users SET ` + loaders.DeletedAtColumn + ` = now() WHERE uid IN ('x08', 'u30')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == "extra_in_target x08" })
	want = append(want, "missing_in_target u30")
	slices.Sort(want)

	for _, ordered := range []bool{true, false} {
		recs := slices.Clone(src)
		var order record.KeyOrder
		if ordered {
			order = firebaseauth.UIDOrder
			slices.SortFunc(recs, func(a, b record.Record) int { return firebaseauth.CompareUIDs(a.Key, b.Key) })
		} else {
			rand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		}
		d := &differences{t: t}
		rep, err := Compare(ctx, &recordsExtractor{recs}, pool, NewUsers(postgres.UsersConfig{}, order), Options{OnDifference: d.on})
		if err != nil {
			t.Fatalf("ordered=%v: %v", ordered, err)
		}
		if got := d.sorted(); !slices.Equal(got, want) {
			t.Errorf("ordered=%v: OnDifference saw\n %q\nwant\n %q", ordered, got, want)
		}
		tr := rep.Tables[0]
		if tr.Mismatched != 7 || tr.MissingInTarget != 8 || tr.ExtraInTarget != 8 || tr.Matching != 25 {
			t.Errorf("ordered=%v: %+v", ordered, tr)
		}
		// Without OnDifference, the lookup path counts the same.
		rep, err = Compare(ctx, &recordsExtractor{recs}, pool, NewUsers(postgres.UsersConfig{}, order), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Tables[0]; got.ExtraInTarget != 8 || got.MissingInTarget != 8 || got.Mismatched != 7 {
			t.Errorf("ordered=%v, no OnDifference: %+v", ordered, got)
		}
	}
}

// TestRecheckDocuments re-checks keys given in any order, repeated, more
// than one chunk of them: every outcome is reported as Compare reports
// it, for those keys only, and OnDifference sees each difference.
func TestRecheckDocuments(t *testing.T) {
	ctx := context.Background()
	const n = 700
	var target []record.Record
	for i := range n {
		target = append(target, doc(fmt.Sprintf("c/d%03d", i), int64(i)))
	}
	target = append(target, doc("p/x/s/y", 1), doc("c/gone", 1), doc("c/both-gone", 1), doc("c/soft", 1))
	pool, m := loadDocuments(t, target)
	// The source now: one document changed, one new, three deleted (one
	// still in the target, one deleted there too, one marked deleted
	// there), one in a collection without a table.
	src := slices.Clone(target[:n])
	src[17] = doc(src[17].Key, -17)
	src = append(src, doc("c/new", 1), doc("p/x/s/y", 1), doc("zz/a", 1))
	for _, q := range []string{
		`DELETE FROM ` + pgx.Identifier{m.Schema, m.TableFor("c").Name}.Sanitize() + ` WHERE id = 'both-gone'`,
		`ALTER TABLE ` + pgx.Identifier{m.Schema, m.TableFor("c").Name}.Sanitize() + ` ADD COLUMN ` + loaders.DeletedAtColumn + ` timestamptz`,
		`UPDATE ` + pgx.Identifier{m.Schema, m.TableFor("c").Name}.Sanitize() + ` SET ` + loaders.DeletedAtColumn + ` = now() WHERE id = 'soft'`,
	} {
		if tag, err := pool.Exec(ctx, q); err != nil || (strings.HasPrefix(q, "DELETE") || strings.HasPrefix(q, "UPDATE")) && tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var keys []string
	for _, r := range src {
		keys = append(keys, r.Key)
	}
	keys = append(keys, "c/gone", "c/both-gone", "c/soft", "p/x", "nowhere/x", "c/d017", "c/gone", "c/new")
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })

	a, err := NewDocuments(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newMapGetter(src)
	d := &differences{t: t}
	rt := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rep, err := Recheck(ctx, g, nil, pool, a, keys, rt, Options{Samples: 1, OnDifference: d.on})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"extra_in_target c/gone", "mismatched c/d017", "missing_in_target c/new"}
	if got := d.sorted(); !slices.Equal(got, want) {
		t.Errorf("OnDifference saw %q, want %q", got, want)
	}
	c := tableOf(t, rep, m.TableFor("c").Name)
	if c.Source != n+1 || c.Matching != n-1 || c.Mismatched != 1 || c.MissingInTarget != 1 || c.ExtraInTarget != 1 || c.Placeholders != 0 {
		t.Errorf("table c: %+v", c)
	}
	if p := tableOf(t, rep, m.TableFor("p").Name); p.Placeholders != 1 || !p.Identical() || p.Source != 0 {
		t.Errorf("table p: %+v", p)
	}
	if s := tableOf(t, rep, m.TableFor("p/{}/s").Name); s.Matching != 1 || !s.Identical() {
		t.Errorf("table p/{}/s: %+v", s)
	}
	if z := tableOf(t, rep, "(no table for zz)"); z.Rejected != 1 {
		t.Errorf("zz: %+v", z)
	}
	distinct := slices.Clone(keys)
	slices.Sort(distinct)
	if distinct = slices.Compact(distinct); rep.SourceReads != int64(len(distinct)) || g.max > recheckChunk || !rep.ReadTime.Equal(rt) {
		t.Errorf("%d source reads (want %d, one per distinct key), %d keys at once (at most %d), read time %s", rep.SourceReads, len(distinct), g.max, recheckChunk, rep.ReadTime)
	}

	// The same keys through Compare of the whole source agree (the row
	// marked deleted removed: that Compare's cursors skip such rows is
	// tested with them, in loaders/postgres).
	if _, err := pool.Exec(ctx, `DELETE FROM `+pgx.Identifier{m.Schema, m.TableFor("c").Name}.Sanitize()+` WHERE id = 'soft'`); err != nil {
		t.Fatal(err)
	}
	ex, err := memory.New(src, memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	full, err := Compare(ctx, ex, pool, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fc := tableOf(t, full, m.TableFor("c").Name)
	if fc.Matching != c.Matching || fc.Mismatched != c.Mismatched || fc.MissingInTarget != c.MissingInTarget || fc.ExtraInTarget != c.ExtraInTarget {
		t.Errorf("Compare: %+v; Recheck: %+v", fc, c)
	}

	// Without a Getter, the extractor must be one (the memory source is:
	// hide it behind the bare interface).
	bare := struct{ extractors.Extractor }{ex}
	if _, err := Recheck(ctx, nil, bare, pool, a, keys, rt, Options{}); err == nil {
		t.Error("Recheck without a Getter: no error")
	}
}

// TestRecheckUsersAndFiles: users and files re-checked by key report a
// mismatched, a missing and an extra record, and nothing for the others.
func TestRecheckUsersAndFiles(t *testing.T) {
	ctx := context.Background()
	pool, sink := usersDB(t, firebasescrypt.Params{})
	var src []record.Record
	for _, uid := range []string{"same", "changed", "new"} {
		src = append(src, record.User{UID: uid, DisplayName: sp(uid)}.Record("c"))
	}
	writeUserRecords(t, pool, sink, []record.Record{src[0], record.User{UID: "changed"}.Record("c"), record.User{UID: "gone"}.Record("c"),
		record.User{UID: "now-invalid"}.Record("c")})
	// A user the sink would now reject: its row is one the source does
	// not have, as for Compare.
	src = append(src, record.User{UID: "now-invalid", CustomClaims: sp(`[1, 2]`)}.Record("c"))
	d := &differences{t: t}
	rep, err := Recheck(ctx, newMapGetter(src), nil, pool, NewUsers(postgres.UsersConfig{}, nil), []string{"gone", "new", "same", "changed", "never", "now-invalid"}, time.Time{}, Options{OnDifference: d.on})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"extra_in_target gone", "extra_in_target now-invalid", "mismatched changed", "missing_in_target new"}
	if got := d.sorted(); !slices.Equal(got, want) {
		t.Errorf("users: OnDifference saw %q, want %q", got, want)
	}
	if tr := rep.Tables[0]; tr.Source != 3 || tr.Matching != 1 || tr.Mismatched != 1 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 2 || tr.Rejected != 1 {
		t.Errorf("users: %+v", tr)
	}
	full, err := Compare(ctx, &recordsExtractor{src}, pool, NewUsers(postgres.UsersConfig{}, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := full.Tables[0], rep.Tables[0]; a.Source != b.Source || a.Matching != b.Matching || a.Mismatched != b.Mismatched ||
		a.MissingInTarget != b.MissingInTarget || a.ExtraInTarget != b.ExtraInTarget || a.Rejected != b.Rejected {
		t.Errorf("users: Compare %+v, Recheck %+v", a, b)
	}

	ft := newFilesTestTarget(t)
	files := []record.Record{filesTestRecord("same", []byte("s"), 1), filesTestRecord("changed", []byte("c"), 1), filesTestRecord("gone", []byte("g"), 1)}
	ft.migrate(t, files)
	now := []record.Record{files[0], filesTestRecord("changed", []byte("cc"), 2), filesTestRecord("new", []byte("n"), 1), filesTestRecord("other/x", []byte("o"), 1)}
	d = &differences{t: t}
	a := NewFiles(FilesConfig{Store: ft.store, Bucket: filesTestBucket})
	rep, err = Recheck(ctx, newMapGetter(now), nil, ft.pool, a, []string{"same", "changed", "new", "gone", "never"}, time.Time{}, Options{OnDifference: d.on})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"extra_in_target gone", "mismatched changed", "missing_in_target new"}
	if got := d.sorted(); !slices.Equal(got, want) {
		t.Errorf("files: OnDifference saw %q, want %q", got, want)
	}
	if tr := rep.Tables[0]; tr.Source != 3 || tr.Matching != 1 || tr.Mismatched != 1 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 1 {
		t.Errorf("files: %+v %q", tr, tr.SampleLines())
	}
	// A row whose object is gone differs.
	ft.exec(t, `UPDATE public.files SET size = size + 1 WHERE name = 'same'`)
	rep, err = Recheck(ctx, newMapGetter(now), nil, ft.pool, NewFiles(FilesConfig{Store: ft.store, Bucket: filesTestBucket}), []string{"same"}, time.Time{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Tables[0].SampleLines(); !slices.Equal(got, []string{"mismatched same object_size,size"}) {
		t.Errorf("files, a tampered size: %q", got)
	}
	// Files compared by merge hand every difference to OnDifference too.
	d = &differences{t: t}
	slices.SortFunc(now, func(a, b record.Record) int { return strings.Compare(a.Key, b.Key) })
	if _, err := Compare(ctx, &recordsExtractor{now}, ft.pool, NewFiles(FilesConfig{Store: ft.store, Bucket: filesTestBucket}), Options{OnDifference: d.on}); err != nil {
		t.Fatal(err)
	}
	want = []string{"extra_in_target gone", "mismatched changed", "mismatched same", "missing_in_target new", "missing_in_target other/x"}
	if got := d.sorted(); !slices.Equal(got, want) {
		t.Errorf("files, Compare: OnDifference saw %q, want %q", got, want)
	}
}

// TestCountRecords counts each stream on both sides: equal after loading
// (placeholders not counted), then apart when a row is removed, marked
// deleted, or the source has a document of a collection with no table.
func TestCountRecords(t *testing.T) {
	ctx := context.Background()
	var recs []record.Record
	for i := range 5 {
		recs = append(recs, doc(fmt.Sprintf("c/d%d", i), int64(i)), doc(fmt.Sprintf("c/d%d/s/x", i), 1))
	}
	recs = append(recs, doc("p/x/s/y", 1))
	pool, m := loadDocuments(t, recs, doc("gone/a", 1))
	if _, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{m.Schema, m.TableFor("gone").Name}.Sanitize()+` (id) VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	a, err := NewDocuments(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func(recs []record.Record) string {
		t.Helper()
		ex, err := memory.New(recs, memory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		counts, err := CountRecords(ctx, ex, pool, a, memory.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range counts {
			out = append(out, fmt.Sprintf("%s %d/%d %s", c.Stream, c.Source, c.Target, strings.Join(c.Tables, ",")))
		}
		return strings.Join(out, "; ")
	}
	c, cs, p, ps, gone := m.TableFor("c").Name, m.TableFor("c/{}/s").Name, m.TableFor("p").Name, m.TableFor("p/{}/s").Name, m.TableFor("gone").Name
	tables := func(names ...string) string { slices.Sort(names); return strings.Join(names, ",") }
	wantStreams := func(cSource, cTarget int) string {
		return fmt.Sprintf("c %d/%d %s; p 1/1 %s;  0/1 %s", cSource, cTarget, tables(c, cs), tables(p, ps), gone)
	}
	if got, want := count(recs), wantStreams(10, 10); got != want {
		t.Errorf("after loading: %q, want %q", got, want)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM `+pgx.Identifier{m.Schema, cs}.Sanitize()+` WHERE c_id = 'd3'`); err != nil {
		t.Fatal(err)
	}
	if got, want := count(recs), wantStreams(10, 9); got != want {
		t.Errorf("a row removed: %q, want %q", got, want)
	}
	for _, q := range []string{
		`ALTER TABLE ` + pgx.Identifier{m.Schema, c}.Sanitize() + ` ADD COLUMN ` + loaders.DeletedAtColumn + ` timestamptz`,
		`UPDATE ` + pgx.Identifier{m.Schema, c}.Sanitize() + ` SET ` + loaders.DeletedAtColumn + ` = now() WHERE id = 'd1'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := count(recs), wantStreams(10, 8); got != want {
		t.Errorf("a row marked deleted: %q, want %q", got, want)
	}
	if got, want := count(append(slices.Clone(recs), doc("c/d0/new/z", 1))), wantStreams(11, 8); got != want {
		t.Errorf("a document of a new collection: %q, want %q", got, want)
	}
	if _, err := CountRecords(ctx, &docsExtractor{recs}, pool, a, time.Time{}); err == nil {
		t.Error("a source that cannot count: no error")
	}
}
