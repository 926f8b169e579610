package firestoreemu

import (
	"context"
	"crypto/rand"
	"errors"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// prepareWrites validates a request's writes outside the lock.
func prepareWrites(db dbID, writes []*pb.Write) ([]*preparedWrite, error) {
	if len(writes) > maxWritesPerCall {
		return nil, grpcstatus.Errorf(codes.InvalidArgument, "maximum %d writes allowed per request, got %d", maxWritesPerCall, len(writes))
	}
	out := make([]*preparedWrite, len(writes))
	for i, w := range writes {
		p, err := prepareWrite(db, w)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// Commit applies writes atomically, optionally ending a transaction.
func (s *server) Commit(ctx context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	db, err := s.emu.dbFor(req.GetDatabase())
	if err != nil {
		return nil, err
	}
	writes, err := prepareWrites(db.id, req.Writes)
	if err != nil {
		return nil, err
	}
	var tx *transaction
	if req.Transaction != nil {
		if tx, err = db.transaction(req.Transaction); err != nil {
			return nil, err
		}
		defer db.endTransaction(tx)
		if tx.readOnly {
			if len(writes) > 0 {
				return nil, grpcstatus.Error(codes.InvalidArgument, "Cannot modify entities in a read-only transaction.")
			}
			return &pb.CommitResponse{CommitTime: microsToProto(tx.readTime)}, nil
		}
	}
	if err := s.emu.ensureOpen(ctx); err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if tx != nil {
		if err := db.validateLocked(tx, s.emu.clock.readTime()); err != nil {
			return nil, err
		}
	}
	t := s.emu.clock.commitTime()
	results, err := db.commitLocked(writes, t)
	if err != nil {
		return nil, err
	}
	return &pb.CommitResponse{WriteResults: results, CommitTime: microsToProto(t)}, nil
}

// BatchWrite applies writes one by one, not atomically; each gets its own
// status. A failed write does not stop the others.
func (s *server) BatchWrite(ctx context.Context, req *pb.BatchWriteRequest) (*pb.BatchWriteResponse, error) {
	db, err := s.emu.dbFor(req.GetDatabase())
	if err != nil {
		return nil, err
	}
	if len(req.Writes) > maxWritesPerCall {
		return nil, grpcstatus.Errorf(codes.InvalidArgument, "maximum %d writes allowed per request, got %d", maxWritesPerCall, len(req.Writes))
	}
	seen := map[string]bool{}
	for _, w := range req.Writes {
		name := w.GetDelete()
		if u := w.GetUpdate(); u != nil {
			name = u.Name
		}
		if t := w.GetTransform(); t != nil {
			name = t.Document
		}
		if seen[name] {
			return nil, grpcstatus.Errorf(codes.InvalidArgument, "BatchWrite allows only one write per document; %q appears more than once", name)
		}
		seen[name] = true
	}
	if err := s.emu.ensureOpen(ctx); err != nil {
		return nil, err
	}
	res := &pb.BatchWriteResponse{}
	prepared := make([]*preparedWrite, len(req.Writes))
	errs := make([]error, len(req.Writes))
	for i, w := range req.Writes {
		prepared[i], errs[i] = prepareWrite(db.id, w)
	}
	db.mu.Lock()
	for i, p := range prepared {
		var wr *pb.WriteResult
		if errs[i] == nil {
			var results []*pb.WriteResult
			results, errs[i] = db.commitLocked([]*preparedWrite{p}, s.emu.clock.commitTime())
			if errs[i] == nil {
				wr = results[0]
			}
		}
		if wr == nil {
			wr = &pb.WriteResult{}
		}
		res.WriteResults = append(res.WriteResults, wr)
		res.Status = append(res.Status, toRPCStatus(errs[i]))
	}
	db.mu.Unlock()
	return res, nil
}

// toRPCStatus converts an error to a google.rpc.Status (OK for nil).
func toRPCStatus(err error) *status.Status {
	if err == nil {
		return &status.Status{}
	}
	st, _ := grpcstatus.FromError(err)
	return st.Proto()
}

// BeginTransaction starts a read-only or read-write transaction.
func (s *server) BeginTransaction(ctx context.Context, req *pb.BeginTransactionRequest) (*pb.BeginTransactionResponse, error) {
	db, err := s.emu.dbFor(req.GetDatabase())
	if err != nil {
		return nil, err
	}
	tx, err := db.beginTransaction(req.GetOptions())
	if err != nil {
		return nil, err
	}
	return &pb.BeginTransactionResponse{Transaction: []byte(tx.id)}, nil
}

// Rollback ends a transaction without writing.
func (s *server) Rollback(ctx context.Context, req *pb.RollbackRequest) (*emptypb.Empty, error) {
	db, err := s.emu.dbFor(req.GetDatabase())
	if err != nil {
		return nil, err
	}
	tx, err := db.transaction(req.Transaction)
	if err != nil {
		return nil, err
	}
	db.endTransaction(tx)
	return &emptypb.Empty{}, nil
}

// commitOne commits a single prepared write and returns the stored document.
func (s *server) commitOne(ctx context.Context, id dbID, w *pb.Write) (*pb.Document, *pb.WriteResult, error) {
	if err := s.emu.ensureOpen(ctx); err != nil {
		return nil, nil, err
	}
	p, err := prepareWrite(id, w)
	if err != nil {
		return nil, nil, err
	}
	db := s.emu.database(id)
	db.mu.Lock()
	defer db.mu.Unlock()
	results, err := db.commitLocked([]*preparedWrite{p}, s.emu.clock.commitTime())
	if err != nil {
		return nil, nil, err
	}
	var d *pb.Document
	if e := db.lookup(p.key); e != nil && len(e.versions) > 0 {
		d = e.versions[len(e.versions)-1].doc
	}
	return d, results[0], nil
}

// CreateDocument creates a document, with a random ID when none is given.
func (s *server) CreateDocument(ctx context.Context, req *pb.CreateDocumentRequest) (*pb.Document, error) {
	parent, id, err := parseParentName(req.GetParent(), dbID{})
	if err != nil {
		return nil, err
	}
	if err := validateID(req.CollectionId); err != nil {
		return nil, grpcstatus.Errorf(codes.InvalidArgument, "collection_id: %v", err)
	}
	docID := req.DocumentId
	if docID == "" {
		docID = autoID()
	}
	mask, hasMask, err := parseMask(req.GetMask())
	if err != nil {
		return nil, err
	}
	name := id.documentsRoot() + "/" + relPath(append(append([]string(nil), parent...), req.CollectionId, docID))
	w := &pb.Write{
		Operation:       &pb.Write_Update{Update: &pb.Document{Name: name, Fields: req.GetDocument().GetFields()}},
		CurrentDocument: &pb.Precondition{ConditionType: &pb.Precondition_Exists{Exists: false}},
	}
	d, _, err := s.commitOne(ctx, id, w)
	if err != nil {
		return nil, err
	}
	return maskDoc(d, mask, hasMask), nil
}

// UpdateDocument sets or updates (with update_mask) one document.
func (s *server) UpdateDocument(ctx context.Context, req *pb.UpdateDocumentRequest) (*pb.Document, error) {
	if req.GetDocument() == nil {
		return nil, grpcstatus.Error(codes.InvalidArgument, "missing document")
	}
	_, id, err := parseDocumentName(req.Document.Name, dbID{})
	if err != nil {
		return nil, err
	}
	mask, hasMask, err := parseMask(req.GetMask())
	if err != nil {
		return nil, err
	}
	w := &pb.Write{
		Operation:       &pb.Write_Update{Update: req.Document},
		UpdateMask:      req.UpdateMask,
		CurrentDocument: req.CurrentDocument,
	}
	d, _, err := s.commitOne(ctx, id, w)
	if err != nil {
		return nil, err
	}
	return maskDoc(d, mask, hasMask), nil
}

// DeleteDocument deletes one document (deleting a missing one succeeds).
func (s *server) DeleteDocument(ctx context.Context, req *pb.DeleteDocumentRequest) (*emptypb.Empty, error) {
	_, id, err := parseDocumentName(req.GetName(), dbID{})
	if err != nil {
		return nil, err
	}
	w := &pb.Write{Operation: &pb.Write_Delete{Delete: req.Name}, CurrentDocument: req.CurrentDocument}
	if _, _, err := s.commitOne(ctx, id, w); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// autoID returns a random 20-character document ID like Firestore's.
func autoID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("firestoreemu: no randomness for document IDs"))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
