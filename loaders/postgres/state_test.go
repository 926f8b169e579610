package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

func TestStateRunLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	st, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenState(ctx, pool); err != nil {
		t.Fatalf("OpenState is not idempotent: %v", err)
	}
	job := Job(record.KindDocument, "firestore:projects/p/databases/(default)")
	rt := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	// A run started while another of the job runs abandons it, in the same
	// transaction (--restart).
	first, err := st.StartRun(ctx, job, record.KindDocument, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.StartRun(ctx, job, record.KindDocument, map[string]string{"mapping": "m1"}, []record.Stream{
		{Name: "users", ReadTime: rt, Partitions: []record.Partition{{Stream: "users", ID: "p0", End: "users/m"}, {Stream: "users", ID: "p1", Start: "users/m"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var status string
	if err := pool.QueryRow(ctx, `SELECT status FROM baasmigrate.runs WHERE id = $1`, first.ID).Scan(&status); err != nil || status != "abandoned" {
		t.Fatalf("the earlier run is %q (%v); want abandoned", status, err)
	}
	got, err := st.RunningRun(ctx, job)
	if err != nil || got == nil || got.ID != run.ID {
		t.Fatalf("RunningRun = %+v, %v; want run %d", got, err, run.ID)
	}
	if got.Config["mapping"] != "m1" || len(got.Streams) != 1 || !got.Streams[0].ReadTime.Equal(rt) || len(got.Streams[0].Partitions) != 2 {
		t.Fatalf("stored run differs: %+v", got)
	}
	if p := got.Streams[0].Partitions[1]; p.Start != "users/m" || p.End != "" || p.Cursor != "" || p.Done {
		t.Fatalf("partition stored as %+v", p)
	}

	if err := st.FinishRun(ctx, run); err == nil {
		t.Fatal("FinishRun succeeded with unfinished partitions")
	}
	for _, p := range run.Streams[0].Partitions {
		if err := commit(ctx, pool, st, run, p, "users/z", true, map[string]TableCounts{"users": {Read: 2, Changed: 2}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	// A retry after a commit whose reply was lost finds it finished.
	if err := st.FinishRun(ctx, run); err != nil {
		t.Fatalf("FinishRun of a finished run: %v", err)
	}
	if r, _ := st.RunningRun(ctx, job); r != nil {
		t.Fatalf("run still running after FinishRun")
	}
	if r, _ := st.LastFinishedRun(ctx, job); r == nil || r.ID != run.ID {
		t.Fatalf("LastFinishedRun = %+v", r)
	}
	sum, err := st.Summary(ctx, run)
	if err != nil || len(sum) != 1 || sum[0].Read != 4 || sum[0].Changed != 4 || sum[0].Loaded() != 4 {
		t.Fatalf("Summary = %+v, %v", sum, err)
	}
}

// commit checkpoints p in its own transaction and updates it, as the
// executor does.
func commit(ctx context.Context, pool *pgxpool.Pool, st *State, run *Run, p *PartitionState, cursor string, done bool, counts map[string]TableCounts, rejects []Reject) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return st.Checkpoint(ctx, tx, run, p, cursor, done, counts, rejects)
	})
	if err == nil {
		p.Cursor, p.Done = cursor, done
	}
	return err
}

func TestCheckpointIsFencedByTheCursor(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	st, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.StartRun(ctx, "documents x", record.KindDocument, nil, []record.Stream{
		{Name: "s", Partitions: []record.Partition{{Stream: "s", ID: "p0"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := run.Streams[0].Partitions[0]
	stale := *p
	if err := commit(ctx, pool, st, run, p, "s/a", false, map[string]TableCounts{"t": {Read: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	// A second writer still at the old cursor (or a retry of a batch whose
	// COMMIT reply was lost) must not advance or count again.
	err = commit(ctx, pool, st, run, &stale, "s/a", false, map[string]TableCounts{"t": {Read: 1}}, nil)
	if !errors.Is(err, ErrCheckpointMoved) {
		t.Fatalf("stale checkpoint: err = %v, want ErrCheckpointMoved", err)
	}
	sum, _ := st.Summary(ctx, run)
	if len(sum) != 1 || sum[0].Read != 1 {
		t.Fatalf("counts after a refused checkpoint: %+v", sum)
	}
	cur, done, err := st.PartitionCursor(ctx, run, p)
	if err != nil || cur != "s/a" || done {
		t.Fatalf("PartitionCursor = %q, %v, %v", cur, done, err)
	}
}

func TestCheckpointStoresRejectsWithHostileKeys(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	st, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.StartRun(ctx, "documents y", record.KindDocument, nil, []record.Stream{
		{Name: "s", Partitions: []record.Partition{{Stream: "s", ID: "p0"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.Record{Kind: record.KindDocument, Key: "s/a\x00'; DROP TABLE x; --", Fields: map[string]record.Value{"k\x00": record.String("v\x00")}}
	raw, _ := rec.MarshalJSON()
	rj := Reject{Table: "t", SourceKey: rec.Key, Reason: "because", Record: raw}
	if err := commit(ctx, pool, st, run, run.Streams[0].Partitions[0], "s/a", true, map[string]TableCounts{"t": {Read: 1, Rejected: 1}}, []Reject{rj}); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := pool.QueryRow(ctx, `SELECT record::text FROM baasmigrate.rejects WHERE run_id = $1`, run.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	v, err := record.UnmarshalJSONValue(stored)
	if err != nil {
		t.Fatal(err)
	}
	m := v.MapValue()
	if m["key"].StringValue() != rec.Key || !record.Equal(m["fields"], record.Map(rec.Fields)) {
		t.Fatalf("stored reject does not give back the record: %v", v)
	}
	samples, err := st.Rejects(ctx, run, 10)
	if err != nil || len(samples) != 1 || samples[0].Reason != "because" {
		t.Fatalf("Rejects = %+v, %v", samples, err)
	}
}

func TestLockJobExcludesASecondProcess(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	a, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if err := LockJob(ctx, a, "documents z"); err != nil {
		t.Fatal(err)
	}
	if err := LockJob(ctx, b, "documents z"); err == nil {
		t.Fatal("a second session locked the same job")
	}
	if err := LockJob(ctx, b, "users z"); err != nil {
		t.Fatalf("a different job is blocked: %v", err)
	}
	a.Conn().Close(ctx) // as when the process dies
	// The server ends the session asynchronously; wait for that, boundedly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := LockJob(ctx, b, "documents z")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock not released with its session: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStateHoldsKeysTextCannot: partition bounds, cursors and stream names
// are source keys, and a source key may hold bytes PostgreSQL text refuses
// (NUL, invalid UTF-8). The plan of a run and its checkpoints store them
// exactly, and a value that looks like an encoded one stays itself.
func TestStateHoldsKeysTextCannot(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	st, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	stream := "s\x00\xff"
	bounds := []string{"", "s/a\x00b", "s/\xffc", storedTextPrefix + "czE=", ""}
	var parts []record.Partition
	for i := 0; i+1 < len(bounds); i++ {
		parts = append(parts, record.Partition{Stream: stream, ID: fmt.Sprintf("p%d", i), Start: bounds[i], End: bounds[i+1]})
	}
	run, err := st.StartRun(ctx, "documents nul", record.KindDocument, nil, []record.Stream{{Name: stream, Partitions: parts}})
	if err != nil {
		t.Fatalf("recording a plan with NUL in its bounds: %v", err)
	}
	cursors := []string{"s/a\x00a", "s/\xfe", storedTextPrefix, "s/plain"}
	for i, p := range run.Streams[0].Partitions {
		if err := commit(ctx, pool, st, run, p, cursors[i], false, map[string]TableCounts{"t": {Read: 1}}, []Reject{{Table: "t", SourceKey: cursors[i], Reason: "r", Record: []byte(`{}`)}}); err != nil {
			t.Fatalf("checkpointing at %q: %v", cursors[i], err)
		}
		// The fence compares the stored cursor with the encoded one.
		if err := commit(ctx, pool, st, run, p, cursors[i]+"x", i == 0, map[string]TableCounts{"t": {Read: 1}}, nil); err != nil {
			t.Fatalf("checkpointing after %q: %v", cursors[i], err)
		}
		cur, _, err := st.PartitionCursor(ctx, run, p)
		if err != nil || cur != cursors[i]+"x" {
			t.Fatalf("PartitionCursor = %q, %v; want %q", cur, err, cursors[i]+"x")
		}
	}
	got, err := st.RunningRun(ctx, "documents nul")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 1 || got.Streams[0].Name != stream || len(got.Streams[0].Partitions) != len(parts) {
		t.Fatalf("stored run: %+v", got)
	}
	for i, p := range got.Streams[0].Partitions {
		if p.Stream != stream || p.Start != bounds[i] || p.End != bounds[i+1] || p.Cursor != cursors[i]+"x" || p.Done != (i == 0) {
			t.Errorf("partition %d stored as %q [%q, %q) at %q; want [%q, %q) at %q", i, p.Stream, p.Start, p.End, p.Cursor, bounds[i], bounds[i+1], cursors[i]+"x")
		}
	}
	if n, err := st.StreamRead(ctx, got, stream); err != nil || n != int64(2*len(parts)) {
		t.Fatalf("StreamRead = %d, %v; want %d", n, err, 2*len(parts))
	}
	renewed := time.Now()
	for range 2 { // the second as a retry after a lost reply: counted once
		if err := st.RenewReadTime(ctx, got, stream, renewed); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ = st.RunningRun(ctx, "documents nul"); got.Streams[0].Renewals != 1 {
		t.Fatalf("renewal not recorded: %+v", got.Streams[0])
	}
}

// TestStateResumesPartitionIDTextCannotHold: StartRun stores a partition
// ID through storeText, so a resumed run must read it back decoded, or its
// checkpoints (which encode the ID again) find no partition.
func TestStateResumesPartitionIDTextCannotHold(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	st, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	id := "p\x00\xff"
	parts := []record.Partition{{Stream: "s", ID: id}}
	if _, err := st.StartRun(ctx, "documents odd id", record.KindDocument, nil, []record.Stream{{Name: "s", Partitions: parts}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.RunningRun(ctx, "documents odd id")
	if err != nil {
		t.Fatal(err)
	}
	p := got.Streams[0].Partitions[0]
	if p.ID != id {
		t.Fatalf("resumed partition ID %q, want %q", p.ID, id)
	}
	if err := commit(ctx, pool, st, got, p, "c", true, map[string]TableCounts{"t": {Read: 1}}, nil); err != nil {
		t.Fatalf("checkpointing the resumed partition: %v", err)
	}
}
