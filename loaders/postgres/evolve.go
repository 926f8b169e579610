package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

// Schema evolution modes (EvolvingDocuments, --schema-evolution).
const (
	// EvolveColumns gives a field the mapping does not cover a column of
	// its own (ALTER TABLE ... ADD COLUMN), committed with the batch that
	// first holds it.
	EvolveColumns = "columns"
	// EvolveOverflow leaves such fields in the overflow column: existing
	// tables are never altered during the run.
	EvolveOverflow = "overflow"
)

// MappingStore is where an EvolvingDocuments keeps the mapping its rows
// follow. Both methods run inside the transaction of a batch, which holds
// the DDL lock (see EvolvingDocuments.Write), so what StoreMapping writes
// commits or rolls back with the rows and the DDL that need it;
// LoadMapping also runs outside one (Refresh).
type MappingStore interface {
	// LoadMapping returns the stored mapping (YAML), or "" when none is
	// stored yet: the sink's first mapping then holds.
	LoadMapping(ctx context.Context, db loaders.DB) (string, error)
	// StoreMapping replaces the stored mapping.
	StoreMapping(ctx context.Context, tx pgx.Tx, mapping string) error
}

// RunMapping stores the mapping as the configuration entry "mapping" of
// job's running run: where migrate records the mapping a run used, and
// where a resumed run, verify and plan find it.
func RunMapping(job string) MappingStore { return runMapping(job) }

type runMapping string

func (j runMapping) LoadMapping(ctx context.Context, tx loaders.DB) (string, error) {
	var m *string
	err := tx.QueryRow(ctx, `SELECT config->>'mapping' FROM baasmigrate.runs WHERE job = $1 AND status = 'running'`, string(j)).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("reading the mapping of %q: it has no running run", string(j))
	}
	if err != nil || m == nil {
		return "", err
	}
	return *m, nil
}

func (j runMapping) StoreMapping(ctx context.Context, tx pgx.Tx, mapping string) error {
	tag, err := tx.Exec(ctx, `UPDATE baasmigrate.runs SET config = jsonb_set(config, '{mapping}', to_jsonb($2::text))
		WHERE job = $1 AND status = 'running'`, string(j), mapping)
	if err != nil {
		return fmt.Errorf("recording the grown mapping with the run of %q: %w", string(j), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("recording the grown mapping with the run of %q: it has no running run", string(j))
	}
	return nil
}

// SyncMapping stores the mapping as job's sync state mapping (the one
// State.SyncMapping returns, which verify and cutover use). The sync state
// must exist (State.StartSync) before a batch grows the mapping.
func SyncMapping(job string) MappingStore { return syncMapping(job) }

type syncMapping string

func (j syncMapping) LoadMapping(ctx context.Context, tx loaders.DB) (string, error) {
	var m string
	err := tx.QueryRow(ctx, `SELECT mapping FROM baasmigrate.sync_streams WHERE job = $1`, string(j)).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the sync mapping of %q: %w", string(j), err)
	}
	return m, nil
}

func (j syncMapping) StoreMapping(ctx context.Context, tx pgx.Tx, mapping string) error {
	tag, err := tx.Exec(ctx, `UPDATE baasmigrate.sync_streams SET mapping = $2, updated_at = now() WHERE job = $1`, string(j), mapping)
	if err != nil {
		return fmt.Errorf("recording the grown mapping of %q's sync: %w", string(j), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("recording the grown mapping of %q's sync: it has no sync state", string(j))
	}
	return nil
}

// EvolveConfig configures an EvolvingDocuments.
type EvolveConfig struct {
	// Mode is EvolveColumns or EvolveOverflow. Collections the mapping has
	// no table for get one in both modes.
	Mode string
	// Store keeps the mapping with the batches (RunMapping, SyncMapping).
	Store MappingStore
	// MaxColumns caps a table's mapped columns (mappings.EvolveOptions).
	MaxColumns int
}

// EvolvingDocuments is a Documents sink whose mapping grows during the
// run: a batch holding documents of a collection the mapping has no table
// for, or (EvolveColumns) top-level fields no column covers, first grows
// the mapping (mappings.Evolve), creates the tables and columns, and
// stores the grown mapping (Store) — all in the batch's own transaction,
// so the DDL, the recorded mapping, the rows and the checkpoint commit or
// roll back together, and a killed run leaves neither a column nor a
// mapping entry without the other.
//
// Concurrency: growing batches serialise on the DDL lock (the advisory
// lock Prepare and ClaimTables take), taken before the batch's first row;
// under it they read the stored mapping again (what another batch grew
// and committed meanwhile), grow that, and read the catalog again
// (SchemaChanges) before altering anything, so no column is added twice
// or lost. ALTER TABLE takes its ACCESS EXCLUSIVE locks in the order
// tables are written (parents first), before any row of the batch, the
// order every batch takes its row locks in; a batch that grows nothing
// never waits for the DDL lock. The sink's own view of the mapping only
// ever moves to a stored (committed) mapping, never to one a batch in
// flight proposed. Rows written under an older mapping keep a field in
// the overflow where a newer one has a column; reading back merges both,
// so verification compares either the same.
type EvolvingDocuments struct {
	cfg      EvolveConfig
	owner    Owner
	soft     bool
	noTables bool
	vault    *pii.Vault // SetVault's; nil: each sink's default (the target)
	// deferring: prepared by PrepareToFinish, so growing batches leave
	// foreign keys to Finish too.
	deferring bool

	mu   sync.Mutex
	cur  *Documents // the latest stored mapping's sink
	text string     // the latest stored mapping ("" before anything was read)
	// grown counts the schema changes this process committed (tests,
	// summaries).
	grown []string
}

var (
	_ loaders.Sink        = (*EvolvingDocuments)(nil)
	_ loaders.Labeler     = (*EvolvingDocuments)(nil)
	_ loaders.Finisher    = (*EvolvingDocuments)(nil)
	_ loaders.Deleter     = (*EvolvingDocuments)(nil)
	_ loaders.SoftDeleter = (*EvolvingDocuments)(nil)
)

// NewEvolvingDocuments prepares loading into the tables of m (validated),
// growing it as cfg says.
func NewEvolvingDocuments(m *mappings.Mapping, cfg EvolveConfig) (*EvolvingDocuments, error) {
	if cfg.Mode != EvolveColumns && cfg.Mode != EvolveOverflow {
		return nil, fmt.Errorf("schema evolution %q: want %s or %s", cfg.Mode, EvolveColumns, EvolveOverflow)
	}
	if cfg.Store == nil {
		return nil, errors.New("schema evolution needs a store for the mapping")
	}
	d, err := NewDocuments(m)
	if err != nil {
		return nil, err
	}
	return &EvolvingDocuments{cfg: cfg, cur: d}, nil
}

// SetOwner makes Prepare, and every batch that creates a table, claim the
// tables for o (see ClaimTables).
func (e *EvolvingDocuments) SetOwner(o Owner) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.owner = o
	e.cur.SetOwner(o)
}

// SetSoftDeletes is Documents.SetSoftDeletes; tables created during the
// run get the deletion-time column too. Call it before Prepare.
func (e *EvolvingDocuments) SetSoftDeletes(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.soft = on
	e.cur.SetSoftDeletes(on)
}

// SetVault is Documents.SetVault, for the current mapping and every one
// it grows into. Call it before Prepare.
func (e *EvolvingDocuments) SetVault(v *pii.Vault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vault = v
	e.cur.SetVault(v)
}

// SetNewTables says whether documents of collections without a table get
// one (the default) or are left to be rejected (sync's --new-collections
// reject).
func (e *EvolvingDocuments) SetNewTables(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noTables = !on
}

// Refresh reads the stored mapping (what committed batches grew) from db
// and makes it the sink's, for a caller that has just committed batches
// and wants the mapping they follow (sync's comparisons). It returns the
// sink's mapping.
func (e *EvolvingDocuments) Refresh(ctx context.Context, db loaders.DB) (*mappings.Mapping, error) {
	d, err := e.stored(ctx, db)
	if err != nil {
		return nil, err
	}
	return d.mapping, nil
}

// Mapping returns the latest mapping this sink knows to be stored
// (committed); batches in flight may be growing it.
func (e *EvolvingDocuments) Mapping() *mappings.Mapping { return e.current().mapping }

// Grown lists the tables ("table <pattern>") and columns ("column
// table.column") batches of this sink added, in commit-attempt order;
// entries of batches that rolled back may be listed too.
func (e *EvolvingDocuments) Grown() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.grown...)
}

func (e *EvolvingDocuments) current() *Documents {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur
}

// TableLabel is Documents.TableLabel for the current mapping
// (loaders.Labeler).
func (e *EvolvingDocuments) TableLabel(key string) string {
	if d := e.current(); d != nil {
		return d.TableLabel(key)
	}
	return "(no mapping)"
}

// Prepare is Documents.Prepare for the current mapping.
func (e *EvolvingDocuments) Prepare(ctx context.Context, db loaders.DB) error {
	e.setDeferring(false)
	return e.current().Prepare(ctx, db)
}

// PrepareToFinish is Documents.PrepareToFinish for the current mapping;
// tables that batches create during the run get their foreign keys at its
// end too, and adding columns to a table leaves its deferred key waiting.
func (e *EvolvingDocuments) PrepareToFinish(ctx context.Context, db loaders.DB) error {
	e.setDeferring(true)
	return e.current().PrepareToFinish(ctx, db)
}

// Finish is Documents.Finish for the latest stored mapping (the tables
// batches created included).
func (e *EvolvingDocuments) Finish(ctx context.Context, db loaders.DB) error {
	d, err := e.stored(ctx, db)
	if err != nil {
		return err
	}
	return d.Finish(ctx, db)
}

// Warnings is Documents.Warnings for the current mapping (references are
// declared by the user's mapping; growing never adds one). It runs after
// the run is recorded finished.
func (e *EvolvingDocuments) Warnings(ctx context.Context, db loaders.DB) ([]string, error) {
	return e.current().Warnings(ctx, db)
}

func (e *EvolvingDocuments) setDeferring(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deferring = on
}

// Delete is Documents.Delete with the current mapping: documents of a
// collection with no table have no row.
func (e *EvolvingDocuments) Delete(ctx context.Context, tx pgx.Tx, keys []string, at time.Time, soft bool) (loaders.Outcome, error) {
	return e.current().Delete(ctx, tx, keys, at, soft)
}

func (e *EvolvingDocuments) evolveOptions() mappings.EvolveOptions {
	e.mu.Lock()
	defer e.mu.Unlock()
	return mappings.EvolveOptions{Columns: e.cfg.Mode == EvolveColumns, MaxColumns: e.cfg.MaxColumns,
		ReservedColumns: []string{loaders.DeletedAtColumn}, NoTables: e.noTables}
}

// Write writes recs like Documents.Write, first growing the mapping when
// they need it (see EvolvingDocuments).
func (e *EvolvingDocuments) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	d := e.current()
	ev, err := mappings.Evolve(d.mapping, recs, e.evolveOptions())
	if err != nil {
		return loaders.Outcome{}, err
	}
	if ev == nil {
		return d.Write(ctx, tx, recs)
	}
	// Serialise with every other growing batch and with Prepare; the lock
	// is held until this batch commits or rolls back.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
		return loaders.Outcome{}, fmt.Errorf("locking the schema to grow the mapping: %w", err)
	}
	held, err := e.stored(ctx, tx)
	if err != nil {
		return loaders.Outcome{}, err
	}
	if held.mapping != d.mapping {
		// Another batch grew it meanwhile: evolve from what it stored
		// (Evolve depends only on the mapping and recs).
		d = held
		if ev, err = mappings.Evolve(d.mapping, recs, e.evolveOptions()); err != nil {
			return loaders.Outcome{}, err
		}
		if ev == nil {
			return d.Write(ctx, tx, recs)
		}
	}
	if err := FitExisting(ctx, tx, d.mapping, ev.Mapping); err != nil {
		return loaders.Outcome{}, err
	}
	nd, err := e.build(ev.Mapping)
	if err != nil {
		return loaders.Outcome{}, err
	}
	if err := e.grow(ctx, tx, ev); err != nil {
		return loaders.Outcome{}, err
	}
	return nd.Write(ctx, tx, recs)
}

// stored reads the stored mapping through db and, when it differs from
// the sink's, makes it the sink's. Callers hold the DDL lock or have
// committed every batch of theirs, so what it reads is what the last
// growing batch committed: the stored mapping only grows.
func (e *EvolvingDocuments) stored(ctx context.Context, db loaders.DB) (*Documents, error) {
	text, err := e.cfg.Store.LoadMapping(ctx, db)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	cur, same := e.cur, text == "" || text == e.text
	e.mu.Unlock()
	if same {
		return cur, nil
	}
	m, err := mappings.Parse([]byte(text), "(stored mapping)")
	if err != nil {
		return nil, err
	}
	if mine, err := cur.mapping.Marshal(); err == nil && string(mine) == text {
		e.mu.Lock()
		e.text = text
		e.mu.Unlock()
		return cur, nil
	}
	d, err := e.build(m)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.cur, e.text = d, text
	e.mu.Unlock()
	return d, nil
}

// build returns a Documents sink for m with this sink's owner and soft
// delete setting.
func (e *EvolvingDocuments) build(m *mappings.Mapping) (*Documents, error) {
	d, err := NewDocuments(m)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	d.SetOwner(e.owner)
	d.SetSoftDeletes(e.soft)
	if e.vault != nil {
		d.SetVault(e.vault)
	}
	// The tables Prepare created keep the direct load path when the
	// mapping grows (eligibility is by table name; tables created by a
	// growing batch take the staging path).
	if e.cur != nil {
		d.paths = e.cur.paths
	}
	e.mu.Unlock()
	return d, nil
}

// grow claims the new tables, runs the DDL the catalog says ev.Mapping
// still needs and stores ev.Mapping, in tx.
func (e *EvolvingDocuments) grow(ctx context.Context, tx pgx.Tx, ev *mappings.Evolution) error {
	var claim []pgx.Identifier
	for _, p := range ev.Tables {
		claim = append(claim, pgx.Identifier{ev.Mapping.Schema, ev.Mapping.TableFor(p).Name})
	}
	e.mu.Lock()
	owner, soft, deferKeys := e.owner, e.soft, e.deferring
	e.mu.Unlock()
	if err := ClaimTables(ctx, tx, owner, claim); err != nil {
		return err
	}
	stmts, err := SchemaChangesWith(ctx, tx, ev.Mapping, SchemaOptions{SoftDeletes: soft, DeferForeignKeys: deferKeys})
	if err != nil {
		return fmt.Errorf("growing the schema: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s.SQL); err != nil {
			return fmt.Errorf("growing the schema: %s: %w", s.What, err)
		}
	}
	text, err := ev.Mapping.Marshal()
	if err != nil {
		return err
	}
	if err := e.cfg.Store.StoreMapping(ctx, tx, string(text)); err != nil {
		return err
	}
	e.mu.Lock()
	for _, p := range ev.Tables {
		e.grown = append(e.grown, "table "+p)
	}
	for _, c := range ev.Columns {
		e.grown = append(e.grown, "column "+c)
	}
	e.mu.Unlock()
	return nil
}

// FitExisting gives a column that grown adds to base (in a table of base
// or one grown adds), but that the target's table already has, the type
// the table has, when a mapping may use it: values of other types then go
// to the overflow, where creating the column would fail. Such columns are
// left by an earlier run started over with --restart, by a process killed
// after it created a table but before it recorded the mapping (sync's new
// collections), or made by hand. It changes only grown's own new columns,
// and only reads tx.
func FitExisting(ctx context.Context, tx loaders.DB, base, grown *mappings.Mapping) error {
	var spelled map[string]string // PostgreSQL's spelling → mapping type
	for _, t := range grown.Tables {
		old := base.TableFor(t.Collection)
		var added []*mappings.Column
		for _, c := range t.Columns {
			if old == nil || !slices.ContainsFunc(old.Columns, func(o *mappings.Column) bool { return o.Name == c.Name }) {
				added = append(added, c)
			}
		}
		if len(added) == 0 {
			continue
		}
		cols, err := existingColumns(ctx, tx, grown.Schema, t.Name)
		if err != nil || cols == nil {
			return err
		}
		for _, c := range added {
			have, ok := cols[c.Name]
			if !ok {
				continue
			}
			if spelled == nil {
				spelled = map[string]string{}
				for _, typ := range mappings.SupportedTypes() {
					s, err := canonicalType(ctx, tx, typ)
					if err != nil {
						return err
					}
					if _, dup := spelled[s]; !dup {
						spelled[s] = typ
					}
				}
			}
			typ, ok := spelled[have]
			if !ok {
				continue // SchemaChanges names the conflict
			}
			if typ != c.Type {
				c.Type = typ
				if !slices.Contains(mappings.AllowedSources(typ), c.Source) {
					c.Source = ""
				}
				c.Note = "added during the run; typed as the column the table already has"
			}
		}
	}
	return nil
}
