package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// The direct load path. A batch whose keys cannot exist in its table yet —
// the table was created by this sink's Prepare, so only this run's own
// batches (and its placeholders of missing parents) can have written it —
// is COPied straight into the table, under a savepoint: one write per row
// instead of a COPY into a staging table plus an upsert, and a commit that
// truncates no staging table.
//
// The assumption is checked by PostgreSQL, not trusted: the table's
// primary key makes the COPY fail with a unique violation as soon as one
// key of the batch is there already — a placeholder another batch
// inserted, a batch retried after a lost commit acknowledgement, a
// partition resumed past what was committed, another process writing the
// same table. A failed COPY is rolled back to its savepoint and the batch
// takes the staging path (COPY into staging, INSERT ... ON CONFLICT), so
// the result is exactly what the staging path alone produces: a COPY that
// succeeds inserted only new keys, which is all the upsert would have
// done, and one that fails left nothing behind. The same holds for any
// other refusal of the COPY (a bad value, a check constraint): the staging
// path finds and rejects the bad rows as it always did.
//
// A table leaves the direct path until the next Prepare after
// directGiveUp fallbacks in a row (a table whose rows mostly exist
// already, such as one sync keeps updating), or after an error that is
// not about the data (say, row-level security refusing COPY).

// directGiveUp is how many fallbacks in a row end a table's direct path.
const directGiveUp = 4

// LoadStats counts how the batches of a Documents sink were loaded, table
// by table: a batch writing three tables counts three times.
type LoadStats struct {
	// Direct counts table batches COPied straight into their table.
	Direct int64
	// Fallbacks counts table batches whose direct COPY was refused (and
	// rolled back) and that then took the staging path.
	Fallbacks int64
	// Staged counts table batches that took the staging path, fallbacks
	// included.
	Staged int64
	// Placeholders counts table batches that sent the lock-and-insert of
	// placeholder rows for parents (parents the batch itself COPied in
	// need none: see Documents.Write).
	Placeholders int64
}

// directPaths tracks which tables of a sink may be loaded directly.
type directPaths struct {
	mu sync.Mutex
	// streak counts each eligible table's fallbacks in a row, by table
	// name (so that it survives a mapping that gains columns); a table
	// absent from it is not eligible (any more).
	streak                                  map[string]int
	direct, fallbacks, staged, placeholders atomic.Int64
}

// reset makes exactly the tables in fresh eligible and zeroes the counts.
func (p *directPaths) reset(fresh []*mappings.Table) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.streak = map[string]int{}
	for _, t := range fresh {
		p.streak[t.Name] = 0
	}
	p.direct.Store(0)
	p.fallbacks.Store(0)
	p.staged.Store(0)
	p.placeholders.Store(0)
}

func (p *directPaths) eligible(t *mappings.Table) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.streak[t.Name]
	return ok
}

// succeeded records a direct load of t.
func (p *directPaths) succeeded(t *mappings.Table) {
	p.direct.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.streak[t.Name]; ok {
		p.streak[t.Name] = 0
	}
}

// fellBack records a refused direct load of t; giveUp ends t's direct
// path at once.
func (p *directPaths) fellBack(t *mappings.Table, giveUp bool) {
	p.fallbacks.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.streak[t.Name]
	if !ok {
		return
	}
	if giveUp || n+1 >= directGiveUp {
		delete(p.streak, t.Name)
		return
	}
	p.streak[t.Name] = n + 1
}

func (p *directPaths) stats() LoadStats {
	return LoadStats{Direct: p.direct.Load(), Fallbacks: p.fallbacks.Load(), Staged: p.staged.Load(), Placeholders: p.placeholders.Load()}
}

// LoadStats returns how this sink's batches were loaded since Prepare.
func (d *Documents) LoadStats() LoadStats { return d.paths.stats() }

// load writes the rows of one table of a batch: directly when t is
// eligible and the COPY goes through, through staging and the upsert
// otherwise (see the direct load path above). It returns what upsert
// returns, and whether the rows were COPied in directly: then every row
// is one tx inserted, so tx holds its lock.
func (d *Documents) load(ctx context.Context, tx pgx.Tx, t *mappings.Table, def *tableDef, rows [][]any) (changed int64, rejects map[int]string, direct bool, err error) {
	if len(rows) == 0 {
		return 0, nil, false, nil
	}
	if d.paths.eligible(t) {
		n, err := underSavepoint(ctx, tx, func(sp pgx.Tx) (int64, error) {
			return copyRows(ctx, sp, def.Name, def.Columns, rows)
		})
		if err == nil {
			d.paths.succeeded(t)
			return n, nil, true, nil
		}
		// A refusal of the rows falls back; any other refusal by the
		// server that retrying would not pass (row-level security, say)
		// falls back too and ends t's direct path. A lost connection, a
		// deadlock or a cancelled context fails the batch, as on the
		// staging path, for the caller to retry it whole.
		var pgErr *pgconn.PgError
		data := isDataError(err)
		if !data && !(errors.As(err, &pgErr) && failure.Classify(err) == failure.Permanent) {
			return 0, nil, false, fmt.Errorf("copying %d rows into %s: %w", len(rows), def.Name.Sanitize(), err)
		}
		d.paths.fellBack(t, !data)
	}
	d.paths.staged.Add(1)
	changed, rejects, err = def.upsert(ctx, tx, rows)
	return changed, rejects, false, err
}

// freshTables returns the tables of m that do not exist in db, by name.
func freshTables(ctx context.Context, db loaders.DB, m *mappings.Mapping) ([]*mappings.Table, error) {
	var fresh []*mappings.Table
	for _, t := range m.Tables {
		var exists bool
		name := pgx.Identifier{m.Schema, t.Name}.Sanitize()
		if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
			return nil, fmt.Errorf("looking up table %s: %w", name, err)
		}
		if !exists {
			fresh = append(fresh, t)
		}
	}
	return fresh, nil
}
