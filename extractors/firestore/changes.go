package firestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// DiscoverOption turns on the change stream's search for collection IDs
// that appear after it started (see Changes).
var DiscoverOption = plugin.Option{
	Name: "firestore-discover",
	Help: "Look for new collections while following changes: root collections at every batch (1 read), subcollections under every document a batch writes (1 read each). " +
		"--firestore-discover=false leaves them to sync's count checks.",
	Default: "true",
	Type:    plugin.Switch,
}

var _ extractors.ChangeStreamer = (*Extractor)(nil)

// PositionAt returns the position of read time t: the stream started there
// delivers every change committed after t. A position is a read time in
// RFC 3339 with nanoseconds, UTC.
func (e *Extractor) PositionAt(t time.Time) (string, error) {
	if t.IsZero() {
		return "", errors.New("a Firestore change stream position needs a read time; got none")
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

func parsePosition(pos string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, pos)
	if err != nil {
		return time.Time{}, fmt.Errorf("Firestore change stream position %q is not a read time in RFC 3339: %w", pos, err)
	}
	return t.UTC(), nil
}

// Changes follows the database with one Listen stream (see
// extractors.ChangeStreamer for the contract).
//
// # Targets
//
// The stream holds one query target per collection ID — every collection
// of that ID at any depth: from [{collection_id: X, all_descendants: true}]
// under the database's documents root — resumed with read_time = the
// position's read time. It never uses a target without a collection ID:
// whether Firestore accepts one in Listen is not established. The IDs at the
// start are hints.Collections plus the root collection IDs at the
// position's read time (ListCollectionIds, 1 read). hints must name every
// collection ID that held documents at that read time: a collection ID
// missing from both is found later (below), but its deletes before that
// are not seen. That listing is also what tells, before any Listen, a
// position older than Firestore keeps (ErrSnapshotExpired). With
// --collections, documents whose root collection is not selected are
// dropped.
//
// # Batches
//
// A batch is delivered at each consistent point: a global NO_CHANGE (no
// target IDs, with a read time) once every target is CURRENT. It holds one
// change per key, the last: DocumentChange for a target is an upsert (the
// record as Read builds it, Cursor empty), DocumentDelete, DocumentRemove
// and a DocumentChange only removing the document from a target are
// deletes (CommitTime: the delete's read time, else the batch's). A
// consistent point with nothing new is delivered as an empty batch (a
// heartbeat). Position is the batch's read time. Upserts whose update time
// is at or before the read time a target was resumed from (or, for a target
// added fresh, the starting position) are skipped: Firestore may deliver
// them again after a reconnect, and the copy at the starting position holds
// them already.
//
// # Failures
//
// Transient errors (failure.Classify), a stream silent for
// --source-timeout, and a target REMOVE without a permanent cause reconnect
// from the last consistent point under the --retry-* policy; the attempts
// count only failures of sessions that never reached a consistent point.
// Firestore removes a target it cannot bring up to date (it gives up after
// minutes of catch-up); --retry-attempts such REMOVEs in a row, with no
// consistent point between them, return ErrSnapshotExpired: the position
// cannot be resumed in practice, and the caller catches up by other means
// (a snapshot diff) and starts again from a newer position. A resumed
// target answered with RESET (Firestore's answer to a resume point it no
// longer serves) or a read time refused as too old also returns
// ErrSnapshotExpired (wrapped, saying which): deletes in the gap cannot be
// known. A REMOVE with a permanent cause (INVALID_ARGUMENT,
// PERMISSION_DENIED, ...) is returned as an error naming the collection.
// ExistenceFilter messages are ignored: the stream keeps no view of the
// target to check them against.
//
// # Collections that appear later
//
// A document of a collection ID with no target is not sent by Firestore,
// so new IDs are looked for at each consistent point, before its batch is
// delivered (both off with --firestore-discover=false):
//   - Root collections: the root collection IDs at the batch's read time
//     are listed (1 read per batch, heartbeats included).
//   - Subcollections under the documents the batch upserts: the collection
//     IDs under each, at the batch's read time, are listed (1 read per
//     distinct document and batch, 8 at a time).
//
// A new ID gets a target and the batch waits for the next consistent
// point, at which that target is CURRENT; so a batch holds every root
// collection that existed at its read time and the subcollections created
// by the writes it reports. Not found: a new subcollection under a
// document the stream does not see written (created in a gap, or later
// under a document written earlier, or under a missing document); sync's
// count checks find those (internal/syncer).
//
// A new ID gets a target without a resume point: all its current
// documents come as upserts (1 read each), held in memory until its first
// consistent point like any batch.
//
// # Cost
//
// Listen bills 1 read per document change delivered for a target (counted
// in BillableReads, skipped ones included); deletes are not billed.
// Reconnecting within 30 minutes resumes without re-reading documents that
// did not change.
func (e *Extractor) Changes(ctx context.Context, from string, hints extractors.ChangeHints, emit func(record.ChangeBatch) error) error {
	start, err := parsePosition(from)
	if err != nil {
		return err
	}
	f := &follower{e: e, emit: emit, start: start, pos: start, known: map[string]bool{}}
	for _, c := range hints.Collections {
		if c != "" {
			f.known[c] = true
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	listAt := start
	if e.window > time.Hour {
		// Older than an hour, point-in-time recovery serves whole minutes
		// only; a root collection created since is found at the first
		// consistent point.
		listAt = start.Truncate(time.Minute)
	}
	roots, err := e.collectionIDs(ctx, e.root, listAt)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isExpired(err, start) {
			return fmt.Errorf("following changes from %s: listing the root collections then: %w", from, extractors.ErrSnapshotExpired)
		}
		return fmt.Errorf("following changes from %s: %w", from, err)
	}
	for _, c := range roots {
		if e.selectedRoot(c) {
			f.known[c] = true
		}
	}
	return f.run(ctx)
}

// collectionIDs lists the collection IDs directly under parent (a full
// name: the documents root or a document) at readTime (zero: now), retried.
// It bills 1 read.
func (e *Extractor) collectionIDs(ctx context.Context, parent string, readTime time.Time) ([]string, error) {
	var ids []string
	err := e.do(ctx, "listing the collections under "+parent, func(ctx context.Context) error {
		ids = ids[:0]
		req := &pb.ListCollectionIdsRequest{Parent: parent, PageSize: 1000}
		if !readTime.IsZero() {
			req.ConsistencySelector = &pb.ListCollectionIdsRequest_ReadTime{ReadTime: timestamppb.New(readTime)}
		}
		it := e.client.ListCollectionIds(ctx, req)
		for {
			id, err := it.Next()
			if err == iterator.Done {
				return nil
			}
			if err != nil {
				return err
			}
			retry.Alive(ctx)
			ids = append(ids, id)
		}
	})
	e.reads.Add(1)
	return ids, err
}

// selectedRoot reports whether root collection c is read (--collections).
func (e *Extractor) selectedRoot(c string) bool {
	return len(e.collections) == 0 || slices.Contains(e.collections, c)
}

// follower is the state of one Changes call.
type follower struct {
	e     *Extractor
	emit  func(record.ChangeBatch) error
	start time.Time // the position Changes started from
	pos   time.Time // the last consistent point delivered
	// known maps every collection ID with a target to whether it can be
	// resumed from pos (it was CURRENT at a consistent point delivered);
	// one that cannot is added afresh on a reconnect.
	known map[string]bool

	// Per session.
	stream  pb.Firestore_ListenClient
	targets map[int32]*listenTarget
	nextID  int32
	pending []record.Change
	index   map[string]int  // key → its change in pending
	checked map[string]bool // pending documents already looked under
	healthy bool            // the session reached a consistent point
}

// listenTarget is one target of the current session.
type listenTarget struct {
	collection string
	resumed    bool
	after      time.Time // upserts at or before this time are skipped
	current    bool
	delivered  bool // CURRENT at a delivered consistent point
}

// emitError carries an error from emit, returned unchanged.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

// removedError is a target REMOVE without a permanent cause.
type removedError struct{ msg string }

func (e *removedError) Error() string { return e.msg }

// errExpired marks a session failure that ends Changes with
// ErrSnapshotExpired.
var errExpired = extractors.ErrSnapshotExpired

// run reconnects sessions until one ends for good.
func (f *follower) run(ctx context.Context) error {
	const what = "following Firestore changes"
	b := f.e.policy.Start(what)
	removes := 0
	for {
		err := f.session(ctx)
		var ee *emitError
		switch {
		case errors.As(err, &ee):
			return ee.err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errExpired):
			return err
		}
		if f.healthy {
			b, removes = f.e.policy.Start(what), 0
		}
		var rm *removedError
		if errors.As(err, &rm) {
			if removes++; removes >= max(f.e.policy.Attempts, 1) {
				return fmt.Errorf("%s from %s: Firestore removed a target %d times in a row before it caught up (%v): %w",
					what, f.pos.Format(time.RFC3339Nano), removes, err, extractors.ErrSnapshotExpired)
			}
			if werr := b.Again(ctx, err); werr != nil {
				return ctx.Err()
			}
			continue
		}
		if rerr := b.Retry(ctx, err); rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return retry.Describe(what, rerr)
		}
	}
}

// session runs one Listen stream from pos until it fails.
func (f *follower) session(ctx context.Context) (err error) {
	sctx, w := retry.Watch(ctx, f.e.policy.Timeout, f.e.policy.TimeoutOption)
	defer w.Stop()
	defer func() {
		if _, ok := err.(*emitError); !ok {
			err = w.Err(err)
		}
	}()
	database := strings.TrimSuffix(f.e.root, "/documents")
	sctx = metadata.AppendToOutgoingContext(sctx, "google-cloud-resource-prefix", database)
	f.targets, f.nextID, f.pending, f.index, f.checked, f.healthy = map[int32]*listenTarget{}, 1, nil, map[string]int{}, nil, false
	stream, err := f.e.client.Listen(sctx)
	if err != nil {
		return err
	}
	f.stream = stream
	type msg struct {
		resp *pb.ListenResponse
		err  error
	}
	msgs := make(chan msg, 64)
	go func() {
		for {
			resp, err := stream.Recv()
			select {
			case msgs <- msg{resp, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for _, c := range slices.Sorted(mapKeys(f.known)) {
		if err := f.addTarget(c, f.known[c]); err != nil {
			return err
		}
	}
	for {
		select {
		case m := <-msgs:
			if m.err == io.EOF {
				return fmt.Errorf("Firestore ended the Listen stream: %w", io.ErrUnexpectedEOF)
			}
			if m.err != nil {
				if isExpired(m.err, f.pos) {
					return fmt.Errorf("following changes from %s: %v: %w", f.pos.Format(time.RFC3339Nano), m.err, errExpired)
				}
				return m.err
			}
			retry.Alive(sctx)
			if err := f.handle(sctx, m.resp); err != nil {
				return err
			}
		case <-sctx.Done():
			return sctx.Err()
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// addTarget adds the target of collection c to the stream, resumed from
// pos when resume is set.
func (f *follower) addTarget(c string, resume bool) error {
	id := f.nextID
	f.nextID++
	t := &listenTarget{collection: c, resumed: resume, after: f.start}
	target := &pb.Target{
		TargetId: id,
		TargetType: &pb.Target_Query{Query: &pb.Target_QueryTarget{
			Parent: f.e.root,
			QueryType: &pb.Target_QueryTarget_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
				From: []*pb.StructuredQuery_CollectionSelector{{CollectionId: c, AllDescendants: true}},
			}},
		}},
	}
	if resume {
		t.after = f.pos
		target.ResumeType = &pb.Target_ReadTime{ReadTime: timestamppb.New(f.pos)}
	}
	f.targets[id] = t
	database := strings.TrimSuffix(f.e.root, "/documents")
	err := f.stream.Send(&pb.ListenRequest{Database: database, TargetChange: &pb.ListenRequest_AddTarget{AddTarget: target}})
	if err != nil {
		return fmt.Errorf("adding the Listen target of collection %s: %w", c, err)
	}
	return nil
}

// handle processes one message of the stream.
func (f *follower) handle(ctx context.Context, resp *pb.ListenResponse) error {
	switch r := resp.ResponseType.(type) {
	case *pb.ListenResponse_TargetChange:
		return f.targetChange(ctx, r.TargetChange)
	case *pb.ListenResponse_DocumentChange:
		dc := r.DocumentChange
		if len(dc.TargetIds) > 0 {
			f.e.reads.Add(1)
			return f.upsert(dc.Document, dc.TargetIds)
		}
		if len(dc.RemovedTargetIds) > 0 {
			f.remove(dc.GetDocument().GetName(), nil)
		}
	case *pb.ListenResponse_DocumentDelete:
		f.remove(r.DocumentDelete.Document, r.DocumentDelete.ReadTime)
	case *pb.ListenResponse_DocumentRemove:
		f.remove(r.DocumentRemove.Document, r.DocumentRemove.ReadTime)
	}
	return nil
}

// targetChange processes a TargetChange; a global NO_CHANGE with every
// target CURRENT delivers a batch.
func (f *follower) targetChange(ctx context.Context, tc *pb.TargetChange) error {
	switch tc.TargetChangeType {
	case pb.TargetChange_NO_CHANGE:
		if len(tc.TargetIds) > 0 || tc.ReadTime == nil {
			return nil
		}
		for _, t := range f.targets {
			if !t.current {
				return nil
			}
		}
		rt := tc.ReadTime.AsTime().UTC()
		if f.e.discover {
			release := retry.Hold(ctx)
			added, err := f.newRoots(ctx, rt)
			release()
			if err != nil || added {
				return err // with new targets, the next consistent point holds their documents
			}
			release = retry.Hold(ctx)
			added, err = f.newSubcollections(ctx, rt)
			release()
			if err != nil || added {
				return err
			}
		}
		return f.deliver(ctx, rt)
	case pb.TargetChange_CURRENT:
		for _, id := range tc.TargetIds {
			if t := f.targets[id]; t != nil {
				t.current = true
			}
		}
	case pb.TargetChange_RESET:
		for _, id := range tc.TargetIds {
			t := f.targets[id]
			if t == nil {
				continue
			}
			if t.resumed || t.delivered {
				return fmt.Errorf("following changes from %s: Firestore reset the target of collection %s instead of resuming it, so deletes since then cannot be known: %w",
					f.pos.Format(time.RFC3339Nano), t.collection, errExpired)
			}
			// A fresh target starting over: drop what it sent so far.
			f.dropCollection(t.collection)
			t.current = false
		}
	case pb.TargetChange_REMOVE:
		var names []string
		for _, id := range tc.TargetIds {
			if t := f.targets[id]; t != nil {
				names = append(names, t.collection)
			}
		}
		what := fmt.Sprintf("Firestore removed the Listen target of collection %s", strings.Join(names, ", "))
		if c := tc.GetCause(); c != nil && permanentCause(codes.Code(c.Code)) {
			return retry.Mark(fmt.Errorf("%s: %s: %s", what, codes.Code(c.Code), c.Message), false)
		} else if c != nil {
			what += fmt.Sprintf(" (%s: %s)", codes.Code(c.Code), c.Message)
		}
		return &removedError{msg: what}
	}
	return nil
}

// permanentCause reports the causes of a target REMOVE that reconnecting
// does not cure.
func permanentCause(c codes.Code) bool {
	switch c {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.NotFound, codes.FailedPrecondition,
		codes.Unimplemented, codes.OutOfRange:
		return true
	}
	return false
}

// upsert records the upsert of d, delivered for targets ids.
func (f *follower) upsert(d *pb.Document, ids []int32) error {
	rec, err := f.e.toRecord(d)
	if err != nil {
		return retry.Mark(err, false)
	}
	if !f.selected(rec.Key) {
		return nil
	}
	after := f.pos
	if t := f.targets[ids[0]]; t != nil {
		after = t.after
	}
	if !rec.UpdateTime.IsZero() && !rec.UpdateTime.After(after) {
		return nil // delivered before, or held by the copy
	}
	rec.Cursor = ""
	f.put(record.Change{Op: record.OpUpsert, Record: rec, CommitTime: rec.UpdateTime})
	return nil
}

// remove records the delete of the document named name.
func (f *follower) remove(name string, at *timestamppb.Timestamp) {
	key := f.e.relative(name)
	if key == "" || !f.selected(key) {
		return
	}
	c := record.Change{Op: record.OpDelete, Record: record.Record{Kind: record.KindDocument, Key: key}}
	if at != nil {
		c.CommitTime = at.AsTime().UTC()
	}
	f.put(c)
}

// selected reports whether the document at path key is under a selected
// root collection.
func (f *follower) selected(key string) bool {
	root, _, _ := strings.Cut(key, "/")
	return f.e.selectedRoot(root)
}

// put keeps c as the one pending change of its key, after the others.
func (f *follower) put(c record.Change) {
	if i, ok := f.index[c.Record.Key]; ok {
		f.pending[i].Op = 0 // superseded; dropped when delivered
	}
	f.index[c.Record.Key] = len(f.pending)
	f.pending = append(f.pending, c)
}

// dropCollection drops the pending changes of documents of collection ID c.
func (f *follower) dropCollection(c string) {
	for i := range f.pending {
		if f.pending[i].Op != 0 && collectionOf(f.pending[i].Record.Key) == c {
			delete(f.index, f.pending[i].Record.Key)
			f.pending[i].Op = 0
		}
	}
}

// collectionOf returns the collection ID of the document at path key.
func collectionOf(key string) string {
	segs := strings.Split(key, "/")
	if len(segs) < 2 {
		return ""
	}
	return segs[len(segs)-2]
}

// deliver emits the pending changes as the batch consistent at rt.
func (f *follower) deliver(ctx context.Context, rt time.Time) error {
	if rt.Before(f.pos) {
		rt = f.pos // never step back
	}
	changes := make([]record.Change, 0, len(f.pending))
	for _, c := range f.pending {
		if c.Op == 0 {
			continue
		}
		if c.CommitTime.IsZero() {
			c.CommitTime = rt
		}
		changes = append(changes, c)
	}
	pos, _ := f.e.PositionAt(rt)
	release := retry.Hold(ctx)
	err := f.emit(record.ChangeBatch{Changes: changes, ReadTime: rt, Position: pos})
	release()
	if err != nil {
		return &emitError{err}
	}
	f.pos, f.healthy = rt, true
	f.pending, f.index, f.checked = nil, map[string]int{}, nil
	for _, t := range f.targets {
		t.delivered = true
		f.known[t.collection] = true
	}
	return nil
}

// newRoots lists the root collection IDs at rt and adds a fresh target for
// each one without a target, reporting whether it added any.
func (f *follower) newRoots(ctx context.Context, rt time.Time) (bool, error) {
	ids, err := f.e.collectionIDs(ctx, f.e.root, rt)
	if err != nil {
		return false, fmt.Errorf("looking for new root collections at %s: %w", rt.Format(time.RFC3339Nano), err)
	}
	added := false
	for _, c := range ids {
		if _, ok := f.known[c]; ok || !f.e.selectedRoot(c) {
			continue
		}
		f.known[c], added = false, true
		if err := f.addTarget(c, false); err != nil {
			return false, err
		}
	}
	return added, nil
}

// newSubcollections lists, at rt, the collection IDs under each document
// the pending batch upserts (not yet looked under in this batch), and adds
// a fresh target for each ID without one, reporting whether it added any.
// The listings run a few at a time.
func (f *follower) newSubcollections(ctx context.Context, rt time.Time) (bool, error) {
	if f.checked == nil {
		f.checked = map[string]bool{}
	}
	var parents []string
	for _, c := range f.pending {
		if c.Op == record.OpUpsert && !f.checked[c.Record.Key] {
			f.checked[c.Record.Key] = true
			parents = append(parents, c.Record.Key)
		}
	}
	if len(parents) == 0 {
		return false, nil
	}
	found := make([][]string, len(parents))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, p := range parents {
		g.Go(func() error {
			ids, err := f.e.collectionIDs(gctx, f.e.root+"/"+p, rt)
			if err != nil {
				return fmt.Errorf("looking for new collections under %s at %s: %w", p, rt.Format(time.RFC3339Nano), err)
			}
			found[i] = ids
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	added := false
	for _, ids := range found {
		for _, c := range ids {
			if _, ok := f.known[c]; ok {
				continue
			}
			f.known[c], added = false, true
			if err := f.addTarget(c, false); err != nil {
				return false, err
			}
		}
	}
	return added, nil
}
