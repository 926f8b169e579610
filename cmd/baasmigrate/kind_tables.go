package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// The tables kind copies a PostgreSQL source's tables (Supabase's
// schemas) as they are: their definition from the source's catalog, then
// their rows. It is a kind of its own, not documents: rows keep their
// columns and types instead of going through a mapping.
func init() {
	registerKind(&kindSpec{
		Kind:    record.KindTable,
		Options: []plugin.Option{shareTablesOption},
		Build:   buildTables,
		Compare: compareTables,
	})
}

// catalogExtractor is an extractor of tables: it knows the definition of
// what it reads, and can read for a comparison.
type catalogExtractor interface {
	extractors.Extractor
	Catalog() *pgcatalog.Catalog
	ForComparison()
}

func tablesExtractor(ctx context.Context, env *buildEnv) (catalogExtractor, error) {
	_, ex, err := env.Extractor(ctx, record.KindTable)
	if err != nil {
		return nil, err
	}
	ce, ok := ex.(catalogExtractor)
	if !ok {
		ex.Close()
		return nil, fmt.Errorf("the %s source's tables extractor does not describe its tables", env.Source)
	}
	return ce, nil
}

// tablesSink is the sink of ex's tables, claimed for owner, their source.
func tablesSink(env *buildEnv, ex catalogExtractor) (*postgres.TablesSink, postgres.Owner, error) {
	owner, err := tableOwner(env.Config, ex)
	if err != nil {
		return nil, owner, err
	}
	return postgres.NewTables(postgres.TablesConfig{Catalog: ex.Catalog(), Owner: owner, Log: env.Log}), owner, nil
}

// buildTables assembles the tables → PostgreSQL job, and tells what is
// not copied (policies, functions, triggers, ...; plan lists them with
// their definitions).
func buildTables(ctx context.Context, env *buildEnv) (migration.Job, error) {
	ex, err := tablesExtractor(ctx, env)
	if err != nil {
		return migration.Job{}, err
	}
	sink, owner, err := tablesSink(env, ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	// Refuse before the run is recorded; Prepare checks again, atomically.
	if err := postgres.CheckTableOwners(ctx, env.Pool, owner, sink.Tables()); err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	notes, err := sink.Notes(ctx, env.Pool)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	if len(notes) > 0 {
		fmt.Fprintf(env.Stderr, "tables: %d objects are not copied (baasmigrate plan --only tables lists them with their definitions):\n", len(notes))
		for _, n := range notes {
			fmt.Fprintf(env.Stderr, "  %s\n", n.What)
		}
	}
	return migration.Job{Kind: record.KindTable, Extractor: ex, Sink: sink, Config: runConfig(ex, map[string]string{})}, nil
}

// compareTables prepares plan and verify for tables: every row compared
// column by column with the target's table of the same name; plan also
// lists the DDL migrate would run and, as "not copied" entries, what it
// does not reproduce.
func compareTables(ctx context.Context, env *buildEnv) (*comparer, error) {
	ex, err := tablesExtractor(ctx, env)
	if err != nil {
		return nil, err
	}
	ex.ForComparison()
	sink, _, err := tablesSink(env, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	return &comparer{
		Extractor: ex,
		Adapter:   diff.NewTables(ex.Catalog()),
		DDL: func(ctx context.Context) ([]diff.DDL, error) {
			stmts, err := sink.PlannedDDL(ctx, env.Pool)
			out := diff.DDLFrom(stmts)
			notes, nerr := sink.Notes(ctx, env.Pool)
			if nerr != nil {
				return out, nerr
			}
			for _, n := range notes {
				out = append(out, diff.DDL{What: n.Describe(), SQL: n.SQL})
			}
			return out, err
		},
	}, nil
}

// Tables are followed through the source's logical replication (a slot
// that sync creates before the copy), and an identical cutover sets the
// target's sequences past the source's.
func init() {
	syncKeepers[record.KindTable] = true
	syncFinishers[record.KindTable] = tablesFinish
}

// tablesFinish sets the target's sequences at or past the source's values
// (read by the extractor's finish stream), in one transaction.
func tablesFinish(ex extractors.Extractor, sink loaders.Sink, pool *pgxpool.Pool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ts, ok := sink.(*postgres.TablesSink)
		if !ok {
			return "", fmt.Errorf("the tables sink cannot set sequences")
		}
		var seqs string
		err := ex.Read(ctx, extractors.Partition{Stream: pgcatalog.FinishStream, ID: "0"}, time.Time{}, "", func(r record.Record) error {
			seqs = r.Fields[pgcatalog.FieldSequences].StringValue()
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("reading the source's sequences: %w", err)
		}
		var n int
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			n, err = ts.RaiseSequences(ctx, tx, seqs)
			return err
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d sequence(s) set past the source's values (the others were already)", n), nil
	}
}
