package diff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// TestExcludeUsers: records Options.Exclude names are counted, not
// compared; a target row of an excluded key (the source's record or a row
// only the target has) is ExcludedInTarget, sampled and not handed to
// OnDifference — by merge, by lookup, and by Recheck.
func TestExcludeUsers(t *testing.T) {
	ctx := context.Background()
	pool, sink := usersDB(t, firebasescrypt.Params{})
	var src, target []record.Record
	for i := range 10 {
		u := record.User{UID: fmt.Sprintf("u%02d", i), DisplayName: sp("name")}
		src = append(src, u.Record("c"))
		if u.UID != "u02" {
			target = append(target, u.Record("c"))
		}
	}
	target = append(target, record.User{UID: "x01"}.Record("c"))
	writeUserRecords(t, pool, sink, target)
	excluded := map[string]bool{"u01": true, "u02": true, "x01": true}
	opts := func(d *differences) Options {
		return Options{OnDifference: d.on, Exclude: func(k string) bool { return excluded[k] }}
	}
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
		rep, err := Compare(ctx, &recordsExtractor{recs}, pool, NewUsers(postgres.UsersConfig{}, order), opts(d))
		if err != nil {
			t.Fatalf("ordered=%v: %v", ordered, err)
		}
		tr := rep.Tables[0]
		if tr.Excluded != 2 || tr.ExcludedInTarget != 2 || tr.Source != 8 || tr.Matching != 8 || tr.ExtraInTarget != 0 || tr.MissingInTarget != 0 || rep.Identical() {
			t.Errorf("ordered=%v: %+v", ordered, tr)
		}
		if got := tr.SampleLines(); !slices.Equal(got, []string{"excluded_in_target u01", "excluded_in_target x01"}) {
			t.Errorf("ordered=%v: samples %q", ordered, got)
		}
		if len(d.lines) != 0 {
			t.Errorf("ordered=%v: OnDifference saw %q", ordered, d.lines)
		}
		// verify sets no OnDifference: the same counts and samples.
		rep, err = Compare(ctx, &recordsExtractor{recs}, pool, NewUsers(postgres.UsersConfig{}, order), Options{Exclude: opts(d).Exclude})
		if err != nil {
			t.Fatal(err)
		}
		if tr := rep.Tables[0]; tr.Excluded != 2 || tr.ExcludedInTarget != 2 || tr.ExtraInTarget != 0 || !slices.Equal(tr.SampleLines(), []string{"excluded_in_target u01", "excluded_in_target x01"}) {
			t.Errorf("ordered=%v, no OnDifference: %+v", ordered, tr)
		}
		// A report that is stored (cutover's) counts them, naming none.
		rep, err = Compare(ctx, &recordsExtractor{recs}, pool, NewUsers(postgres.UsersConfig{}, order), Options{Samples: 5, Exclude: opts(d).Exclude, ExcludedUnnamed: true})
		if err != nil {
			t.Fatal(err)
		}
		if tr := rep.Tables[0]; tr.Excluded != 2 || tr.ExcludedInTarget != 2 || len(tr.SampleLines()) != 0 || rep.Identical() {
			t.Errorf("ordered=%v, ExcludedUnnamed: %+v", ordered, tr)
		}
	}
	d := &differences{t: t}
	rep, err := Recheck(ctx, newMapGetter(src), nil, pool, NewUsers(postgres.UsersConfig{}, nil), []string{"u01", "u02", "x01", "u03"}, time.Time{}, opts(d))
	if err != nil {
		t.Fatal(err)
	}
	if tr := rep.Tables[0]; tr.Excluded != 2 || tr.ExcludedInTarget != 2 || tr.Matching != 1 || tr.ExtraInTarget != 0 || len(d.lines) != 0 {
		t.Errorf("Recheck: %+v, OnDifference %q", tr, d.lines)
	}
	// Once the rows are gone, the target is identical under the list.
	if _, err := pool.Exec(ctx, `DELETE FROM firebase_auth.users WHERE uid IN ('u01', 'x01')`); err != nil {
		t.Fatal(err)
	}
	rep, err = Compare(ctx, &recordsExtractor{src}, pool, NewUsers(postgres.UsersConfig{}, nil), opts(&differences{t: t}))
	if err != nil {
		t.Fatal(err)
	}
	if tr := rep.Tables[0]; !rep.Identical() || tr.Excluded != 2 || tr.ExcludedInTarget != 0 {
		t.Errorf("after deleting the excluded rows: %+v", tr)
	}
}
