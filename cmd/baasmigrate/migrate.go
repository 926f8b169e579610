package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
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
unless --allow-rejects is given.`,
		Args: cobra.NoArgs,
		RunE: runMigrate,
	}
	f := cmd.Flags()
	addOptionFlags(f, targetOptions)
	f.String("only", "", "Comma-separated kinds to migrate: documents, users, files (default: all)")
	f.Int("workers", 4, "Partitions read and written at the same time")
	f.Int("batch-size", 500, "Records committed per transaction")
	f.String("summary", "", "Also write the summary as JSON to this `file`")
	f.Bool("restart", false, "Abandon checkpoints and copy everything again")
	f.Bool("allow-rejects", false, "Exit 0 even when records were rejected")
	addOptionFlags(f, allKindOptions())
	return cmd
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
	if workers < 1 || batchSize < 1 {
		return &exitStatus{code: exitError, err: fmt.Errorf("--workers and --batch-size must be at least 1")}
	}
	kinds, err := selectKinds(only)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	log := newLogger(cmd)
	target := pluginConfig(f, targetOptions)
	targetTimeout, err := retry.Timeout(target, retry.TargetTimeoutOption)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, err := connectTarget(ctx, target.String("postgres"), workers, targetTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		return err
	}

	var progress migration.Progress = logProgress{log: log, interval: 5 * time.Second}
	if showProgress(cmd, cmd.ErrOrStderr()) {
		progress = barProgress{w: cmd.ErrOrStderr()}
	}
	sum := &migrateSummary{Started: time.Now().UTC()}
	for _, k := range kinds {
		cfg := pluginConfig(f, k.Options)
		if err := plugin.CheckRequired(k.Options, cfg); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w (or leave %ss out with --only)", k.Kind, err, k.Kind)}
		}
		env := &buildEnv{Command: "migrate", Config: cfg, Pool: pool, State: state, Log: log, Stderr: cmd.ErrOrStderr(), Workers: workers, Restart: restart}
		job, err := k.Build(ctx, env)
		if err != nil {
			return fmt.Errorf("preparing to migrate %ss: %w", k.Kind, err)
		}
		// A batch the target fails transiently is retried by the same
		// policy as source calls; its statements have --target-timeout.
		batchRetry, err := retry.FromConfig(cfg)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		batchRetry.Timeout = 0
		res, err := migration.Execute(ctx, pool, state, job, migration.Options{
			Workers: workers, BatchSize: batchSize, Restart: restart, Progress: progress, Log: log, Retry: batchRetry,
		})
		closeErr := job.Extractor.Close()
		if err != nil {
			return fmt.Errorf("migrating %ss: %w", k.Kind, err)
		}
		if closeErr != nil {
			log.Warn("closing the source connection", "kind", k.Kind, "err", closeErr)
		}
		sum.Jobs = append(sum.Jobs, summarize(string(k.Kind), res))
		for _, w := range res.Warnings {
			sum.Warnings = append(sum.Warnings, fmt.Sprintf("%ss: %s", k.Kind, w))
		}
		if res.SnapshotRenewals > 0 {
			sum.Warnings = append(sum.Warnings, fmt.Sprintf("%ss: %d stream(s) outlived the source's snapshot window and continued at a new read time", k.Kind, res.SnapshotRenewals))
		}
	}
	sum.Elapsed = time.Since(sum.Started).Seconds()
	sum.total()
	printSummary(cmd.OutOrStdout(), sum)
	if summaryPath != "" {
		if err := writeSummaryJSON(summaryPath, sum); err != nil {
			return err
		}
	}
	if sum.Totals.Rejected > 0 && !allowRejects {
		fmt.Fprintf(os.Stderr, "baasmigrate: %d record(s) rejected; see baasmigrate.rejects in the target (exit 1; --allow-rejects to accept)\n", sum.Totals.Rejected)
		return &exitStatus{code: exitProblems}
	}
	return nil
}
