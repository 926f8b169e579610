package firestoreemu

import (
	"encoding/binary"
	"errors"
	"io"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Listen protocol (what the official clients consume; see
// shared/reference/firebase.md "Listen protocol"):
//
//   - add_target: TargetChange{ADD, [id]}, [RESET when a resume point was
//     given but cannot be honoured], one DocumentChange per document the
//     client does not have yet (all matching documents for a fresh target;
//     for a resumed target only what changed since the resume point, plus
//     removals), TargetChange{CURRENT, [id]}, then a global
//     TargetChange{NO_CHANGE, [], read_time, resume_token}.
//   - after commits: DocumentChange (target_ids) for added or modified
//     documents, DocumentChange with removed_target_ids for documents that
//     stopped matching, DocumentDelete for deleted ones, then a global
//     NO_CHANGE with a fresh read_time and resume_token.
//   - remove_target: TargetChange{REMOVE, [id]}.
//   - a query target with a from selector without collection_id (kindless):
//     TargetChange{REMOVE, [id], cause INVALID_ARGUMENT}; the stream and its
//     other targets go on (see the README).
//   - when idle, a global NO_CHANGE every Options.ListenHeartbeat.
//
// A resume token encodes the database instance and a read time; resuming
// from a token or read_time within the history window sends exactly the
// difference between the state at that time and now.

// kindlessListenRefusal is the cause of the REMOVE that answers a query
// target without a collection ID (see the README).
const kindlessListenRefusal = "firestoreemu: a Listen query target needs a collection_id in every from selector; " +
	"whether Firestore accepts a kindless Listen target is not established, so this emulator refuses it"

// listenTarget is one target of a Listen stream.
type listenTarget struct {
	id      int32
	query   *compiledQuery    // nil for a documents target
	docs    map[string]bool   // documents target: the watched keys
	limited bool              // query with limit/offset: re-evaluated whole
	current map[string]int64  // key → update time the client has
	names   map[string]string // key → document name the client has
	once    bool
}

// listener is the state of one Listen stream.
type listener struct {
	s        *server
	db       *database
	stream   pb.Firestore_ListenServer
	targets  map[int32]*listenTarget
	lastTime int64
	assigned bool // the client let the server assign target IDs
	nextID   int32
	// changed is the database's commit signal read together with lastTime,
	// so no commit after lastTime can go unnoticed.
	changed <-chan struct{}
}

// Listen serves a bidirectional Listen stream.
func (s *server) Listen(stream pb.Firestore_ListenServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	db, err := s.emu.dbFor(first.GetDatabase())
	if err != nil {
		return err
	}
	l := &listener{s: s, db: db, stream: stream, targets: map[int32]*listenTarget{}, nextID: 1}
	db.mu.RLock()
	l.changed = db.changed
	db.mu.RUnlock()
	reqs := make(chan *pb.ListenRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := l.handle(first); err != nil {
		return err
	}
	var heartbeat <-chan time.Time
	if hb := s.emu.opts.ListenHeartbeat; hb > 0 {
		t := time.NewTicker(hb)
		defer t.Stop()
		heartbeat = t.C
	}
	for {
		select {
		case r := <-reqs:
			if err := l.handle(r); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-l.changed:
			if err := l.advance(false); err != nil {
				return err
			}
		case <-heartbeat:
			if err := l.advance(true); err != nil {
				return err
			}
		case <-db.closed:
			return status.Error(codes.Unavailable, "firestoreemu: database was reset or the emulator is stopping")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// handle processes one client request.
func (l *listener) handle(r *pb.ListenRequest) error {
	switch tc := r.GetTargetChange().(type) {
	case *pb.ListenRequest_AddTarget:
		return l.addTarget(tc.AddTarget)
	case *pb.ListenRequest_RemoveTarget:
		id := tc.RemoveTarget
		if _, ok := l.targets[id]; !ok {
			return status.Errorf(codes.InvalidArgument, "remove_target: no target %d on this stream", id)
		}
		delete(l.targets, id)
		return l.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
			TargetChangeType: pb.TargetChange_REMOVE, TargetIds: []int32{id},
		}}})
	default:
		return status.Error(codes.InvalidArgument, "ListenRequest has no target change")
	}
}

// addTarget registers a target and sends its initial state.
func (l *listener) addTarget(t *pb.Target) error {
	target := &listenTarget{current: map[string]int64{}, names: map[string]string{}, once: t.GetOnce()}
	switch {
	case t.TargetId == 0:
		if len(l.targets) > 0 && !l.assigned {
			return l.sendRemove(0, codes.InvalidArgument, "target_id 0 after targets with client IDs")
		}
		l.assigned = true
		target.id = l.nextID
		l.nextID++
	case l.assigned:
		return l.sendRemove(t.TargetId, codes.InvalidArgument, "a target with an ID after targets with server-assigned IDs")
	case l.targets[t.TargetId] != nil:
		return status.Errorf(codes.InvalidArgument, "target %d is already active on this stream", t.TargetId)
	default:
		target.id = t.TargetId
	}
	switch tt := t.GetTargetType().(type) {
	case *pb.Target_Query:
		parent, _, err := parseParentName(tt.Query.GetParent(), l.db.id)
		if err != nil {
			return err
		}
		for _, from := range tt.Query.GetStructuredQuery().GetFrom() {
			if from.GetCollectionId() == "" {
				// Whether Firestore's Listen accepts a kindless query is not
				// established: refuse it like a target Firestore rejects.
				return l.sendRemove(target.id, codes.InvalidArgument, kindlessListenRefusal)
			}
		}
		q, err := compileQuery(l.db.id, parent, tt.Query.GetStructuredQuery())
		if err != nil {
			return err
		}
		target.query = q
		target.limited = q.limit >= 0 || q.offset > 0
	case *pb.Target_Documents:
		target.docs = map[string]bool{}
		for _, name := range tt.Documents.GetDocuments() {
			segs, _, err := parseDocumentName(name, l.db.id)
			if err != nil {
				return err
			}
			target.docs[encodePath(segs)] = true
		}
	default:
		return status.Error(codes.InvalidArgument, "target has no query or documents")
	}

	var resumeAt int64
	resumeGiven := false
	switch rt := t.GetResumeType().(type) {
	case *pb.Target_ResumeToken:
		if len(rt.ResumeToken) > 0 {
			resumeGiven = true
			if epoch, at, ok := decodeResumeToken(rt.ResumeToken); ok && epoch == l.db.epoch {
				resumeAt = at
			}
		}
	case *pb.Target_ReadTime:
		resumeGiven = true
		resumeAt = protoToMicros(rt.ReadTime)
	}

	db := l.db
	db.mu.RLock()
	now := l.s.emu.clock.readTime()
	l.changed = db.changed
	msgs := l.collectChanges(now)
	reset := false
	if resumeGiven {
		if resumeAt > 0 && resumeAt >= l.s.emu.horizon() && resumeAt >= db.created && resumeAt <= now {
			for key, d := range l.evaluate(target, resumeAt) {
				target.current[key] = protoToMicros(d.UpdateTime)
				target.names[key] = d.Name
			}
		} else {
			reset = true
		}
	}
	initial := l.diffFull(target, now)
	db.mu.RUnlock()

	if err := l.sendAll(msgs); err != nil {
		return err
	}
	if err := l.sendTargetChange(pb.TargetChange_ADD, target.id); err != nil {
		return err
	}
	if reset {
		if err := l.sendTargetChange(pb.TargetChange_RESET, target.id); err != nil {
			return err
		}
	}
	if err := l.sendAll(merge(initial)); err != nil {
		return err
	}
	if err := l.sendTargetChange(pb.TargetChange_CURRENT, target.id); err != nil {
		return err
	}
	l.targets[target.id] = target
	l.lastTime = now
	if err := l.sendNoChange(now); err != nil {
		return err
	}
	if target.once {
		delete(l.targets, target.id)
		return l.sendTargetChange(pb.TargetChange_REMOVE, target.id)
	}
	return nil
}

// advance sends what changed since the last consistent time, then a global
// NO_CHANGE (always when force is set).
func (l *listener) advance(force bool) error {
	db := l.db
	db.mu.RLock()
	now := l.s.emu.clock.readTime()
	l.changed = db.changed
	msgs := l.collectChanges(now)
	db.mu.RUnlock()
	if len(msgs) == 0 && !force {
		l.lastTime = now
		return nil
	}
	if err := l.sendAll(msgs); err != nil {
		return err
	}
	l.lastTime = now
	return l.sendNoChange(now)
}

// docChange is the pending change of one document across targets.
type docChange struct {
	doc     *pb.Document // nil when deleted
	name    string
	added   []int32
	removed []int32
}

// collectChanges computes, for every target, the changes between lastTime
// and now, and updates the targets' view. Callers hold db.mu.
func (l *listener) collectChanges(now int64) []*pb.ListenResponse {
	if len(l.targets) == 0 || now <= l.lastTime {
		return nil
	}
	keys, incremental := l.db.changedSince(l.lastTime, now)
	var all []map[string]*docChange
	for _, t := range l.targets {
		if !incremental || t.limited {
			all = append(all, l.diffFull(t, now))
			continue
		}
		if len(keys) == 0 {
			continue
		}
		changes := map[string]*docChange{}
		for key := range keys {
			var doc *pb.Document
			var segs []string
			if e := l.db.lookup(key); e != nil {
				doc, segs = e.at(now), e.segs
			} else {
				segs = decodeKey(key)
			}
			l.diffOne(t, key, segs, doc, changes)
		}
		all = append(all, changes)
	}
	return merge(all...)
}

// evaluate returns the documents a target matches at time at, by key.
// Callers hold db.mu.
func (l *listener) evaluate(t *listenTarget, at int64) map[string]*pb.Document {
	out := map[string]*pb.Document{}
	if t.query == nil {
		for key := range t.docs {
			if e := l.db.lookup(key); e != nil {
				if d := e.at(at); d != nil {
					out[key] = d
				}
			}
		}
		return out
	}
	docs, _ := l.db.runQueryAll(t.query, at)
	for _, d := range docs {
		segs, _, err := parseDocumentName(d.Name, l.db.id)
		if err == nil {
			out[encodePath(segs)] = d
		}
	}
	return out
}

// diffFull compares a target's view with its full result at now, updates
// the view and returns the changes. Callers hold db.mu.
func (l *listener) diffFull(t *listenTarget, now int64) map[string]*docChange {
	changes := map[string]*docChange{}
	next := l.evaluate(t, now)
	for key, d := range next {
		if t.current[key] != protoToMicros(d.UpdateTime) {
			changes[key] = &docChange{doc: d, name: d.Name, added: []int32{t.id}}
			t.current[key] = protoToMicros(d.UpdateTime)
			t.names[key] = d.Name
		}
	}
	for key := range t.current {
		if _, ok := next[key]; ok {
			continue
		}
		var doc *pb.Document
		if e := l.db.lookup(key); e != nil {
			doc = e.at(now)
		}
		changes[key] = &docChange{doc: doc, name: t.names[key], removed: []int32{t.id}}
		delete(t.current, key)
		delete(t.names, key)
	}
	return changes
}

// diffOne updates a target's view for one changed document. Callers hold
// db.mu.
func (l *listener) diffOne(t *listenTarget, key string, segs []string, doc *pb.Document, changes map[string]*docChange) {
	var in bool
	if t.query == nil {
		in = t.docs[key] && doc != nil
	} else {
		in = t.query.matchesIgnoringLimit(segs, doc)
		if in && t.query.hasProjection {
			doc = t.query.project(doc)
		}
	}
	_, had := t.current[key]
	switch {
	case in && t.current[key] != protoToMicros(doc.UpdateTime):
		changes[key] = &docChange{doc: doc, name: doc.Name, added: []int32{t.id}}
		t.current[key] = protoToMicros(doc.UpdateTime)
		t.names[key] = doc.Name
	case !in && had:
		changes[key] = &docChange{doc: doc, name: t.names[key], removed: []int32{t.id}}
		delete(t.current, key)
		delete(t.names, key)
	}
}

// merge combines per-target changes into Listen responses, one per
// document.
func merge(sets ...map[string]*docChange) []*pb.ListenResponse {
	byKey := map[string]*docChange{}
	var order []string
	for _, set := range sets {
		for key, c := range set {
			m := byKey[key]
			if m == nil {
				byKey[key] = &docChange{doc: c.doc, name: c.name, added: c.added, removed: c.removed}
				order = append(order, key)
				continue
			}
			m.added = append(m.added, c.added...)
			m.removed = append(m.removed, c.removed...)
			if c.doc != nil {
				m.doc = c.doc
			}
		}
	}
	out := make([]*pb.ListenResponse, 0, len(order))
	for _, key := range order {
		c := byKey[key]
		switch {
		case c.doc != nil:
			out = append(out, &pb.ListenResponse{ResponseType: &pb.ListenResponse_DocumentChange{DocumentChange: &pb.DocumentChange{
				Document: c.doc, TargetIds: c.added, RemovedTargetIds: c.removed,
			}}})
		default:
			out = append(out, &pb.ListenResponse{ResponseType: &pb.ListenResponse_DocumentDelete{DocumentDelete: &pb.DocumentDelete{
				Document: c.name, RemovedTargetIds: c.removed,
			}}})
		}
	}
	return out
}

func (l *listener) send(r *pb.ListenResponse) error {
	if dc, ok := r.ResponseType.(*pb.ListenResponse_DocumentChange); ok && len(dc.DocumentChange.TargetIds) > 0 {
		l.s.emu.reads.add(l.db.id.project, "Listen", 1)
	}
	return l.stream.Send(r)
}

func (l *listener) sendAll(rs []*pb.ListenResponse) error {
	for _, r := range rs {
		if err := l.send(r); err != nil {
			return err
		}
	}
	return nil
}

func (l *listener) sendTargetChange(kind pb.TargetChange_TargetChangeType, id int32) error {
	return l.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
		TargetChangeType: kind, TargetIds: []int32{id},
	}}})
}

func (l *listener) sendRemove(id int32, code codes.Code, msg string) error {
	return l.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
		TargetChangeType: pb.TargetChange_REMOVE, TargetIds: []int32{id},
		Cause: &rpcstatus.Status{Code: int32(code), Message: msg},
	}}})
}

func (l *listener) sendNoChange(at int64) error {
	return l.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
		TargetChangeType: pb.TargetChange_NO_CHANGE,
		ReadTime:         microsToProto(at),
		ResumeToken:      encodeResumeToken(l.db.epoch, at),
	}}})
}

// encodeResumeToken makes a token from a database instance and a time.
func encodeResumeToken(epoch uint64, at int64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, epoch)
	binary.BigEndian.PutUint64(b[8:], uint64(at))
	return b
}

func decodeResumeToken(b []byte) (epoch uint64, at int64, ok bool) {
	if len(b) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), true
}
