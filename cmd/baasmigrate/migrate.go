package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/erasure"
	"github.com/baasmigrate/baasmigrate/internal/manifest"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Copy users, documents and files into the target, resumably",
		Long: `migrate copies every selected kind of record (--only; default all) from the
source into the target. It can be interrupted at any moment (Ctrl-C, kill -9, a
crash) and re-run: it resumes from the last committed checkpoint, and the target
ends up exact, with nothing lost or duplicated. Re-running a finished migration
does nothing; --restart copies everything again without rewriting rows that did
not change.

Records the target cannot hold are rejected with a reason, stored in the table
baasmigrate.rejects, and counted in the summary; the exit status is then 1
unless --allow-rejects is given.

On SIGINT or SIGTERM (Ctrl-C, docker stop, systemd, Kubernetes) migrate stops
reading at once, lets the batches in flight commit (at most 20s; a second signal
rolls them back at once), prints and writes the summary, and exits 3: run the same
command again to resume. The summary (text on standard output, JSON with
--summary) is written however the run ends, with the error and the next step; see
docs/reports.md.`,
		Args: cobra.NoArgs,
		RunE: runMigrate,
	}
	f := cmd.Flags()
	addOptionFlags(f, targetOptions)
	f.String("only", "", "Comma-separated kinds to migrate: documents, users, tables, files (default: all the source offers)")
	f.Int("workers", 4, "Partitions read and written at the same time")
	f.Int("batch-size", 0, fmt.Sprintf("Most records committed per transaction (default %d documents; %d users, table rows or files)",
		migration.DefaultBatchSize(record.KindDocument), migration.DefaultBatchSize(record.KindUser)))
	addOptionFlags(f, []plugin.Option{batchBytesOption})
	f.String("summary", "", "Also write the summary as JSON to this `file`")
	f.Bool("restart", false, "Abandon checkpoints and copy everything again")
	f.Bool("allow-rejects", false, "Exit 0 even when records were rejected")
	addExcludeFlag(f)
	addManifestFlags(f)
	addOptionFlags(f, allKindOptions())
	return cmd
}

// batchBytesOption is migrate's --batch-bytes (migration.Options.BatchBytes).
var batchBytesOption = plugin.Option{
	Name:    "batch-bytes",
	Help:    "A batch also ends once its records hold this much memory (e.g. 16MiB), so large documents make smaller batches (migrate holds at most about 4 × this × --workers).",
	Default: fmt.Sprintf("%dMiB", migration.DefaultBatchBytes>>20),
	Type:    plugin.Size,
}

func runMigrate(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	only, _ := f.GetString("only")
	workers, _ := f.GetInt("workers")
	batchSize, _ := f.GetInt("batch-size")
	summaryPath, _ := f.GetString("summary")
	restart, _ := f.GetBool("restart")
	allowRejects, _ := f.GetBool("allow-rejects")
	if workers < 1 || batchSize < 0 {
		return &exitStatus{code: exitError, err: fmt.Errorf("--workers must be at least 1 and --batch-size at least 1 (or 0: the default per kind)")}
	}
	batchOpts, err := pluginConfig(f, []plugin.Option{batchBytesOption})
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	batchBytes, err := batchOpts.Size(batchBytesOption.Name)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	source := sourceName(f)
	kinds, err := selectKinds(only, source)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	exclusions, err := loadExclusions(cmd)
	if err != nil {
		return err
	}
	mreq, err := readManifestFlags(cmd)
	if err != nil {
		return err
	}
	m := &migrateRun{
		cmd: cmd, log: newLogger(cmd), source: source, workers: workers, batchSize: batchSize, batchBytes: batchBytes, restart: restart,
		sum: &migrateSummary{Started: time.Now().UTC()}, exclusions: exclusions, manifest: mreq,
	}
	defer m.close()
	err = m.run(ctx, kinds)
	return m.end(ctx, err, summaryPath, allowRejects)
}

// migrateRun is one invocation of migrate: its settings and its summary.
type migrateRun struct {
	cmd                *cobra.Command
	log                *slog.Logger
	source             string // --source, resolved
	workers, batchSize int    // batchSize 0: per kind (migration.DefaultBatchSize)
	batchBytes         int64
	restart            bool
	sum                *migrateSummary
	secrets            []string // values that must not appear in the summary
	// exclusions is --exclude-from (nil: none); manifest is --manifest.
	exclusions *erasure.List
	manifest   *manifestRequest
	// pool and state stay open for the manifest, written at the end;
	// results and configs are each job's, by index of the summary's jobs.
	pool      *pgxpool.Pool
	state     *postgres.State
	targetDSN string
	results   []*migration.Result
	configs   []map[string]string
}

// close closes the target connections run opened.
func (m *migrateRun) close() {
	if m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
}

// run migrates each kind in turn, recording every job in the summary as it
// ends (or fails, or is interrupted). ctx ends at the first interrupt; the
// batches in flight commit under the work context.
func (m *migrateRun) run(ctx context.Context, kinds []*kindSpec) error {
	f := m.cmd.Flags()
	for _, k := range kinds {
		m.sum.Jobs = append(m.sum.Jobs, jobSummary{Kind: string(k.Kind), Status: statusNotStarted, BillableReads: -1, Tables: []tableSummary{}})
	}
	target, err := pluginConfig(f, targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	m.secrets = append(m.secrets, secretValues(targetOptions, target)...)
	targetTimeout, err := retry.Timeout(target, retry.TargetTimeoutOption)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, err := connectTarget(ctx, target.String("postgres"), m.workers, targetTimeout)
	if err != nil {
		return err
	}
	m.pool, m.targetDSN = pool, target.String("postgres")
	m.results, m.configs = make([]*migration.Result, len(kinds)), make([]map[string]string, len(kinds))
	// Every kind's settings are resolved and checked (types, required
	// options, from flags, --config and the environment) before anything
	// is read or written (the target is only connected to), so a bad value
	// for a later kind stops the run before an earlier kind is migrated.
	cfgs := make([]plugin.Config, len(kinds))
	for i, k := range kinds {
		cfg, err := pluginConfig(f, k.Options)
		m.secrets = append(m.secrets, secretValues(k.Options, cfg)...)
		if err != nil {
			m.sum.Jobs[i].Status = statusFailed
			return &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w", k.Kind, err)}
		}
		if err := plugin.CheckRequired(k.Options, cfg); err != nil {
			m.sum.Jobs[i].Status = statusFailed
			return &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w (or leave %ss out with --only)", k.Kind, err, k.Kind)}
		}
		cfgs[i] = cfg
	}
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		return err
	}
	m.state = state

	// Progress goes to a terminal as bars, or with -v into the log; with
	// neither there is none, and streams are not counted for it (a count
	// costs the source reads and time that nobody would see).
	var progress migration.Progress
	switch {
	case showProgress(m.cmd, m.cmd.ErrOrStderr()):
		progress = barProgress{w: m.cmd.ErrOrStderr()}
	case m.log.Enabled(ctx, slog.LevelInfo):
		progress = logProgress{log: m.log, interval: 5 * time.Second}
	}
	for i, k := range kinds {
		if ctx.Err() != nil {
			return migration.ErrInterrupted
		}
		cfg := cfgs[i]
		env := &buildEnv{Command: "migrate", Source: m.source, Config: cfg, Pool: pool, State: state, Log: m.log, Stderr: m.cmd.ErrOrStderr(), Workers: m.workers, Restart: m.restart, Given: optionGiven(f)}
		job, err := k.Build(ctx, env)
		if err != nil {
			m.sum.Jobs[i].Status = statusFailed
			return fmt.Errorf("preparing to migrate %ss: %w", k.Kind, err)
		}
		// A batch the target fails transiently is retried by the same
		// policy as source calls; its statements have --target-timeout.
		batchRetry, err := retry.FromConfig(cfg)
		if err != nil {
			m.sum.Jobs[i].Status = statusFailed
			return &exitStatus{code: exitError, err: err}
		}
		batchRetry.Timeout = 0
		if m.exclusions != nil {
			// A run resumes, or counts as done, only with the same list.
			job.Config = maps.Clone(job.Config)
			if job.Config == nil {
				job.Config = map[string]string{}
			}
			job.Config[excludeConfigKey] = m.exclusions.Digest()
		}
		m.configs[i] = job.Config
		res, err := migration.Execute(workContext(ctx), pool, state, job, migration.Options{
			Workers: m.workers, BatchSize: m.batchSize, BatchBytes: m.batchBytes, Restart: m.restart, Progress: progress, Log: m.log, Stop: ctx.Done(), Retry: batchRetry,
			Exclude: m.exclusions.For(k.Kind),
		})
		m.results[i] = res
		closeErr := job.Extractor.Close()
		if res != nil {
			m.sum.Jobs[i] = summarize(string(k.Kind), res, err)
			for _, w := range res.Warnings {
				m.sum.Warnings = append(m.sum.Warnings, fmt.Sprintf("%ss: %s", k.Kind, w))
			}
			if res.SnapshotRenewals > 0 {
				m.sum.Warnings = append(m.sum.Warnings, fmt.Sprintf("%ss: %d stream(s) outlived the source's snapshot window and continued at a new read time", k.Kind, res.SnapshotRenewals))
			}
		}
		if err == migration.ErrInterrupted {
			return err
		}
		if err != nil {
			return fmt.Errorf("migrating %ss: %w", k.Kind, err)
		}
		if closeErr != nil {
			m.log.Warn("closing the source connection", "kind", k.Kind, "err", closeErr)
		}
	}
	return nil
}

// end completes the summary with how the invocation ended, prints it and
// writes it (--summary) whatever happened, and returns the exit status.
func (m *migrateRun) end(ctx context.Context, err error, summaryPath string, allowRejects bool) error {
	sum := m.sum
	sum.Elapsed = time.Since(sum.Started).Seconds()
	sum.total()
	// An error after the first interrupt is the interrupt's doing unless it
	// says otherwise.
	interrupted := errors.Is(err, migration.ErrInterrupted) || (err != nil && ctx.Err() != nil)
	rejected := sum.Totals.Rejected + sum.earlierRejects()
	var status error
	switch {
	case interrupted:
		sum.Interrupted, sum.ExitStatus = true, exitInterrupted
		if err != migration.ErrInterrupted && !errors.Is(err, context.Canceled) {
			sum.Error = redact(err.Error(), m.secrets)
		}
		sum.NextStep = "run the same command again to resume: everything committed is kept, and the run continues from its checkpoints"
		status = &exitStatus{code: exitInterrupted, err: errors.New(interruptedMessage)}
	case err != nil:
		sum.Error, sum.ExitStatus = redact(err.Error(), m.secrets), exitError
		sum.NextStep = "fix what the error names, then run the same command again: it resumes from the last checkpoint"
		status = err
	case rejected > 0 && !allowRejects:
		sum.ExitStatus = exitProblems
		sum.NextStep = "see the rejected records (reason and whole record) in the table baasmigrate.rejects; fix the mapping or the data and run again, or accept them with --allow-rejects"
		status = &exitStatus{code: exitProblems, err: fmt.Errorf("%d record(s) rejected; see baasmigrate.rejects in the target (exit 1; --allow-rejects to accept)", rejected)}
	default:
		sum.NextStep = "baasmigrate verify compares the target with the source by content"
	}
	if m.manifest != nil && m.pool != nil && !interrupted {
		if merr := m.writeManifest(ctx, sum); merr != nil {
			if status == nil || sum.ExitStatus == exitProblems {
				sum.Error, sum.ExitStatus = redact(merr.Error(), m.secrets), exitError
				status = &exitStatus{code: exitError, err: merr}
			} else {
				fmt.Fprintln(os.Stderr, "baasmigrate:", redact(merr.Error(), m.secrets))
			}
		}
	}
	printSummary(m.cmd.OutOrStdout(), sum)
	if summaryPath != "" {
		if werr := writeSummaryJSON(summaryPath, sum); werr != nil {
			if status == nil || sum.ExitStatus == exitProblems {
				return &exitStatus{code: exitError, err: werr}
			}
			fmt.Fprintln(os.Stderr, "baasmigrate:", werr)
		}
	}
	return status
}

// writeManifest writes --manifest for the run that ended with sum.
func (m *migrateRun) writeManifest(ctx context.Context, sum *migrateSummary) error {
	man := &manifest.Manifest{
		Version: manifest.Version, Command: "migrate", Tool: manifest.ToolInfo(),
		Source: manifest.Source{Platform: m.source}, Target: manifest.Target{Postgres: describeTarget(m.targetDSN)},
		Started: sum.Started.UTC(), ExitStatus: sum.ExitStatus, Jobs: []manifest.Job{},
	}
	for i, js := range sum.Jobs {
		var res *migration.Result
		var cfg map[string]string
		if i < len(m.results) {
			res, cfg = m.results[i], m.configs[i]
		}
		man.Jobs = append(man.Jobs, manifestJob(js, res, cfg))
		ts, err := mappingTransforms(cfg)
		if err != nil {
			return err
		}
		man.Transforms = append(man.Transforms, ts...)
	}
	if m.exclusions != nil {
		man.Exclusions = &manifest.Exclusions{Entries: m.exclusions.Len(), ListSHA256: m.exclusions.Digest()}
		for _, j := range sum.Jobs {
			for _, t := range j.Tables {
				if t.Table == migration.ExcludedTable { // not records skipped (migration.SkippedTable)
					man.Exclusions.Records += t.Excluded
				}
			}
		}
	}
	return writeManifest(context.WithoutCancel(ctx), m.manifest, man, m.pool, m.state, m.secrets)
}
