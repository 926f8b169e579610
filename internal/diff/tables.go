package diff

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Tables compares a PostgreSQL source's tables (record.KindTable, read by
// a comparing extractor: every column as text, in Table.CompareQuery's
// order) with the target's tables of the same names, row by row: merged
// by key, keyless tables as multisets (keyed by each row's MD5 and its
// rank among equal rows). Each column is compared by its text, which is
// exact for every type (both sides use pgcatalog.SessionSettings).
type Tables struct {
	cat *pgcatalog.Catalog
}

var _ Adapter = (*Tables)(nil)

// NewTables returns the adapter for the tables of cat.
func NewTables(cat *pgcatalog.Catalog) *Tables { return &Tables{cat: cat} }

// Kind is "table".
func (a *Tables) Kind() string { return string(record.KindTable) }

// Tables lists the catalog's tables, quoted and qualified.
func (a *Tables) Tables() []string {
	var out []string
	for _, t := range a.cat.Tables {
		out = append(out, t.QName())
	}
	return out
}

// StreamTables is the stream's table: streams are named after them.
func (a *Tables) StreamTables(stream string) []string { return []string{stream} }

// Route places a row by its key, `"schema"."table" ["key", ...]`.
func (a *Tables) Route(rec record.Record) Routed {
	qname, rest, err := pgcatalog.SplitKey(rec.Key)
	if err != nil {
		return Routed{Reject: err.Error(), Item: Item{Label: rec.Key}}
	}
	key, err := pgcatalog.DecodeKey(rest)
	if err != nil {
		return Routed{Reject: err.Error(), Item: Item{Label: rec.Key}}
	}
	return Routed{Table: qname, Item: Item{Key: key, Label: rec.Key, Fields: rec.Fields}}
}

var tableCursors atomic.Int64

// Open reads a target table in the comparison's order through a
// server-side cursor; nil when the table does not exist.
func (a *Tables) Open(ctx context.Context, tx pgx.Tx, table string) (TargetCursor, error) {
	t := a.cat.Find(table)
	if t == nil {
		return nil, nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking for %s: %w", table, err)
	}
	if !exists {
		return nil, nil
	}
	pc := tx.Conn().PgConn()
	if err := pc.Exec(ctx, pgcatalog.LocalSettings).Close(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", table, err)
	}
	name := "baasmigrate_tables_" + strconv.FormatInt(tableCursors.Add(1), 10)
	if err := pc.Exec(ctx, "DECLARE "+name+" NO SCROLL CURSOR FOR "+t.CompareQuery()).Close(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", table, err)
	}
	return &tableCursor{pc: pc, name: name, r: pgcatalog.NewCompareReader(t), qname: table}, nil
}

type tableCursor struct {
	pc    *pgconn.PgConn
	name  string
	r     *pgcatalog.CompareReader
	qname string // the table's quoted name, once: quoting per row costs
	buf   [][][]byte
	done  bool
}

func (c *tableCursor) Next(ctx context.Context) (Item, bool, error) {
	if len(c.buf) == 0 && !c.done {
		rr := c.pc.ExecParams(ctx, "FETCH 1000 FROM "+c.name, nil, nil, nil, nil)
		for rr.NextRow() {
			v := rr.Values()
			row := make([][]byte, len(v))
			for i, b := range v {
				if b != nil {
					row[i] = append([]byte{}, b...)
				}
			}
			c.buf = append(c.buf, row)
		}
		if _, err := rr.Close(); err != nil {
			return Item{}, false, fmt.Errorf("reading %s: %w", c.qname, err)
		}
		if len(c.buf) == 0 {
			c.done = true
		}
	}
	if len(c.buf) == 0 {
		return Item{}, false, nil
	}
	v := c.buf[0]
	c.buf = c.buf[1:]
	fields, key := c.r.Row(v)
	return Item{Key: key, Label: c.qname + " " + pgcatalog.EncodeKey(key), Fields: fields}, true, nil
}
