package record

import "strings"

// KeyOrder is an order of keys (one document ID, a uid, an object name) that
// a source can deliver its records in. The diff engine merges a source
// stream with target rows read in the same order, so an order says both
// how to compare two keys here and how PostgreSQL sorts them.
type KeyOrder interface {
	// Compare returns -1, 0 or +1 as a sorts before, equal to or after b.
	Compare(a, b string) int
	// OrderBy returns the items of an SQL ORDER BY (one, or several
	// separated by commas) that sort rows by the text expression col in
	// this order. col is already quoted.
	OrderBy(col string) string
}

// ByteOrder orders keys by their bytes (PostgreSQL: COLLATE "C"), the
// order of sources that have none of their own.
var ByteOrder KeyOrder = byteOrder{}

type byteOrder struct{}

func (byteOrder) Compare(a, b string) int   { return strings.Compare(a, b) }
func (byteOrder) OrderBy(col string) string { return col + ` COLLATE "C"` }
