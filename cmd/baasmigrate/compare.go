package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/manifest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

func init() {
	extraCommands = append(extraCommands, newPlanCommand, newVerifyCommand)
}

func newPlanCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Dry run: show what migrate would create, insert, update and cost — writing nothing",
		Long: `plan compares the source with the target and shows what migrate would do: the DDL
it would run, and per table how many rows it would insert, update, leave unchanged,
and how many exist only in the target; type conflicts (values that would go to
_overflow) and would-be rejects with samples; and what the migration would cost in
source reads. It writes nothing anywhere — not even baasmigrate's state schema: the
target is read in one read-only transaction.

The comparison reads every source record once (its cost is printed); --counts-only
skips it and reports the DDL and the estimate from aggregation counts alone.

Exit status: 0 migrate would run; 1 migrate would refuse (the target's tables
disagree with the mapping: see "migrate would refuse" in the report); 2 error;
3 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCompare(cmd, "plan") },
	}
	addCompareFlags(cmd)
	cmd.Flags().Float64("price-per-100k-reads", 0.06, "Price of 100,000 source reads, for the cost estimate")
	cmd.Flags().Bool("counts-only", false, "Skip the content comparison: DDL and estimate only (cheap)")
	return cmd
}

func newVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare source and target by content; exit 0 identical, 1 different, 2 error, 3 interrupted",
		Long: `verify reads every source record and every target row, in key order, and compares them
by key and by a canonical content checksum. Per table it reports, VDiff-style, how
many records were processed, matching, mismatched, missing in the target and extra in
the target, with sample keys and the differing fields named.

Exit status: 0 identical, 1 differences, 2 error, 3 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCompare(cmd, "verify") },
	}
	addCompareFlags(cmd)
	addManifestFlags(cmd.Flags())
	return cmd
}

func addCompareFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	addOptionFlags(f, targetOptions)
	f.String("only", "", "Comma-separated kinds to compare: documents, users, tables, files (default: all the source offers)")
	f.Int("samples", 5, "Sample keys to show per table and kind of difference")
	f.String("format", "table", "Output format: table, json or html")
	f.String("out", "", "Write the report to this `file` (default: standard output; required for html)")
	addExcludeFlag(f)
	addOptionFlags(f, allKindOptions())
}

func runCompare(cmd *cobra.Command, command string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	only, _ := f.GetString("only")
	samples, _ := f.GetInt("samples")
	format, _ := f.GetString("format")
	out, _ := f.GetString("out")
	switch format {
	case "table", "json":
	case "html":
		if out == "" {
			return &exitStatus{code: exitError, err: errors.New("--format html needs --out FILE")}
		}
	default:
		return &exitStatus{code: exitError, err: fmt.Errorf("--format: %q is not table, json or html", format)}
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
	var mreq *manifestRequest
	if command == "verify" {
		if mreq, err = readManifestFlags(cmd); err != nil {
			return err
		}
	}
	started := time.Now().UTC()
	log := newLogger(cmd)
	target, err := pluginConfig(f, targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	targetTimeout, err := retry.Timeout(target, retry.TargetTimeoutOption)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, err := connectTarget(ctx, target.String("postgres"), 1, targetTimeout)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	defer pool.Close()
	// Read-only: plan and verify never create the state schema.
	state, ok, err := postgres.ReadState(ctx, pool)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if !ok {
		state = nil
	}

	var reports []diff.KindReport
	for _, k := range kinds {
		if k.Compare == nil {
			log.Warn("this kind cannot be compared yet; skipped", "kind", k.Kind)
			continue
		}
		cfg, err := pluginConfig(f, k.Options)
		if err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w", k.Kind, err)}
		}
		if err := plugin.CheckRequired(k.Options, cfg); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w", k.Kind, err)}
		}
		env := &buildEnv{Command: command, Source: source, Config: cfg, Pool: pool, State: state, Log: log, Stderr: cmd.ErrOrStderr(), Workers: 4, Given: optionGiven(f)}
		kr, err := compareKind(ctx, cmd, command, k, env, diff.Options{Samples: samples, Exclude: exclusions.For(k.Kind)})
		if err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("%s %ss: %w", command, k.Kind, err)}
		}
		reports = append(reports, kr)
	}
	doc := diff.NewDocument(command, reports)
	if err := writeReport(cmd.OutOrStdout(), out, format, doc); err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if mreq != nil {
		// The one write verify makes, when asked: the manifest, also in
		// the state schema.
		man := &manifest.Manifest{
			Version: manifest.Version, Command: command, Tool: manifest.ToolInfo(),
			Source: manifest.Source{Platform: source}, Target: manifest.Target{Postgres: describeTarget(target.String("postgres"))},
			Started: started, Jobs: []manifest.Job{}, Verify: verifyResult(doc),
		}
		if !doc.Identical {
			man.ExitStatus = exitProblems
		}
		for _, kr := range reports {
			j := manifest.Job{Kind: kr.Kind, Tables: []manifest.TableCount{}}
			if kr.Report != nil && !kr.ReadTime.IsZero() {
				j.ReadTimes = []manifest.ReadTime{{Stream: "(all)", ReadTime: kr.ReadTime.UTC(), FirstReadTime: kr.ReadTime.UTC()}}
			}
			man.Jobs = append(man.Jobs, j)
		}
		if exclusions != nil {
			man.Exclusions = &manifest.Exclusions{Entries: exclusions.Len(), ListSHA256: exclusions.Digest()}
			for _, t := range man.Verify.Tables {
				man.Exclusions.Records += t.Excluded
			}
		}
		wstate, err := postgres.OpenState(ctx, pool)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		if err := writeManifest(ctx, mreq, man, pool, wstate, secretValues(targetOptions, target)); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
	}
	if command == "verify" && !doc.Identical {
		return &exitStatus{code: exitProblems}
	}
	if command == "plan" {
		for _, k := range reports {
			if k.DDLProblems != "" {
				return &exitStatus{code: exitProblems, err: fmt.Errorf("%ss: migrate would refuse: %s", k.Kind, k.DDLProblems)}
			}
		}
	}
	return nil
}

func compareKind(ctx context.Context, cmd *cobra.Command, command string, k *kindSpec, env *buildEnv, opts diff.Options) (diff.KindReport, error) {
	kr := diff.KindReport{Kind: string(k.Kind)}
	c, err := k.Compare(ctx, env)
	if err != nil {
		return kr, err
	}
	defer c.Extractor.Close()
	countsOnly := false
	if command == "plan" {
		countsOnly, _ = cmd.Flags().GetBool("counts-only")
		if c.DDL != nil {
			ddl, err := c.DDL(ctx)
			kr.DDL = ddl
			if err != nil {
				kr.DDLProblems = err.Error()
			}
		}
		price, _ := cmd.Flags().GetFloat64("price-per-100k-reads")
		est, err := diff.EstimateReads(ctx, c.Extractor, env.Workers, price)
		if err != nil {
			return kr, err
		}
		kr.Estimate = est
	}
	if countsOnly {
		return kr, nil
	}
	rep, err := diff.Compare(ctx, c.Extractor, env.Pool, c.Adapter, opts)
	if err != nil {
		return kr, err
	}
	kr.Report = rep
	if kr.References, err = referenceChecks(ctx, c.Adapter, env, command); err != nil {
		return kr, err
	}
	if command == "plan" && c.Bytes != nil {
		b := c.Bytes(rep)
		kr.Bytes = &b
	}
	return kr, nil
}

func writeReport(stdout io.Writer, path, format string, doc *diff.Document) error {
	w := stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		defer f.Close()
		w = f
	}
	var err error
	switch format {
	case "json":
		err = doc.WriteJSON(w)
	case "html":
		err = doc.WriteHTML(w)
	default:
		err = doc.WriteText(w)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if path != "" {
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	return nil
}

// referenceChecks asks a documents comparison about its reference columns
// (diff.ReferenceCheck): dangling references, and for verify the rows
// whose key columns disagree with their path.
func referenceChecks(ctx context.Context, a diff.Adapter, env *buildEnv, command string) ([]diff.ReferenceCheck, error) {
	d, ok := a.(*diff.Documents)
	if !ok {
		return nil, nil
	}
	return d.References(ctx, env.Pool, command == "verify")
}
