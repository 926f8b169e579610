package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"

	_ "github.com/baasmigrate/baasmigrate/extractors/firestore"
)

var (
	mappingOption = plugin.Option{
		Name: "mapping",
		Help: "Mapping file (YAML) written by `baasmigrate infer`, perhaps edited; without it documents are scanned and a mapping inferred first.",
	}
	sampleOption = plugin.Option{
		Name:    "sample",
		Help:    "When inferring a mapping, read at most this many documents per root collection (0: all, the exact choice).",
		Default: "0",
	}
)

func firestoreSpec() extractors.Spec {
	spec, ok := extractors.Lookup("firestore")
	if !ok {
		panic("the firestore extractor is not registered")
	}
	return spec
}

func init() {
	registerKind(&kindSpec{
		Kind:    record.KindDocument,
		Options: append(append([]plugin.Option(nil), firestoreSpec().Options...), mappingOption, sampleOption, shareTablesOption),
		Build:   buildDocuments,
		Compare: compareDocuments,
	})
}

// buildDocuments assembles the Firestore → PostgreSQL job. The mapping is,
// in order: --mapping; the one stored with the interrupted (or finished)
// run of the same source, so a resumed run keeps its layout; an inferred one.
func buildDocuments(ctx context.Context, env *buildEnv) (migration.Job, error) {
	ex, err := firestoreSpec().New(ctx, env.Config)
	if err != nil {
		return migration.Job{}, err
	}
	m, err := documentsMapping(ctx, env, ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	text, err := m.Marshal()
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	sink, err := postgres.NewDocuments(m)
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
	// Refuse before the run is recorded; Prepare checks again, atomically.
	if err := postgres.CheckTableOwners(ctx, env.Pool, owner, postgres.MappingTables(m)); err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	return migration.Job{
		Kind: record.KindDocument, Extractor: ex, Sink: sink,
		Config: map[string]string{"mapping": string(text), "collections": env.Config.String("collections")},
	}, nil
}

// compareDocuments prepares plan and verify for documents, with the same
// mapping migrate would use.
func compareDocuments(ctx context.Context, env *buildEnv) (*comparer, error) {
	ex, err := firestoreSpec().New(ctx, env.Config)
	if err != nil {
		return nil, err
	}
	m, err := documentsMapping(ctx, env, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	var roots []string
	for _, c := range strings.Split(env.Config.String("collections"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			roots = append(roots, c)
		}
	}
	a, err := diff.NewDocuments(m, roots...)
	if err != nil {
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
			out := make([]diff.DDL, len(stmts))
			for i, s := range stmts {
				out[i] = diff.DDL{What: s.What, SQL: s.SQL}
			}
			return out, err
		},
	}, nil
}

func documentsMapping(ctx context.Context, env *buildEnv, ex extractors.Extractor) (*mappings.Mapping, error) {
	if path := env.Config.String(mappingOption.Name); path != "" {
		return mappings.Load(path)
	}
	if env.State != nil && !env.Restart {
		job := postgres.Job(record.KindDocument, ex.Source())
		run, err := env.State.RunningRun(ctx, job)
		if err != nil {
			return nil, err
		}
		if run == nil {
			if run, err = env.State.LastFinishedRun(ctx, job); err != nil {
				return nil, err
			}
		}
		if run != nil && run.Config["mapping"] != "" {
			env.Log.Info("using the mapping stored with run", "run", run.ID)
			return mappings.Parse([]byte(run.Config["mapping"]), fmt.Sprintf("(mapping of run %d)", run.ID))
		}
	}
	if env.Command == "verify" {
		return nil, errors.New("no mapping to verify against: pass --mapping, or run migrate first (it stores the mapping it used)")
	}
	sample, err := env.Config.Int(sampleOption.Name, 0)
	if err != nil {
		return nil, err
	}
	res, err := inferMapping(ctx, ex, env.Workers, sample)
	if err != nil {
		return nil, err
	}
	note := "it is stored with the run"
	if env.Command == "plan" {
		note = "migrate without --mapping would infer the same from the same data"
	}
	fmt.Fprintf(env.Stderr, "no --mapping: inferred one from %d documents (%d tables, %d billable reads); %s. "+
		"To review or edit it first: baasmigrate infer --out mapping.yaml\n", res.documents, len(res.mapping.Tables), res.reads, note)
	return res.mapping, nil
}

type inference struct {
	mapping   *mappings.Mapping
	documents int64
	reads     int64
	elapsed   time.Duration
}

var errSampleFull = errors.New("sample complete")

// inferMapping scans the source (every document, or the first sample of
// each root collection) and infers a mapping. Streams and partitions are
// read in parallel, workers at a time.
func inferMapping(ctx context.Context, ex extractors.Extractor, workers, sample int) (*inference, error) {
	start := time.Now()
	var readTime time.Time
	if s, ok := ex.(extractors.Snapshotter); ok {
		t, err := s.SnapshotTime(ctx)
		if err != nil {
			return nil, err
		}
		readTime = t
	}
	parts := workers
	if sample > 0 {
		parts = 1 // a sample is the first documents of each root collection, deterministically
	}
	streams, err := ex.Plan(ctx, parts, readTime)
	if err != nil {
		return nil, fmt.Errorf("planning the scan: %w", err)
	}
	in := mappings.NewInferrer(mappings.InferOptions{})
	var docs atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for _, st := range streams {
		rt := st.ReadTime
		if rt.IsZero() {
			rt = readTime
		}
		for _, p := range st.Partitions {
			g.Go(func() error {
				n := 0
				err := ex.Read(gctx, p, rt, "", func(r record.Record) error {
					in.Observe(r.Key, r.Fields)
					docs.Add(1)
					if n++; sample > 0 && n >= sample {
						return errSampleFull
					}
					return nil
				})
				if errors.Is(err, errSampleFull) {
					return nil
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scanning documents: %w", err)
	}
	res := &inference{mapping: in.Mapping(), documents: docs.Load(), reads: -1, elapsed: time.Since(start)}
	if m, ok := ex.(extractors.ReadMeter); ok {
		res.reads = m.BillableReads()
	}
	return res, nil
}

func newInferCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Scan Firestore and write a mapping (YAML) of collections to tables",
		Long: `infer reads the documents of a Firestore database and writes a mapping: one table per
collection path pattern (users/{}/orders → users_orders), a typed column per field,
a lossless _overflow column for everything else. Review it, edit it (rename, retype,
exclude, flatten), commit it, and pass it to migrate with --mapping.

Without --sample every document is read (one billed read each); with --sample N only
the first N documents of each root collection are, which is cheaper but may miss
fields and collections that migrate then puts in _overflow or rejects.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts := append(append([]plugin.Option(nil), firestoreSpec().Options...), sampleOption)
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
			ex, err := firestoreSpec().New(ctx, cfg)
			if err != nil {
				return err
			}
			defer ex.Close()
			res, err := inferMapping(ctx, ex, workers, sample)
			if err != nil {
				return err
			}
			text, err := res.mapping.Marshal()
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
			if res.reads >= 0 {
				reads = strconv.FormatInt(res.reads, 10)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d tables from %d documents in %s (%s billable reads)\n",
				out, len(res.mapping.Tables), res.documents, res.elapsed.Round(time.Millisecond), reads)
			for _, t := range res.mapping.Tables {
				for _, c := range t.Columns {
					if c.Note != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "  table %s: field %s → column %s (%s)\n", t.Name, c.Field, c.Name, c.Note)
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("out", "", "Write the mapping to this `file` (default: standard output)")
	f.Int("workers", 4, "Partitions read at the same time")
	addOptionFlags(f, append(append([]plugin.Option(nil), firestoreSpec().Options...), sampleOption))
	return cmd
}
