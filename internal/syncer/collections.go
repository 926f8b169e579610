package syncer

import (
	"context"
	"fmt"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// newCollections handles documents of collection patterns the mapping has
// no table for. With NewCollectionsReject they go on to the sink, which
// rejects them with that reason (stored, counted, shown by status). With
// NewCollectionsInfer, tables are inferred from these documents, added to
// the mapping and created before the documents are written; the extended
// mapping is stored with the sync state, where verify and cutover find it.
func (f *follower) newCollections(ctx context.Context, changes []record.Change) error {
	if f.opts.NewCollections != NewCollectionsInfer {
		return nil
	}
	var fresh []record.Record
	for _, c := range changes {
		if c.Op != record.OpUpsert {
			continue
		}
		pattern, _, err := mappings.PatternOf(c.Record.Key)
		if err != nil || f.job.Mapping.TableFor(pattern) != nil {
			continue // a bad path is the sink's to reject
		}
		fresh = append(fresh, c.Record)
	}
	if len(fresh) == 0 {
		return nil
	}
	m, added, err := mappings.Extend(f.job.Mapping, fresh)
	if err != nil {
		return fmt.Errorf("inferring tables for new collections: %w", err)
	}
	if len(added) == 0 {
		return nil
	}
	// A table created by a sync killed before it stored the mapping keeps
	// the types it was created with.
	if err := postgres.FitExisting(ctx, f.pool, f.job.Mapping, m); err != nil {
		return err
	}
	if err := f.remap(ctx, m, true); err != nil {
		return err
	}
	f.log.Warn("new collections appeared at the source; tables were inferred and created for them (review them with baasmigrate status, or use --new-collections reject)", "collections", added)
	return nil
}

// grower is a sink whose mapping grows in the batches it writes
// (postgres.EvolvingDocuments): new fields get columns, and new
// collections tables, in the transaction of the batch that needs them.
type grower interface {
	SetNewTables(on bool)
	Grown() []string
	Refresh(ctx context.Context, db loaders.DB) (*mappings.Mapping, error)
}

// configureGrowth tells a growing sink whether it may create tables
// itself: only with NewCollectionsInfer (with reject, such documents are
// the sink's to reject).
func (f *follower) configureGrowth(sink loaders.Sink) {
	if g, ok := sink.(grower); ok {
		g.SetNewTables(f.opts.NewCollections == NewCollectionsInfer)
	}
}

// followGrowth, after a committed chunk, takes the mapping a growing sink
// stored (with the chunk) as the job's, so that comparisons (polls,
// cutover) read the columns it added.
func (f *follower) followGrowth(ctx context.Context) error {
	g, ok := f.job.Sink.(grower)
	if !ok || f.job.Remap == nil || len(g.Grown()) == f.grownSeen {
		return nil
	}
	f.grownSeen = len(g.Grown())
	m, err := g.Refresh(ctx, f.pool)
	if err != nil {
		return err
	}
	if m == f.job.Mapping {
		return nil
	}
	_, adapter, err := f.job.Remap(m)
	if err != nil {
		return err
	}
	f.job.Adapter, f.job.Mapping = adapter, m
	f.log.Info("the mapping grew with fields or collections that appeared at the source", "grown", g.Grown())
	return nil
}
