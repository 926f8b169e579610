package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// kindSpec tells the CLI how to migrate one kind of record: which options it
// takes and how to assemble its extractor and sink. Each kind lives in its
// own file (kind_documents.go, ...) and registers itself in init.
type kindSpec struct {
	Kind record.Kind
	// Options are the kind's flags on migrate, plan and verify.
	Options []plugin.Option
	// Build assembles the job from resolved options.
	Build func(ctx context.Context, env *buildEnv) (migration.Job, error)
	// Compare assembles what plan and verify need. It must write nothing:
	// env.State, when set, is only read.
	Compare func(ctx context.Context, env *buildEnv) (*comparer, error)
}

// comparer is one kind's part of plan and verify.
type comparer struct {
	Extractor extractors.Extractor
	Adapter   diff.Adapter
	// DDL, if set, lists the statements migrate would run (for plan) and
	// the differences it would refuse.
	DDL func(ctx context.Context) ([]diff.DDL, error)
	// Bytes, if set, returns the bytes migrate would copy given the
	// comparison (files).
	Bytes func(r *diff.Report) int64
}

// buildEnv is what a kind's Build gets to work with.
type buildEnv struct {
	// Command is the subcommand running: "migrate", "plan" or "verify".
	Command string
	Config  plugin.Config
	Pool    *pgxpool.Pool
	// State is the tool's state; nil for commands that must not create it
	// (plan).
	State   *postgres.State
	Log     *slog.Logger
	Stderr  io.Writer
	Workers int
	// Restart is set when the user asked to start over.
	Restart bool
	// Given reports whether the user set an option on the command line or
	// in the --config file (not through the environment or its default);
	// nil means never.
	Given func(option string) bool
}

var kindSpecs []*kindSpec

func registerKind(k *kindSpec) {
	kindSpecs = append(kindSpecs, k)
	slices.SortFunc(kindSpecs, func(a, b *kindSpec) int {
		return slices.Index(record.Kinds, a.Kind) - slices.Index(record.Kinds, b.Kind)
	})
}

// allKindOptions lists the options of every kind, each once.
func allKindOptions() []plugin.Option {
	var lists [][]plugin.Option
	for _, k := range kindSpecs {
		lists = append(lists, k.Options)
	}
	return plugin.Merge(lists...)
}

// selectKinds parses --only ("" = every kind), in migration order.
func selectKinds(only string) ([]*kindSpec, error) {
	if strings.TrimSpace(only) == "" {
		return kindSpecs, nil
	}
	want := map[record.Kind]bool{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		k := record.Kind(strings.TrimSuffix(s, "s"))
		found := false
		for _, spec := range kindSpecs {
			if spec.Kind == k {
				found = true
			}
		}
		if !found {
			var names []string
			for _, spec := range kindSpecs {
				names = append(names, string(spec.Kind)+"s")
			}
			return nil, fmt.Errorf("--only: unknown kind %q (choose from %s)", s, strings.Join(names, ", "))
		}
		want[k] = true
	}
	var out []*kindSpec
	for _, spec := range kindSpecs {
		if want[spec.Kind] {
			out = append(out, spec)
		}
	}
	return out, nil
}
