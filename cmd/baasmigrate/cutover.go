package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/syncer"
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
	f.String("only", "", "Comma-separated kinds to check: documents, users, tables, files (default: all)")
	f.Bool("prepare", false, "Verify in bulk while sync runs (before the freeze), so that the cutover re-checks only what changed since")
	f.Duration("max-wait", 5*time.Minute, "How long to wait for the target to reach the freeze point")
	f.String("operator", "", "Who runs the cutover, recorded with it (default: the OS user)")
	f.Bool("json", false, "Print the report as JSON")
	f.Int("samples", 5, "Sample keys per table and outcome in the report")
	f.Bool("keep-changes", false, "After an identical cutover, keep what the source keeps changes in for sync (tables: the PostgreSQL replication slot and publication, which retain WAL at the source until dropped); by default they are dropped")
	addSyncSettingsFlags(f) // used when the cutover catches up by itself
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
	keep, _ := f.GetBool("keep-changes")
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
	opts := syncer.CutoverOptions{MaxWait: maxWait, Operator: operator, Samples: samples, Follow: settings.options(log, nil), KeepChanges: keep}
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
		if c.Finished != "" {
			fmt.Fprintln(w, "    "+c.Finished)
		}
		if c.Released {
			fmt.Fprintln(w, "    the source no longer keeps changes for this job (replication slot and publication dropped)")
		}
	}
}
