package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
// takes and how to assemble its job from the extractor the chosen source
// registers for the kind (buildEnv.Extractor) and its sink. Each kind
// lives in its own file (kind_documents.go, ...) and registers itself in
// init.
type kindSpec struct {
	Kind record.Kind
	// Options are, as registered, the kind's own options (its target's).
	// registerKind adds those of every extractor of the kind (the flags of
	// migrate, plan and verify: kindOptions), and selectKinds narrows them
	// to the chosen source's extractor and the kind's own.
	Options []plugin.Option
	// Build assembles the job from resolved options.
	Build func(ctx context.Context, env *buildEnv) (migration.Job, error)
	// Compare assembles what plan and verify need. It must write nothing:
	// env.State, when set, is only read.
	Compare func(ctx context.Context, env *buildEnv) (*comparer, error)
	// own are the kind's own options, as registered.
	own []plugin.Option
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
	// Source is the platform migrated from (--source, resolved: never "").
	Source string
	Config plugin.Config
	Pool   *pgxpool.Pool
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

// Extractor builds the extractor env.Source registers for kind, from
// env.Config. The error of an unknown source lists the registered ones.
func (env *buildEnv) Extractor(ctx context.Context, kind record.Kind) (extractors.Spec, extractors.Extractor, error) {
	spec, err := extractors.ForKind(env.Source, kind)
	if err != nil {
		return extractors.Spec{}, nil, err
	}
	ex, err := spec.New(ctx, env.Config)
	if err != nil {
		return extractors.Spec{}, nil, err
	}
	return spec, ex, nil
}

var kindSpecs []*kindSpec

// registerKind adds a kind; its Options become kindOptions(k.Kind).
func registerKind(k *kindSpec) {
	k.own = k.Options
	kindSpecs = append(kindSpecs, k)
	k.Options = kindOptions(k.Kind)
	slices.SortFunc(kindSpecs, func(a, b *kindSpec) int {
		return slices.Index(record.Kinds, a.Kind) - slices.Index(record.Kinds, b.Kind)
	})
}

// runConfig is a job's settings: the sink's (target) settings, plus the
// settings the extractor says a run is bound to (extractors.Configured). A
// run resumes, or counts as done, only with the same ones.
func runConfig(ex extractors.Extractor, target map[string]string) map[string]string {
	out := maps.Clone(target)
	if c, ok := ex.(extractors.Configured); ok {
		maps.Copy(out, c.RunSettings())
	}
	return out
}

// kindOptions lists, each once, the options of every registered extractor
// of kind (whatever its source) and the kind's own options: the kind's
// flags.
func kindOptions(kind record.Kind) []plugin.Option {
	lists := [][]plugin.Option{extractorOptions(kind)}
	for _, k := range kindSpecs {
		if k.Kind == kind {
			lists = append(lists, k.own)
		}
	}
	return plugin.Merge(lists...)
}

// extractorOptions lists, each once, the options of every registered
// extractor of kind, whatever its source.
func extractorOptions(kind record.Kind) []plugin.Option {
	var lists [][]plugin.Option
	for _, spec := range extractors.All() {
		if spec.Kind == kind {
			lists = append(lists, spec.Options)
		}
	}
	return plugin.Merge(lists...)
}

// allKindOptions lists the options of every kind, each once, and
// --source, which picks the extractor of each.
func allKindOptions() []plugin.Option {
	lists := [][]plugin.Option{{sourceOption}}
	for _, k := range kindSpecs {
		lists = append(lists, k.Options)
	}
	return plugin.Merge(lists...)
}

// selectKinds parses --only ("" = every kind source offers), in migration
// order, for source. The kinds returned take the options of source's
// extractor and their own. It fails for an unknown source (listing the
// registered ones), an unknown kind, and a kind source does not offer.
func selectKinds(only, source string) ([]*kindSpec, error) {
	if err := extractors.CheckSource(source); err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	want := map[record.Kind]bool{}
	explicit := strings.TrimSpace(only) != ""
	if explicit {
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
	}
	var out []*kindSpec
	for _, k := range kindSpecs {
		if explicit && !want[k.Kind] {
			continue
		}
		spec, err := extractors.ForKind(source, k.Kind)
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("--only: %w", err)
			}
			continue // a kind the source does not have
		}
		narrowed := *k
		narrowed.Options = plugin.Merge(spec.Options, k.own)
		out = append(out, &narrowed)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--source: source %q offers none of the kinds baasmigrate migrates", source)
	}
	return out, nil
}
