package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/migration"
)

// migrateSummary is the machine-readable summary written by --summary. Its
// shape is part of the CLI's contract: fields are only ever added.
type migrateSummary struct {
	Started  time.Time     `json:"started"`
	Elapsed  float64       `json:"elapsed_seconds"`
	Jobs     []jobSummary  `json:"jobs"`
	Totals   summaryCounts `json:"totals"`
	Warnings []string      `json:"warnings,omitempty"`
}

type jobSummary struct {
	Kind             string         `json:"kind"`
	Job              string         `json:"job"`
	Run              int64          `json:"run"`
	Resumed          bool           `json:"resumed"`
	AlreadyFinished  bool           `json:"already_finished"`
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
	Seconds float64 `json:"seconds"`
}

type summaryCounts struct {
	Read     int64 `json:"read"`
	Loaded   int64 `json:"loaded"`
	Rejected int64 `json:"rejected"`
	Changed  int64 `json:"changed"`
}

type rejectSample struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

func summarize(kind string, r *migration.Result) jobSummary {
	js := jobSummary{
		Kind: kind, Job: r.Job, Run: r.Run.ID, Resumed: r.Run.Resumed && !r.AlreadyFinished,
		AlreadyFinished: r.AlreadyFinished, SnapshotRenewals: r.SnapshotRenewals,
		BillableReads: r.BillableReads, Elapsed: r.Elapsed.Seconds(), Notes: r.Notes,
	}
	for _, t := range r.Tables {
		name := t.Table
		if name == "" {
			name = "(no table)"
		}
		js.Tables = append(js.Tables, tableSummary{
			Table:         name,
			summaryCounts: summaryCounts{Read: t.Read, Loaded: t.Loaded(), Rejected: t.Rejected, Changed: t.Changed},
			Seconds:       t.WriteTime.Seconds(),
		})
	}
	for _, s := range r.Rejects {
		js.RejectSamples = append(js.RejectSamples, rejectSample{Table: s.Table, Key: s.SourceKey, Reason: s.Reason})
	}
	return js
}

func (s *migrateSummary) total() {
	s.Totals = summaryCounts{}
	for _, j := range s.Jobs {
		for _, t := range j.Tables {
			s.Totals.Read += t.Read
			s.Totals.Loaded += t.Loaded
			s.Totals.Rejected += t.Rejected
			s.Totals.Changed += t.Changed
		}
	}
}

// printSummary writes the summary table users read at the end of a run.
func printSummary(w io.Writer, s *migrateSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\ttable\tread\tloaded\trejected\tchanged\tseconds\t")
	for _, j := range s.Jobs {
		for _, t := range j.Tables {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t\n", j.Kind, t.Table, t.Read, t.Loaded, t.Rejected, t.Changed, t.Seconds)
		}
	}
	fmt.Fprintf(tw, "\ttotal\t%d\t%d\t%d\t%d\t%.1f\t\n", s.Totals.Read, s.Totals.Loaded, s.Totals.Rejected, s.Totals.Changed, s.Elapsed)
	tw.Flush()
	for _, j := range s.Jobs {
		switch {
		case j.AlreadyFinished:
			fmt.Fprintf(w, "%s: already migrated by run %d; nothing to do (use --restart to copy again; unchanged rows are not rewritten)\n", j.Kind, j.Run)
		case j.Resumed:
			fmt.Fprintf(w, "%s: resumed interrupted run %d\n", j.Kind, j.Run)
		}
		for _, n := range j.Notes {
			fmt.Fprintf(w, "%s: %s\n", j.Kind, n)
		}
		if j.BillableReads >= 0 && !j.AlreadyFinished {
			fmt.Fprintf(w, "%s: %d billable source reads\n", j.Kind, j.BillableReads)
		}
		for _, r := range j.RejectSamples {
			fmt.Fprintf(w, "rejected %s %q: %s\n", r.Table, r.Key, r.Reason)
		}
	}
	for _, warn := range s.Warnings {
		fmt.Fprintln(w, "warning:", warn)
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
