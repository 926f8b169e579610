package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

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

// writeJSON writes v as indented JSON (status, cutover and sources --json).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
