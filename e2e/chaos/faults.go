package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
)

// exitInterrupted is the exit status of a run stopped by SIGINT/SIGTERM
// (the CLI contract: "interrupted; run the same command again to resume").
const exitInterrupted = 3

// detectRe matches the log lines by which a run shows it noticed a stalled
// source: a timed-out call, a retry.
var detectRe = regexp.MustCompile(`(?i)(timed? ?out|deadline|stall|retry|retrying|not answer)`)

// inject runs the binary under the case's fault, recording exits and what
// was injected in e.res.
func (c *Campaign) inject(ctx context.Context, e *caseEnv) error {
	switch e.cs.Fault {
	case Kill9:
		return c.kill9(ctx, e)
	case SIGTERM:
		return c.sigterm(ctx, e)
	case PGRestart:
		return c.pgRestart(ctx, e)
	case SourceStall:
		return c.sourceStall(ctx, e)
	case SourceErrors:
		return c.sourceErrors(ctx, e)
	case ObjectStoreErrors:
		return c.objectStoreErrors(ctx, e)
	case DiskFull:
		return c.diskFull(ctx, e)
	}
	return fmt.Errorf("unknown fault %q", e.cs.Fault)
}

// pick returns a seeded random kill point: at least lo records committed,
// before hi.
func (c *Campaign) pick(lo, hi int64) int64 {
	if hi <= lo+1 {
		return lo + 1
	}
	return lo + 1 + c.rng.Int64N(hi-lo-1)
}

// waitExit waits up to d for p's exit, killing it after that; it records
// the exit status and reports whether p exited by itself.
func (e *caseEnv) waitExit(p *proc, d time.Duration) bool {
	exited := p.wait(d)
	if !exited {
		p.kill()
	}
	e.res.Exits = append(e.res.Exits, p.code)
	return exited
}

// startUntil starts a run with args and waits until a seeded random
// number of records in [lo, hi) is committed. It returns the running
// process and the records committed by then; when the run ended first it
// records that as a problem (the fault, what, was never injected) and
// returns nil.
func (c *Campaign) startUntil(ctx context.Context, e *caseEnv, args []string, lo, hi int64, what string) (*proc, int64, error) {
	target := c.pick(lo, hi)
	p, err := e.start(c.cfg.Binary, e.env, args)
	if err != nil {
		return nil, 0, err
	}
	if !waitProgress(ctx, p, target, e.progress, c.cfg.RunTimeout) {
		e.waitExit(p, c.cfg.RunTimeout)
		e.res.problem("the run ended (exit %d) before %s at %d committed: %s", p.code, what, target, tail(p.stderr(), 300))
		return nil, 0, nil
	}
	return p, e.progress(ctx), nil
}

func (c *Campaign) kill9(ctx context.Context, e *caseEnv) error {
	var at []string
	for range 2 {
		done := e.progress(ctx)
		target := c.pick(done, done+(e.seeded-done)*2/3)
		p, err := e.start(c.cfg.Binary, e.env, e.args)
		if err != nil {
			return err
		}
		if waitProgress(ctx, p, target, e.progress, c.cfg.RunTimeout) {
			p.kill()
			e.res.Exits = append(e.res.Exits, -1)
			at = append(at, fmt.Sprint(e.progress(ctx)))
			continue
		}
		if !e.waitExit(p, c.cfg.RunTimeout) {
			e.res.problem("a run neither reached %d committed records nor exited within %s", target, c.cfg.RunTimeout)
		}
		e.res.note("a run finished (exit %d) before its kill point %d", p.code, target)
	}
	e.res.Injected = append(e.res.Injected, fmt.Sprintf("%d × kill -9 (at %s of %d committed)", len(at), strings.Join(at, ", "), e.seeded))
	if len(at) == 0 {
		e.res.problem("no run was killed mid-way: the case tested nothing")
	}
	return nil
}

func (c *Campaign) sigterm(ctx context.Context, e *caseEnv) error {
	p, at, err := c.startUntil(ctx, e, e.args, e.seeded/10, e.seeded/3, "SIGTERM")
	if p == nil {
		return err
	}
	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	e.res.Injected = append(e.res.Injected, fmt.Sprintf("SIGTERM at %d of %d committed", at, e.seeded))
	if !e.waitExit(p, time.Minute) {
		e.res.problem("no exit within 1m of SIGTERM (killed)")
		return nil
	}
	e.res.note("exited %.1fs after SIGTERM", time.Since(t0).Seconds())
	if p.code != exitInterrupted {
		e.res.problem("exit %d after SIGTERM, want %d (interrupted; run again to resume): %s", p.code, exitInterrupted, tail(p.stderr(), 300))
	}
	return nil
}

func (c *Campaign) pgRestart(ctx context.Context, e *caseEnv) error {
	p, at, err := c.startUntil(ctx, e, e.args, e.seeded/10, e.seeded/2, "the restart")
	if p == nil {
		return err
	}
	if err := c.cluster.restart(); err != nil {
		p.kill()
		return err
	}
	e.res.Injected = append(e.res.Injected, fmt.Sprintf("pg_ctl restart -m fast at %d of %d committed", at, e.seeded))
	if !e.waitExit(p, c.cfg.RunTimeout) {
		e.res.problem("no exit within %s of the restart (killed)", c.cfg.RunTimeout)
		return nil
	}
	if p.code != 0 {
		e.res.problem("exit %d across a PostgreSQL restart, want 0 (connection loss is transient): %s", p.code, tail(p.stderr(), 300))
	}
	return nil
}

// stallLimit is how long a stall may go unnoticed before the campaign
// ends it itself and fails the case.
func (c *Campaign) stallLimit() time.Duration { return 4*c.cfg.SourceTimeout + 15*time.Second }

func (c *Campaign) sourceStall(ctx context.Context, e *caseEnv) error {
	args := append(append([]string(nil), e.args...), "--source-timeout", c.cfg.SourceTimeout.String(), "-v")
	if e.cs.Kind == Documents {
		return c.documentsStall(ctx, e, args)
	}
	var (
		p    *proc
		t0   time.Time
		thaw func()
		err  error
	)
	if e.cs.Kind == Users {
		// Hold the source's answers from a seeded page on: the pages are
		// read ahead of the writes, so a point in committed records could
		// fall after the last page.
		pages := max(e.seeded/50, 2)
		n := c.pick(1, pages/2)
		e.source.hold(n)
		if p, err = e.start(c.cfg.Binary, e.env, args); err != nil {
			return err
		}
		for t0 = e.source.held(); t0.IsZero(); t0 = e.source.held() {
			if p.wait(5 * time.Millisecond) {
				e.source.unhold()
				e.res.problem("the run ended (exit %d) before request %d to the Auth emulator: %s", p.code, n, tail(p.stderr(), 300))
				e.res.Exits = append(e.res.Exits, p.code)
				return nil
			}
		}
		thaw = e.source.unhold
		e.res.Injected = append(e.res.Injected, fmt.Sprintf("Auth emulator unanswering (a proxy holds every request from number %d of about %d pages on)", n, pages))
	} else {
		var at int64
		if p, at, err = c.startUntil(ctx, e, args, e.seeded/10, e.seeded/3, "the stall"); p == nil {
			return err
		}
		t0 = time.Now()
		_ = syscall.Kill(e.gcsPID, syscall.SIGSTOP)
		thaw = func() { _ = syscall.Kill(e.gcsPID, syscall.SIGCONT) }
		e.res.Injected = append(e.res.Injected, fmt.Sprintf("fake-gcs-server SIGSTOP at %d of %d committed", at, e.seeded))
	}
	deadline := t0.Add(c.stallLimit())
	var seen time.Time
	var line string
	for time.Now().Before(deadline) {
		var ok bool
		if seen, line, ok = p.firstLineAfter(t0, detectRe); ok {
			break
		}
		if p.wait(20 * time.Millisecond) {
			break
		}
	}
	held := time.Since(t0)
	thaw()
	e.res.Injected[len(e.res.Injected)-1] += fmt.Sprintf(", released after %.1fs", held.Seconds())
	if seen.IsZero() {
		e.res.problem("the stall was not noticed: no timeout or retry logged within %.0fs (with --source-timeout %s -v); the log ends: %s", held.Seconds(), c.cfg.SourceTimeout, tail(p.stderr(), 400))
	} else {
		e.res.StallDetect = seen.Sub(t0)
		e.res.note("stall noticed after %.1fs: %s", e.res.StallDetect.Seconds(), tail(line, 160))
	}
	if !e.waitExit(p, c.cfg.RunTimeout) {
		e.res.problem("no exit within %s after the stall ended (killed)", c.cfg.RunTimeout)
	} else if p.code != 0 {
		e.res.problem("exit %d after a stall, want 0 (a stalled call is cut and retried): %s", p.code, tail(p.stderr(), 300))
	}
	return nil
}

// documentsStall holds one RunQuery stream of the Firestore emulator after
// a seeded number of documents until the client cuts it (or the campaign
// gives up on that); the emulator measures how long the stream was held.
func (c *Campaign) documentsStall(ctx context.Context, e *caseEnv, args []string) error {
	after := 20 + c.rng.IntN(150)
	err := c.hooks.SetFaults(ctx, e.project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"RunQuery"}, AfterDocuments: &after, Stall: "forever", Times: 1},
	}})
	if err != nil {
		return err
	}
	e.res.Injected = append(e.res.Injected, fmt.Sprintf("Firestore emulator stall: one RunQuery stream held after %d documents", after))
	p, err := e.start(c.cfg.Binary, e.env, args)
	if err != nil {
		return err
	}
	var ev *firestoreemu.StallEvent
	limit := time.Now().Add(c.cfg.RunTimeout)
	for time.Now().Before(limit) {
		st, err := c.hooks.Faults(ctx, e.project)
		if err != nil {
			p.kill()
			return err
		}
		if len(st.Stalls) > 0 {
			ev = &st.Stalls[0]
			if ev.Ended != "" || ev.Seconds > c.stallLimit().Seconds() {
				break
			}
		}
		if p.wait(50 * time.Millisecond) {
			break
		}
	}
	if err := c.hooks.ClearFaults(ctx, e.project); err != nil { // releases a stall still held
		p.kill()
		return err
	}
	switch {
	case ev == nil:
		e.waitExit(p, c.cfg.RunTimeout)
		e.res.problem("the stall was never injected (the run exited %d first): %s", p.code, tail(p.stderr(), 300))
		return nil
	case ev.Ended == "cancelled":
		e.res.StallDetect = time.Duration(ev.Seconds * float64(time.Second))
		e.res.note("the client cut the stalled stream after %.1fs", ev.Seconds)
	default:
		e.res.problem("the stalled stream was not cut by the client within %.0fs (with --source-timeout %s); the campaign released it", ev.Seconds, c.cfg.SourceTimeout)
	}
	if !e.waitExit(p, c.cfg.RunTimeout) {
		e.res.problem("no exit within %s after the stall ended (killed)", c.cfg.RunTimeout)
	} else if p.code != 0 {
		e.res.problem("exit %d with a stalled stream, want 0 (cut and resumed): %s", p.code, tail(p.stderr(), 300))
	}
	return nil
}

// runFaulted runs the binary once to its end under a fault that it should
// ride out, and records a problem unless it exits 0.
func (c *Campaign) runFaulted(e *caseEnv, what string) {
	p, err := e.start(c.cfg.Binary, e.env, e.args)
	if err != nil {
		e.res.problem("starting the binary: %v", err)
		return
	}
	if !e.waitExit(p, c.cfg.RunTimeout) {
		e.res.problem("no exit within %s under %s (killed)", c.cfg.RunTimeout, what)
	} else if p.code != 0 {
		e.res.problem("exit %d under %s, want 0 (they are transient and retried): %s", p.code, what, tail(p.stderr(), 300))
	}
}

func (c *Campaign) sourceErrors(ctx context.Context, e *caseEnv) error {
	if e.cs.Kind == Documents {
		fifth, tenth, third := 0.2, 0.1, 0.3
		cut := 20 + c.rng.IntN(60)
		err := c.hooks.SetFaults(ctx, e.project, firestoreemu.FaultConfig{Seed: c.rng.Uint64(), Rules: []firestoreemu.FaultRule{
			{Methods: []string{"RunQuery", "ListDocuments", "PartitionQuery", "ListCollectionIds", "RunAggregationQuery", "BatchGetDocuments"}, Code: "UNAVAILABLE", Fraction: &fifth},
			{Methods: []string{"RunQuery"}, Code: "RESOURCE_EXHAUSTED", Fraction: &tenth},
			{Methods: []string{"RunQuery"}, Code: "UNAVAILABLE", Fraction: &third, AfterDocuments: &cut},
		}})
		if err != nil {
			return err
		}
		c.runFaulted(e, "source errors")
		st, err := c.hooks.Faults(ctx, e.project)
		if err != nil {
			return err
		}
		if err := c.hooks.ClearFaults(ctx, e.project); err != nil {
			return err
		}
		e.res.Injected = append(e.res.Injected, fmt.Sprintf("Firestore emulator: %d UNAVAILABLE calls, %d RESOURCE_EXHAUSTED, %d streams cut after %d documents", st.Injected[0], st.Injected[1], st.Injected[2], cut))
		return nil
	}
	e.source.set(0.2, 0.05, http.StatusServiceUnavailable, "injected by the chaos campaign")
	c.runFaulted(e, "source errors")
	e.source.disable()
	e.res.Injected = append(e.res.Injected, fmt.Sprintf("source proxy: %d × HTTP 503, %d connections reset (of %d requests)",
		e.source.errors.Load(), e.source.cuts.Load(), e.source.errors.Load()+e.source.cuts.Load()+e.source.passed.Load()))
	return nil
}

// s3SlowDown is S3's throttling answer.
const s3SlowDown = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by the chaos campaign).</Message></Error>`

func (c *Campaign) objectStoreErrors(_ context.Context, e *caseEnv) error {
	e.objectProxy.set(0.15, 0.05, http.StatusServiceUnavailable, s3SlowDown)
	c.runFaulted(e, "object store errors")
	e.objectProxy.disable()
	e.res.Injected = append(e.res.Injected, fmt.Sprintf("MinIO proxy: %d × 503 SlowDown, %d connections reset (of %d requests)",
		e.objectProxy.errors.Load(), e.objectProxy.cuts.Load(), e.objectProxy.errors.Load()+e.objectProxy.cuts.Load()+e.objectProxy.passed.Load()))
	return nil
}

// diskFullLimit is how long a run into a full disk may take before the
// campaign kills it; diskFullPrompt how long it may take to give up
// without failing the case (ENOSPC is permanent: no retries).
const (
	diskFullLimit  = 2 * time.Minute
	diskFullPrompt = 15 * time.Second
)

func (c *Campaign) diskFull(ctx context.Context, e *caseEnv) error {
	e.res.Injected = append(e.res.Injected, "directory target on a tmpfs a quarter the size of the files, then grown for the re-run")
	p, err := e.start(c.cfg.Binary, e.env, e.args)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if !e.waitExit(p, diskFullLimit) {
		e.res.problem("still running %s into a full disk (killed): ENOSPC must fail the run at once, not be retried", diskFullLimit)
	} else {
		took := time.Since(t0)
		e.res.note("stopped %.1fs into a full disk", took.Seconds())
		if took > diskFullPrompt {
			e.res.problem("took %.0fs to give up on a full disk, more than %s: ENOSPC was retried as if transient", took.Seconds(), diskFullPrompt)
		}
		if p.code != 2 {
			e.res.problem("exit %d on a full disk, want 2: %s", p.code, tail(p.stderr(), 300))
		}
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "remount,size=1g", e.mount).CombinedOutput(); err != nil {
		return fmt.Errorf("growing the tmpfs: %w: %s", err, out)
	}
	return nil
}
