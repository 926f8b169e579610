// Package postgres loads records into PostgreSQL and keeps the tool's own
// state there: runs, partition checkpoints, per-table counts and rejected
// records, all in the schema "baasmigrate".
//
// The central promise: a batch of rows and its partition's new cursor are
// committed in one transaction (Checkpoint), so after a crash at any instant
// a re-run resumes from the last committed cursor with no gap and no
// duplicate.
package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// StateSchema is the schema holding the tool's state.
const StateSchema = "baasmigrate"

// stateDDL creates the state tables. Every statement is idempotent.
var stateDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS baasmigrate`,
	`CREATE TABLE IF NOT EXISTS baasmigrate.runs (
		id          bigserial PRIMARY KEY,
		job         text        NOT NULL,
		kind        text        NOT NULL,
		status      text        NOT NULL CHECK (status IN ('running', 'finished', 'abandoned')),
		started_at  timestamptz NOT NULL DEFAULT now(),
		finished_at timestamptz,
		config      jsonb       NOT NULL DEFAULT '{}'
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS runs_one_running_per_job ON baasmigrate.runs (job) WHERE status = 'running'`,
	`CREATE TABLE IF NOT EXISTS baasmigrate.streams (
		run_id          bigint      NOT NULL REFERENCES baasmigrate.runs ON DELETE CASCADE,
		stream          text        NOT NULL,
		ordinal         int         NOT NULL,
		read_time       timestamptz,
		first_read_time timestamptz,
		renewals        int         NOT NULL DEFAULT 0,
		PRIMARY KEY (run_id, stream)
	)`,
	`CREATE TABLE IF NOT EXISTS baasmigrate.partitions (
		run_id       bigint      NOT NULL,
		stream       text        NOT NULL,
		partition_id text        NOT NULL,
		ordinal      int         NOT NULL,
		start_key    text        NOT NULL DEFAULT '',
		end_key      text        NOT NULL DEFAULT '',
		cursor       text        NOT NULL DEFAULT '',
		done         boolean     NOT NULL DEFAULT false,
		updated_at   timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (run_id, stream, partition_id),
		FOREIGN KEY (run_id, stream) REFERENCES baasmigrate.streams ON DELETE CASCADE
	)`,
	`CREATE TABLE IF NOT EXISTS baasmigrate.partition_counts (
		run_id       bigint NOT NULL,
		stream       text   NOT NULL,
		partition_id text   NOT NULL,
		target_table text   NOT NULL,
		read         bigint NOT NULL DEFAULT 0,
		rejected     bigint NOT NULL DEFAULT 0,
		changed      bigint NOT NULL DEFAULT 0,
		write_micros bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (run_id, stream, partition_id, target_table),
		FOREIGN KEY (run_id, stream, partition_id) REFERENCES baasmigrate.partitions ON DELETE CASCADE
	)`,
	`CREATE TABLE IF NOT EXISTS baasmigrate.rejects (
		id           bigserial   PRIMARY KEY,
		run_id       bigint      NOT NULL REFERENCES baasmigrate.runs ON DELETE CASCADE,
		kind         text        NOT NULL,
		stream       text        NOT NULL,
		target_table text        NOT NULL,
		source_key   text        NOT NULL,
		reason       text        NOT NULL,
		record       jsonb       NOT NULL,
		rejected_at  timestamptz NOT NULL DEFAULT now()
	)`,
	`CREATE INDEX IF NOT EXISTS rejects_by_run ON baasmigrate.rejects (run_id, target_table)`,
	// Records an erasure list excluded (never written), counted per batch
	// with the others (migration.ExcludedTable).
	// (Checked first: ALTER TABLE locks the table even when it does nothing.)
	`DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'baasmigrate'
			AND table_name = 'partition_counts' AND column_name = 'excluded') THEN
			ALTER TABLE baasmigrate.partition_counts ADD COLUMN excluded bigint NOT NULL DEFAULT 0;
		END IF;
	END $$`,
	manifestsDDL,
	ownersDDL,
	syncStreamsDDL, syncChangesDDL, syncChangesIndexDDL, verificationsDDL, cutoversDDL,
	// Rejected records are kept whole (a rejected user with its password
	// hash): only the migrating role reads them.
	`REVOKE ALL ON ALL TABLES IN SCHEMA baasmigrate FROM PUBLIC`,
}

// State is the tool's state in the target database.
type State struct {
	pool *pgxpool.Pool
}

// OpenState creates the state schema when needed and returns a handle on
// it. It is the only function here that writes DDL, so `plan` (which must
// write nothing) uses ReadState instead.
func OpenState(ctx context.Context, pool *pgxpool.Pool) (*State, error) {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Concurrent CREATE ... IF NOT EXISTS can still collide in the
		// catalog; serialise schema creation across processes.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate state schema'))`); err != nil {
			return err
		}
		for _, stmt := range stateDDL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%w\nin: %s", err, firstLine(stmt))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating the state schema %q: %w", StateSchema, err)
	}
	return &State{pool: pool}, nil
}

// ReadState returns a handle for reading state without creating anything;
// ok is false when the target has no state schema yet.
func ReadState(ctx context.Context, pool *pgxpool.Pool) (s *State, ok bool, err error) {
	err = pool.QueryRow(ctx, `SELECT to_regclass('baasmigrate.runs') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return nil, false, fmt.Errorf("looking for the state schema: %w", err)
	}
	return &State{pool: pool}, ok, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Run is one migration run of one job (a source and a kind of record).
type Run struct {
	ID      int64
	Job     string
	Kind    record.Kind
	Started time.Time
	// Resumed is true when the run was interrupted earlier and is being
	// continued.
	Resumed bool
	// Config is what the run was started with (options without secrets,
	// the mapping's digest); a resumed run must match it.
	Config  map[string]string
	Streams []*StreamState
}

// StreamState is a stream's progress within a run.
type StreamState struct {
	Name string
	// ReadTime is the snapshot the stream is read at now; FirstReadTime the
	// one it started with (the later change stream starts there). They
	// differ when the run outlived the source's snapshot window.
	ReadTime, FirstReadTime time.Time
	Renewals                int
	Partitions              []*PartitionState
}

// PartitionState is a partition's checkpoint.
type PartitionState struct {
	record.Partition
	// Cursor is the position after the last committed record.
	Cursor string
	Done   bool
}

// Job names what a run migrates; runs of the same job resume each other.
func Job(kind record.Kind, source string) string { return string(kind) + " " + source }

// RunningRun returns the unfinished run of job, or nil when there is none.
func (s *State) RunningRun(ctx context.Context, job string) (*Run, error) {
	return s.loadRun(ctx, `WHERE job = $1 AND status = 'running'`, job)
}

// LastFinishedRun returns the most recent finished run of job, or nil.
func (s *State) LastFinishedRun(ctx context.Context, job string) (*Run, error) {
	return s.loadRun(ctx, `WHERE job = $1 AND status = 'finished' ORDER BY id DESC LIMIT 1`, job)
}

func (s *State) loadRun(ctx context.Context, where string, args ...any) (*Run, error) {
	r := &Run{Resumed: true}
	var kind string
	var config []byte
	err := s.pool.QueryRow(ctx, `SELECT id, job, kind, started_at, config FROM baasmigrate.runs `+where, args...).
		Scan(&r.ID, &r.Job, &kind, &r.Started, &config)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading runs: %w", err)
	}
	r.Kind = record.Kind(kind)
	if err := json.Unmarshal(config, &r.Config); err != nil {
		return nil, fmt.Errorf("reading run %d's configuration: %w", r.ID, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT stream, read_time, first_read_time, renewals
		FROM baasmigrate.streams WHERE run_id = $1 ORDER BY ordinal`, r.ID)
	if err != nil {
		return nil, fmt.Errorf("reading run %d's streams: %w", r.ID, err)
	}
	byName := map[string]*StreamState{}
	for rows.Next() {
		st := &StreamState{}
		var rt, frt *time.Time
		if err := rows.Scan(&st.Name, &rt, &frt, &st.Renewals); err != nil {
			return nil, fmt.Errorf("reading run %d's streams: %w", r.ID, err)
		}
		if st.Name, err = loadText(st.Name); err != nil {
			return nil, fmt.Errorf("reading run %d's streams: %w", r.ID, err)
		}
		if rt != nil {
			st.ReadTime = rt.UTC()
		}
		if frt != nil {
			st.FirstReadTime = frt.UTC()
		}
		r.Streams = append(r.Streams, st)
		byName[st.Name] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading run %d's streams: %w", r.ID, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT stream, partition_id, start_key, end_key, cursor, done
		FROM baasmigrate.partitions WHERE run_id = $1 ORDER BY stream, ordinal`, r.ID)
	if err != nil {
		return nil, fmt.Errorf("reading run %d's partitions: %w", r.ID, err)
	}
	for rows.Next() {
		p := &PartitionState{}
		if err := rows.Scan(&p.Stream, &p.ID, &p.Start, &p.End, &p.Cursor, &p.Done); err != nil {
			return nil, fmt.Errorf("reading run %d's partitions: %w", r.ID, err)
		}
		for _, v := range []*string{&p.Stream, &p.ID, &p.Start, &p.End, &p.Cursor} {
			if *v, err = loadText(*v); err != nil {
				return nil, fmt.Errorf("reading run %d's partitions: %w", r.ID, err)
			}
		}
		if st := byName[p.Stream]; st != nil {
			st.Partitions = append(st.Partitions, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading run %d's partitions: %w", r.ID, err)
	}
	return r, nil
}

// StartRun records a new run of job with its planned streams and
// partitions, all in one transaction: either the whole plan is stored or
// none of it. A run of the job still running is abandoned in the same
// transaction (for --restart; its counts and rejects stay for the record),
// so a failed start leaves the interrupted run resumable.
func (s *State) StartRun(ctx context.Context, job string, kind record.Kind, config map[string]string, streams []record.Stream) (*Run, error) {
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encoding run configuration: %w", err)
	}
	r := &Run{Job: job, Kind: kind, Config: config}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE baasmigrate.runs SET status = 'abandoned', finished_at = now()
			WHERE job = $1 AND status = 'running'`, job); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO baasmigrate.runs (job, kind, status, config)
			VALUES ($1, $2, 'running', $3) RETURNING id, started_at`, job, string(kind), cfg).Scan(&r.ID, &r.Started)
		if err != nil {
			return err
		}
		for i, st := range streams {
			if _, err := tx.Exec(ctx, `INSERT INTO baasmigrate.streams (run_id, stream, ordinal, read_time, first_read_time)
				VALUES ($1, $2, $3, $4, $4)`, r.ID, storeText(st.Name), i, nullTime(st.ReadTime)); err != nil {
				return err
			}
			ss := &StreamState{Name: st.Name, ReadTime: st.ReadTime, FirstReadTime: st.ReadTime}
			for j, p := range st.Partitions {
				if _, err := tx.Exec(ctx, `INSERT INTO baasmigrate.partitions (run_id, stream, partition_id, ordinal, start_key, end_key)
					VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, storeText(st.Name), storeText(p.ID), j, storeText(p.Start), storeText(p.End)); err != nil {
					return err
				}
				ss.Partitions = append(ss.Partitions, &PartitionState{Partition: p})
			}
			r.Streams = append(r.Streams, ss)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording the plan of a new run of %q: %w", job, err)
	}
	return r, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// FinishRun marks r finished. It refuses while a partition is not done.
// Finishing a run already finished succeeds, so that a retry after an
// ambiguous commit (the reply lost) is harmless.
func (s *State) FinishRun(ctx context.Context, r *Run) error {
	var status string
	err := s.pool.QueryRow(ctx, `WITH finished AS (
			UPDATE baasmigrate.runs SET status = 'finished', finished_at = now()
			WHERE id = $1 AND status = 'running'
			AND NOT EXISTS (SELECT 1 FROM baasmigrate.partitions WHERE run_id = $1 AND NOT done)
			RETURNING status)
		SELECT status FROM finished
		UNION ALL SELECT status FROM baasmigrate.runs WHERE id = $1 AND status = 'finished'
		LIMIT 1`, r.ID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("finishing run %d: it is no longer running or has unfinished partitions", r.ID)
	}
	if err != nil {
		return fmt.Errorf("finishing run %d: %w", r.ID, err)
	}
	return nil
}

// RenewReadTime records that stream continues at a new snapshot because
// the old one left the source's retention window.
func (s *State) RenewReadTime(ctx context.Context, r *Run, stream string, t time.Time) error {
	// Guarded by the new time, so that a retry after an ambiguous commit
	// does not count the renewal twice.
	_, err := s.pool.Exec(ctx, `UPDATE baasmigrate.streams SET read_time = $3, renewals = renewals + 1
		WHERE run_id = $1 AND stream = $2 AND read_time IS DISTINCT FROM $3`, r.ID, storeText(stream), t)
	if err != nil {
		return fmt.Errorf("recording a new read time for stream %q: %w", stream, err)
	}
	return nil
}

// TableCounts are the counts of one batch for one target table.
type TableCounts struct {
	Read, Rejected, Changed int64
	// Excluded counts records an erasure list left out: read, never
	// written, not rejected.
	Excluded  int64
	WriteTime time.Duration
}

// Reject is one record that could not be stored.
type Reject struct {
	Table     string
	SourceKey string
	Reason    string
	// Record is the record as typed JSON (see record.MarshalJSONValue).
	Record []byte
}

// ErrCheckpointMoved means a partition's cursor in the database is not the
// one the batch started from: another process advanced it, or an earlier
// attempt of this very batch committed after all (a lost COMMIT reply).
// Either way the batch must not be counted again: roll back.
var ErrCheckpointMoved = errors.New("partition checkpoint moved since the batch started")

// Checkpoint advances p from its current cursor to cursor (and marks it done
// when done is true), adds the batch's counts and stores its rejects, inside
// tx — the transaction that also holds the batch's rows. It fails with
// ErrCheckpointMoved when the stored cursor is no longer p.Cursor. On
// success the caller updates p after the commit.
func (s *State) Checkpoint(ctx context.Context, tx pgx.Tx, r *Run, p *PartitionState, cursor string, done bool, counts map[string]TableCounts, rejects []Reject) error {
	stream, partition := storeText(p.Stream), storeText(p.ID)
	tag, err := tx.Exec(ctx, `UPDATE baasmigrate.partitions SET cursor = $4, done = $5, updated_at = now()
		WHERE run_id = $1 AND stream = $2 AND partition_id = $3 AND cursor = $6 AND NOT done`,
		r.ID, stream, partition, storeText(cursor), done, storeText(p.Cursor))
	if err != nil {
		return fmt.Errorf("checkpointing partition %s/%s: %w", p.Stream, p.ID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("checkpointing partition %s/%s at %q: %w", p.Stream, p.ID, p.Cursor, ErrCheckpointMoved)
	}
	// One round trip for the counts of every table the batch touched.
	tables := make([]string, 0, len(counts))
	for t := range counts {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	b := &pgx.Batch{}
	for _, t := range tables {
		c := counts[t]
		b.Queue(`INSERT INTO baasmigrate.partition_counts
			(run_id, stream, partition_id, target_table, read, rejected, changed, write_micros, excluded)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (run_id, stream, partition_id, target_table) DO UPDATE SET
				read = partition_counts.read + EXCLUDED.read,
				rejected = partition_counts.rejected + EXCLUDED.rejected,
				excluded = partition_counts.excluded + EXCLUDED.excluded,
				changed = partition_counts.changed + EXCLUDED.changed,
				write_micros = partition_counts.write_micros + EXCLUDED.write_micros`,
			r.ID, stream, partition, t, c.Read, c.Rejected, c.Changed, c.WriteTime.Microseconds(), c.Excluded)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("counting partition %s/%s: %w", p.Stream, p.ID, err)
	}
	if len(rejects) > 0 {
		rows := make([][]any, len(rejects))
		for i, rj := range rejects {
			rows[i] = []any{r.ID, string(r.Kind), stream, textSafe(rj.Table), textSafe(rj.SourceKey), textSafe(rj.Reason), rj.Record}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{StateSchema, "rejects"},
			[]string{"run_id", "kind", "stream", "target_table", "source_key", "reason", "record"}, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("storing %d rejected records of partition %s/%s: %w", len(rejects), p.Stream, p.ID, err)
		}
	}
	return nil
}

// textSafe makes s storable in a text column (no NUL, valid UTF-8) for
// people to read. Exact keys are always kept in the reject's record JSON.
func textSafe(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", `\x00`)
}

// storedTextPrefix starts a state value stored as base64 (see storeText).
const storedTextPrefix = "baasmigrate-base64:"

// storeText encodes s, a source key the tool keeps in its state (a stream
// name, a partition bound, a cursor), for a text column, losslessly: as
// itself when PostgreSQL text holds it exactly, else as storedTextPrefix
// and the base64 of its bytes (NUL, invalid UTF-8, and a value that starts
// with the prefix itself). Values stored before this encoding existed read
// back unchanged. Equal keys encode equally, so SQL compares encoded
// values as it compared keys.
func storeText(s string) string {
	if record.TextProblem(s) == "" && !strings.HasPrefix(s, storedTextPrefix) {
		return s
	}
	return storedTextPrefix + base64.StdEncoding.EncodeToString([]byte(s))
}

// loadText decodes a value written by storeText.
func loadText(s string) (string, error) {
	enc, ok := strings.CutPrefix(s, storedTextPrefix)
	if !ok {
		return s, nil
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("decoding the stored key %q: %w", s, err)
	}
	return string(b), nil
}

// TableSummary totals one target table over a run. (The write time stored
// per partition is busy time, summed over workers; the migration measures
// the wall-clock time a summary reports itself.)
type TableSummary struct {
	Table                   string
	Read, Rejected, Changed int64
	// Excluded counts records an erasure list left out (never written).
	Excluded int64
}

// Loaded is the number of records stored: read = loaded + rejected +
// excluded.
func (t TableSummary) Loaded() int64 { return t.Read - t.Rejected - t.Excluded }

// Summary totals r's counts per target table, sorted by table.
func (s *State) Summary(ctx context.Context, r *Run) ([]TableSummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT target_table, sum(read), sum(rejected), sum(changed), sum(excluded)
		FROM baasmigrate.partition_counts WHERE run_id = $1 GROUP BY target_table ORDER BY target_table`, r.ID)
	if err != nil {
		return nil, fmt.Errorf("summarising run %d: %w", r.ID, err)
	}
	var out []TableSummary
	for rows.Next() {
		var t TableSummary
		if err := rows.Scan(&t.Table, &t.Read, &t.Rejected, &t.Changed, &t.Excluded); err != nil {
			return nil, fmt.Errorf("summarising run %d: %w", r.ID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarising run %d: %w", r.ID, err)
	}
	return out, nil
}

// RejectSample is one stored reject, for reports.
type RejectSample struct {
	Table, SourceKey, Reason string
}

// Rejects returns up to limit rejects of r, oldest first.
func (s *State) Rejects(ctx context.Context, r *Run, limit int) ([]RejectSample, error) {
	rows, err := s.pool.Query(ctx, `SELECT target_table, source_key, reason FROM baasmigrate.rejects
		WHERE run_id = $1 ORDER BY id LIMIT $2`, r.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading rejects of run %d: %w", r.ID, err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[RejectSample])
}

// UnlockJob releases the lock LockJob took on conn. Closing the session
// releases it too, but the server may notice a closed session a moment
// later, and a quick next run of the same job would find it still held.
func UnlockJob(ctx context.Context, conn *pgxpool.Conn, job string) error {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "baasmigrate job "+job); err != nil {
		return fmt.Errorf("unlocking job %q: %w", job, err)
	}
	return nil
}

// ErrJobLocked is returned (wrapped) by LockJob when another process holds
// the job's lock.
var ErrJobLocked = errors.New("the job is locked by another process")

// LockJob takes a session-level advisory lock on job so that two processes
// never migrate the same job at once. The lock lives as long as conn: it is
// released when the process exits, even by kill -9.
func LockJob(ctx context.Context, conn *pgxpool.Conn, job string) error {
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "baasmigrate job "+job).Scan(&ok); err != nil {
		return fmt.Errorf("locking job %q: %w", job, err)
	}
	if !ok {
		return fmt.Errorf("another baasmigrate process is migrating %q into this database; wait for it to finish or stop it: %w", job, ErrJobLocked)
	}
	return nil
}

// StreamRead returns how many records of stream r has committed so far.
func (s *State) StreamRead(ctx context.Context, r *Run, stream string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(read), 0) FROM baasmigrate.partition_counts
		WHERE run_id = $1 AND stream = $2`, r.ID, storeText(stream)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting committed records of stream %q: %w", stream, err)
	}
	return n, nil
}

// PartitionCursor returns p's committed cursor and whether it is done, as
// stored now.
func (s *State) PartitionCursor(ctx context.Context, r *Run, p *PartitionState) (cursor string, done bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT cursor, done FROM baasmigrate.partitions
		WHERE run_id = $1 AND stream = $2 AND partition_id = $3`, r.ID, storeText(p.Stream), storeText(p.ID)).Scan(&cursor, &done)
	if err == nil {
		cursor, err = loadText(cursor)
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the checkpoint of partition %s/%s: %w", p.Stream, p.ID, err)
	}
	return cursor, done, nil
}

// manifestsDDL keeps every audit manifest written (migrate --manifest,
// verify --manifest): the document as written, its SHA-256 and whether it
// was signed. Manifests hold no secret and no erasure list entry.
const manifestsDDL = `CREATE TABLE IF NOT EXISTS baasmigrate.manifests (
		id          bigserial   PRIMARY KEY,
		command     text        NOT NULL,
		created_at  timestamptz NOT NULL DEFAULT now(),
		sha256      text        NOT NULL,
		signed      boolean     NOT NULL,
		manifest    jsonb       NOT NULL
	)`

// StoreManifest records an audit manifest (its JSON, as written) and
// returns its id.
func (s *State) StoreManifest(ctx context.Context, command, sha256hex string, signed bool, manifest []byte) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO baasmigrate.manifests (command, sha256, signed, manifest)
		VALUES ($1, $2, $3, $4) RETURNING id`, command, sha256hex, signed, manifest).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("storing the audit manifest: %w", err)
	}
	return id, nil
}
