package syncer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
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
	if err := f.remap(ctx, m); err != nil {
		return err
	}
	text, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		return f.state.SetSyncMapping(ctx, tx, f.job.Name, string(text))
	}); err != nil {
		return err
	}
	f.st.Mapping = string(text)
	f.log.Warn("new collections appeared at the source; tables were inferred and created for them (review them with baasmigrate status, or use --new-collections reject)", "collections", added)
	return nil
}
