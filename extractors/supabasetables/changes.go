package supabasetables

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// The change stream (extractors.ChangeKeeper) is PostgreSQL's logical
// replication, read with pglogrepl in pgoutput's protocol 1: a publication
// FOR TABLE the copied tables and a logical replication slot, both named
// SlotName(consumer), created by sync before the copy's first read (never
// by migrate: a slot nobody reads retains WAL on the source's disk).
//
// A position is "<slot>@<LSN>": the end of the last transaction the target
// holds ("<slot>@" alone: the copy predates the slot, Changes reports
// ErrSnapshotExpired and sync catches up by comparison). Each source
// transaction is one ChangeBatch, its Position the end LSN of its commit
// (START_REPLICATION from it delivers the transactions committed after it)
// and its ReadTime its commit time. When the source is idle, about every
// second the source's clock and current WAL position are read and, once
// the stream has passed that position, a batch without changes says the
// target reflects the source up to that time. The slot's confirmed
// position only moves to what Confirm reports, i.e. what the target has
// committed.
//
// Changes are records of the row's table (pgcatalog.FieldTable) with
// pgcatalog.FieldOp and the tuples' values as text (see pgcatalog's
// change fields); the
// tables sink applies them in order (ApplyChanges).

// SlotName is the name of the replication slot and of the publication
// that keep the source's changes for consumer.
func SlotName(consumer string) string {
	h := sha256.Sum256([]byte(consumer))
	return "baasmigrate_" + hex.EncodeToString(h[:8])
}

// extra is what a position carries besides its LSN, for keyless tables,
// whose changes cannot be applied twice (an insert replayed over a row the
// copy read duplicates it). Resync asks Changes to read every keyless
// table again first, in one snapshot of the source, and to replace the
// target's rows with them; Skips then hold, per table, that snapshot, so
// that the stream drops the changes of transactions it already shows,
// until the stream has passed the WAL position read with it (no later
// transaction can be in it).
type extra struct {
	Resync bool   `json:"resync,omitempty"`
	Skips  []skip `json:"skip,omitempty"`
}

// skip is a keyless table's snapshot (pg_current_snapshot: xmin, xmax,
// the transactions in progress) and the WAL position read with it.
type skip struct {
	Table string   `json:"table"`
	Xmin  uint64   `json:"xmin"`
	Xmax  uint64   `json:"xmax"`
	Xip   []uint64 `json:"xip,omitempty"`
	Until string   `json:"until"`
}

// shows reports whether the snapshot shows (as committed) the top-level
// transaction xid, a 32-bit xid as pgoutput sends it.
func (k skip) shows(xid uint32) bool {
	precedes := func(a, b uint32) bool { return int32(a-b) < 0 }
	if precedes(xid, uint32(k.Xmin)) {
		return true
	}
	if !precedes(xid, uint32(k.Xmax)) {
		return false
	}
	for _, x := range k.Xip {
		if uint32(x) == xid {
			return false
		}
	}
	return true
}

func encodePosition(slot string, lsn pglogrepl.LSN, x extra) string {
	pos := slot + "@" + lsn.String()
	if x.Resync || len(x.Skips) > 0 {
		b, _ := json.Marshal(x)
		pos += " " + string(b)
	}
	return pos
}

// parsePosition splits a position; lsn is 0 for "<slot>@".
func parsePosition(pos string) (slot string, lsn pglogrepl.LSN, x extra, err error) {
	pos, rest, _ := strings.Cut(pos, " ")
	slot, l, ok := strings.Cut(pos, "@")
	if !ok || !isSlotName(slot) {
		return "", 0, x, fmt.Errorf("%q is not a position of a PostgreSQL change stream", pos)
	}
	if rest != "" {
		if err := json.Unmarshal([]byte(rest), &x); err != nil {
			return "", 0, x, fmt.Errorf("%q is not a position of a PostgreSQL change stream: %w", pos, err)
		}
	}
	if l == "" {
		return slot, 0, x, nil
	}
	lsn, err = pglogrepl.ParseLSN(l)
	if err != nil {
		return "", 0, x, fmt.Errorf("%q is not a position of a PostgreSQL change stream: %w", pos, err)
	}
	return slot, lsn, x, nil
}

// isSlotName reports whether slot has the shape SlotName gives: the
// position's slot goes into replication commands, so a tampered state row
// must not carry anything else there.
func isSlotName(slot string) bool {
	hexPart, ok := strings.CutPrefix(slot, "baasmigrate_")
	// Lower-case hex only, as hex.EncodeToString writes it.
	return ok && len(hexPart) == 16 && strings.Trim(hexPart, "0123456789abcdef") == ""
}

// hasKeyless reports whether a copied table has no primary key.
func (e *Extractor) hasKeyless() bool {
	for _, t := range e.cat.Tables {
		if len(t.Key) == 0 {
			return true
		}
	}
	return false
}

var _ extractors.ChangeKeeper = (*Extractor)(nil)

// PositionAt is not how this stream starts (see extractors.ChangeKeeper):
// it always fails.
func (e *Extractor) PositionAt(time.Time) (string, error) {
	return "", errors.New("a PostgreSQL change stream cannot start at a time: it starts where its replication slot was created")
}

// checkIdentities refuses tables whose updates and deletes logical
// replication cannot identify: publishing them would make the live
// application's UPDATE and DELETE on them fail.
func (e *Extractor) checkIdentities(ctx context.Context) error {
	names := make([]string, len(e.cat.Tables))
	for i, t := range e.cat.Tables {
		names[i] = t.QName()
	}
	// One query for all the tables, in the catalog's order.
	rows, err := e.db.Pool.Query(ctx, `SELECT c.relreplident::text FROM unnest($1::text[]) WITH ORDINALITY AS q(name, n)
		JOIN pg_class c ON c.oid = q.name::regclass ORDER BY q.n`, names)
	if err != nil {
		return fmt.Errorf("reading the replica identities of the copied tables: %w", err)
	}
	idents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading the replica identities of the copied tables: %w", err)
	}
	if len(idents) != len(names) {
		return fmt.Errorf("reading the replica identities of the copied tables: %d of %d tables found", len(idents), len(names))
	}
	var bad []string
	for i, t := range e.cat.Tables {
		ident := idents[i]
		switch {
		case ident == "n":
			bad = append(bad, t.QName()+" (REPLICA IDENTITY NOTHING)")
		case ident == "d" && len(t.Key) == 0:
			bad = append(bad, t.QName()+" (no primary key, REPLICA IDENTITY DEFAULT)")
		}
	}
	if len(bad) > 0 {
		return failure.Mark(fmt.Errorf("cannot follow the changes of %s: publishing such a table for logical replication makes the application's UPDATE and DELETE on it fail. "+
			"Give each a primary key, or run ALTER TABLE … REPLICA IDENTITY FULL on it at the source (then a delete removes exactly one equal row), "+
			"or leave its schema out of --schemas", strings.Join(bad, ", ")), failure.Permanent)
	}
	return nil
}

// KeepChanges creates the publication FOR TABLE the copied tables and then
// the logical replication slot, both named SlotName(consumer), when
// missing (a slot left without its publication is dropped and made again:
// pgoutput cannot decode changes from before its publication existed). A
// publication whose tables differ from the catalog's is set to them. The
// publication's comment records when the slot was made.
func (e *Extractor) KeepChanges(ctx context.Context, consumer string) error {
	name := SlotName(consumer)
	var level string
	if err := e.db.Pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fmt.Errorf("reading the source's wal_level: %w", err)
	}
	if level != "logical" {
		return failure.Mark(fmt.Errorf("the source's wal_level is %s: following its changes needs wal_level = logical (Supabase has it; a self-hosted server needs it set and a restart)", level), failure.Permanent)
	}
	if err := e.checkIdentities(ctx); err != nil {
		return err
	}
	var pubExists, slotExists bool
	if err := e.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
		EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, name).Scan(&pubExists, &slotExists); err != nil {
		return fmt.Errorf("reading the source's publications and replication slots: %w", err)
	}
	var tables []string
	for _, t := range e.cat.Tables {
		tables = append(tables, t.QName())
	}
	if pubExists && slotExists {
		rows, err := e.db.Pool.Query(ctx, "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1", name)
		if err != nil {
			return fmt.Errorf("reading the tables of publication %s: %w", name, err)
		}
		have, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var schema, table string
			err := r.Scan(&schema, &table)
			return pgx.Identifier{schema, table}.Sanitize(), err
		})
		if err != nil {
			return fmt.Errorf("reading the tables of publication %s: %w", name, err)
		}
		slices.Sort(have)
		want := slices.Sorted(slices.Values(tables))
		same := slices.Equal(have, want)
		if !same && len(tables) > 0 {
			if _, err := e.db.Pool.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{name}.Sanitize()+" SET TABLE "+strings.Join(tables, ", ")); err != nil {
				return fmt.Errorf("setting the tables of publication %s: %w", name, err)
			}
		}
		return nil
	}
	if slotExists {
		if _, err := e.db.Pool.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name); err != nil {
			return fmt.Errorf("dropping replication slot %s, left without its publication: %w", name, err)
		}
	}
	if !pubExists {
		sql := "CREATE PUBLICATION " + pgx.Identifier{name}.Sanitize()
		if len(tables) > 0 {
			sql += " FOR TABLE " + strings.Join(tables, ", ")
		}
		if _, err := e.db.Pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating publication %s at the source (it needs to own the tables): %w", name, err)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name); err != nil {
		return fmt.Errorf("creating replication slot %s at the source (it needs the REPLICATION attribute and a free slot, max_replication_slots): %w", name, err)
	}
	since := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := e.db.Pool.Exec(ctx, fmt.Sprintf("COMMENT ON PUBLICATION %s IS %s", pgx.Identifier{name}.Sanitize(),
		pgcatalog.Literal("baasmigrate sync keeps changes since "+since+" (drop with: SELECT pg_drop_replication_slot('"+name+"'); DROP PUBLICATION "+name+";)"))); err != nil {
		return fmt.Errorf("recording when replication slot %s was made: %w", name, err)
	}
	return nil
}

// StartAfter starts at the slot's confirmed position when the time its
// publication's comment records is at or before copyStarted; otherwise at
// "<slot>@", the position of a copy that predates the slot.
func (e *Extractor) StartAfter(ctx context.Context, consumer string, copyStarted time.Time) (string, time.Time, bool, error) {
	name := SlotName(consumer)
	var lsn *string
	var comment *string
	err := e.db.Pool.QueryRow(ctx, `SELECT s.confirmed_flush_lsn::text, obj_description(p.oid, 'pg_publication')
		FROM pg_replication_slots s LEFT JOIN pg_publication p ON p.pubname = s.slot_name WHERE s.slot_name = $1`, name).Scan(&lsn, &comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, false, fmt.Errorf("the source has no replication slot %s keeping changes for this job: run sync (it creates it), not only migrate", name)
	}
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("reading replication slot %s: %w", name, err)
	}
	if lsn == nil {
		return "", time.Time{}, false, fmt.Errorf("replication slot %s has no confirmed position", name)
	}
	l, err := pglogrepl.ParseLSN(*lsn)
	if err != nil {
		return "", time.Time{}, false, err
	}
	var since time.Time
	if comment != nil {
		if _, rest, ok := strings.Cut(*comment, "keeps changes since "); ok {
			if ts, _, ok := strings.Cut(rest, " "); ok {
				since, _ = time.Parse(time.RFC3339Nano, ts)
			}
		}
	}
	if since.IsZero() || copyStarted.Before(since) {
		return name + "@", copyStarted, false, nil
	}
	return encodePosition(name, l, extra{Resync: e.hasKeyless()}), since, true, nil
}

// PositionNow reads the source's clock, then its current WAL position:
// every transaction committed before that time ends before that position.
func (e *Extractor) PositionNow(ctx context.Context, consumer string) (string, time.Time, error) {
	at, lsn, err := e.now(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	return encodePosition(SlotName(consumer), lsn, extra{Resync: e.hasKeyless()}), at, nil
}

func (e *Extractor) now(ctx context.Context) (time.Time, pglogrepl.LSN, error) {
	var at time.Time
	var l string
	// One statement, evaluated left to right: the clock first. The insert
	// position, not the write position: with synchronous_commit = off a
	// transaction is visible (committed) before its commit record is
	// written.
	if err := e.db.Pool.QueryRow(ctx, "SELECT clock_timestamp(), pg_current_wal_insert_lsn()::text").Scan(&at, &l); err != nil {
		return time.Time{}, 0, fmt.Errorf("reading the source's current time and WAL position: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(l)
	return at.UTC(), lsn, err
}

// Confirm records position as committed in the target; a running Changes
// confirms it to the slot at its next status update.
func (e *Extractor) Confirm(position string) {
	_, lsn, _, err := parsePosition(position)
	if err != nil || lsn == 0 {
		return
	}
	for {
		cur := e.confirmed.Load()
		if uint64(lsn) <= cur || e.confirmed.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// ReleaseChanges drops the slot, waiting while a stream that just ended
// still holds it (DROP_REPLICATION_SLOT … WAIT), then the publication.
func (e *Extractor) ReleaseChanges(ctx context.Context, consumer string) error {
	name := SlotName(consumer)
	var exists bool
	if err := e.db.Pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("reading replication slot %s: %w", name, err)
	}
	if exists {
		conn, err := e.replication(ctx)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := pglogrepl.DropReplicationSlot(wctx, conn, name, pglogrepl.DropReplicationSlotOptions{Wait: true}); err != nil {
			return fmt.Errorf("dropping replication slot %s at the source (is a sync still running?): %w", name, err)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("dropping publication %s at the source: %w", name, err)
	}
	return nil
}

// replication opens a replication connection to the source's database,
// its text output set as the copy and the comparison read it.
func (e *Extractor) replication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := e.db.Pool.Config().ConnConfig.Config.Copy()
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["statement_timeout"] = "0"
	for k, v := range map[string]string{"DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "TimeZone": "UTC", "extra_float_digits": "1", "bytea_output": "hex"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening a replication connection to the source: %w", err)
	}
	return conn, nil
}

// heartbeatEvery is how often an idle stream asks where the source is.
const heartbeatEvery = time.Second

// Changes follows the slot from from (see the comment at the top).
func (e *Extractor) Changes(ctx context.Context, from string, _ extractors.ChangeHints, emit func(record.ChangeBatch) error) error {
	slot, start, x, err := parsePosition(from)
	if err != nil {
		return failure.Mark(err, failure.Permanent)
	}
	if start == 0 {
		return fmt.Errorf("%w: the copy was made before the source kept its changes (replication slot %s)", extractors.ErrSnapshotExpired, slot)
	}
	var confirmed *string
	err = e.db.Pool.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: the source's replication slot %s is gone (dropped by a cutover or by hand)", extractors.ErrSnapshotExpired, slot)
	}
	if err != nil {
		return fmt.Errorf("reading replication slot %s: %w", slot, err)
	}
	if confirmed != nil {
		if c, err := pglogrepl.ParseLSN(*confirmed); err == nil && c > start {
			return fmt.Errorf("%w: replication slot %s starts at %s, past the target's position %s (made again after a cutover or by hand dropped it, or the target was restored from a backup)",
				extractors.ErrSnapshotExpired, slot, c, start)
		}
	}
	if err := e.checkIdentities(ctx); err != nil {
		return err
	}
	var segment int64
	if err := e.db.Pool.QueryRow(ctx, "SELECT pg_size_bytes(current_setting('wal_segment_size'))").Scan(&segment); err != nil {
		return fmt.Errorf("reading the source's WAL segment size: %w", err)
	}
	conn, err := e.replication(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	e.Confirm(from)
	s := &stream{e: e, slot: slot, conn: conn, emit: emit, rels: map[uint32]*relation{}, types: map[[2]int64]string{},
		start: start, pos: start, skips: x.Skips, segment: uint64(segment)}
	// Before replication starts: the walsender would end a connection
	// that stays silent (wal_sender_timeout) while the tables are read.
	if x.Resync {
		if err := s.resync(ctx); err != nil {
			return err
		}
	}
	if err := pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + pgcatalog.Literal(slot)},
	}); err != nil {
		return fmt.Errorf("starting replication from slot %s at %s: %w", slot, start, err)
	}
	return s.run(ctx)
}

// stream is one run of Changes.
type stream struct {
	e     *Extractor
	slot  string
	conn  *pgconn.PgConn
	emit  func(record.ChangeBatch) error
	rels  map[uint32]*relation
	types map[[2]int64]string
	// start is where the stream started (committed in the target); pos
	// the end of the last transaction delivered; readTime the last
	// ReadTime delivered.
	start    pglogrepl.LSN
	pos      pglogrepl.LSN
	readTime time.Time
	// The transaction being received.
	inTxn   bool
	commit  time.Time
	changes []record.Change
	// probe is the source's time and position a heartbeat waits for the
	// stream to pass.
	probe *probe
	// xid is the transaction being received; skips the keyless tables'
	// snapshots (see extra).
	xid   uint32
	skips []skip
	// segment is the source's WAL segment size (pageStart).
	segment uint64
}

type probe struct {
	at  time.Time
	lsn pglogrepl.LSN
}

// relation is a published table as the stream describes it.
type relation struct {
	t     *pgcatalog.Table
	qname string
	// identity lists the columns (indexes into Copied) of the replica
	// identity; ident is it as FieldIdentity's value, made at the
	// relation's first change and shared by all its changes.
	identity []int
	ident    *record.Value
	// key lists the positions of the primary key's columns.
	key []int
}

func (s *stream) run(ctx context.Context) error {
	next := time.Now()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !time.Now().Before(next) {
			next = time.Now().Add(heartbeatEvery)
			ask := false
			if !s.inTxn && s.probe == nil {
				at, lsn, err := s.e.now(ctx)
				if err != nil {
					return err
				}
				s.probe, ask = &probe{at: at, lsn: lsn}, true
			}
			if err := s.status(ctx, ask || s.probe != nil); err != nil {
				return err
			}
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		msg, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("receiving the source's changes (slot %s): %w", s.slot, err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("the source's replication (slot %s): %w", s.slot, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("reading the source's keepalive: %w", err)
				}
				if k.ReplyRequested {
					if err := s.status(ctx, false); err != nil {
						return err
					}
				}
				if err := s.keepalive(k.ServerWALEnd); err != nil {
					return err
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("reading the source's change data: %w", err)
				}
				if err := s.message(ctx, x.WALData); err != nil {
					return err
				}
			}
		}
	}
}

// status confirms to the slot what the target has committed.
func (s *stream) status(ctx context.Context, reply bool) error {
	// Only what the target committed: never the position received.
	c := max(pglogrepl.LSN(s.e.confirmed.Load()), s.start)
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: c, WALFlushPosition: c, WALApplyPosition: c, ReplyRequested: reply,
	}); err != nil {
		return fmt.Errorf("confirming the applied position to the source: %w", err)
	}
	return nil
}

// keepalive delivers a heartbeat once the stream, between transactions,
// has passed the probed position: every transaction committed before the
// probe's time has been delivered.
func (s *stream) keepalive(walEnd pglogrepl.LSN) error {
	if s.inTxn || s.probe == nil || walEnd < pageStart(s.probe.lsn, s.segment) {
		return nil
	}
	p := s.probe
	s.probe = nil
	if walEnd > s.pos {
		s.pos = walEnd
	}
	return s.deliver(nil, p.at)
}

func (s *stream) deliver(changes []record.Change, at time.Time) error {
	if at.After(s.readTime) {
		s.readTime = at
	}
	// Snapshots the stream has passed can show none of what follows.
	kept := s.skips[:0]
	for _, k := range s.skips {
		if until, err := pglogrepl.ParseLSN(k.Until); err == nil && s.pos < until {
			kept = append(kept, k)
		}
	}
	s.skips = kept
	return s.emit(record.ChangeBatch{Changes: changes, ReadTime: s.readTime, Position: encodePosition(s.slot, s.pos, extra{Skips: s.skips})})
}

// skipped reports whether a change of table in the current transaction is
// already in the target: its keyless table was read again in a snapshot
// that shows the transaction.
func (s *stream) skipped(table string) bool {
	for _, k := range s.skips {
		if k.Table == table && k.shows(s.xid) {
			return true
		}
	}
	return false
}

// pageStart maps a WAL insert position just past a page header (where the
// next record will start) to the page boundary, the end of the record
// before it, which is what the stream reports having passed: otherwise a
// probe made while the last record ends at a page boundary would wait for
// the next record, on an idle source maybe for long. No record ends
// inside a page header, so nothing is claimed early.
func pageStart(lsn pglogrepl.LSN, segment uint64) pglogrepl.LSN {
	const page, short, long = 8192, 24, 40
	switch {
	case uint64(lsn)%page == short:
		return lsn - short
	case segment > 0 && uint64(lsn)%segment == long:
		return lsn - long
	}
	return lsn
}

// resync reads every keyless table again in one snapshot of the source and
// delivers, as one batch, for each a truncate and an insert per row; the
// batch's position carries the snapshot (see extra).
func (s *stream) resync(ctx context.Context) error {
	var changes []record.Change
	var skips []skip
	err := pgx.BeginTxFunc(ctx, s.e.db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var snap, until string
		// The transaction's snapshot is taken by its first statement; the
		// WAL insert position is read after it: every transaction the
		// snapshot shows ends before it (see now).
		if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text").Scan(&snap, &until); err != nil {
			return err
		}
		k, err := parseSnapshot(snap)
		if err != nil {
			return err
		}
		k.Until = until
		if err := tx.Conn().PgConn().Exec(ctx, pgcatalog.LocalSettings).Close(); err != nil {
			return err
		}
		at := time.Now().UTC()
		for _, t := range s.e.cat.Tables {
			if len(t.Key) > 0 {
				continue
			}
			qname := t.QName()
			r := &relation{t: t, qname: qname}
			changes = append(changes, r.truncate(at))
			changes[len(changes)-1].Record.Key = r.keyOf(changes[len(changes)-1], len(changes))
			var cols []string
			for _, c := range t.Copied() {
				cols = append(cols, pgx.Identifier{c.Name}.Sanitize()+"::text")
			}
			rr := tx.Conn().PgConn().ExecParams(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+qname, nil, nil, nil, nil)
			for rr.NextRow() {
				vals := make([]record.Value, len(cols))
				for i, v := range rr.Values() {
					if v == nil {
						vals[i] = record.Null()
					} else {
						vals[i] = record.String(string(v))
					}
				}
				c := r.change(pgcatalog.ChangeInsert, at)
				c.Record.Fields[pgcatalog.FieldNew] = record.Array(vals...)
				c.Record.Key = r.keyOf(c, len(changes))
				changes = append(changes, c)
			}
			if _, err := rr.Close(); err != nil {
				return fmt.Errorf("reading %s: %w", qname, err)
			}
			k.Table = qname
			skips = append(skips, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the tables without a primary key again in one snapshot: %w", err)
	}
	s.skips = append(s.skips, skips...)
	return s.deliver(changes, time.Time{})
}

// parseSnapshot reads pg_current_snapshot's text, "xmin:xmax:xip,...".
func parseSnapshot(text string) (skip, error) {
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return skip{}, fmt.Errorf("reading the snapshot %q", text)
	}
	var k skip
	var err error
	if k.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return skip{}, fmt.Errorf("reading the snapshot %q: %w", text, err)
	}
	if k.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return skip{}, fmt.Errorf("reading the snapshot %q: %w", text, err)
	}
	for _, x := range strings.Split(parts[2], ",") {
		if x == "" {
			continue
		}
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return skip{}, fmt.Errorf("reading the snapshot %q: %w", text, err)
		}
		k.Xip = append(k.Xip, n)
	}
	return k, nil
}

// message handles one pgoutput message.
func (s *stream) message(ctx context.Context, data []byte) error {
	m, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("reading the source's change message: %w", err)
	}
	switch m := m.(type) {
	case *pglogrepl.BeginMessage:
		s.inTxn, s.commit, s.changes, s.xid = true, m.CommitTime, nil, m.Xid
	case *pglogrepl.CommitMessage:
		s.inTxn = false
		if m.TransactionEndLSN > s.pos {
			s.pos = m.TransactionEndLSN
		}
		changes := s.changes
		s.changes = nil
		return s.deliver(changes, m.CommitTime)
	case *pglogrepl.RelationMessage:
		r, err := s.relation(ctx, m)
		if err != nil {
			return err
		}
		s.rels[m.RelationID] = r
	case *pglogrepl.InsertMessage:
		r, err := s.rel(m.RelationID)
		if err != nil {
			return err
		}
		s.add(r, r.insert(m, s.commit))
	case *pglogrepl.UpdateMessage:
		r, err := s.rel(m.RelationID)
		if err != nil {
			return err
		}
		s.add(r, r.update(m, s.commit))
	case *pglogrepl.DeleteMessage:
		r, err := s.rel(m.RelationID)
		if err != nil {
			return err
		}
		s.add(r, r.delete(m, s.commit))
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			r, err := s.rel(id)
			if err != nil {
				return err
			}
			s.add(r, r.truncate(s.commit))
		}
	}
	return nil
}

func (s *stream) add(r *relation, c record.Change) {
	if len(s.skips) > 0 && s.skipped(r.qname) {
		return
	}
	c.Record.Key = r.keyOf(c, len(s.changes))
	s.changes = append(s.changes, c)
}

func (s *stream) rel(id uint32) (*relation, error) {
	r := s.rels[id]
	if r == nil {
		return nil, failure.Mark(fmt.Errorf("the source sent a change of relation %d before describing it", id), failure.Permanent)
	}
	return r, nil
}

// ErrSchemaChanged is returned (wrapped) by Changes when a table's columns
// at the source no longer match the copied definition (DDL at the
// source): no row of it is written.
var ErrSchemaChanged = errors.New("a followed table changed its columns at the source")

// relation checks a relation message against the copied definition.
func (s *stream) relation(ctx context.Context, m *pglogrepl.RelationMessage) (*relation, error) {
	qname := pgx.Identifier{m.Namespace, m.RelationName}.Sanitize()
	t := s.e.cat.Find(qname)
	if t == nil {
		return nil, failure.Mark(fmt.Errorf("%w: the source publishes %s, which is not among the copied tables", ErrSchemaChanged, qname), failure.Permanent)
	}
	cols := t.Copied()
	var have, want []string
	for _, c := range m.Columns {
		typ, err := s.typeName(ctx, c.DataType, c.TypeModifier)
		if err != nil {
			return nil, err
		}
		have = append(have, pgx.Identifier{c.Name}.Sanitize()+" "+typ)
	}
	for _, c := range cols {
		want = append(want, pgx.Identifier{c.Name}.Sanitize()+" "+c.Type)
	}
	if strings.Join(have, ", ") != strings.Join(want, ", ") {
		return nil, failure.Mark(fmt.Errorf("%w: %s now has the columns (%s) at the source, and the target's copy (%s); no change of it is applied: "+
			"make the same change on the target (or sync --restart to copy again), then run sync again",
			ErrSchemaChanged, qname, strings.Join(have, ", "), strings.Join(want, ", ")), failure.Permanent)
	}
	r := &relation{t: t, qname: qname}
	for i, c := range m.Columns {
		if c.Flags&1 != 0 {
			r.identity = append(r.identity, i)
		}
	}
	r.key = t.KeyPositions()
	return r, nil
}

// typeName is format_type of a column's type as the catalog has it.
func (s *stream) typeName(ctx context.Context, oid uint32, mod int32) (string, error) {
	k := [2]int64{int64(oid), int64(mod)}
	if n, ok := s.types[k]; ok {
		return n, nil
	}
	var n string
	err := pgx.BeginFunc(ctx, s.e.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT format_type($1::oid, $2::int)", oid, mod).Scan(&n)
	})
	if err != nil {
		return "", fmt.Errorf("reading the name of a type of the source: %w", err)
	}
	s.types[k] = n
	return n, nil
}

// values turns a tuple into pgcatalog.FieldNew's array and the unchanged columns.
func values(tuple *pglogrepl.TupleData) (record.Value, []record.Value) {
	if tuple == nil {
		return record.Null(), nil
	}
	vals := make([]record.Value, len(tuple.Columns))
	var unchanged []record.Value
	for i, c := range tuple.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			vals[i] = record.String(string(c.Data))
		case pglogrepl.TupleDataTypeToast:
			vals[i] = record.Null()
			unchanged = append(unchanged, record.Int(int64(i)))
		default:
			vals[i] = record.Null()
		}
	}
	return record.Array(vals...), unchanged
}

func (r *relation) change(op string, at time.Time) record.Change {
	if r.ident == nil {
		ident := make([]record.Value, len(r.identity))
		for i, c := range r.identity {
			ident[i] = record.Int(int64(c))
		}
		v := record.Array(ident...)
		r.ident = &v
	}
	return record.Change{Op: record.OpUpsert, CommitTime: at, Record: record.Record{Kind: record.KindTable, UpdateTime: at, Fields: map[string]record.Value{
		pgcatalog.FieldTable: record.String(r.qname), pgcatalog.FieldOp: record.String(op), pgcatalog.FieldIdentity: *r.ident,
	}}}
}

func (r *relation) insert(m *pglogrepl.InsertMessage, at time.Time) record.Change {
	c := r.change(pgcatalog.ChangeInsert, at)
	c.Record.Fields[pgcatalog.FieldNew], _ = values(m.Tuple)
	return c
}

func (r *relation) update(m *pglogrepl.UpdateMessage, at time.Time) record.Change {
	c := r.change(pgcatalog.ChangeUpdate, at)
	nv, unchanged := values(m.NewTuple)
	c.Record.Fields[pgcatalog.FieldNew] = nv
	if len(unchanged) > 0 {
		c.Record.Fields[pgcatalog.FieldUnchanged] = record.Array(unchanged...)
	}
	if m.OldTuple != nil {
		c.Record.Fields[pgcatalog.FieldOld], _ = values(m.OldTuple)
		c.Record.Fields[pgcatalog.FieldOldFull] = record.Bool(m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld)
	}
	return c
}

func (r *relation) delete(m *pglogrepl.DeleteMessage, at time.Time) record.Change {
	c := r.change(pgcatalog.ChangeDelete, at)
	c.Op = record.OpDelete
	c.Record.Fields[pgcatalog.FieldOld], _ = values(m.OldTuple)
	c.Record.Fields[pgcatalog.FieldOldFull] = record.Bool(m.OldTupleType == pglogrepl.DeleteMessageTupleTypeOld)
	return c
}

func (r *relation) truncate(at time.Time) record.Change {
	c := r.change(pgcatalog.ChangeTruncate, at)
	c.Op = record.OpDelete
	return c
}

// keyOf is a change's record key: for a table with a primary key the key
// a comparison gives its row (`"schema"."table" ["text", ...]`), from the
// old identity for a delete or a key change; otherwise a key unique to
// the change (n: its place in its transaction).
func (r *relation) keyOf(c record.Change, n int) string {
	f := c.Record.Fields
	op := f[pgcatalog.FieldOp].StringValue()
	if op != pgcatalog.ChangeTruncate && len(r.key) > 0 {
		src := f[pgcatalog.FieldNew]
		if old, ok := f[pgcatalog.FieldOld]; ok {
			src = old
		}
		arr := src.ArrayValue()
		key := make([]string, 0, len(r.key))
		for _, p := range r.key {
			if p < len(arr) && !arr[p].IsNull() {
				key = append(key, arr[p].StringValue())
			}
		}
		if len(key) == len(r.key) {
			return r.qname + " " + pgcatalog.EncodeKey(key)
		}
	}
	return fmt.Sprintf("%s (%s %s #%d)", r.qname, op, c.CommitTime.Format(time.RFC3339Nano), n)
}
