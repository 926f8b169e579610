package firestoreemu

import (
	"fmt"
	"slices"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// compiledQuery is a StructuredQuery checked and normalized against one
// database.
type compiledQuery struct {
	db             dbID
	parent         []string // parent document path; nil for the root
	parentKey      string
	collectionID   string // "" with allDescendants: every document under parent
	allDescendants bool
	filter         filterNode // nil: every document
	orders         []orderSpec
	start, end     *cursorSpec
	offset         int
	limit          int // -1: none
	projection     [][]string
	hasProjection  bool
}

// orderSpec is one ordering; path is nil for __name__.
type orderSpec struct {
	path []string
	desc bool
}

func (o orderSpec) isName() bool { return o.path == nil }

type cursorSpec struct {
	values []*pb.Value
	before bool
}

// compileQuery validates sq, asked for under parent (a document path or nil
// for the root) in database db.
func compileQuery(db dbID, parent []string, sq *pb.StructuredQuery) (*compiledQuery, error) {
	if sq == nil {
		return nil, status.Error(codes.InvalidArgument, "missing structured query")
	}
	if len(sq.From) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "a query must have exactly one collection selector, got %d", len(sq.From))
	}
	q := &compiledQuery{
		db:             db,
		parent:         parent,
		parentKey:      encodePath(parent),
		collectionID:   sq.From[0].GetCollectionId(),
		allDescendants: sq.From[0].GetAllDescendants(),
		limit:          -1,
	}
	if q.collectionID == "" && !q.allDescendants {
		return nil, status.Error(codes.InvalidArgument, "a collection selector needs a collection_id unless all_descendants is set")
	}
	if q.collectionID != "" {
		if err := validateID(q.collectionID); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "collection_id: %v", err)
		}
	}
	if sq.Where != nil {
		f, err := compileFilter(db, sq.Where)
		if err != nil {
			return nil, err
		}
		q.filter = f
	}
	if err := q.compileOrders(sq); err != nil {
		return nil, err
	}
	var err error
	if q.start, err = q.compileCursor(sq.StartAt, "start_at"); err != nil {
		return nil, err
	}
	if q.end, err = q.compileCursor(sq.EndAt, "end_at"); err != nil {
		return nil, err
	}
	if sq.Offset < 0 {
		return nil, status.Error(codes.InvalidArgument, "offset must not be negative")
	}
	q.offset = int(sq.Offset)
	if sq.Limit != nil {
		if sq.Limit.Value < 0 {
			return nil, status.Error(codes.InvalidArgument, "limit must not be negative")
		}
		q.limit = int(sq.Limit.Value)
	}
	if sq.Select != nil && len(sq.Select.Fields) > 0 {
		q.hasProjection = true
		for _, f := range sq.Select.Fields {
			p, err := parseFieldPath(f.GetFieldPath())
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "select: %v", err)
			}
			q.projection = append(q.projection, p)
		}
	}
	return q, nil
}

// compileOrders normalizes the ordering: the explicit orders, then every
// inequality field not already ordered (in field path order), then
// __name__, the implicit ones in the direction of the last explicit order.
func (q *compiledQuery) compileOrders(sq *pb.StructuredQuery) error {
	seen := map[string]bool{}
	desc := false
	for _, o := range sq.OrderBy {
		p, err := parseFieldPath(o.GetField().GetFieldPath())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "order_by: %v", err)
		}
		d := o.Direction == pb.StructuredQuery_DESCENDING
		spec := orderSpec{path: p, desc: d}
		if len(p) == 1 && p[0] == nameField {
			spec.path = nil
		}
		key := strings.Join(p, "\x00")
		if seen[key] {
			continue
		}
		seen[key] = true
		q.orders = append(q.orders, spec)
		desc = d
	}
	var ineq [][]string
	collectInequalities(q.filter, &ineq)
	slices.SortFunc(ineq, func(a, b []string) int { return strings.Compare(encodePath(a), encodePath(b)) })
	for _, p := range ineq {
		key := strings.Join(p, "\x00")
		if seen[key] {
			continue
		}
		seen[key] = true
		spec := orderSpec{path: p, desc: desc}
		if len(p) == 1 && p[0] == nameField {
			spec.path = nil
		}
		q.orders = append(q.orders, spec)
	}
	if !seen[nameField] {
		q.orders = append(q.orders, orderSpec{desc: desc})
	}
	return nil
}

func (q *compiledQuery) compileCursor(c *pb.Cursor, what string) (*cursorSpec, error) {
	if c == nil {
		return nil, nil
	}
	if len(c.Values) > len(q.orders) {
		return nil, status.Errorf(codes.InvalidArgument, "%s has %d values but the query orders by %d fields", what, len(c.Values), len(q.orders))
	}
	for i, v := range c.Values {
		if q.orders[i].isName() {
			ref, ok := v.GetValueType().(*pb.Value_ReferenceValue)
			if !ok {
				return nil, status.Errorf(codes.InvalidArgument, "%s: the cursor value for __name__ must be a reference", what)
			}
			if _, _, err := parseDocumentName(ref.ReferenceValue, q.db); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "%s: %s", what, status.Convert(err).Message())
			}
		}
	}
	return &cursorSpec{values: c.Values, before: c.Before}, nil
}

// inSource reports whether a document path belongs to the query's
// collection (or collection group under the parent).
func (q *compiledQuery) inSource(segs []string) bool {
	if len(segs) < len(q.parent)+2 || !pathHasPrefix(segs, q.parent) {
		return false
	}
	if !q.allDescendants {
		return len(segs) == len(q.parent)+2 && segs[len(segs)-2] == q.collectionID
	}
	return q.collectionID == "" || segs[len(segs)-2] == q.collectionID
}

// orderValues returns the values of the document for each ordering, or
// false when the document lacks an ordered field (such documents are not in
// the result).
func (q *compiledQuery) orderValues(d *pb.Document) ([]*pb.Value, bool) {
	vals := make([]*pb.Value, len(q.orders))
	for i, o := range q.orders {
		if o.isName() {
			vals[i] = refValue(d.Name)
			continue
		}
		v, ok := getField(d.Fields, o.path)
		if !ok {
			return nil, false
		}
		vals[i] = v
	}
	return vals, true
}

// compareOrdered compares two value lists in the query's order, over the
// shorter length.
func (q *compiledQuery) compareOrdered(a, b []*pb.Value) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		c := compareValues(a[i], b[i])
		if q.orders[i].desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// afterStart and beforeEnd apply the cursors.
func (q *compiledQuery) afterStart(vals []*pb.Value) bool {
	if q.start == nil {
		return true
	}
	c := q.compareOrdered(vals, q.start.values)
	if q.start.before {
		return c >= 0
	}
	return c > 0
}

func (q *compiledQuery) beforeEnd(vals []*pb.Value) bool {
	if q.end == nil {
		return true
	}
	c := q.compareOrdered(vals, q.end.values)
	if q.end.before {
		return c < 0
	}
	return c <= 0
}

// matches reports whether a document (of the query's source) passes the
// filter and has every ordered field; it returns the order values.
func (q *compiledQuery) matches(d *pb.Document) ([]*pb.Value, bool) {
	if q.filter != nil && !q.filter.match(d) {
		return nil, false
	}
	return q.orderValues(d)
}

// matchesIgnoringLimit reports whether d is in the query's result when
// limit and offset are ignored: source, filter, ordered fields, cursors.
func (q *compiledQuery) matchesIgnoringLimit(segs []string, d *pb.Document) bool {
	if d == nil || !q.inSource(segs) {
		return false
	}
	vals, ok := q.matches(d)
	return ok && q.afterStart(vals) && q.beforeEnd(vals)
}

// project applies the select clause to a document.
func (q *compiledQuery) project(d *pb.Document) *pb.Document {
	if !q.hasProjection {
		return d
	}
	return &pb.Document{Name: d.Name, Fields: projectFields(d.Fields, q.projection), CreateTime: d.CreateTime, UpdateTime: d.UpdateTime}
}

// nameOrdered reports whether the query is ordered by __name__ only, so it
// can walk an index in key order.
func (q *compiledQuery) nameOrdered() bool { return len(q.orders) == 1 }

// source returns the index to scan and the key range [lo, hi) ("" hi: no
// bound). Callers hold db.mu.
func (q *compiledQuery) source(db *database) (*orderedIndex[*docEntry], string, string) {
	switch {
	case !q.allDescendants:
		coll := append(slices.Clip(q.parent), q.collectionID)
		idx := db.byCollection[relPath(coll)]
		k := encodePath(coll)
		return idx, childPrefix(k), childLimit(k)
	case q.collectionID == "":
		return db.all, childPrefix(q.parentKey), childLimit(q.parentKey)
	default:
		return db.byGroup[q.collectionID], childPrefix(q.parentKey), childLimit(q.parentKey)
	}
}

// queryRun evaluates a query at one read time in batches, so that the
// database lock is not held while results are sent.
type queryRun struct {
	q        *compiledQuery
	readTime int64
	// name-ordered walk
	resume    string // last key visited
	resumed   bool
	skipped   int // offset consumed
	emitted   int
	done      bool
	sorted    []*pb.Document
	sortedPos int
	isSorted  bool
}

// maxScanPerBatch bounds how many index entries one batch looks at while
// holding the lock.
const maxScanPerBatch = 4096

// next returns up to n more results. Callers hold db.mu for reading.
func (r *queryRun) next(db *database, n int) []*pb.Document {
	if r.done {
		return nil
	}
	q := r.q
	if !q.nameOrdered() {
		if !r.isSorted {
			r.sorted = db.sortedResults(q, r.readTime)
			r.isSorted = true
		}
		end := min(len(r.sorted), r.sortedPos+n)
		out := r.sorted[r.sortedPos:end]
		r.sortedPos = end
		if r.sortedPos == len(r.sorted) {
			r.done = true
		}
		return out
	}
	idx, lo, hi := q.source(db)
	if idx == nil || (q.limit >= 0 && r.emitted >= q.limit) {
		r.done = true
		return nil
	}
	desc := q.orders[0].desc
	var seq func(yield func(string, *docEntry) bool)
	if !desc {
		from := lo
		if r.resumed {
			from = r.resume + "\x00" // the smallest key after resume
		} else if q.start != nil && len(q.start.values) > 0 {
			from = max(lo, cursorKey(q.start.values[0]))
		}
		seq = idx.Ascend(from)
	} else {
		switch {
		case r.resumed:
			seq = idx.Descend(r.resume, false)
		case q.start != nil && len(q.start.values) > 0:
			k := cursorKey(q.start.values[0])
			if hi != "" && k >= hi {
				seq = idx.Descend(hi, false)
			} else {
				seq = idx.Descend(k, true)
			}
		case hi != "":
			seq = idx.Descend(hi, false)
		default:
			seq = idx.DescendAll()
		}
	}
	var out []*pb.Document
	scanned := 0
	r.done = true
	for key, e := range seq {
		if (hi != "" && key >= hi) || key < lo {
			break
		}
		r.resume, r.resumed = key, true
		scanned++
		d := e.at(r.readTime)
		if d != nil && q.inSource(e.segs) {
			if vals, ok := q.matches(d); ok {
				if !q.beforeEnd(vals) {
					break
				}
				if q.afterStart(vals) {
					if r.skipped < q.offset {
						r.skipped++
					} else {
						out = append(out, q.project(d))
						r.emitted++
						if q.limit >= 0 && r.emitted >= q.limit {
							break
						}
					}
				}
			}
		}
		if len(out) >= n || scanned >= maxScanPerBatch {
			r.done = false
			break
		}
	}
	if q.limit >= 0 && r.emitted >= q.limit {
		r.done = true
	}
	return out
}

// cursorKey returns the index key of a __name__ cursor value.
func cursorKey(v *pb.Value) string {
	parts := strings.Split(v.GetReferenceValue(), "/")
	if len(parts) < 5 {
		return ""
	}
	return encodePath(parts[5:])
}

// sortedResults evaluates a query that needs sorting: every matching
// document of the source, sorted, with cursors, offset and limit applied.
// Callers hold db.mu.
func (db *database) sortedResults(q *compiledQuery, readTime int64) []*pb.Document {
	type row struct {
		d    *pb.Document
		vals []*pb.Value
	}
	var rows []row
	idx, lo, hi := q.source(db)
	if idx != nil {
		for key, e := range idx.Ascend(lo) {
			if hi != "" && key >= hi {
				break
			}
			d := e.at(readTime)
			if d == nil || !q.inSource(e.segs) {
				continue
			}
			vals, ok := q.matches(d)
			if !ok || !q.afterStart(vals) || !q.beforeEnd(vals) {
				continue
			}
			rows = append(rows, row{d, vals})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return q.compareOrdered(a.vals, b.vals) })
	if q.offset >= len(rows) {
		return nil
	}
	rows = rows[q.offset:]
	if q.limit >= 0 && q.limit < len(rows) {
		rows = rows[:q.limit]
	}
	out := make([]*pb.Document, len(rows))
	for i, r := range rows {
		out[i] = q.project(r.d)
	}
	return out
}

// runQueryAll evaluates a whole query at readTime. Callers hold db.mu.
func (db *database) runQueryAll(q *compiledQuery, readTime int64) ([]*pb.Document, error) {
	r := &queryRun{q: q, readTime: readTime}
	var out []*pb.Document
	for !r.done {
		out = append(out, r.next(db, 1<<30)...)
	}
	return out, nil
}

func (q *compiledQuery) String() string {
	return fmt.Sprintf("query(parent=%q collection=%q allDescendants=%v)", relPath(q.parent), q.collectionID, q.allDescendants)
}
