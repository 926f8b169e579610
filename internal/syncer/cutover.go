package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// CutoverOptions tune Prepare and Cutover.
type CutoverOptions struct {
	// MaxWait bounds the wait for the target to reach the freeze point (or
	// a bulk verification's read time).
	MaxWait time.Duration
	// Operator names who runs the cutover (recorded); default: the OS user.
	Operator string
	// Samples is how many sample keys reports keep per table and outcome.
	Samples int
	// Follow tunes the catching up a cutover does itself when no sync runs.
	Follow Options
	// KeepChanges keeps what a source keeps changes in for the jobs
	// (extractors.ChangeKeeper: a replication slot) after an identical
	// cutover, which otherwise releases it.
	KeepChanges bool
}

// JobCheck is the outcome of one job's verification in Prepare or Cutover.
type JobCheck struct {
	Job  string `json:"job"`
	Kind string `json:"kind"`
	// Method is "recheck" (the keys changed since a bulk verification,
	// plus counts), "full" (every record compared) or, for Prepare,
	// "bulk".
	Method string `json:"method"`
	// CaughtUpBy is "sync" (a running sync reached the freeze point) or
	// "cutover" (no sync ran: the cutover applied the changes itself).
	CaughtUpBy string `json:"caught_up_by,omitempty"`
	// ReadTime is the source time compared.
	ReadTime time.Time `json:"read_time"`
	// Verification is the bulk verification a recheck builds on (0: none)
	// and Since its read time.
	Verification int64     `json:"verification,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	// Keys is how many keys were re-checked (recheck).
	Keys int64 `json:"keys"`
	// Excused counts differences on keys changed after the bulk
	// verification's read time (Prepare): the cutover re-checks them.
	Excused int64              `json:"excused"`
	Counts  []diff.StreamCount `json:"counts,omitempty"`
	Report  *diff.Report       `json:"report"`
	// Reread is how many source records the check read.
	Reread    int64 `json:"reread"`
	Identical bool  `json:"identical"`
	// Differences names what differs, for people (a few samples per
	// table, and counts that disagree).
	Differences []string `json:"differences,omitempty"`
	// Finished says what the job's Finish did after an identical cutover;
	// Released that the source stopped keeping changes for the job.
	Finished string `json:"finished,omitempty"`
	Released bool   `json:"released,omitempty"`
}

// CutoverReport is the outcome of a cutover.
type CutoverReport struct {
	ID         int64     `json:"id"`
	FreezeTime time.Time `json:"freeze_time"`
	// Window is the wall-clock time from the freeze point to the verdict:
	// the downtime the cutover itself needed.
	Window    time.Duration `json:"-"`
	WindowS   float64       `json:"window_seconds"`
	Reread    int64         `json:"reread"`
	Identical bool          `json:"identical"`
	Digest    string        `json:"digest"`
	Operator  string        `json:"operator"`
	Jobs      []*JobCheck   `json:"jobs"`
}

// sourceTime is the source's current time for job (its snapshot time when
// it has one, the time of its current position when it keeps changes for
// the job, else this machine's clock).
func sourceTime(ctx context.Context, job *Job) (time.Time, error) {
	ex := job.Extractor
	if k, ok := ex.(extractors.ChangeKeeper); ok {
		_, t, err := k.PositionNow(ctx, job.Consumer)
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the source's current position: %w", err)
		}
		return t, nil
	}
	if s, ok := ex.(extractors.Snapshotter); ok {
		t, err := s.SnapshotTime(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the source's current time: %w", err)
		}
		return t, nil
	}
	return time.Now().UTC(), nil
}

// waitApplied returns once job's target reflects the source up to t:
// a running sync is waited for (reading its stored read time), otherwise
// the job is followed here until it gets there. It says which.
func waitApplied(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, job *Job, t time.Time, opts CutoverOptions) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.MaxWait)
	defer cancel()
	for {
		running, err := postgres.SyncRunning(ctx, pool, job.Name)
		if err != nil {
			return "", timeoutErr(ctx, job, t, opts, err)
		}
		if !running {
			fo := opts.Follow
			fo.Until = t
			fo.WaitForLock = false
			if err := Follow(ctx, pool, state, job, fo); err != nil {
				if errors.Is(err, postgres.ErrJobLocked) {
					continue // a sync started meanwhile: wait for it instead
				}
				if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
					return "", timeoutErr(ctx, job, t, opts, err)
				}
				return "", err
			}
			st, err := state.SyncStream(ctx, job.Name)
			if err != nil {
				return "", err
			}
			if st != nil && !st.ReadTime.Before(t) {
				return "cutover", nil
			}
			if ctx.Err() != nil {
				return "", timeoutErr(ctx, job, t, opts, ctx.Err())
			}
			continue
		}
		st, err := state.SyncStream(ctx, job.Name)
		if err != nil {
			return "", timeoutErr(ctx, job, t, opts, err)
		}
		if st != nil && !st.ReadTime.Before(t) {
			return "sync", nil
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			behind := "no state"
			if st != nil {
				behind = st.ReadTime.Format(time.RFC3339Nano)
			}
			return "", fmt.Errorf("%s: the running sync has not applied the source up to %s within --max-wait %s (it has reached %s); sync keeps going: try again, or raise --max-wait",
				job.Name, t.Format(time.RFC3339Nano), opts.MaxWait, behind)
		}
	}
}

func timeoutErr(ctx context.Context, job *Job, t time.Time, opts CutoverOptions, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: the target did not reach %s within --max-wait %s: %w", job.Name, t.Format(time.RFC3339Nano), opts.MaxWait, err)
	}
	return err
}

// Prepare verifies every streamed job in bulk while sync runs, so that the
// cutover later re-checks only what changed since. It takes the source's
// time V0, waits until the target reflects the source up to it, compares
// everything (at a snapshot V ≥ V0), waits until V is applied too, and
// excuses differences on keys changed after V0 (the cutover re-checks
// them); any other difference makes the verification fail. Polled jobs are
// skipped: the cutover compares them whole. Each verification is recorded.
func Prepare(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, jobs []*Job, opts CutoverOptions) ([]*JobCheck, error) {
	var out []*JobCheck
	for _, job := range jobs {
		if job.Mode() != ModeStream {
			continue
		}
		c, err := prepareJob(ctx, pool, state, job, opts)
		if err != nil {
			return out, fmt.Errorf("verifying %ss in bulk: %w", job.Kind, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func prepareJob(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, job *Job, opts CutoverOptions) (*JobCheck, error) {
	started := time.Now()
	v0, err := sourceTime(ctx, job)
	if err != nil {
		return nil, err
	}
	by, err := waitApplied(ctx, pool, state, job, v0, opts)
	if err != nil {
		return nil, err
	}
	if err := adoptSyncedMapping(ctx, state, job); err != nil {
		return nil, err
	}
	c := &JobCheck{Job: job.Name, Kind: string(job.Kind), Method: "bulk", CaughtUpBy: by, Since: v0}
	var mu sync.Mutex
	var differing []diff.Difference
	rep, err := diff.Compare(ctx, job.Extractor, pool, job.Adapter, diff.Options{Samples: opts.Samples, Exclude: job.Exclude, ExcludedUnnamed: true,
		OnDifference: func(_ context.Context, d diff.Difference) error {
			mu.Lock()
			defer mu.Unlock()
			differing = append(differing, diff.Difference{Outcome: d.Outcome, Table: d.Table, Key: d.Key})
			return nil
		}})
	if err != nil {
		return nil, err
	}
	c.Report, c.ReadTime = rep, rep.ReadTime
	for _, t := range rep.Tables {
		c.Reread += t.Source
	}
	// Every change up to the compared snapshot must be applied (and so
	// recorded in sync_changes) before differences are excused by it.
	if _, err := waitApplied(ctx, pool, state, job, rep.ReadTime, opts); err != nil {
		return nil, err
	}
	changed := map[string]bool{}
	if len(differing) > 0 {
		if err := state.ChangedKeys(ctx, job.Name, v0, func(k string) error { changed[k] = true; return nil }); err != nil {
			return nil, err
		}
	}
	for _, d := range differing {
		if changed[d.Key] {
			c.Excused++
			continue
		}
		c.Differences = append(c.Differences, fmt.Sprintf("%s %s %s", d.Table, d.Outcome, d.Key))
	}
	for _, t := range rep.Tables {
		if t.Rejected > 0 {
			c.Differences = append(c.Differences, fmt.Sprintf("%s: %d source records have no place in the target (rejected)", t.Table, t.Rejected))
		}
	}
	slices.Sort(c.Differences)
	c.Identical = len(c.Differences) == 0
	c.Differences = firstN(c.Differences, 20)
	raw, digest, err := digestOf(c)
	if err != nil {
		return nil, err
	}
	v := &postgres.Verification{Job: job.Name, ReadTime: v0, Started: started, Identical: c.Identical, Excused: c.Excused, Digest: digest, Report: raw}
	if err := state.RecordVerification(ctx, v); err != nil {
		return nil, err
	}
	c.Verification = v.ID
	return c, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}

func digestOf(v any) (json.RawMessage, string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw)
	return raw, hex.EncodeToString(sum[:]), nil
}

// Cutover is the guarded switch, run once the operator has stopped writes
// at the source. It takes the source's current time as the freeze point,
// waits until every change up to it is applied (by a running sync, or by
// itself), then verifies each job at the freeze point: a streamed job with
// a bulk verification (Prepare) re-checks only the keys changed since
// that verification's read time plus the counts per stream; any other job
// is compared whole. The cutover and its outcome are recorded; the report
// says how long the window from freeze to verdict took and how many
// records it re-read. Identical is true only when nothing differs.
func Cutover(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, jobs []*Job, opts CutoverOptions) (*CutoverReport, error) {
	freezeWall := time.Now()
	if opts.Operator == "" {
		if u, err := user.Current(); err == nil {
			opts.Operator = u.Username
		}
	}
	rep := &CutoverReport{Operator: opts.Operator}
	freeze := make([]time.Time, len(jobs))
	names := make([]string, len(jobs))
	for i, job := range jobs {
		t, err := sourceTime(ctx, job)
		if err != nil {
			return nil, err
		}
		freeze[i], names[i] = t, job.Name
		if rep.FreezeTime.IsZero() || t.Before(rep.FreezeTime) {
			rep.FreezeTime = t
		}
	}
	rec := &postgres.Cutover{Jobs: names, FreezeTime: rep.FreezeTime, Operator: opts.Operator}
	if err := state.StartCutover(ctx, rec); err != nil {
		return nil, err
	}
	rep.ID = rec.ID
	finish := func(status string, err error) (*CutoverReport, error) {
		rep.Window = time.Since(freezeWall)
		rep.WindowS = rep.Window.Seconds()
		raw, digest, derr := digestOf(rep)
		if derr != nil && err == nil {
			err = derr
		}
		rep.Digest = digest
		rec.Status, rec.Window, rec.Reread, rec.Digest, rec.Report = status, rep.Window, rep.Reread, digest, raw
		if ferr := state.FinishCutover(context.WithoutCancel(ctx), rec); ferr != nil && err == nil {
			err = ferr
		}
		return rep, err
	}
	// --max-wait bounds the whole wait, not each job's.
	deadline := time.Now().Add(opts.MaxWait)
	for i, job := range jobs {
		wait := opts
		wait.MaxWait = max(time.Until(deadline), time.Millisecond)
		by, err := waitApplied(ctx, pool, state, job, freeze[i], wait)
		if err != nil {
			return finish("failed", err)
		}
		c, err := checkJob(ctx, pool, state, job, freeze[i], opts)
		if err != nil {
			return finish("failed", fmt.Errorf("verifying %ss: %w", job.Kind, err))
		}
		c.CaughtUpBy = by
		rep.Jobs = append(rep.Jobs, c)
		rep.Reread += c.Reread
	}
	rep.Identical = true
	for _, c := range rep.Jobs {
		rep.Identical = rep.Identical && c.Identical
	}
	if !rep.Identical {
		return finish("different", nil)
	}
	// Identical: what each job does at the switch (tables: sequences past
	// the source's), then the source stops keeping changes for it.
	for i, job := range jobs {
		if job.Finish != nil {
			note, err := job.Finish(ctx)
			if err != nil {
				return finish("failed", fmt.Errorf("finishing %ss: %w", job.Kind, err))
			}
			rep.Jobs[i].Finished = note
		}
		if k, ok := job.Extractor.(extractors.ChangeKeeper); ok && !opts.KeepChanges {
			running, err := postgres.SyncRunning(ctx, pool, job.Name)
			if err != nil {
				return finish("failed", err)
			}
			if running {
				// Its stream holds what the source keeps: stopping sync
				// and running cutover again releases it.
				rep.Jobs[i].Finished = strings.TrimPrefix(rep.Jobs[i].Finished+"; ", "; ") +
					"the source still keeps changes for the running sync: stop it, then run cutover again to release them"
				continue
			}
			if err := k.ReleaseChanges(ctx, job.Consumer); err != nil {
				return finish("failed", fmt.Errorf("%ss: %w", job.Kind, err))
			}
			rep.Jobs[i].Released = true
		}
	}
	return finish("identical", nil)
}

// adoptSyncedMapping switches job's adapter to the mapping sync stored,
// when sync extended it (new collections) since job was built: a running
// sync may have done so while the cutover waited.
func adoptSyncedMapping(ctx context.Context, state *postgres.State, job *Job) error {
	if job.Remap == nil {
		return nil
	}
	text, err := state.SyncMapping(ctx, job.Name)
	if err != nil || text == "" {
		return err
	}
	m, err := mappings.Parse([]byte(text), "(mapping extended by sync)")
	if err != nil {
		return err
	}
	_, adapter, err := job.Remap(m)
	if err != nil {
		return err
	}
	job.Adapter, job.Mapping = adapter, m
	return nil
}

// checkJob verifies one job at the freeze point f.
func checkJob(ctx context.Context, pool *pgxpool.Pool, state *postgres.State, job *Job, f time.Time, opts CutoverOptions) (*JobCheck, error) {
	if err := adoptSyncedMapping(ctx, state, job); err != nil {
		return nil, err
	}
	c := &JobCheck{Job: job.Name, Kind: string(job.Kind), ReadTime: f}
	getter, canGet := job.Extractor.(extractors.Getter)
	var v *postgres.Verification
	if job.Mode() == ModeStream && canGet {
		var err error
		if v, err = state.LastVerification(ctx, job.Name); err != nil {
			return nil, err
		}
		if v != nil && v.ReadTime.After(f) {
			v = nil
		}
		if job.Exclude != nil {
			// The re-check's count check would count the records an
			// erasure list excludes in the source only: compare in full.
			v = nil
		}
	}
	if v == nil {
		c.Method = "full"
		rep, err := diff.Compare(ctx, job.Extractor, pool, job.Adapter, diff.Options{Samples: opts.Samples, Exclude: job.Exclude, ExcludedUnnamed: true})
		if err != nil {
			return nil, err
		}
		c.Report, c.ReadTime = rep, rep.ReadTime
		for _, t := range rep.Tables {
			c.Reread += t.Source
		}
		c.Identical = rep.Identical()
		c.Differences = reportDifferences(rep)
		return c, nil
	}
	c.Method, c.Verification, c.Since = "recheck", v.ID, v.ReadTime
	var keys []string
	if err := state.ChangedKeys(ctx, job.Name, v.ReadTime, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return nil, err
	}
	c.Keys = int64(len(keys))
	rep, err := diff.Recheck(ctx, getter, job.Extractor, pool, job.Adapter, keys, f, diff.Options{Samples: opts.Samples, Exclude: job.Exclude, ExcludedUnnamed: true})
	if err != nil {
		return nil, err
	}
	c.Report = rep
	c.Reread = int64(len(keys))
	c.Identical = rep.Identical()
	c.Differences = reportDifferences(rep)
	if _, ok := job.Extractor.(extractors.Counter); ok {
		counts, err := diff.CountRecords(ctx, job.Extractor, pool, job.Adapter, f)
		if err != nil {
			return nil, err
		}
		c.Counts = counts
		for _, n := range counts {
			if n.Source != n.Target {
				c.Identical = false
				c.Differences = append(c.Differences, fmt.Sprintf("stream %s: the source has %d records, the target %d rows (tables %v): something changed that no change was reported for — run cutover without a prepared verification, or sync --restart",
					n.Stream, n.Source, n.Target, n.Tables))
			}
		}
	}
	return c, nil
}

// reportDifferences lists a report's differences for people: its samples,
// and tables whose counts differ beyond them.
func reportDifferences(rep *diff.Report) []string {
	var out []string
	for _, t := range rep.Tables {
		if t.Identical() {
			continue
		}
		line := fmt.Sprintf("%s: %d mismatched, %d missing in target, %d extra in target, %d rejected",
			t.Table, t.Mismatched, t.MissingInTarget, t.ExtraInTarget, t.Rejected)
		if t.ExcludedInTarget > 0 {
			line += fmt.Sprintf(", %d excluded by the erasure list yet in the target (verify --exclude-from names them)", t.ExcludedInTarget)
		}
		out = append(out, line)
		if strings.HasPrefix(t.Table, "(no table for ") {
			out = append(out, "  "+t.Table+": a collection sync has not seen yet (made under a document not written since?); "+
				"sync's next count check (--count-interval) catches it up: run cutover again after it")
		}
		for _, s := range t.SampleLines() {
			out = append(out, "  "+t.Table+" "+s)
		}
	}
	return out
}
