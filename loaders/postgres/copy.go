package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/transformers"
)

// copyRows COPies rows (one value per column, of the Go types
// transformers.Row holds, nil for NULL) into the columns of table name in
// PostgreSQL's binary format, and returns how many rows it inserted. It
// sends what tx.CopyFrom(ctx, name, columns, pgx.CopyFromRows(rows))
// sends, byte for byte, and fails in the same cases: the column types come
// from the same description of the table (which, in pgx's default query
// mode, the connection keeps after the first use), and every value is encoded by
// transformers.AppendCopyField, which writes pgx's bytes without its
// per-value plan lookup and boxing. The stream is encoded as PostgreSQL
// reads it, into a buffer the sink reuses.
func copyRows(ctx context.Context, tx pgx.Tx, name pgx.Identifier, columns []string, rows [][]any) (int64, error) {
	conn := tx.Conn()
	cols := quoteAll(columns)
	table := name.Sanitize()
	if conn == nil {
		// A transaction begun lazily whose Begin failed has no connection.
		return 0, fmt.Errorf("copying into %s: the transaction has no connection", table)
	}
	describe := "select " + cols + " from " + table
	var sd *pgconn.StatementDescription
	var err error
	if conn.Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		// pgx's default: a prepared statement per connection, described
		// once.
		sd, err = conn.Prepare(ctx, describe, describe)
	} else {
		// Other modes (a connection pooler that keeps no prepared
		// statements, say): described by an unnamed statement each time.
		sd, err = conn.PgConn().Prepare(ctx, "", describe, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("describing the columns of %s: %w", table, err)
	}
	if len(sd.Fields) != len(columns) {
		return 0, fmt.Errorf("describing the columns of %s: %d columns, want %d", table, len(sd.Fields), len(columns))
	}
	s := &copyStream{m: conn.TypeMap(), rows: rows, oids: make([]uint32, len(columns))}
	for i, f := range sd.Fields {
		s.oids[i] = f.DataTypeOID
	}
	s.buf = copyBuffers.Get().(*[]byte)
	defer s.close()
	tag, err := conn.PgConn().CopyFrom(ctx, s, "copy "+table+" ( "+cols+" ) from stdin binary;")
	return tag.RowsAffected(), err
}

// errCopyOver is what a copyStream's Read returns once its COPY is over.
var errCopyOver = errors.New("the COPY is over")

// copyBuffers holds the buffers copyStreams encode into.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

// copyBufferKeep is the largest buffer copyBuffers keeps: a batch of
// huge rows does not leave its buffer behind.
const copyBufferKeep = 1 << 20

// copyStream is the binary COPY stream of rows, encoded as it is read.
//
// pgconn's CopyFrom reads it in a goroutine of its own, and does not wait
// for that goroutine when the connection fails (a fatal error from the
// server, say): a Read can still be running, or start, after CopyFrom
// returned. mu and closed keep such a Read off the rows and the buffer
// once close has handed them back.
type copyStream struct {
	mu     sync.Mutex
	closed bool

	m    *pgtype.Map
	oids []uint32
	rows [][]any
	// started is set once the header is encoded; next is the next row to
	// encode, len(rows)+1 once the trailer is.
	started bool
	next    int
	// (*buf)[off:] is encoded and not read yet.
	buf *[]byte
	off int
}

// close ends the stream once its COPY has returned: it waits for a Read
// still running, makes any later one fail, and gives the buffer back.
func (s *copyStream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if cap(*s.buf) <= copyBufferKeep {
		*s.buf = (*s.buf)[:0]
		copyBuffers.Put(s.buf)
	}
	s.buf, s.rows = nil, nil
}

// Read encodes rows until it can fill p (or the stream ends), and copies
// them into p. An error encoding a row ends the stream with that error,
// which makes the COPY fail.
func (s *copyStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errCopyOver
	}
	buf := *s.buf
	if len(buf)-s.off >= len(p) {
		// Enough is encoded (a row larger than p): hand it on without
		// moving the rest, which would make a large row cost the square
		// of its size.
		n := copy(p, buf[s.off:])
		s.off += n
		return n, nil
	}
	if s.off > 0 {
		buf = buf[:copy(buf, buf[s.off:])]
		s.off = 0
	}
	if !s.started {
		buf = append(buf, "PGCOPY\n\377\r\n\000"...)
		buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // flags, header extension length
		s.started = true
	}
	for len(buf) < len(p) && s.next < len(s.rows) {
		var err error
		if buf, err = s.appendRow(buf, s.rows[s.next]); err != nil {
			*s.buf = (*s.buf)[:0]
			return 0, fmt.Errorf("encoding row %d of %d for COPY: %w", s.next+1, len(s.rows), err)
		}
		s.next++
	}
	if len(buf) < len(p) && s.next == len(s.rows) {
		buf = append(buf, 0xff, 0xff) // end of data
		s.next++
	}
	*s.buf = buf
	if len(buf) == 0 {
		return 0, io.EOF
	}
	s.off = copy(p, buf)
	return s.off, nil
}

func (s *copyStream) appendRow(buf []byte, row []any) ([]byte, error) {
	if len(row) != len(s.oids) {
		return buf, fmt.Errorf("%d values for %d columns", len(row), len(s.oids))
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(row)))
	for i, x := range row {
		var err error
		if buf, err = transformers.AppendCopyField(buf, s.oids[i], x, s.m); err != nil {
			return nil, fmt.Errorf("column %d: %w", i+1, err)
		}
	}
	return buf, nil
}
