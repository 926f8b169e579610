package syncer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// PollResult is what one poll found and cost.
type PollResult struct {
	ReadTime                time.Time
	Added, Changed, Deleted int64
	// Unplaced counts source records the target has no place for, offered
	// to the sink again at every poll (their reject is stored once).
	Unplaced    int64
	Unchanged   int64
	SourceReads int64
	Elapsed     time.Duration
}

// poll compares the source with the target every PollInterval and applies
// the differences, until ctx ends (or, with Until, until a poll that
// began at or after it completes).
func (f *follower) poll(ctx context.Context) error {
	failures := 0
	for {
		res, err := f.pollOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			_ = f.state.SyncError(context.WithoutCancel(ctx), f.job.Name, err.Error())
			if failure.Classify(err) == failure.Permanent {
				return err
			}
			failures++
			f.log.Warn("a poll failed; trying again", "err", err)
		} else {
			failures = 0
			f.log.Info("poll", "added", res.Added, "changed", res.Changed, "deleted", res.Deleted, "unchanged", res.Unchanged, "unplaced", res.Unplaced,
				"source_reads", res.SourceReads, "took", res.Elapsed.Round(time.Millisecond))
			if f.reached() {
				return errReached
			}
		}
		wait := f.opts.PollInterval
		if failures > 0 {
			wait = min(time.Duration(failures)*f.opts.Retry.Initial*4, f.opts.PollInterval)
		}
		if !f.opts.Until.IsZero() {
			wait = 0 // catching up for a cutover: poll again at once
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pollOnce compares the whole source with the target and applies every
// difference. The poll's read time is the source's time when it began
// (its snapshot when the source has one): every change committed before
// it is in the target when the poll completes.
func (f *follower) pollOnce(ctx context.Context) (*PollResult, error) {
	started := time.Now()
	res := &PollResult{ReadTime: started.UTC()}
	if s, ok := f.job.Extractor.(extractors.Snapshotter); ok {
		t, err := s.SnapshotTime(ctx)
		if err != nil {
			return nil, fmt.Errorf("taking the poll's snapshot time: %w", err)
		}
		res.ReadTime = t
	}
	var readsBefore int64 = -1
	if m, ok := f.job.Extractor.(extractors.ReadMeter); ok {
		readsBefore = m.BillableReads()
	}
	rep, n, err := f.reconcile(ctx, res.ReadTime, false)
	if err != nil {
		return nil, fmt.Errorf("polling the source: %w", err)
	}
	res.Added, res.Changed, res.Deleted, res.Unplaced = n.added, n.changed, n.deleted, n.unplaced
	for _, t := range rep.Tables {
		res.Unchanged += t.Matching
	}
	if readsBefore >= 0 {
		res.SourceReads = f.job.Extractor.(extractors.ReadMeter).BillableReads() - readsBefore
	}
	// The poll is complete: record its read time (and what it cost).
	if err := f.apply(ctx, nil, 0, "", res.ReadTime, res.SourceReads); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(started)
	f.opts.Metrics.polled(f.job.Name, res)
	return res, nil
}

// reconciled counts what reconcile applied.
// unplaced counts records the target had no place for (a collection
// without a table), offered to the sink: it gives them a table, or rejects
// them (stored once).
type reconciled struct{ added, changed, deleted, unplaced int64 }

// reconcile compares the whole source with the target (at a fresh
// snapshot) and applies every difference in batches: records the target
// lacks or holds otherwise are written, rows the source no longer has are
// deleted, and records without a place in the target go to the sink too,
// which gives a new collection its table or stores the reject. A change's
// commit time is the record's update time, or at when it has none (and
// for deletes). With onlyRejected, only the records without a place in
// the target are written (the collections a change stream had not found).
func (f *follower) reconcile(ctx context.Context, at time.Time, onlyRejected bool) (*diff.Report, reconciled, error) {
	var mu sync.Mutex
	var n reconciled
	var batch []record.Change
	var batchMem int64
	flush := func(ctx context.Context) error {
		if len(batch) == 0 {
			return nil
		}
		err := f.apply(ctx, batch, batchMem, "", time.Time{}, 0)
		batch, batchMem = batch[:0], 0
		return err
	}
	apply := func(ctx context.Context, d diff.Difference) error {
		mu.Lock()
		defer mu.Unlock()
		c := record.Change{Op: record.OpUpsert, CommitTime: at}
		switch {
		case d.Source == nil:
			c.Op = record.OpDelete
			c.Record = record.Record{Kind: f.job.Kind, Key: d.Key}
			n.deleted++
		case d.Outcome == diff.Mismatched:
			c.Record = *d.Source
			n.changed++
		case d.Outcome == diff.Rejected:
			c.Record = *d.Source
			n.unplaced++
		default:
			c.Record = *d.Source
			n.added++
		}
		if d.Source != nil && !d.Source.UpdateTime.IsZero() {
			c.CommitTime = d.Source.UpdateTime
		}
		batch = append(batch, c)
		batchMem += int64(c.Record.MemSize())
		if len(batch) >= f.opts.BatchSize || batchMem >= f.opts.BatchBytes {
			return flush(ctx)
		}
		return nil
	}
	opts := diff.Options{OnDifference: apply, OnRejected: apply, Exclude: f.job.Exclude}
	if onlyRejected {
		opts.OnDifference = nil
	}
	rep, err := diff.Compare(ctx, f.job.Extractor, f.pool, f.job.Adapter, opts)
	if err != nil {
		return nil, n, err
	}
	mu.Lock()
	defer mu.Unlock()
	return rep, n, flush(ctx)
}
