package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

var (
	mappingOption = plugin.Option{
		Name: "mapping",
		Help: "Mapping file (YAML) written by `baasmigrate infer`, perhaps edited, followed exactly; without it a mapping is inferred from a sample (--sample) and grows during the run (--schema-evolution).",
	}
	sampleOption = plugin.Option{
		Name:    "sample",
		Help:    "When inferring a mapping, read at most this many documents per root collection (0: all, the exact choice).",
		Default: "0",
		Type:    plugin.Int,
	}
)

var (
	// runSampleOption is --sample of the commands that copy or compare
	// documents; infer has sampleOption, whose default is the exact scan.
	runSampleOption = plugin.Option{
		Name: "sample",
		Help: "Without --mapping, infer the first mapping from this many documents per root collection: auto (1% of them, counted cheaply; at least 25, at most 1000), " +
			"all (every document: the exact choice, but each document is read twice), or a number. " +
			"What the sample misses, migrate and sync add as they copy (--schema-evolution). plan and verify read every document unless it is given.",
		Default: "auto",
	}
	schemaEvolutionOption = plugin.Option{
		Name: "schema-evolution",
		Help: "Without --mapping, what a top-level field the mapping has no column for becomes when migrate or sync meets it: " +
			"columns (ALTER TABLE ... ADD COLUMN, typed from the documents that have it, committed with the first batch holding it) " +
			"or overflow (kept in the _overflow column; existing tables are never altered). Collections with no table get one either way.",
		Default: postgres.EvolveColumns,
	}
)

func init() {
	registerKind(&kindSpec{
		Kind:    record.KindDocument,
		Options: []plugin.Option{mappingOption, runSampleOption, schemaEvolutionOption, shareTablesOption, vaultOption},
		Build:   buildDocuments,
		Compare: compareDocuments,
	})
	// A document source may need its change feed checked before the copy
	// (extractors.ChangeChecker).
	syncKeepers[record.KindDocument] = true
}

// buildDocuments assembles the documents → PostgreSQL job. The mapping is,
// in order: --mapping; the one stored with the interrupted (or finished)
// run of the same source, so a resumed run keeps its layout; an inferred one.
func buildDocuments(ctx context.Context, env *buildEnv) (migration.Job, error) {
	_, ex, err := env.Extractor(ctx, record.KindDocument)
	if err != nil {
		return migration.Job{}, err
	}
	got, err := documentsMapping(ctx, env, ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	m := got.Mapping
	text, err := m.Marshal()
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	config := map[string]string{"mapping": string(text)}
	evolution, err := schemaEvolution(ctx, env, ex, got)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	if evolution != "" {
		config["schema-evolution"] = evolution
	}
	sink, err := newDocumentsSink(env, ex, m, evolution)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	owner, err := tableOwner(env.Config, ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	sink.SetOwner(owner)
	if err := useVault(ctx, env, sink, nil); err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	// Refuse before the run is recorded; Prepare checks again, atomically.
	if err := postgres.CheckTableOwners(ctx, env.Pool, owner, postgres.MappingTables(m)); err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	return migration.Job{
		Kind: record.KindDocument, Extractor: ex, Sink: sink,
		Config: runConfig(ex, config),
	}, nil
}

// documentsSink is what a documents job's sink is.
type documentsSink interface {
	loaders.Sink
	loaders.Deleter
	loaders.SoftDeleter
	SetOwner(postgres.Owner)
}

// newDocumentsSink returns the sink of mapping m: one that grows it as
// evolution says (postgres.EvolvingDocuments, storing the mapping with
// migrate's run, or with sync's state for sync and cutover), or,
// when evolution is "", one that keeps it as it is.
func newDocumentsSink(env *buildEnv, ex extractors.Extractor, m *mappings.Mapping, evolution string) (documentsSink, error) {
	if evolution == "" {
		return postgres.NewDocuments(m)
	}
	job := postgres.Job(record.KindDocument, ex.Source())
	store := postgres.RunMapping(job)
	if env.Command == "sync" || env.Command == "cutover" {
		store = postgres.SyncMapping(job)
	}
	return postgres.NewEvolvingDocuments(m, postgres.EvolveConfig{Mode: evolution, Store: store})
}

// schemaEvolution says how the run grows the mapping it chose: not at all
// ("") for a mapping file, which the user reviewed; for an inferred one,
// --schema-evolution; for one stored with a run, what that run did, unless
// --schema-evolution says otherwise (a resumed run then refuses the
// changed setting); for the one sync stored, what the copy it follows did.
func schemaEvolution(ctx context.Context, env *buildEnv, ex extractors.Extractor, got *migration.ChosenMapping) (string, error) {
	flag := env.Config.String(schemaEvolutionOption.Name)
	if flag == "" {
		flag = schemaEvolutionOption.Default
	}
	if flag != postgres.EvolveColumns && flag != postgres.EvolveOverflow {
		return "", fmt.Errorf("--schema-evolution %q: want %s or %s", flag, postgres.EvolveColumns, postgres.EvolveOverflow)
	}
	switch got.From {
	case migration.MappingFromInferred:
		return flag, nil
	case migration.MappingFromRun:
		if env.Given != nil && env.Given(schemaEvolutionOption.Name) && got.RunConfig["schema-evolution"] != "" {
			return flag, nil
		}
		return got.RunConfig["schema-evolution"], nil
	case migration.MappingFromSync:
		if env.State == nil {
			return "", nil
		}
		run, err := env.State.LastFinishedRun(ctx, postgres.Job(record.KindDocument, ex.Source()))
		if err != nil || run == nil {
			return "", err
		}
		return run.Config["schema-evolution"], nil
	}
	return "", nil
}

// compareDocuments prepares plan and verify for documents, with the same
// mapping migrate would use, merging in the source's order of document
// IDs (extractors.KeyOrderOf).
func compareDocuments(ctx context.Context, env *buildEnv) (*comparer, error) {
	_, ex, err := env.Extractor(ctx, record.KindDocument)
	if err != nil {
		return nil, err
	}
	got, err := documentsMapping(ctx, env, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	m := got.Mapping
	var roots []string
	if r, ok := ex.(extractors.Rooted); ok {
		roots = r.Roots()
	}
	a, err := diff.NewDocuments(m, extractors.KeyOrderOf(ex), roots...)
	if err != nil {
		ex.Close()
		return nil, err
	}
	if extractors.IsUnordered(ex) {
		a.LookUpByKey()
	}
	if err := useVault(ctx, env, nil, a); err != nil {
		ex.Close()
		return nil, err
	}
	owner, err := tableOwner(env.Config, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	return &comparer{
		Extractor: ex,
		Adapter:   a,
		DDL: func(ctx context.Context) ([]diff.DDL, error) {
			stmts, err := postgres.SchemaChanges(ctx, env.Pool, m)
			err = errors.Join(postgres.CheckTableOwners(ctx, env.Pool, owner, postgres.MappingTables(m)), err)
			return diff.DDLFrom(stmts), err
		},
	}, nil
}

// documentsMapping chooses the mapping (migration.ChooseMapping) from
// --mapping, the state (unless --restart) and, except for verify, the
// source, and says which it took.
func documentsMapping(ctx context.Context, env *buildEnv, ex extractors.Extractor) (*migration.ChosenMapping, error) {
	sample, err := documentsSample(env)
	if err != nil {
		return nil, err
	}
	got, err := migration.ChooseMapping(ctx, ex, migration.MappingRequest{
		Path: env.Config.String(mappingOption.Name), State: env.State, Restart: env.Restart,
		NoInfer: env.Command == "verify" || env.Command == "cutover", Synced: env.Command == "verify" || env.Command == "cutover",
		Workers: env.Workers, Sample: sample,
	})
	if errors.Is(err, migration.ErrNoMapping) {
		return nil, errors.New("no mapping to verify against: pass --mapping, or run migrate first (it stores the mapping it used)")
	}
	if err != nil {
		return nil, err
	}
	switch got.From {
	case migration.MappingFromRun:
		env.Log.Info("using the mapping stored with run", "run", got.Run)
	case migration.MappingFromSync:
		env.Log.Info("using the mapping sync extended with new collections")
	case migration.MappingFromInferred:
		note := "it is stored with the run"
		if env.Command == "plan" {
			note = "migrate without --mapping would infer the same from the same data"
		}
		if sample != 0 && (env.Command == "migrate" || env.Command == "sync") {
			note += ", and grows with what the sample missed as the run copies"
		}
		fmt.Fprintf(env.Stderr, "no --mapping: inferred one from %d documents (%d tables, %d billable reads); %s. "+
			"To review or edit it first: baasmigrate infer --out mapping.yaml\n", got.Inference.Documents, len(got.Mapping.Tables), got.Inference.Reads, note)
	}
	return got, nil
}

// documentsSample reads --sample: migration.SampleAuto, 0 for all, or a
// number of documents. plan and verify read every document unless the
// option is given: they compare, and nothing grows the mapping for them.
func documentsSample(env *buildEnv) (int, error) {
	v := env.Config.String(runSampleOption.Name)
	if env.Command != "migrate" && env.Command != "sync" && (env.Given == nil || !env.Given(runSampleOption.Name)) {
		v = "all"
	}
	switch v {
	case "", "auto":
		return migration.SampleAuto, nil
	case "all":
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--sample %q: want auto, all or a number of documents", v)
	}
	return n, nil
}

func newInferCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Scan the source's documents (Firestore) and write a mapping (YAML) of collections to tables",
		Long: `infer reads the documents of the source (--source; for firebase, a Firestore database)
and writes a mapping: one table per collection path pattern (users/{}/orders →
users_orders), a typed column per field, a lossless _overflow column for everything else. Review it, edit it (rename, retype,
exclude, flatten), commit it, and pass it to migrate with --mapping.

Without --sample every document is read (one billed read each); with --sample N only
the first N documents of each root collection are, which is cheaper but may miss
fields and collections that migrate then puts in _overflow or rejects.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			source := sourceName(cmd.Flags())
			spec, err := extractors.ForKind(source, record.KindDocument)
			if err != nil {
				return &exitStatus{code: exitError, err: fmt.Errorf("--source: %w", err)}
			}
			opts := plugin.Merge(spec.Options, []plugin.Option{sampleOption})
			cfg, err := pluginConfig(cmd.Flags(), opts)
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			if err := plugin.CheckRequired(opts, cfg); err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			sample, err := cfg.Int(sampleOption.Name, 0)
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			workers, _ := cmd.Flags().GetInt("workers")
			ex, err := spec.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer ex.Close()
			children, _ := cmd.Flags().GetBool("child-tables")
			res, err := migration.Infer(ctx, ex, workers, sample, mappings.InferOptions{ChildTables: children})
			if err != nil {
				return err
			}
			text, err := res.Mapping.Marshal()
			if err != nil {
				return err
			}
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				_, err = cmd.OutOrStdout().Write(text)
				return err
			}
			if err := os.WriteFile(out, text, 0o644); err != nil {
				return fmt.Errorf("writing the mapping: %w", err)
			}
			reads := "unknown"
			if res.Reads >= 0 {
				reads = strconv.FormatInt(res.Reads, 10)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d tables from %d documents in %s (%s billable reads)\n",
				out, len(res.Mapping.Tables), res.Documents, res.Elapsed.Round(time.Millisecond), reads)
			for _, t := range res.Mapping.Tables {
				for _, c := range t.Columns {
					if c.Note != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "  table %s: field %s → column %s (%s)\n", t.Name, c.Field, c.Name, c.Note)
					}
				}
				printRelations(cmd.ErrOrStderr(), t)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("out", "", "Write the mapping to this `file` (default: standard output)")
	f.Int("workers", 4, "Partitions read at the same time")
	f.Bool("child-tables", false, "Map fields whose values are all arrays of maps to child tables (one row per element) instead of jsonb columns")
	addOptionFlags(f, plugin.Merge([]plugin.Option{sourceOption, sampleOption}, extractorOptions(record.KindDocument)))
	return cmd
}

// printRelations tells, after infer, which fields went to child tables and
// which reference columns could declare a foreign key.
func printRelations(w io.Writer, t *mappings.Table) {
	for _, ch := range t.Children {
		fmt.Fprintf(w, "  table %s: field %s → child table %s (one row per element)\n", t.Name, ch.Field, ch.Name)
	}
	for _, c := range t.Columns {
		if c.SuggestReferences != "" {
			fmt.Fprintf(w, "  table %s: every reference in %s points into %s; add `references: %s` to its column for a foreign key\n", t.Name, c.Field, c.SuggestReferences, c.SuggestReferences)
		}
	}
}
