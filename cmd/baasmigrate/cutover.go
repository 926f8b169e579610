package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/syncer"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

func newCutoverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cutover",
		Short: "Prove the target equals the frozen source, with a short window",
		Long: `cutover is the guarded switch. Before it, the application still writes to the
source while sync runs; run cutover --prepare then: it verifies everything in bulk
at a read time (recorded), excusing only records changed since that read time,
which the cutover re-checks.

Then stop writes at the source (docs: "Cutting over"; for Firestore, security rules
that deny writes) and run cutover: it takes the source's current time as the freeze
point, waits until every change up to it is applied — by the running sync, or by
itself when none runs — and verifies at the freeze point: only the keys changed
since the last --prepare (plus a count per stream), or everything when there was no
--prepare (users and files are always compared whole). It exits 0 only if source
and target are identical; otherwise 1 with the differences (sync keeps going), 2
when it could not decide (--max-wait passed, a service failed). Every cutover is
recorded in baasmigrate.cutovers with its freeze time, verdict, digest, operator
and the window from freeze to verdict.`,
		Args: cobra.NoArgs,
		RunE: runCutover,
	}
	f := cmd.Flags()
	addOptionFlags(f, targetOptions)
	f.String("only", "", "Comma-separated kinds to check: documents, users, files (default: all)")
	f.Bool("prepare", false, "Verify in bulk while sync runs (before the freeze), so that the cutover re-checks only what changed since")
	f.Duration("max-wait", 5*time.Minute, "How long to wait for the target to reach the freeze point")
	f.String("operator", "", "Who runs the cutover, recorded with it (default: the OS user)")
	f.Bool("json", false, "Print the report as JSON")
	f.Int("samples", 5, "Sample keys per table and outcome in the report")
	f.Int("batch-size", 500, "Records committed per transaction when catching up")
	f.Duration("poll-interval", time.Minute, "Unused by cutover itself; accepted so sync's --config file works")
	f.Duration("count-interval", 10*time.Minute, "As for sync (the cutover always compares counts when it catches up by itself)")
	f.String("deletes", "hard", "As for sync, when the cutover catches up by itself: hard or soft")
	f.String("new-collections", syncer.NewCollectionsInfer, "As for sync, when the cutover catches up by itself: infer or reject")
	addOptionFlags(f, allKindOptions())
	return cmd
}

func runCutover(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	settings, err := readSyncSettings(cmd)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	only, _ := f.GetString("only")
	prepare, _ := f.GetBool("prepare")
	maxWait, _ := f.GetDuration("max-wait")
	operator, _ := f.GetString("operator")
	asJSON, _ := f.GetBool("json")
	samples, _ := f.GetInt("samples")
	kinds, err := selectKinds(only, sourceName(f))
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	target, err := pluginConfig(f, targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, state, err := openSyncTarget(ctx, target, len(kinds)*2+2)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	jobs, closeJobs, err := buildSyncJobs(ctx, cmd, "cutover", kinds, pool, state, 4)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer closeJobs()
	log := newLogger(cmd)
	opts := syncer.CutoverOptions{MaxWait: maxWait, Operator: operator, Samples: samples, Follow: settings.options(log, nil)}
	out := cmd.OutOrStdout()
	if prepare {
		checks, err := syncer.Prepare(ctx, pool, state, jobs, opts)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		identical := true
		for _, c := range checks {
			identical = identical && c.Identical
		}
		if asJSON {
			if err := writeJSON(out, map[string]any{"prepare": checks, "identical": identical}); err != nil {
				return err
			}
		} else {
			printPrepare(out, checks)
		}
		if !identical {
			return &exitStatus{code: exitProblems, err: fmt.Errorf("the bulk verification found differences that no change since its read time explains")}
		}
		return nil
	}
	rep, err := syncer.Cutover(ctx, pool, state, jobs, opts)
	if rep != nil {
		if asJSON {
			if werr := writeJSON(out, rep); werr != nil && err == nil {
				err = werr
			}
		} else {
			printCutover(out, rep)
		}
	}
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if !rep.Identical {
		return &exitStatus{code: exitProblems, err: fmt.Errorf("cutover %d: the target differs from the frozen source (see above); do not switch yet", rep.ID)}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printPrepare(w io.Writer, checks []*syncer.JobCheck) {
	if len(checks) == 0 {
		fmt.Fprintln(w, "nothing to prepare: no selected kind has a change stream (users and files are compared whole at the cutover)")
		return
	}
	for _, c := range checks {
		verdict := "identical"
		if !c.Identical {
			verdict = "DIFFERENT"
		}
		fmt.Fprintf(w, "%s: bulk verification %d at %s: %s; %d records read, %d differences on keys changed since (re-checked at the cutover)\n",
			c.Job, c.Verification, c.Since.Format(time.RFC3339Nano), verdict, c.Reread, c.Excused)
		for _, d := range c.Differences {
			fmt.Fprintln(w, "  "+d)
		}
	}
}

func printCutover(w io.Writer, r *syncer.CutoverReport) {
	verdict := "IDENTICAL: safe to switch"
	if !r.Identical {
		verdict = "DIFFERENT: do not switch"
	}
	fmt.Fprintf(w, "cutover %d at freeze time %s: %s\n", r.ID, r.FreezeTime.Format(time.RFC3339Nano), verdict)
	fmt.Fprintf(w, "window (freeze to verdict): %s; source records re-read: %d; digest %s\n", r.Window.Round(time.Millisecond), r.Reread, r.Digest)
	for _, c := range r.Jobs {
		how := c.Method
		if c.Method == "recheck" {
			how = fmt.Sprintf("re-checked the %d key(s) changed since verification %d (%s), plus counts", c.Keys, c.Verification, c.Since.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "  %s: caught up by %s; %s: %s\n", c.Job, c.CaughtUpBy, how, map[bool]string{true: "identical", false: "DIFFERENT"}[c.Identical])
		for _, d := range c.Differences {
			fmt.Fprintln(w, "    "+d)
		}
	}
}

func newStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show runs, syncs (position, lag, last error) and cutovers recorded in the target",
		Long: `status reads the tool's state in the target (schema baasmigrate) and shows, for
every job, its last copy run; for every sync, its mode, position, the source time
the target reflects, the lag behind the source, what it applied and its last
error; and the latest cutovers. It writes nothing.`,
		Args: cobra.NoArgs,
		RunE: runStatus,
	}
	f := cmd.Flags()
	addOptionFlags(f, targetOptions)
	f.Bool("json", false, "Print the status as JSON")
	return cmd
}

// syncStatus is one sync in status's output.
type syncStatus struct {
	Job         string    `json:"job"`
	Kind        string    `json:"kind"`
	Mode        string    `json:"mode"`
	Running     bool      `json:"running"`
	Position    string    `json:"position"`
	ReadTime    time.Time `json:"read_time"`
	LagSeconds  float64   `json:"lag_seconds"`
	LastCommit  time.Time `json:"last_commit_time"`
	Applied     int64     `json:"applied"`
	Deleted     int64     `json:"deleted"`
	Rejected    int64     `json:"rejected"`
	Batches     int64     `json:"batches"`
	CatchUps    int       `json:"catch_ups"`
	SourceReads int64     `json:"source_reads"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Note        string    `json:"note,omitempty"`
	Updated     time.Time `json:"updated_at"`
	NewTables   bool      `json:"mapping_extended"`
}

type runLine struct {
	Job      string    `json:"job"`
	Run      int64     `json:"run"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at,omitzero"`
}

func runStatus(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	asJSON, _ := cmd.Flags().GetBool("json")
	target, err := pluginConfig(cmd.Flags(), targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, err := connectTarget(ctx, target.String("postgres"), 2, 0)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	state, ok, err := postgres.ReadState(ctx, pool)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	doc := struct {
		Runs     []runLine           `json:"runs"`
		Syncs    []syncStatus        `json:"syncs"`
		Cutovers []*postgres.Cutover `json:"cutovers"`
	}{Runs: []runLine{}, Syncs: []syncStatus{}, Cutovers: []*postgres.Cutover{}}
	if ok {
		runs, err := state.LatestRuns(ctx)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		for _, r := range runs {
			doc.Runs = append(doc.Runs, runLine{Job: r.Job, Run: r.ID, Status: r.Status, Started: r.Started, Finished: r.Finished})
		}
		syncs, err := state.SyncStreams(ctx)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		for _, s := range syncs {
			running, err := postgres.SyncRunning(ctx, pool, s.Job)
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			doc.Syncs = append(doc.Syncs, syncStatus{
				Job: s.Job, Kind: string(s.Kind), Mode: s.Mode, Running: running, Position: s.Position, ReadTime: s.ReadTime,
				LagSeconds: lagOf(s).Seconds(), LastCommit: s.LastCommit, Applied: s.Applied, Deleted: s.Deleted, Rejected: s.Rejected,
				Batches: s.Batches, CatchUps: s.CatchUps, SourceReads: s.SourceReads, LastError: s.LastError, LastErrorAt: s.LastErrorAt,
				Note: s.Note, Updated: s.Updated, NewTables: s.Mapping != "",
			})
		}
		if doc.Cutovers, err = state.Cutovers(ctx, 5); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		if doc.Cutovers == nil {
			doc.Cutovers = []*postgres.Cutover{}
		}
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, doc)
	}
	if !ok {
		fmt.Fprintln(out, "no baasmigrate state in this database: nothing was migrated into it yet")
		return nil
	}
	fmt.Fprintln(out, "runs:")
	for _, r := range doc.Runs {
		fmt.Fprintf(out, "  %-50s run %d %s since %s\n", r.Job, r.Run, r.Status, r.Started.Format(time.RFC3339))
	}
	fmt.Fprintln(out, "syncs:")
	if len(doc.Syncs) == 0 {
		fmt.Fprintln(out, "  none (baasmigrate sync follows the source after the copy)")
	}
	for _, s := range doc.Syncs {
		state := "stopped"
		if s.Running {
			state = "running"
		}
		fmt.Fprintf(out, "  %s (%s, %s): source time %s, lag %s; applied %d, deleted %d, rejected %d",
			s.Job, s.Mode, state, s.ReadTime.Format(time.RFC3339Nano), (time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Millisecond), s.Applied, s.Deleted, s.Rejected)
		if s.Mode == "poll" {
			fmt.Fprintf(out, ", %d batches, %d source reads", s.Batches, s.SourceReads)
		}
		fmt.Fprintln(out)
		if s.Note != "" {
			fmt.Fprintln(out, "    note: "+s.Note)
		}
		if s.LastError != "" {
			fmt.Fprintf(out, "    last error (%s): %s\n", s.LastErrorAt.Format(time.RFC3339), s.LastError)
		}
	}
	if len(doc.Cutovers) > 0 {
		fmt.Fprintln(out, "cutovers:")
		for _, c := range doc.Cutovers {
			fmt.Fprintf(out, "  %d: freeze %s, %s, window %s, %d re-read, by %s (%s)\n", c.ID, c.FreezeTime.Format(time.RFC3339Nano), c.Status,
				c.Window.Round(time.Millisecond), c.Reread, c.Operator, strings.Join(c.Jobs, ", "))
		}
	}
	return nil
}
