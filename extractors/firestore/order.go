package firestore

import (
	"fmt"
	"math"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// IDOrder is the order of document IDs within Firestore's order of
// document names (CompareIDs): legacy numeric IDs first by value, then
// every other ID by its bytes. Read documents come in this order, path
// segment by path segment.
var IDOrder record.KeyOrder = idOrder{}

var _ extractors.KeyOrderer = (*Extractor)(nil)

// KeyOrder is IDOrder: each partition's documents come ordered by name.
func (e *Extractor) KeyOrder() record.KeyOrder { return IDOrder }

type idOrder struct{}

func (idOrder) Compare(a, b string) int { return CompareIDs(a, b) }

// numericIDPattern matches the IDs CompareIDs orders as numbers: "__id" +
// an int64 in canonical decimal + "__" (no plus sign, no leading zero, no
// -0); the pattern admits up to 19 digits, the int64 range is checked on
// the value.
const numericIDPattern = `^__id(0|-?[1-9][0-9]{0,18})__$`

// OrderBy sorts the text column col as CompareIDs does: numeric IDs first,
// by value, then the others by their bytes. Both use the "C" collation
// whatever the column's (a table created by hand may have another, even a
// nondeterministic one, which regular expressions refuse). CASE tests the
// pattern before the cast, so that only digits are ever cast.
func (idOrder) OrderBy(col string) string {
	c := col + ` COLLATE "C"`
	n := fmt.Sprintf("substr(%s, 5, length(%s) - 6)::numeric", c, c)
	return fmt.Sprintf(`CASE WHEN %s !~ '%s' THEN NULL WHEN %s BETWEEN %d AND %d THEN %s END NULLS LAST, %s`,
		c, numericIDPattern, n, math.MinInt64, math.MaxInt64, n, c)
}
