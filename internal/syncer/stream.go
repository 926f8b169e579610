package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// stream follows the job's change stream from the stored position. Batches
// the source delivers are gathered for at most FlushInterval (or until
// BatchSize changes wait) and applied together with the position of the
// last one. When the position is older than the source can resume from,
// the target is caught up by a snapshot comparison first (catchUp), and
// the stream continues from that snapshot.
func (f *follower) stream(ctx context.Context) error {
	cs := f.job.Extractor.(extractors.ChangeStreamer)
	if f.reached() {
		return errReached
	}
	failures := 0
	for {
		err := f.follow(ctx, cs)
		switch {
		case errors.Is(err, errReached):
			// A cutover catching up: the target reflects the stored point.
			f.held = heldPoint{position: f.st.Position, readTime: f.st.ReadTime}
			if cerr := f.checkCounts(ctx, cs); cerr != nil {
				return cerr
			}
			return err
		case errors.Is(err, errCountDue):
			if cerr := f.checkCounts(ctx, cs); cerr != nil {
				return cerr
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, extractors.ErrSnapshotExpired):
			f.log.Warn("the change stream cannot resume from the stored read time (older than the source keeps): catching up by comparing a fresh snapshot with the target", "read_time", f.st.ReadTime.Format(time.RFC3339Nano), "cause", err)
			if err := f.catchUp(ctx, cs); err != nil {
				return err
			}
			failures = 0
			continue
		case err == nil:
			continue
		}
		// The stream gave up after its own retries. Sync is meant to run
		// for days: wait and start over from the stored position, unless
		// the failure is one no retry can mend.
		_ = f.state.SyncError(context.WithoutCancel(ctx), f.job.Name, err.Error())
		if failure.Classify(err) == failure.Permanent {
			return err
		}
		failures++
		wait := min(time.Duration(failures)*f.opts.Retry.Initial*4, time.Minute)
		f.log.Warn("the change stream failed; starting it again from the last applied position", "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reached reports whether the target reflects the source up to Until.
func (f *follower) reached() bool {
	return !f.opts.Until.IsZero() && !f.st.ReadTime.Before(f.opts.Until)
}

// follow runs the change stream once, from the stored position, applying
// what it delivers, until it ends.
func (f *follower) follow(ctx context.Context, cs extractors.ChangeStreamer) error {
	g, gctx := errgroup.WithContext(ctx)
	defer f.opts.Metrics.pendingNone(f.job.Name)
	batches := make(chan record.ChangeBatch, 4)
	hints := extractors.ChangeHints{}
	if f.job.Mapping != nil {
		hints.Collections = collectionIDs(f.job.Mapping)
	}
	from := f.st.Position
	var readsBefore int64
	meter, metered := f.job.Extractor.(extractors.ReadMeter)
	if metered {
		readsBefore = meter.BillableReads()
	}
	g.Go(func() error {
		defer close(batches)
		return cs.Changes(gctx, from, hints, func(b record.ChangeBatch) error {
			f.opts.Metrics.pending(f.job.Name, len(b.Changes))
			select {
			case batches <- b:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	g.Go(func() error {
		var p pending
		var waiting int
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		flush := func() error {
			if p.empty() {
				return nil
			}
			var reads int64
			if metered {
				now := meter.BillableReads()
				reads, readsBefore = now-readsBefore, now
			}
			// When counts are due (sync only, not a cutover catching up),
			// the changes are applied but the position is held until the
			// counts at its read time agree (checkCounts): a stored read
			// time never claims what a count check has just contradicted.
			// A source whose counts cannot be compared (countable) is not
			// stopped for them.
			countDue := f.opts.Until.IsZero() && f.job.Mapping != nil && !p.readTime.IsZero() && time.Since(f.lastCount) >= f.opts.CountInterval && f.countable()
			pos, rt := p.position, p.readTime
			if countDue {
				f.held, pos, rt = heldPoint{position: p.position, readTime: p.readTime}, "", time.Time{}
			}
			err := f.apply(ctx, p.live(), p.mem, pos, rt, reads)
			f.opts.Metrics.pending(f.job.Name, -waiting)
			p, waiting = pending{}, 0
			if err != nil {
				return err
			}
			if f.st.LastError != "" {
				_ = f.state.SyncError(ctx, f.job.Name, "")
				f.st.LastError = ""
			}
			if countDue {
				return errCountDue
			}
			if f.reached() {
				return errReached
			}
			return nil
		}
		for {
			select {
			case b, ok := <-batches:
				if !ok {
					return flush()
				}
				if p.empty() {
					timer.Reset(f.opts.FlushInterval)
				}
				p.add(b, f.job.ordered())
				waiting += len(b.Changes)
				full := len(p.changes) >= f.opts.BatchSize || p.mem >= f.opts.BatchBytes
				if full || (!f.opts.Until.IsZero() && !b.ReadTime.Before(f.opts.Until)) {
					timer.Stop()
					if err := flush(); err != nil {
						return err
					}
				}
			case <-timer.C:
				if err := flush(); err != nil {
					return err
				}
			case <-gctx.Done():
				// What waits is not applied: the stored position has not
				// moved past it, so the next start delivers it again.
				return gctx.Err()
			}
		}
	})
	return g.Wait()
}

// errCountDue stops the change stream for a count comparison.
var errCountDue = errors.New("counts are due")

// heldPoint is a consistent point whose changes are applied but whose
// position is not stored yet, waiting for a count check.
type heldPoint struct {
	position string
	readTime time.Time
}

// countable reports whether checkCounts can compare the source's counts
// at a held point: its extractor counts (extractors.Counter) and, for
// documents, reads at a past time (extractors.Snapshotter). Documents of a
// source that counts only as it is now (DynamoDB) are not compared: every
// write since the held point would look like a missed change.
func (f *follower) countable() bool {
	if _, ok := f.job.Extractor.(extractors.Counter); !ok {
		return false
	}
	_, ok := f.job.Extractor.(extractors.Snapshotter)
	return ok || f.job.Mapping == nil
}

// checkCounts compares, for documents, the source's record count per
// stream at the held consistent point with the target's rows (the stream
// is stopped: the target reflects exactly that point). When they agree,
// the point's position is stored. When they disagree the stream missed
// something — Firestore sends nothing for a collection ID nobody listens
// to, and a subcollection created under a document nobody wrote since
// cannot be found otherwise — and the job catches up by a snapshot
// comparison (which stores a newer position), unless the same
// disagreement outlived the last catch-up (records the target rejects),
// which is only logged.
func (f *follower) checkCounts(ctx context.Context, cs extractors.ChangeStreamer) error {
	f.lastCount = time.Now()
	held := f.held
	f.held = heldPoint{}
	store := func() error { return f.apply(ctx, nil, 0, held.position, held.readTime, 0) }
	if !f.countable() || held.readTime.IsZero() {
		return store()
	}
	counts, err := diff.CountRecords(ctx, f.job.Extractor, f.pool, f.job.Adapter, held.readTime)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.log.Warn("could not compare counts with the source; trying again later", "err", err)
		return store()
	}
	var off, by []string
	for _, c := range counts {
		if c.Source != c.Target {
			off = append(off, fmt.Sprintf("%s: source %d, target %d", c.Stream, c.Source, c.Target))
			// What the counts disagree by, not the counts: writes to the
			// stream change both, not a disagreement a catch-up left.
			by = append(by, fmt.Sprintf("%s: %d", c.Stream, c.Source-c.Target))
		}
	}
	if len(off) == 0 {
		f.lastMismatch = ""
		return store()
	}
	mismatch := fmt.Sprint(by)
	if mismatch == f.lastMismatch {
		f.log.Warn("counts still disagree after a catch-up (records the target rejects? see baasmigrate.rejects)", "streams", off)
		return store()
	}
	f.lastMismatch = mismatch
	if !f.opts.Until.IsZero() {
		// A cutover catching up writes only what the stream cannot have
		// known about — records of collections without a table — and
		// repairs nothing else: what still differs, it reports.
		f.log.Warn("the source holds records the change stream did not deliver: writing those of collections it had not found (a snapshot comparison)", "streams", off)
		if _, n, err := f.reconcile(ctx, time.Now().UTC(), true); err != nil {
			return fmt.Errorf("writing the records of collections the change stream had not found: %w", err)
		} else {
			f.log.Warn("records of new collections offered to the target (given a table, or rejected)", "records", n.unplaced)
		}
		return store()
	}
	f.log.Warn("the source holds records the change stream did not deliver (a collection it had not found?): catching up by a snapshot comparison", "streams", off)
	return f.catchUp(ctx, cs)
}

// collectionIDs lists the collection IDs of m's tables.
func collectionIDs(m *mappings.Mapping) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range m.Tables {
		segs := splitPattern(t.Collection)
		for i := 0; i < len(segs); i += 2 {
			if !seen[segs[i]] {
				seen[segs[i]] = true
				out = append(out, segs[i])
			}
		}
	}
	slices.Sort(out)
	return out
}

// splitPattern splits "users/{}/orders" into its segments.
func splitPattern(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// catchUp brings the target to a fresh snapshot of the source by
// comparing them (the engine of plan and verify) and applying every
// difference — upserting records the target lacks or holds otherwise,
// deleting rows the source no longer has — then moves the stored position
// to the snapshot, where the change stream continues.
func (f *follower) catchUp(ctx context.Context, cs extractors.ChangeStreamer) error {
	started := time.Now()
	// A source that keeps changes for a consumer is asked where it is
	// before the comparison reads it: the stream continues from there,
	// changes from then on applied again over what the comparison wrote.
	ck, keeper := cs.(extractors.ChangeKeeper)
	var pos string
	var at time.Time
	if keeper {
		if err := ck.KeepChanges(ctx, f.job.Consumer); err != nil {
			return fmt.Errorf("catching up: %w", err)
		}
		var err error
		if pos, at, err = ck.PositionNow(ctx, f.job.Consumer); err != nil {
			return fmt.Errorf("catching up: %w", err)
		}
	}
	rep, n, err := f.reconcile(ctx, time.Now().UTC(), false)
	if err != nil {
		return fmt.Errorf("catching up by a snapshot comparison: %w", err)
	}
	applied, deleted := n.added+n.changed+n.unplaced, n.deleted
	if rep.ReadTime.IsZero() {
		// A source without snapshots (DynamoDB) was compared as it was
		// while the comparison read it: the stream starts from before.
		rep.ReadTime = started.UTC()
	}
	if keeper {
		rep.ReadTime = at
	} else if pos, err = cs.PositionAt(rep.ReadTime); err != nil {
		return err
	}
	note := fmt.Sprintf("caught up at %s by a snapshot comparison (from %s): %d records written or offered, %d deleted, %d source reads, %s",
		rep.ReadTime.Format(time.RFC3339), f.st.ReadTime.Format(time.RFC3339), applied, deleted, rep.SourceReads, time.Since(started).Round(time.Millisecond))
	if err := f.state.SetSyncPosition(ctx, f.job.Name, pos, rep.ReadTime, note); err != nil {
		return err
	}
	f.st.Position, f.st.ReadTime, f.st.Note = pos, rep.ReadTime, note
	f.st.CatchUps++
	f.log.Warn(note)
	return nil
}
