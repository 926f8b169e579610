package pgcatalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Fields of a row record (record.KindTable) as the tables extractor emits
// them for a copy, and the tables sink reads them.
const (
	// FieldTable is the table's quoted, qualified name (Table.QName).
	FieldTable = "table"
	// FieldTuple is the row as one tuple of COPY data in the table's
	// format (Table.Binary): binary (field count, then each field's length
	// and bytes) or text (a line, tab-separated, escaped).
	FieldTuple = "tuple"
	// FieldClear is set on the first row read of a partition from its
	// start: the partition's range (JSON of PartitionRange; "{}" for a
	// keyless table's one partition). The sink deletes the target rows in
	// it first, so that a new run replaces what an earlier one copied.
	FieldClear = "clear"
	// FieldSequences is set on the one record of the finish stream: the
	// source's sequence values (JSON of []SequenceValue).
	FieldSequences = "sequences"
	// FieldIndexes is set on a record of the index stream: the quoted,
	// qualified name of the table whose keys and indexes the sink creates.
	FieldIndexes = "indexes"
)

// Fields of a change record of a PostgreSQL source's change stream
// (record.KindTable, besides FieldTable), as the tables extractor emits
// them and the tables sink applies them in order.
const (
	// FieldOp is ChangeInsert, ChangeUpdate, ChangeDelete or
	// ChangeTruncate.
	FieldOp = "op"
	// FieldNew is the new row (insert, update): an array with one value
	// per copied column (Table.Copied), String (its text) or Null.
	FieldNew = "new"
	// FieldUnchanged lists (Int) the columns of FieldNew whose values the
	// source did not send (unchanged TOASTed values): an update leaves
	// them as they are.
	FieldUnchanged = "unchanged"
	// FieldOld is the row's old identity (update that changed it, delete):
	// an array like FieldNew; with FieldOldFull false only the replica
	// identity's columns (FieldIdentity) hold values.
	FieldOld = "old"
	// FieldOldFull is Bool(true) when FieldOld is the whole old row
	// (REPLICA IDENTITY FULL).
	FieldOldFull = "old_full"
	// FieldIdentity lists (Int) the columns of the replica identity as the
	// source declares it.
	FieldIdentity = "identity"
)

// The values of FieldOp.
const (
	ChangeInsert   = "insert"
	ChangeUpdate   = "update"
	ChangeDelete   = "delete"
	ChangeTruncate = "truncate"
)

// IndexStream is the name of the stream that follows every table's rows
// in a tables copy: a partition, and one record (FieldIndexes), per table
// with primary, unique or exclusion constraints or indexes, on which the
// sink creates them; the tables' partitions run in parallel as any
// stream's, so several tables' indexes are built at once, each in the
// transaction of its checkpoint.
const IndexStream = "(keys and indexes)"

// FinishStream is the name of the last stream of a tables copy: one record
// after every table's rows and indexes, on which the sink creates the
// foreign keys (and any key or index still missing: a run planned before
// the index stream existed has none) and sets the sequences.
const FinishStream = "(indexes, foreign keys, sequences)"

// SequenceValue is a sequence's state at the source.
type SequenceValue struct {
	// Name is the sequence's quoted, qualified name; for an identity
	// column's sequence, "" and Table (quoted, qualified) and Column name
	// the column, whose sequence the target names itself.
	Name     string `json:"name,omitempty"`
	Table    string `json:"table,omitempty"`
	Column   string `json:"column,omitempty"`
	Value    int64  `json:"value"`
	IsCalled bool   `json:"is_called"`
}

// BinaryHeader and BinaryTrailer frame binary COPY data.
var (
	BinaryHeader  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	BinaryTrailer = []byte{0xff, 0xff}
)

// BinaryTuple encodes values (nil: NULL), each in its type's binary
// format, as one tuple of binary COPY data.
func BinaryTuple(values [][]byte) []byte {
	n := 2
	for _, v := range values {
		n += 4 + len(v)
	}
	out := make([]byte, 2, n)
	binary.BigEndian.PutUint16(out, uint16(len(values)))
	for _, v := range values {
		if v == nil {
			out = binary.BigEndian.AppendUint32(out, 0xffffffff)
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
	}
	return out
}

// TextTuple encodes values (nil: NULL), each in its type's text format,
// as one line of text COPY data.
func TextTuple(values [][]byte) []byte {
	n := len(values)
	for _, v := range values {
		n += len(v)
	}
	b := make([]byte, 0, n) // escapes aside, the line's length: one allocation
	for i, v := range values {
		if i > 0 {
			b = append(b, '\t')
		}
		if v == nil {
			b = append(b, `\N`...)
			continue
		}
		for _, c := range v {
			switch c {
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, c)
			}
		}
	}
	return append(b, '\n')
}

// SplitKey splits a row record's key, `"schema"."table" rest`, into the
// table's quoted name and rest.
func SplitKey(key string) (qname, rest string, err error) {
	i := 0
	for part := 0; part < 2; part++ {
		if i >= len(key) || key[i] != '"' {
			return "", "", errors.New("not a table row's key")
		}
		i++
		for {
			j := strings.IndexByte(key[i:], '"')
			if j < 0 {
				return "", "", errors.New("not a table row's key")
			}
			i += j + 1
			if i < len(key) && key[i] == '"' {
				i++
				continue
			}
			break
		}
		if part == 0 {
			if i >= len(key) || key[i] != '.' {
				return "", "", errors.New("not a table row's key")
			}
			i++
		}
	}
	if i >= len(key) || key[i] != ' ' {
		return "", "", errors.New("not a table row's key")
	}
	return key[:i], key[i+1:], nil
}

// CompareReader turns the rows of a table's CompareQuery, in order, into
// comparable fields and keys.
type CompareReader struct {
	t    *Table
	prev string
	seq  int
}

// NewCompareReader reads rows of t.
func NewCompareReader(t *Table) *CompareReader { return &CompareReader{t: t} }

// Row returns a row's fields (every column, as text or null) and its key:
// the key columns' text, or for a keyless table the row's MD5 and its rank
// among equal rows (zero-padded, so that byte order is numeric order).
func (c *CompareReader) Row(v [][]byte) (map[string]record.Value, []string) {
	fields := make(map[string]record.Value, len(c.t.Columns))
	for i, col := range c.t.Columns {
		if v[i] == nil {
			fields[col.Name] = record.Null()
		} else {
			fields[col.Name] = record.String(string(v[i]))
		}
	}
	var key []string
	for _, k := range v[len(c.t.Columns):] {
		key = append(key, string(k))
	}
	if len(c.t.Key) == 0 {
		if key[0] == c.prev {
			c.seq++
		} else {
			c.prev, c.seq = key[0], 1
		}
		key = append(key, fmt.Sprintf("%010d", c.seq))
	}
	return fields, key
}
