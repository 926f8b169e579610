package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// The state of `sync` and `cutover` (part of stateDDL).
const (
	// syncStreamsDDL: one row per followed job (postgres.Job of the copy it
	// follows). position and read_time commit with the rows they cover.
	syncStreamsDDL = `CREATE TABLE IF NOT EXISTS baasmigrate.sync_streams (
		job              text        PRIMARY KEY,
		kind             text        NOT NULL,
		mode             text        NOT NULL CHECK (mode IN ('stream', 'poll')),
		run_id           bigint      REFERENCES baasmigrate.runs ON DELETE SET NULL,
		position         text        NOT NULL DEFAULT '',
		read_time        timestamptz,
		last_commit_time timestamptz,
		applied          bigint      NOT NULL DEFAULT 0,
		deleted          bigint      NOT NULL DEFAULT 0,
		rejected         bigint      NOT NULL DEFAULT 0,
		batches          bigint      NOT NULL DEFAULT 0,
		catch_ups        int         NOT NULL DEFAULT 0,
		source_reads     bigint      NOT NULL DEFAULT 0,
		mapping          text        NOT NULL DEFAULT '',
		last_batch_at    timestamptz,
		last_error       text        NOT NULL DEFAULT '',
		last_error_at    timestamptz,
		note             text        NOT NULL DEFAULT '',
		started_at       timestamptz NOT NULL DEFAULT now(),
		updated_at       timestamptz NOT NULL DEFAULT now()
	)`
	// syncChangesDDL: the latest change applied per key, so that a cutover
	// re-checks only keys changed since its bulk verification.
	syncChangesDDL = `CREATE TABLE IF NOT EXISTS baasmigrate.sync_changes (
		job         text        NOT NULL,
		key         text        NOT NULL,
		commit_time timestamptz NOT NULL,
		deleted     boolean     NOT NULL,
		PRIMARY KEY (job, key)
	)`
	syncChangesIndexDDL = `CREATE INDEX IF NOT EXISTS sync_changes_by_time ON baasmigrate.sync_changes (job, commit_time)`
	// verificationsDDL: bulk verifications made while sync runs
	// (cutover --prepare).
	verificationsDDL = `CREATE TABLE IF NOT EXISTS baasmigrate.verifications (
		id          bigserial   PRIMARY KEY,
		job         text        NOT NULL,
		read_time   timestamptz NOT NULL,
		started_at  timestamptz NOT NULL,
		finished_at timestamptz NOT NULL DEFAULT now(),
		identical   boolean     NOT NULL,
		excused     bigint      NOT NULL DEFAULT 0,
		digest      text        NOT NULL,
		report      text        NOT NULL
	)`
	// cutoversDDL: every cutover attempt, its freeze point and outcome.
	// Reports are JSON kept as text: jsonb refuses the \u0000 escapes of
	// keys a source may hold.
	cutoversDDL = `CREATE TABLE IF NOT EXISTS baasmigrate.cutovers (
		id            bigserial   PRIMARY KEY,
		jobs          text[]      NOT NULL,
		freeze_time   timestamptz NOT NULL,
		started_at    timestamptz NOT NULL DEFAULT now(),
		finished_at   timestamptz,
		status        text        NOT NULL CHECK (status IN ('waiting', 'identical', 'different', 'failed')),
		window_micros bigint,
		reread        bigint,
		digest        text        NOT NULL DEFAULT '',
		operator      text        NOT NULL DEFAULT '',
		report        text
	)`
)

// SyncStream is the stored state of one followed job.
type SyncStream struct {
	// Job is the job followed (postgres.Job of its copy).
	Job  string
	Kind record.Kind
	// Mode is "stream" (a change stream) or "poll".
	Mode string
	// RunID is the sync's run in baasmigrate.runs (its rejects refer to it).
	RunID int64
	// Position resumes the change stream (mode stream).
	Position string
	// ReadTime is the source time the target is known to reflect: the last
	// applied consistent point (stream) or the snapshot of the last
	// complete poll (poll).
	ReadTime time.Time
	// LastCommit is the source commit time of the last applied change.
	LastCommit                          time.Time
	Applied, Deleted, Rejected, Batches int64
	CatchUps                            int
	SourceReads                         int64
	// Mapping is the documents mapping as sync extended it (new
	// collections), "" when unchanged.
	Mapping     string
	LastBatchAt time.Time
	LastError   string
	LastErrorAt time.Time
	Note        string
	Started     time.Time
	Updated     time.Time
}

// SyncBatch is what one applied batch adds to a SyncStream, written by
// AdvanceSync in the batch's transaction.
type SyncBatch struct {
	// Position and ReadTime after the batch ("" / zero: unchanged).
	Position string
	ReadTime time.Time
	// LastCommit is the latest commit time among the batch's changes.
	LastCommit       time.Time
	Applied, Deleted int64
	Rejects          []Reject
	SourceReads      int64
	// Changed are the keys the batch changed, with their commit times.
	Changed []ChangedKey
}

// ChangedKey is one key a sync batch changed.
type ChangedKey struct {
	Key        string
	CommitTime time.Time
	Deleted    bool
}

const syncColumns = `job, kind, mode, coalesce(run_id, 0), position, read_time, last_commit_time, applied, deleted, rejected,
	batches, catch_ups, source_reads, mapping, last_batch_at, last_error, last_error_at, note, started_at, updated_at`

func scanSync(row pgx.Row) (*SyncStream, error) {
	s := &SyncStream{}
	var kind string
	var rt, lc, lb, le *time.Time
	err := row.Scan(&s.Job, &kind, &s.Mode, &s.RunID, &s.Position, &rt, &lc, &s.Applied, &s.Deleted, &s.Rejected,
		&s.Batches, &s.CatchUps, &s.SourceReads, &s.Mapping, &lb, &s.LastError, &le, &s.Note, &s.Started, &s.Updated)
	if err != nil {
		return nil, err
	}
	s.Kind = record.Kind(kind)
	for _, p := range []struct {
		from *time.Time
		to   *time.Time
	}{{rt, &s.ReadTime}, {lc, &s.LastCommit}, {lb, &s.LastBatchAt}, {le, &s.LastErrorAt}} {
		if p.from != nil {
			*p.to = p.from.UTC()
		}
	}
	if s.Position, err = loadText(s.Position); err != nil {
		return nil, err
	}
	return s, nil
}

// SyncStream returns the stored state of job's sync, or nil when job was
// never synced.
func (s *State) SyncStream(ctx context.Context, job string) (*SyncStream, error) {
	st, err := scanSync(s.pool.QueryRow(ctx, `SELECT `+syncColumns+` FROM baasmigrate.sync_streams WHERE job = $1`, job))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the sync state of %q: %w", job, err)
	}
	return st, nil
}

// SyncStreams returns every followed job, by job name.
func (s *State) SyncStreams(ctx context.Context) ([]*SyncStream, error) {
	ok, err := s.hasTable(ctx, "sync_streams")
	if err != nil || !ok {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+syncColumns+` FROM baasmigrate.sync_streams ORDER BY job`)
	if err != nil {
		return nil, fmt.Errorf("reading the sync state: %w", err)
	}
	defer rows.Close()
	var out []*SyncStream
	for rows.Next() {
		st, err := scanSync(rows)
		if err != nil {
			return nil, fmt.Errorf("reading the sync state: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *State) hasTable(ctx context.Context, name string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, StateSchema+"."+name).Scan(&ok); err != nil {
		return false, fmt.Errorf("looking for the state table %s: %w", name, err)
	}
	return ok, nil
}

// StartSync records that job is followed from position (mode "stream") or
// polled (mode "poll"), unless it already is: the stored state wins, so a
// restarted sync continues where the last one committed. The sync's run
// (for its rejects) is created with it; config is stored with the run.
func (s *State) StartSync(ctx context.Context, job string, kind record.Kind, mode, position string, readTime time.Time, config map[string]string) (*SyncStream, error) {
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encoding the sync configuration: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM baasmigrate.sync_streams WHERE job = $1)`, job).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		var runID int64
		if err := tx.QueryRow(ctx, `INSERT INTO baasmigrate.runs (job, kind, status, config) VALUES ($1, $2, 'running', $3)
			ON CONFLICT (job) WHERE status = 'running' DO UPDATE SET config = EXCLUDED.config RETURNING id`,
			SyncJob(job), string(kind), cfg).Scan(&runID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO baasmigrate.sync_streams (job, kind, mode, run_id, position, read_time)
			VALUES ($1, $2, $3, $4, $5, $6)`, job, string(kind), mode, runID, storeText(position), nullTime(readTime))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recording the sync of %q: %w", job, err)
	}
	return s.SyncStream(ctx, job)
}

// ResetSync forgets job's sync state (sync --restart): the next StartSync
// begins from the copy again, and the next cutover, having no bulk
// verification, compares everything. Callers make sure no sync runs.
func (s *State) ResetSync(ctx context.Context, job string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE baasmigrate.runs SET status = 'abandoned', finished_at = now() WHERE job = $1 AND status = 'running'`, SyncJob(job)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM baasmigrate.sync_changes WHERE job = $1`, job); err != nil {
			return err
		}
		// A bulk verification excused keys by the changes recorded since:
		// without them it proves nothing, so the next cutover compares all.
		if _, err := tx.Exec(ctx, `DELETE FROM baasmigrate.verifications WHERE job = $1`, job); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM baasmigrate.sync_streams WHERE job = $1`, job)
		return err
	})
	if err != nil {
		return fmt.Errorf("resetting the sync of %q: %w", job, err)
	}
	return nil
}

// resolvedKeys returns the keys b changed without rejecting them, in the
// form rejects store keys.
func resolvedKeys(b SyncBatch) []string {
	rejected := make(map[string]bool, len(b.Rejects))
	for _, rj := range b.Rejects {
		rejected[textSafe(rj.SourceKey)] = true
	}
	var keys []string
	for _, c := range b.Changed {
		if k := textSafe(c.Key); !rejected[k] {
			keys = append(keys, k)
		}
	}
	return keys
}

// AdvanceSync adds b to st inside tx, the transaction holding b's rows.
// When b moves the position, it fails with ErrCheckpointMoved unless the
// stored position is still st.Position (another process advanced it, or an
// earlier attempt of this batch committed). On success the caller updates
// st from b after the commit (SyncStream.Apply).
func (s *State) AdvanceSync(ctx context.Context, tx pgx.Tx, st *SyncStream, b SyncBatch) error {
	pos := st.Position
	if b.Position != "" {
		pos = b.Position
	}
	rt := st.ReadTime
	if !b.ReadTime.IsZero() {
		rt = b.ReadTime
	}
	var newRejects int64
	if len(b.Rejects) > 0 {
		// A record sync cannot store is met again at every poll (and after
		// a catch-up): its reject is stored once per sync, reason and all.
		var tables, keys, reasons []string
		var recs [][]byte
		for _, rj := range b.Rejects {
			tables, keys = append(tables, textSafe(rj.Table)), append(keys, textSafe(rj.SourceKey))
			reasons, recs = append(reasons, textSafe(rj.Reason)), append(recs, rj.Record)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO baasmigrate.rejects (run_id, kind, stream, target_table, source_key, reason, record)
			SELECT $1, $2, 'sync', t, k, r, rec::jsonb FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS x(t, k, r, rec)
			WHERE NOT EXISTS (SELECT 1 FROM baasmigrate.rejects o
				WHERE o.run_id = $1 AND o.target_table = x.t AND o.source_key = x.k AND o.reason = x.r)`,
			st.RunID, string(st.Kind), tables, keys, reasons, bytesToText(recs))
		if err != nil {
			return fmt.Errorf("storing %d rejected records of a sync batch of %q: %w", len(b.Rejects), st.Job, err)
		}
		newRejects = tag.RowsAffected()
	}
	// A reject this sync stored earlier is resolved when a later change of
	// the same key is applied (an object replaced or deleted between a
	// poll's listing and its read is met again, readable, at the next
	// poll): the rejects of a sync are the records it could not store, not
	// the ones it once could not.
	// Only a sync that has rejected something can have one to clear.
	if resolved := resolvedKeys(b); len(resolved) > 0 && st.Rejected+newRejects > 0 {
		tag, err := tx.Exec(ctx, `DELETE FROM baasmigrate.rejects WHERE run_id = $1 AND stream = 'sync' AND source_key = ANY($2::text[])`,
			st.RunID, resolved)
		if err != nil {
			return fmt.Errorf("clearing the resolved rejects of a sync batch of %q: %w", st.Job, err)
		}
		newRejects -= tag.RowsAffected()
	}
	tag, err := tx.Exec(ctx, `UPDATE baasmigrate.sync_streams SET
			position = $3, read_time = $4,
			last_commit_time = greatest(last_commit_time, $5),
			applied = applied + $6, deleted = deleted + $7, rejected = rejected + $8,
			batches = batches + 1, source_reads = source_reads + $9,
			last_batch_at = now(), updated_at = now()
		WHERE job = $1 AND position = $2`,
		st.Job, storeText(st.Position), storeText(pos), nullTime(rt), nullTime(b.LastCommit),
		b.Applied, b.Deleted, newRejects, b.SourceReads)
	if err != nil {
		return fmt.Errorf("recording sync progress of %q: %w", st.Job, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("recording sync progress of %q at %q: %w", st.Job, st.Position, ErrCheckpointMoved)
	}
	if len(b.Changed) > 0 {
		keys := make([]string, len(b.Changed))
		times := make([]time.Time, len(b.Changed))
		deleted := make([]bool, len(b.Changed))
		for i, c := range b.Changed {
			keys[i], times[i], deleted[i] = storeText(c.Key), c.CommitTime, c.Deleted
		}
		if _, err := tx.Exec(ctx, `INSERT INTO baasmigrate.sync_changes (job, key, commit_time, deleted)
			SELECT $1, k, t, d FROM unnest($2::text[], $3::timestamptz[], $4::boolean[]) AS c(k, t, d)
			ORDER BY k
			ON CONFLICT (job, key) DO UPDATE SET
				commit_time = greatest(sync_changes.commit_time, EXCLUDED.commit_time), deleted = EXCLUDED.deleted`,
			st.Job, keys, times, deleted); err != nil {
			return fmt.Errorf("recording the keys changed by a sync batch of %q: %w", st.Job, err)
		}
	}
	return nil
}

func bytesToText(b [][]byte) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}

// Apply updates st after the commit of b.
func (st *SyncStream) Apply(b SyncBatch) {
	if b.Position != "" {
		st.Position = b.Position
	}
	if !b.ReadTime.IsZero() {
		st.ReadTime = b.ReadTime
	}
	if b.LastCommit.After(st.LastCommit) {
		st.LastCommit = b.LastCommit
	}
	st.Applied += b.Applied
	st.Deleted += b.Deleted
	st.Rejected += int64(len(b.Rejects))
	st.Batches++
	st.SourceReads += b.SourceReads
	st.LastBatchAt = time.Now()
}

// SetSyncPosition moves job's position and read time outside a batch
// (after a catch-up, which applied its rows in batches of its own), with
// a note saying why. It also clears the last error.
func (s *State) SetSyncPosition(ctx context.Context, job, position string, readTime time.Time, note string) error {
	_, err := s.pool.Exec(ctx, `UPDATE baasmigrate.sync_streams SET position = $2, read_time = $3, note = $4,
		catch_ups = catch_ups + 1, updated_at = now() WHERE job = $1`, job, storeText(position), nullTime(readTime), note)
	if err != nil {
		return fmt.Errorf("recording the new sync position of %q: %w", job, err)
	}
	return nil
}

// SetSyncMapping stores the documents mapping as sync extended it.
func (s *State) SetSyncMapping(ctx context.Context, tx pgx.Tx, job, mapping string) error {
	if _, err := tx.Exec(ctx, `UPDATE baasmigrate.sync_streams SET mapping = $2, updated_at = now() WHERE job = $1`, job, mapping); err != nil {
		return fmt.Errorf("storing the extended mapping of %q: %w", job, err)
	}
	return nil
}

// SyncMapping returns the mapping sync stored for job ("" for none), for
// commands that must use the layout sync extended (verify, cutover). It
// only reads, and answers "" when the state has no sync table.
func (s *State) SyncMapping(ctx context.Context, job string) (string, error) {
	ok, err := s.hasTable(ctx, "sync_streams")
	if err != nil || !ok {
		return "", err
	}
	var m string
	err = s.pool.QueryRow(ctx, `SELECT mapping FROM baasmigrate.sync_streams WHERE job = $1`, job).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the sync mapping of %q: %w", job, err)
	}
	return m, nil
}

// SyncError records the last error of job's sync (shown by status); ""
// clears it.
func (s *State) SyncError(ctx context.Context, job, msg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE baasmigrate.sync_streams SET last_error = $2,
		last_error_at = CASE WHEN $2 = '' THEN last_error_at ELSE now() END, updated_at = now() WHERE job = $1`, job, textSafe(msg))
	if err != nil {
		return fmt.Errorf("recording the sync error of %q: %w", job, err)
	}
	return nil
}

// ChangedKeys calls fn for every key job's sync changed after since, in
// key order.
func (s *State) ChangedKeys(ctx context.Context, job string, since time.Time, fn func(key string) error) error {
	rows, err := s.pool.Query(ctx, `SELECT key FROM baasmigrate.sync_changes WHERE job = $1 AND commit_time > $2 ORDER BY key`, job, since)
	if err != nil {
		return fmt.Errorf("reading the keys changed since %s: %w", since.Format(time.RFC3339Nano), err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		if k, err = loadText(k); err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Verification is a bulk verification made while sync ran.
type Verification struct {
	ID        int64
	Job       string
	ReadTime  time.Time
	Started   time.Time
	Identical bool
	// Excused counts differences on keys changed after ReadTime (re-checked
	// at the cutover).
	Excused int64
	Digest  string
	Report  json.RawMessage
}

// RecordVerification stores v.
func (s *State) RecordVerification(ctx context.Context, v *Verification) error {
	err := s.pool.QueryRow(ctx, `INSERT INTO baasmigrate.verifications (job, read_time, started_at, identical, excused, digest, report)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, v.Job, v.ReadTime, v.Started, v.Identical, v.Excused, v.Digest, string(v.Report)).Scan(&v.ID)
	if err != nil {
		return fmt.Errorf("recording the verification of %q: %w", v.Job, err)
	}
	return nil
}

// LastVerification returns job's latest identical bulk verification, or
// nil.
func (s *State) LastVerification(ctx context.Context, job string) (*Verification, error) {
	v := &Verification{}
	var report string
	err := s.pool.QueryRow(ctx, `SELECT id, job, read_time, started_at, identical, excused, digest, report
		FROM baasmigrate.verifications WHERE job = $1 AND identical ORDER BY read_time DESC LIMIT 1`, job).
		Scan(&v.ID, &v.Job, &v.ReadTime, &v.Started, &v.Identical, &v.Excused, &v.Digest, &report)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the last verification of %q: %w", job, err)
	}
	v.ReadTime, v.Report = v.ReadTime.UTC(), json.RawMessage(report)
	return v, nil
}

// Cutover is one cutover attempt.
type Cutover struct {
	ID         int64
	Jobs       []string
	FreezeTime time.Time
	Started    time.Time
	Finished   time.Time
	// Status is "waiting", "identical", "different" or "failed".
	Status   string
	Window   time.Duration
	Reread   int64
	Digest   string
	Operator string
	Report   json.RawMessage
}

// StartCutover records a cutover waiting for sync to reach its freeze time.
func (s *State) StartCutover(ctx context.Context, c *Cutover) error {
	err := s.pool.QueryRow(ctx, `INSERT INTO baasmigrate.cutovers (jobs, freeze_time, status, operator)
		VALUES ($1, $2, 'waiting', $3) RETURNING id, started_at`, c.Jobs, c.FreezeTime, c.Operator).Scan(&c.ID, &c.Started)
	if err != nil {
		return fmt.Errorf("recording the cutover: %w", err)
	}
	c.Status = "waiting"
	return nil
}

// FinishCutover records c's outcome (Status, Window, Reread, Digest,
// Report).
func (s *State) FinishCutover(ctx context.Context, c *Cutover) error {
	_, err := s.pool.Exec(ctx, `UPDATE baasmigrate.cutovers SET finished_at = now(), status = $2, window_micros = $3,
		reread = $4, digest = $5, report = $6 WHERE id = $1`, c.ID, c.Status, c.Window.Microseconds(), c.Reread, c.Digest, string(c.Report))
	if err != nil {
		return fmt.Errorf("recording the outcome of cutover %d: %w", c.ID, err)
	}
	return nil
}

// Cutovers returns the latest n cutovers, newest first.
func (s *State) Cutovers(ctx context.Context, n int) ([]*Cutover, error) {
	ok, err := s.hasTable(ctx, "cutovers")
	if err != nil || !ok {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, jobs, freeze_time, started_at, coalesce(finished_at, started_at), status,
		coalesce(window_micros, 0), coalesce(reread, 0), digest, operator FROM baasmigrate.cutovers ORDER BY id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("reading cutovers: %w", err)
	}
	defer rows.Close()
	var out []*Cutover
	for rows.Next() {
		c := &Cutover{}
		var micros int64
		if err := rows.Scan(&c.ID, &c.Jobs, &c.FreezeTime, &c.Started, &c.Finished, &c.Status, &micros, &c.Reread, &c.Digest, &c.Operator); err != nil {
			return nil, fmt.Errorf("reading cutovers: %w", err)
		}
		c.Window = time.Duration(micros) * time.Microsecond
		out = append(out, c)
	}
	return out, rows.Err()
}

// SyncRunning reports whether a process holds job's sync lock (a `sync`
// follows it now). It takes and at once releases the lock when free.
func SyncRunning(ctx context.Context, pool *pgxpool.Pool, job string) (bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("connecting to the target: %w", err)
	}
	defer conn.Release()
	err = LockJob(ctx, conn, SyncJob(job))
	if errors.Is(err, ErrJobLocked) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking whether %q is being synced: %w", job, err)
	}
	return false, UnlockJob(ctx, conn, SyncJob(job))
}

// SyncJob is the name sync locks and records its run under for job.
func SyncJob(job string) string { return "sync " + job }

// RunInfo is one run as status shows it.
type RunInfo struct {
	ID                int64
	Job, Status       string
	Started, Finished time.Time
}

// LatestRuns returns the latest run of every job, by job name.
func (s *State) LatestRuns(ctx context.Context) ([]RunInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (job) id, job, status, started_at, finished_at
		FROM baasmigrate.runs ORDER BY job, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("reading runs: %w", err)
	}
	defer rows.Close()
	var out []RunInfo
	for rows.Next() {
		var r RunInfo
		var fin *time.Time
		if err := rows.Scan(&r.ID, &r.Job, &r.Status, &r.Started, &fin); err != nil {
			return nil, fmt.Errorf("reading runs: %w", err)
		}
		if fin != nil {
			r.Finished = *fin
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
