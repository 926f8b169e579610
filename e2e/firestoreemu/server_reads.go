package firestoreemu

import (
	"context"
	"encoding/base64"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// server implements google.firestore.v1.Firestore on an Emulator.
type server struct {
	pb.UnimplementedFirestoreServer
	emu *Emulator
}

// readContext is where and when a read request reads.
type readContext struct {
	db    *database
	t     int64
	tx    *transaction // set for reads inside a transaction
	newTx []byte       // id of a transaction the request began
}

// readAt resolves a request's consistency selector: an existing
// transaction, a new one, a read time, or (none) the current time.
func (s *server) readAt(ctx context.Context, db *database, txID []byte, newTx *pb.TransactionOptions, readTime *timestamppb.Timestamp) (*readContext, error) {
	rc := &readContext{db: db}
	switch {
	case txID != nil:
		tx, err := db.transaction(txID)
		if err != nil {
			return nil, err
		}
		rc.tx = tx
	case newTx != nil:
		tx, err := db.beginTransaction(newTx)
		if err != nil {
			return nil, err
		}
		rc.tx = tx
		rc.newTx = []byte(tx.id)
	case readTime != nil:
		t, err := s.emu.resolveReadTime(readTime)
		if err != nil {
			return nil, err
		}
		rc.t = t
		return rc, nil
	default:
		rc.t = s.emu.clock.readTime()
		return rc, nil
	}
	if rc.tx.readOnly {
		rc.t = rc.tx.readTime
		return rc, nil
	}
	if err := db.lockForRead(ctx, rc.tx); err != nil {
		return nil, err
	}
	rc.t = s.emu.clock.readTime()
	return rc, nil
}

// maskDoc applies a DocumentMask (nil: all fields) to a document.
func maskDoc(d *pb.Document, mask [][]string, hasMask bool) *pb.Document {
	if !hasMask || d == nil {
		return d
	}
	return &pb.Document{Name: d.Name, Fields: projectFields(d.Fields, mask), CreateTime: d.CreateTime, UpdateTime: d.UpdateTime}
}

func parseMask(m *pb.DocumentMask) ([][]string, bool, error) {
	if m == nil {
		return nil, false, nil
	}
	var out [][]string
	for _, fp := range m.FieldPaths {
		p, err := parseFieldPath(fp)
		if err != nil {
			return nil, false, status.Errorf(codes.InvalidArgument, "mask: %v", err)
		}
		out = append(out, p)
	}
	return out, true, nil
}

// GetDocument reads one document.
func (s *server) GetDocument(ctx context.Context, req *pb.GetDocumentRequest) (*pb.Document, error) {
	segs, id, err := parseDocumentName(req.GetName(), dbID{})
	if err != nil {
		return nil, err
	}
	mask, hasMask, err := parseMask(req.GetMask())
	if err != nil {
		return nil, err
	}
	db := s.emu.database(id)
	rc, err := s.readAt(ctx, db, req.GetTransaction(), nil, req.GetReadTime())
	if err != nil {
		return nil, err
	}
	db.mu.RLock()
	d := db.getAt(segs, rc.t)
	db.recordRead(rc.tx, encodePath(segs), rc.t)
	db.mu.RUnlock()
	s.emu.reads.add(id.project, "GetDocument", 1)
	if d == nil {
		return nil, status.Errorf(codes.NotFound, "Document %q not found.", req.GetName())
	}
	return maskDoc(d, mask, hasMask), nil
}

// BatchGetDocuments streams the requested documents, found or missing, in
// request order.
func (s *server) BatchGetDocuments(req *pb.BatchGetDocumentsRequest, stream pb.Firestore_BatchGetDocumentsServer) error {
	db, err := s.emu.dbFor(req.GetDatabase())
	if err != nil {
		return err
	}
	mask, hasMask, err := parseMask(req.GetMask())
	if err != nil {
		return err
	}
	all := make([][]string, len(req.Documents))
	for i, name := range req.Documents {
		if all[i], _, err = parseDocumentName(name, db.id); err != nil {
			return err
		}
	}
	rc, err := s.readAt(stream.Context(), db, req.GetTransaction(), req.GetNewTransaction(), req.GetReadTime())
	if err != nil {
		return err
	}
	readTime := microsToProto(rc.t)
	const batch = 256
	for start := 0; start < len(all); start += batch {
		end := min(start+batch, len(all))
		docs := make([]*pb.Document, end-start)
		db.mu.RLock()
		for i := start; i < end; i++ {
			docs[i-start] = db.getAt(all[i], rc.t)
			db.recordRead(rc.tx, encodePath(all[i]), rc.t)
		}
		db.mu.RUnlock()
		for i, d := range docs {
			res := &pb.BatchGetDocumentsResponse{ReadTime: readTime}
			if start == 0 && i == 0 {
				res.Transaction = rc.newTx
			}
			if d != nil {
				res.Result = &pb.BatchGetDocumentsResponse_Found{Found: maskDoc(d, mask, hasMask)}
			} else {
				res.Result = &pb.BatchGetDocumentsResponse_Missing{Missing: req.Documents[start+i]}
			}
			if err := stream.Send(res); err != nil {
				return err
			}
			s.emu.reads.add(db.id.project, "BatchGetDocuments", 1)
		}
	}
	if len(all) == 0 && rc.newTx != nil {
		return stream.Send(&pb.BatchGetDocumentsResponse{Transaction: rc.newTx, ReadTime: readTime})
	}
	return nil
}

// RunQuery streams a query's results.
func (s *server) RunQuery(req *pb.RunQueryRequest, stream pb.Firestore_RunQueryServer) error {
	parent, id, err := parseParentName(req.GetParent(), dbID{})
	if err != nil {
		return err
	}
	q, err := compileQuery(id, parent, req.GetStructuredQuery())
	if err != nil {
		return err
	}
	db := s.emu.database(id)
	rc, err := s.readAt(stream.Context(), db, req.GetTransaction(), req.GetNewTransaction(), req.GetReadTime())
	if err != nil {
		return err
	}
	readTime := microsToProto(rc.t)
	run := &queryRun{q: q, readTime: rc.t}
	sent := 0
	var seen []*pb.Document
	for !run.done {
		db.mu.RLock()
		docs := run.next(db, 300)
		db.mu.RUnlock()
		if rc.tx != nil && !rc.tx.readOnly {
			seen = append(seen, docs...)
		}
		for _, d := range docs {
			res := &pb.RunQueryResponse{Document: d, ReadTime: readTime}
			if sent == 0 {
				res.Transaction = rc.newTx
			}
			if err := stream.Send(res); err != nil {
				return err
			}
			sent++
			s.emu.reads.add(db.id.project, "RunQuery", 1)
		}
	}
	if rc.tx != nil && !rc.tx.readOnly {
		db.recordQuery(rc.tx, q, seen)
	}
	if sent == 0 {
		// Firestore bills one read for a query with no results.
		s.emu.reads.add(db.id.project, "RunQuery", 1)
		return stream.Send(&pb.RunQueryResponse{ReadTime: readTime, Transaction: rc.newTx, SkippedResults: int32(q.offset)})
	}
	return nil
}

// RunAggregationQuery computes COUNT, SUM and AVG over a query's results.
func (s *server) RunAggregationQuery(req *pb.RunAggregationQueryRequest, stream pb.Firestore_RunAggregationQueryServer) error {
	parent, id, err := parseParentName(req.GetParent(), dbID{})
	if err != nil {
		return err
	}
	saq := req.GetStructuredAggregationQuery()
	if saq == nil {
		return status.Error(codes.InvalidArgument, "missing structured aggregation query")
	}
	q, err := compileQuery(id, parent, saq.GetStructuredQuery())
	if err != nil {
		return err
	}
	aggs, err := compileAggregations(saq.GetAggregations())
	if err != nil {
		return err
	}
	db := s.emu.database(id)
	rc, err := s.readAt(stream.Context(), db, req.GetTransaction(), req.GetNewTransaction(), req.GetReadTime())
	if err != nil {
		return err
	}
	db.mu.RLock()
	docs, err := db.runQueryAll(q, rc.t)
	db.mu.RUnlock()
	if err != nil {
		return err
	}
	db.recordQuery(rc.tx, q, docs)
	// Billing: one read per batch of up to 1,000 index entries, at least one.
	s.emu.reads.add(db.id.project, "RunAggregationQuery", max(1, (len(docs)+999)/1000))
	return stream.Send(&pb.RunAggregationQueryResponse{
		Result:      &pb.AggregationResult{AggregateFields: evalAggregations(aggs, docs)},
		ReadTime:    microsToProto(rc.t),
		Transaction: rc.newTx,
	})
}

// ListDocuments lists the documents of a collection (or, with no
// collection_id, of every collection directly under parent), ordered by
// name, paged. With show_missing it also lists documents that do not exist
// but have descendants, with a name only.
func (s *server) ListDocuments(ctx context.Context, req *pb.ListDocumentsRequest) (*pb.ListDocumentsResponse, error) {
	parent, id, err := parseParentName(req.GetParent(), dbID{})
	if err != nil {
		return nil, err
	}
	if req.CollectionId != "" {
		if err := validateID(req.CollectionId); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "collection_id: %v", err)
		}
	}
	desc := false
	switch strings.TrimSpace(req.GetOrderBy()) {
	case "", "__name__", "__name__ asc", "__name__ ASC":
	case "__name__ desc", "__name__ DESC":
		desc = true
	default:
		return nil, status.Errorf(codes.Unimplemented, "firestoreemu: ListDocuments order_by %q is not supported (only __name__ asc/desc)", req.GetOrderBy())
	}
	// Firestore: "Requests with show_missing may not specify where or
	// order_by."
	if req.ShowMissing && strings.TrimSpace(req.GetOrderBy()) != "" {
		return nil, status.Error(codes.InvalidArgument, "show_missing cannot be combined with order_by")
	}
	mask, hasMask, err := parseMask(req.GetMask())
	if err != nil {
		return nil, err
	}
	after := ""
	if req.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(req.PageToken)
		if err != nil || len(b) == 0 {
			return nil, status.Errorf(codes.InvalidArgument, "invalid page_token %q", req.PageToken)
		}
		after = string(b)
	}
	pageSize := int(req.PageSize)
	if pageSize <= 0 || pageSize > 1000 {
		pageSize = 1000
	}
	db := s.emu.database(id)
	rc, err := s.readAt(ctx, db, req.GetTransaction(), nil, req.GetReadTime())
	if err != nil {
		return nil, err
	}
	db.mu.RLock()
	docs, last, more := db.listDocuments(parent, req.CollectionId, rc.t, after, pageSize, req.ShowMissing, desc)
	db.mu.RUnlock()
	res := &pb.ListDocumentsResponse{}
	for _, d := range docs {
		res.Documents = append(res.Documents, maskDoc(d, mask, hasMask))
	}
	if more {
		res.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(last))
	}
	s.emu.reads.add(db.id.project, "ListDocuments", max(1, len(docs)))
	return res, nil
}

// listDocuments returns up to pageSize documents after key after (""
// from the start), the last key visited and whether more may follow.
// Callers hold db.mu.
func (db *database) listDocuments(parent []string, collectionID string, t int64, after string, pageSize int, showMissing, desc bool) ([]*pb.Document, string, bool) {
	var idx *orderedIndex[*docEntry]
	var lo, hi string
	if collectionID != "" {
		coll := append(append([]string(nil), parent...), collectionID)
		k := encodePath(coll)
		lo, hi = childPrefix(k), childLimit(k)
		if showMissing {
			idx = db.all
		} else {
			idx = db.byCollection[relPath(coll)]
		}
	} else {
		k := encodePath(parent)
		lo, hi = childPrefix(k), childLimit(k)
		idx = db.all
	}
	if idx == nil {
		return nil, "", false
	}
	var out []*pb.Document
	depth := len(parent) + 2
	if !showMissing {
		var seq func(func(string, *docEntry) bool)
		switch {
		case desc && after != "":
			seq = idx.Descend(after, false)
		case desc && hi != "":
			seq = idx.Descend(hi, false)
		case desc:
			seq = idx.DescendAll()
		case after != "":
			seq = idx.Ascend(after + "\x00")
		default:
			seq = idx.Ascend(lo)
		}
		last := ""
		for key, e := range seq {
			if (hi != "" && key >= hi) || key < lo {
				return out, last, false
			}
			if len(e.segs) != depth {
				continue
			}
			d := e.at(t)
			if d == nil {
				continue
			}
			if len(out) == pageSize {
				return out, last, true
			}
			out = append(out, d)
			last = key
		}
		return out, last, false
	}
	// show_missing: walk the subtree, one child document path at a time,
	// skipping over each child's descendants.
	from := lo
	if after != "" {
		from = childLimit(after)
	}
	last := ""
	for {
		var next *docEntry
		for key, e := range db.all.Ascend(from) {
			if hi == "" || key < hi {
				next = e
			}
			break
		}
		if next == nil {
			return out, last, false
		}
		childSegs := next.segs[:depth]
		childKey := encodePath(childSegs)
		if d := db.getAt(childSegs, t); d != nil {
			if len(out) == pageSize {
				return out, last, true
			}
			out = append(out, d)
			last = childKey
		} else if db.subtreeHasDocAt(childKey, t) {
			if len(out) == pageSize {
				return out, last, true
			}
			out = append(out, &pb.Document{Name: db.docName(childSegs)})
			last = childKey
		}
		from = childLimit(childKey)
	}
}

// ListCollectionIds lists the IDs of collections directly under a document
// (or the root) that hold at least one document somewhere below, sorted,
// paged. The parent document itself need not exist.
func (s *server) ListCollectionIds(ctx context.Context, req *pb.ListCollectionIdsRequest) (*pb.ListCollectionIdsResponse, error) {
	parent, id, err := parseParentName(req.GetParent(), dbID{})
	if err != nil {
		return nil, err
	}
	db := s.emu.database(id)
	rc, err := s.readAt(ctx, db, nil, nil, req.GetReadTime())
	if err != nil {
		return nil, err
	}
	pageSize := int(req.PageSize)
	if pageSize <= 0 || pageSize > 1000 {
		pageSize = 1000
	}
	db.mu.RLock()
	ids, more := db.collectionIDs(parent, rc.t, req.PageToken, pageSize)
	db.mu.RUnlock()
	res := &pb.ListCollectionIdsResponse{CollectionIds: ids}
	if more && len(ids) > 0 {
		res.NextPageToken = ids[len(ids)-1]
	}
	s.emu.reads.add(db.id.project, "ListCollectionIds", 1)
	return res, nil
}

// collectionIDs returns up to pageSize collection IDs under parent after
// the ID after. Callers hold db.mu.
func (db *database) collectionIDs(parent []string, t int64, after string, pageSize int) ([]string, bool) {
	pk := encodePath(parent)
	lo, hi := childPrefix(pk), childLimit(pk)
	from := lo
	if after != "" {
		from = childLimit(encodePath(append(append([]string(nil), parent...), after)))
	}
	var ids []string
	for {
		var coll []string
		for key, e := range db.all.Ascend(from) {
			if hi != "" && key >= hi {
				break
			}
			coll = e.segs[:len(parent)+1]
			break
		}
		if coll == nil {
			return ids, false
		}
		ck := encodePath(coll)
		if db.subtreeHasDocAt(ck, t) {
			if len(ids) == pageSize {
				return ids, true
			}
			ids = append(ids, coll[len(coll)-1])
		}
		from = childLimit(ck)
	}
}
