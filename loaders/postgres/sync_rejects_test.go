package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// A reject a sync stored is cleared by the batch that applies a later
// change of the same key (the object was replaced between a poll's listing
// and its read, and the next poll stored it), and only by such a batch: a
// key rejected again, and other keys, keep theirs.
func TestSyncBatchResolvesEarlierRejects(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	state, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.StartSync(ctx, Job(record.KindFile, "gcs:gs://b/"), record.KindFile, "poll", "", time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	advance := func(b SyncBatch) {
		t.Helper()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return state.AdvanceSync(ctx, tx, st, b) })
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(b)
	}
	rejects := func() []string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT source_key FROM baasmigrate.rejects WHERE run_id = $1 ORDER BY source_key`, st.RunID)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := pool.QueryRow(ctx, `SELECT rejected FROM baasmigrate.sync_streams WHERE job = $1`, st.Job).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != int64(len(keys)) {
			t.Errorf("sync_streams.rejected = %d, want the %d rejects stored", n, len(keys))
		}
		return keys
	}
	gone := func(k string) Reject {
		return Reject{Table: "files", SourceKey: k, Reason: "object " + k + " could not be read", Record: []byte(`{}`)}
	}
	changed := func(keys ...string) []ChangedKey {
		var c []ChangedKey
		for _, k := range keys {
			c = append(c, ChangedKey{Key: k, CommitTime: time.Now()})
		}
		return c
	}
	advance(SyncBatch{Rejects: []Reject{gone("a"), gone("b"), gone("c")}, Changed: changed("a", "b", "c")})
	if got := rejects(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("rejects after the first batch = %v", got)
	}
	// a is stored now, b is rejected again, c is deleted at the source.
	b := SyncBatch{Applied: 1, Rejects: []Reject{gone("b")}, Changed: changed("a", "b")}
	b.Changed = append(b.Changed, ChangedKey{Key: "c", CommitTime: time.Now(), Deleted: true})
	b.Deleted = 1
	advance(b)
	if got := rejects(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("rejects after a, b and c changed again = %v, want [b]", got)
	}
}
