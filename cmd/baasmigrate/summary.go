package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// migrateSummary is the machine-readable summary written by --summary,
// however the run ends (documented in docs/reports.md). Its shape is part
// of the CLI's contract: fields are only ever added.
type migrateSummary struct {
	Started  time.Time     `json:"started"`
	Elapsed  float64       `json:"elapsed_seconds"`
	Jobs     []jobSummary  `json:"jobs"`
	Totals   summaryCounts `json:"totals"`
	Warnings []string      `json:"warnings,omitempty"`
	// ExitStatus is the process's exit status: 0, 1 (rejects), 2 (error),
	// 3 (interrupted).
	ExitStatus int `json:"exit_status"`
	// Error says why the run failed ("" when it did not; an interrupt is
	// not an error). It holds no secret.
	Error string `json:"error"`
	// Interrupted is true when SIGINT/SIGTERM stopped the run.
	Interrupted bool `json:"interrupted"`
	// NextStep says what to do now.
	NextStep string `json:"next_step"`
}

// Job statuses in the summary.
const (
	statusFinished        = "finished"         // copied to the end by this invocation
	statusAlreadyFinished = "already_finished" // nothing to do: an earlier run completed it
	statusInterrupted     = "interrupted"      // stopped by a signal; resumable
	statusFailed          = "failed"           // stopped by an error; resumable
	statusNotStarted      = "not_started"      // an earlier job failed or was interrupted
)

type jobSummary struct {
	Kind            string `json:"kind"`
	Job             string `json:"job,omitempty"`
	Status          string `json:"status"`
	Run             int64  `json:"run,omitempty"`
	Resumed         bool   `json:"resumed"`
	AlreadyFinished bool   `json:"already_finished"`
	// EarlierRejects counts, for an already finished job, the records its
	// completed run rejected (not part of this invocation's counts).
	EarlierRejects   int64          `json:"earlier_rejects,omitempty"`
	SnapshotRenewals int            `json:"snapshot_renewals"`
	BillableReads    int64          `json:"billable_reads"`
	Elapsed          float64        `json:"elapsed_seconds"`
	Tables           []tableSummary `json:"tables"`
	RejectSamples    []rejectSample `json:"reject_samples,omitempty"`
	Notes            []string       `json:"notes,omitempty"`
}

type tableSummary struct {
	Table string `json:"table"`
	summaryCounts
	// Seconds is the wall-clock time this invocation spent writing the
	// table's batches: overlapping workers count once, so it never exceeds
	// the job's elapsed_seconds.
	Seconds float64 `json:"seconds"`
}

type summaryCounts struct {
	Read     int64 `json:"read"`
	Loaded   int64 `json:"loaded"`
	Rejected int64 `json:"rejected"`
	Changed  int64 `json:"changed"`
	// Excluded counts records an erasure list left out (--exclude-from),
	// counted under the table "(excluded)", and records the source's
	// extractor skipped on purpose (Amplify DataStore tombstones), counted
	// under "TABLE (skipped: REASON)": read = loaded + rejected + excluded.
	Excluded int64 `json:"excluded"`
}

type rejectSample struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// summarize describes one job's result; err is how Execute ended.
func summarize(kind string, r *migration.Result, err error) jobSummary {
	js := jobSummary{
		Kind: kind, Job: r.Job, Status: statusFinished, AlreadyFinished: r.AlreadyFinished, EarlierRejects: r.EarlierRejects,
		SnapshotRenewals: r.SnapshotRenewals, BillableReads: r.BillableReads, Elapsed: r.Elapsed.Seconds(),
		Tables: []tableSummary{}, Notes: r.Notes,
	}
	switch {
	case errors.Is(err, migration.ErrInterrupted):
		js.Status = statusInterrupted
	case err != nil:
		js.Status = statusFailed
	case r.AlreadyFinished:
		js.Status = statusAlreadyFinished
	}
	if r.Run != nil {
		js.Run, js.Resumed = r.Run.ID, r.Run.Resumed && !r.AlreadyFinished
	}
	for _, t := range r.Tables {
		name := t.Table
		if name == "" {
			name = "(no table)"
		}
		js.Tables = append(js.Tables, tableSummary{
			Table:         name,
			summaryCounts: summaryCounts{Read: t.Read, Loaded: t.Loaded(), Rejected: t.Rejected, Changed: t.Changed, Excluded: t.Excluded},
			Seconds:       r.WriteTimes[t.Table].Seconds(),
		})
	}
	for _, s := range r.Rejects {
		js.RejectSamples = append(js.RejectSamples, rejectSample{Table: s.Table, Key: s.SourceKey, Reason: s.Reason})
	}
	return js
}

// earlierRejects counts the records that completed runs of already
// finished jobs rejected: a no-op re-run still exits 1 for them.
func (s *migrateSummary) earlierRejects() int64 {
	var n int64
	for _, j := range s.Jobs {
		n += j.EarlierRejects
	}
	return n
}

func (s *migrateSummary) total() {
	s.Totals = summaryCounts{}
	for _, j := range s.Jobs {
		for _, t := range j.Tables {
			s.Totals.Read += t.Read
			s.Totals.Loaded += t.Loaded
			s.Totals.Rejected += t.Rejected
			s.Totals.Changed += t.Changed
			s.Totals.Excluded += t.Excluded
		}
	}
}

// printSummary writes the summary table users read at the end of a run.
func printSummary(w io.Writer, s *migrateSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The excluded column shows only when an erasure list excluded, or an
	// extractor skipped, something.
	excluded := func(n int64) string {
		if s.Totals.Excluded == 0 {
			return ""
		}
		return fmt.Sprintf("%d\t", n)
	}
	fmt.Fprintf(tw, "kind\ttable\tread\tloaded\trejected\t%schanged\tseconds\t\n", map[bool]string{true: "excluded\t"}[s.Totals.Excluded > 0])
	for _, j := range s.Jobs {
		for _, t := range j.Tables {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s%d\t%.1f\t\n", j.Kind, t.Table, t.Read, t.Loaded, t.Rejected, excluded(t.Excluded), t.Changed, t.Seconds)
		}
	}
	fmt.Fprintf(tw, "\ttotal\t%d\t%d\t%d\t%s%d\t%.1f\t\n", s.Totals.Read, s.Totals.Loaded, s.Totals.Rejected, excluded(s.Totals.Excluded), s.Totals.Changed, s.Elapsed)
	tw.Flush()
	for _, j := range s.Jobs {
		switch j.Status {
		case statusAlreadyFinished:
			fmt.Fprintf(w, "%s: already migrated by run %d; nothing to do, nothing changed (use --restart to copy again; unchanged rows are not rewritten)\n", j.Kind, j.Run)
			if j.EarlierRejects > 0 {
				fmt.Fprintf(w, "%s: run %d rejected %d record(s); they are not in the target (see baasmigrate.rejects)\n", j.Kind, j.Run, j.EarlierRejects)
			}
		case statusInterrupted, statusFailed:
			if j.Run == 0 {
				fmt.Fprintf(w, "%s: %s before a run was planned\n", j.Kind, j.Status)
			} else {
				fmt.Fprintf(w, "%s: run %d %s; the counts are what it committed\n", j.Kind, j.Run, j.Status)
			}
		case statusNotStarted:
			fmt.Fprintf(w, "%s: not started\n", j.Kind)
		}
		if j.Resumed {
			fmt.Fprintf(w, "%s: resumed interrupted run %d (the counts include what earlier attempts committed)\n", j.Kind, j.Run)
		}
		for _, n := range j.Notes {
			fmt.Fprintf(w, "%s: %s\n", j.Kind, n)
		}
		if j.BillableReads >= 0 && !j.AlreadyFinished && j.Status != statusNotStarted {
			fmt.Fprintf(w, "%s: %d billable source reads\n", j.Kind, j.BillableReads)
		}
		for _, r := range j.RejectSamples {
			fmt.Fprintf(w, "rejected %s %q: %s\n", r.Table, r.Key, r.Reason)
		}
	}
	for _, warn := range s.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	switch {
	case s.Interrupted:
		fmt.Fprintln(w, "interrupted")
	case s.Error != "":
		fmt.Fprintln(w, "failed:", s.Error)
	}
	if s.NextStep != "" && s.ExitStatus != exitOK {
		fmt.Fprintln(w, "next:", s.NextStep)
	}
}

func writeSummaryJSON(path string, s *migrateSummary) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	return nil
}

// secretValues returns the values of cfg's secret options, and for the
// target's connection string also its password, for redact.
func secretValues(opts []plugin.Option, cfg plugin.Config) []string {
	var out []string
	for _, o := range opts {
		v := cfg.String(o.Name)
		if !o.Secret || v == "" {
			continue
		}
		out = append(out, v)
		if pc, err := pgxpool.ParseConfig(v); err == nil && pc.ConnConfig.Password != "" {
			out = append(out, pc.ConnConfig.Password)
		}
	}
	return out
}

// redact replaces every secret in text with "***". Errors should hold no
// secret in the first place; this is the summary file's second line of
// defence.
func redact(text string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			text = strings.ReplaceAll(text, s, "***")
		}
	}
	return text
}
