package firestoreemu_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	vkit "cloud.google.com/go/firestore/apiv1"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
)

// snapshotStream delivers query snapshots from a goroutine, so a test can
// wait for one with a deadline.
type snapshotStream struct {
	ch  chan *firestore.QuerySnapshot
	err chan error
}

func watchQuery(t *testing.T, ctx context.Context, q firestore.Query) *snapshotStream {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	it := q.Snapshots(ctx)
	s := &snapshotStream{ch: make(chan *firestore.QuerySnapshot, 100), err: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			snap, err := it.Next()
			if err != nil {
				s.err <- err
				return
			}
			s.ch <- snap
		}
	}()
	// The client's Stop must not run concurrently with Next.
	t.Cleanup(func() { cancel(); <-done; it.Stop() })
	return s
}

// next waits for the next snapshot.
func (s *snapshotStream) next(t *testing.T) *firestore.QuerySnapshot {
	t.Helper()
	select {
	case snap := <-s.ch:
		return snap
	case err := <-s.err:
		t.Fatalf("snapshot iterator: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no snapshot within 20s")
	}
	return nil
}

// describe summarises a snapshot: its document IDs and its changes.
func describe(t *testing.T, snap *firestore.QuerySnapshot) (docs []string, changes []string) {
	t.Helper()
	all, err := snap.Documents.GetAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		docs = append(docs, d.Ref.ID)
	}
	for _, ch := range snap.Changes {
		changes = append(changes, fmt.Sprintf("%s:%s", ch.Kind, ch.Doc.Ref.ID))
	}
	sort.Strings(changes)
	return docs, changes
}

func TestListenQuerySnapshots(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	col := c.Collection("live")
	mustSet(t, ctx, col.Doc("a"), map[string]any{"n": 1})
	mustSet(t, ctx, col.Doc("b"), map[string]any{"n": 5})
	mustSet(t, ctx, col.Doc("x"), map[string]any{"n": 0}) // does not match

	s := watchQuery(t, ctx, col.Where("n", ">", 0).OrderBy("n", firestore.Asc))
	check := func(step string, wantDocs, wantChanges []string) {
		t.Helper()
		docs, changes := describe(t, s.next(t))
		if !eq(docs, wantDocs) || !eq(changes, wantChanges) {
			t.Fatalf("%s: docs %v changes %v, want %v %v", step, docs, changes, wantDocs, wantChanges)
		}
	}
	check("initial", []string{"a", "b"}, []string{"DocumentAdded:a", "DocumentAdded:b"})
	mustSet(t, ctx, col.Doc("c"), map[string]any{"n": 3})
	check("add", []string{"a", "c", "b"}, []string{"DocumentAdded:c"})
	mustSet(t, ctx, col.Doc("a"), map[string]any{"n": 10})
	check("modify", []string{"c", "b", "a"}, []string{"DocumentModified:a"})
	mustSet(t, ctx, col.Doc("b"), map[string]any{"n": -1})
	check("stops matching", []string{"c", "a"}, []string{"DocumentRemoved:b"})
	if _, err := col.Doc("c").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	check("delete", []string{"a"}, []string{"DocumentRemoved:c"})
	mustSet(t, ctx, col.Doc("x"), map[string]any{"n": 2})
	check("starts matching", []string{"x", "a"}, []string{"DocumentAdded:x"})
	// Writes elsewhere and no-op writes produce no snapshot; the next real
	// change arrives alone.
	mustSet(t, ctx, c.Doc("elsewhere/z"), map[string]any{"n": 4})
	mustSet(t, ctx, col.Doc("x"), map[string]any{"n": 2})
	mustSet(t, ctx, col.Doc("a"), map[string]any{"n": 11})
	check("after unrelated writes", []string{"x", "a"}, []string{"DocumentModified:a"})
}

func TestListenLimitQueryAndDocument(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	col := c.Collection("top")
	for i, n := range []int{5, 3, 9} {
		mustSet(t, ctx, col.Doc(fmt.Sprintf("d%d", i)), map[string]any{"n": n})
	}
	s := watchQuery(t, ctx, col.OrderBy("n", firestore.Desc).Limit(2))
	if docs, _ := describe(t, s.next(t)); !eq(docs, []string{"d2", "d0"}) {
		t.Fatalf("initial top 2: %v", docs)
	}
	mustSet(t, ctx, col.Doc("d3"), map[string]any{"n": 7})
	docs, changes := describe(t, s.next(t))
	if !eq(docs, []string{"d2", "d3"}) || !eq(changes, []string{"DocumentAdded:d3", "DocumentRemoved:d0"}) {
		t.Fatalf("top 2 after insert: %v %v", docs, changes)
	}

	// A document listener: missing, created, modified, deleted.
	ref := c.Doc("single/doc")
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	it := ref.Snapshots(ctx2)
	defer it.Stop()
	next := func() *firestore.DocumentSnapshot {
		t.Helper()
		type res struct {
			s   *firestore.DocumentSnapshot
			err error
		}
		ch := make(chan res, 1)
		go func() { s, err := it.Next(); ch <- res{s, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("document snapshot: %v", r.err)
			}
			return r.s
		case <-time.After(20 * time.Second):
			t.Fatal("no document snapshot within 20s")
		}
		return nil
	}
	if s := next(); s.Exists() {
		t.Fatalf("missing document exists in snapshot")
	}
	mustSet(t, ctx, ref, map[string]any{"v": 1})
	if s := next(); !s.Exists() || s.Data()["v"] != int64(1) {
		t.Fatalf("after create: %v", s.Data())
	}
	mustSet(t, ctx, ref, map[string]any{"v": 2})
	if s := next(); s.Data()["v"] != int64(2) {
		t.Fatalf("after update: %v", s.Data())
	}
	if _, err := ref.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if s := next(); s.Exists() {
		t.Fatalf("after delete the document still exists")
	}
}

// rawListener drives a raw Listen stream.
type rawListener struct {
	t      *testing.T
	stream pb.Firestore_ListenClient
	cancel context.CancelFunc
	msgs   chan *pb.ListenResponse
	errs   chan error
}

func openListen(t *testing.T, raw *vkit.Client, project string) *rawListener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := raw.Listen(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	l := &rawListener{t: t, stream: stream, cancel: cancel, msgs: make(chan *pb.ListenResponse, 1000), errs: make(chan error, 1)}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				l.errs <- err
				return
			}
			l.msgs <- m
		}
	}()
	t.Cleanup(cancel)
	return l
}

func (l *rawListener) add(project string, target *pb.Target) {
	l.t.Helper()
	if err := l.stream.Send(&pb.ListenRequest{Database: dbPath(project), TargetChange: &pb.ListenRequest_AddTarget{AddTarget: target}}); err != nil {
		l.t.Fatal(err)
	}
}

// untilNoChange collects messages up to and including the next global
// NO_CHANGE with a read time, and returns them with that NO_CHANGE.
func (l *rawListener) untilNoChange() ([]*pb.ListenResponse, *pb.TargetChange) {
	l.t.Helper()
	var got []*pb.ListenResponse
	for {
		select {
		case m := <-l.msgs:
			if tc := m.GetTargetChange(); tc != nil && tc.TargetChangeType == pb.TargetChange_NO_CHANGE && len(tc.TargetIds) == 0 && tc.ReadTime != nil {
				return got, tc
			}
			got = append(got, m)
		case err := <-l.errs:
			l.t.Fatalf("listen stream: %v", err)
		case <-time.After(20 * time.Second):
			l.t.Fatalf("no NO_CHANGE within 20s; got %v", got)
		}
	}
}

// summarize renders Listen messages compactly: "ADD", "CURRENT", "+a" (a
// change for the target), "-a" (removal), "del:a".
func summarize(msgs []*pb.ListenResponse) []string {
	var out []string
	for _, m := range msgs {
		switch r := m.ResponseType.(type) {
		case *pb.ListenResponse_TargetChange:
			out = append(out, r.TargetChange.TargetChangeType.String())
		case *pb.ListenResponse_DocumentChange:
			id := lastSegment(r.DocumentChange.Document.Name)
			if len(r.DocumentChange.TargetIds) > 0 {
				out = append(out, "+"+id)
			} else {
				out = append(out, "-"+id)
			}
		case *pb.ListenResponse_DocumentDelete:
			out = append(out, "del:"+lastSegment(r.DocumentDelete.Document))
		case *pb.ListenResponse_DocumentRemove:
			out = append(out, "rm:"+lastSegment(r.DocumentRemove.Document))
		}
	}
	return out
}

func lastSegment(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// sortMiddle sorts the document messages between the first and last
// target changes, whose order the protocol leaves open.
func sortMiddle(s []string) []string {
	if len(s) < 2 {
		return s
	}
	mid := append([]string(nil), s[1:len(s)-1]...)
	sort.Strings(mid)
	return append(append([]string{s[0]}, mid...), s[len(s)-1])
}

func queryTarget(project string, id int32, collection string) *pb.Target {
	return &pb.Target{TargetId: id, TargetType: &pb.Target_Query{Query: &pb.Target_QueryTarget{
		Parent: dbPath(project) + "/documents",
		QueryType: &pb.Target_QueryTarget_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
			From:  []*pb.StructuredQuery_CollectionSelector{{CollectionId: collection}},
			Where: &pb.StructuredQuery_Filter{FilterType: &pb.StructuredQuery_Filter_FieldFilter{FieldFilter: &pb.StructuredQuery_FieldFilter{Field: &pb.StructuredQuery_FieldReference{FieldPath: "live"}, Op: pb.StructuredQuery_FieldFilter_EQUAL, Value: pbValue(true)}}},
		}},
	}}}
}

func TestListenResumeByTokenAndReadTime(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	col := c.Collection("res")
	mustSet(t, ctx, col.Doc("keep"), map[string]any{"live": true})
	mustSet(t, ctx, col.Doc("mod"), map[string]any{"live": true, "v": 1})
	mustSet(t, ctx, col.Doc("del"), map[string]any{"live": true})
	mustSet(t, ctx, col.Doc("leave"), map[string]any{"live": true})

	l := openListen(t, raw, project)
	l.add(project, queryTarget(project, 7, "res"))
	msgs, nc := l.untilNoChange()
	if got := sortMiddle(summarize(msgs)); !eq(got, []string{"ADD", "+del", "+keep", "+leave", "+mod", "CURRENT"}) {
		t.Fatalf("initial: %v", got)
	}
	token, readTime := nc.ResumeToken, nc.ReadTime
	l.cancel()

	// Changes while disconnected.
	mustSet(t, ctx, col.Doc("mod"), map[string]any{"live": true, "v": 2})
	if _, err := col.Doc("del").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	mustSet(t, ctx, col.Doc("leave"), map[string]any{"live": false})
	mustSet(t, ctx, col.Doc("new"), map[string]any{"live": true})
	mustSet(t, ctx, col.Doc("tmp"), map[string]any{"live": true})
	if _, err := col.Doc("tmp").Delete(ctx); err != nil { // added and gone: nothing to send
		t.Fatal(err)
	}
	want := []string{"ADD", "+mod", "+new", "-leave", "del:del", "CURRENT"}

	for _, resume := range []struct {
		name string
		set  func(*pb.Target)
	}{
		{"token", func(tg *pb.Target) { tg.ResumeType = &pb.Target_ResumeToken{ResumeToken: token} }},
		{"read time", func(tg *pb.Target) { tg.ResumeType = &pb.Target_ReadTime{ReadTime: readTime} }},
	} {
		l := openListen(t, raw, project)
		tg := queryTarget(project, 7, "res")
		resume.set(tg)
		l.add(project, tg)
		msgs, nc2 := l.untilNoChange()
		if got := sortMiddle(summarize(msgs)); !eq(got, want) {
			t.Errorf("resume by %s: %v, want %v", resume.name, got, want)
		}
		if !nc2.ReadTime.AsTime().After(readTime.AsTime()) {
			t.Errorf("resume by %s: read time did not advance", resume.name)
		}
		l.cancel()
	}

	// A resume point older than history (or unknown) resets: RESET, then
	// the full current set.
	l = openListen(t, raw, project)
	tg := queryTarget(project, 7, "res")
	tg.ResumeType = &pb.Target_ReadTime{ReadTime: timestamppb.New(time.Now().Add(-48 * time.Hour))}
	l.add(project, tg)
	msgs, _ = l.untilNoChange()
	if got := sortMiddle(summarize(msgs)); !eq(got, []string{"ADD", "+keep", "+mod", "+new", "RESET", "CURRENT"}) && !eq(got, []string{"ADD", "+keep", "+mod", "+new", "CURRENT", "RESET"}) {
		// RESET sorts into the middle; accept it anywhere between ADD and CURRENT.
		t.Errorf("resume from too old a time: %v", got)
	}
}

func TestListenMultipleTargetsAndRemoval(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	mustSet(t, ctx, c.Doc("one/a"), map[string]any{"live": true})
	mustSet(t, ctx, c.Doc("two/b"), map[string]any{"live": true})
	l := openListen(t, raw, project)
	l.add(project, queryTarget(project, 1, "one"))
	if msgs, _ := l.untilNoChange(); !eq(summarize(msgs), []string{"ADD", "+a", "CURRENT"}) {
		t.Fatalf("target 1: %v", summarize(msgs))
	}
	l.add(project, &pb.Target{TargetId: 2, TargetType: &pb.Target_Documents{Documents: &pb.Target_DocumentsTarget{Documents: []string{docName(project, "two/b"), docName(project, "two/none")}}}})
	if msgs, _ := l.untilNoChange(); !eq(summarize(msgs), []string{"ADD", "+b", "CURRENT"}) {
		t.Fatalf("target 2: %v", summarize(msgs))
	}
	mustSet(t, ctx, c.Doc("one/a2"), map[string]any{"live": true})
	mustSet(t, ctx, c.Doc("two/none"), map[string]any{"x": 1})
	var seen []string
	for len(seen) < 2 {
		msgs, _ := l.untilNoChange()
		seen = append(seen, summarize(msgs)...)
	}
	sort.Strings(seen)
	if !eq(seen, []string{"+a2", "+none"}) {
		t.Fatalf("changes on two targets: %v", seen)
	}
	if err := l.stream.Send(&pb.ListenRequest{Database: dbPath(project), TargetChange: &pb.ListenRequest_RemoveTarget{RemoveTarget: 1}}); err != nil {
		t.Fatal(err)
	}
	// The REMOVE arrives; later changes to target 1's documents do not.
	waitFor := time.After(20 * time.Second)
	for removed := false; !removed; {
		select {
		case m := <-l.msgs:
			removed = m.GetTargetChange().GetTargetChangeType() == pb.TargetChange_REMOVE
		case err := <-l.errs:
			t.Fatal(err)
		case <-waitFor:
			t.Fatal("no REMOVE within 20s")
		}
	}
	mustSet(t, ctx, c.Doc("one/a3"), map[string]any{"live": true})
	mustSet(t, ctx, c.Doc("two/b"), map[string]any{"live": true, "v": 2})
	var after []string
	for !contains(after, "+b") {
		msgs, _ := l.untilNoChange()
		after = append(after, summarize(msgs)...)
	}
	if contains(after, "+a3") {
		t.Fatalf("after removing target 1: %v", after)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestManyConcurrentListeners(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	col := c.Collection("fan")
	const listeners, docs = 12, 20
	streams := make([]*snapshotStream, listeners)
	for i := range streams {
		streams[i] = watchQuery(t, ctx, col.Query)
		if docs, _ := describe(t, streams[i].next(t)); len(docs) != 0 {
			t.Fatalf("listener %d initial: %v", i, docs)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < docs; i += 4 {
				if _, err := col.Doc(fmt.Sprintf("d%02d", i)).Set(ctx, map[string]any{"i": i}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i, s := range streams {
		total := 0
		for total < docs {
			snap := s.next(t)
			total = snap.Size
			for _, ch := range snap.Changes {
				if ch.Kind != firestore.DocumentAdded {
					t.Fatalf("listener %d: unexpected change %v", i, ch.Kind)
				}
			}
		}
		if total != docs {
			t.Fatalf("listener %d ended with %d documents", i, total)
		}
	}
}

// TestListenRefusesKindlessTarget: a query target whose from selector has no
// collection ID (a kindless all-descendants query, which RunQuery accepts)
// is answered with REMOVE and an INVALID_ARGUMENT cause, because whether
// Firestore's Listen accepts one is not established; the stream goes on,
// and a collection-group target added after it works. Other emulators
// (Google's) may accept such a target: the test is for this one.
func TestListenRefusesKindlessTarget(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	hooks(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	mustSet(t, ctx, c.Doc("kl/a"), map[string]any{"live": true})
	mustSet(t, ctx, c.Doc("kl/a/kl/b"), map[string]any{"live": true})
	l := openListen(t, raw, project)
	kindless := func(id int32, sel *pb.StructuredQuery_CollectionSelector) *pb.Target {
		return &pb.Target{TargetId: id, TargetType: &pb.Target_Query{Query: &pb.Target_QueryTarget{
			Parent:    dbPath(project) + "/documents",
			QueryType: &pb.Target_QueryTarget_StructuredQuery{StructuredQuery: &pb.StructuredQuery{From: []*pb.StructuredQuery_CollectionSelector{sel}}},
		}}}
	}
	l.add(project, kindless(3, &pb.StructuredQuery_CollectionSelector{AllDescendants: true}))
	l.add(project, kindless(4, &pb.StructuredQuery_CollectionSelector{}))
	for _, id := range []int32{3, 4} {
		select {
		case m := <-l.msgs:
			tc := m.GetTargetChange()
			if tc.GetTargetChangeType() != pb.TargetChange_REMOVE || fmt.Sprint(tc.GetTargetIds()) != fmt.Sprint([]int32{id}) ||
				codes.Code(tc.GetCause().GetCode()) != codes.InvalidArgument || !strings.Contains(tc.GetCause().GetMessage(), "collection_id") {
				t.Fatalf("kindless target %d: got %v, want REMOVE with an INVALID_ARGUMENT cause naming collection_id", id, m)
			}
		case err := <-l.errs:
			t.Fatalf("kindless target %d: the stream ended: %v", id, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("kindless target %d: no answer within 20s", id)
		}
	}
	l.add(project, kindless(5, &pb.StructuredQuery_CollectionSelector{CollectionId: "kl", AllDescendants: true}))
	msgs, _ := l.untilNoChange()
	if got := sortMiddle(summarize(msgs)); !eq(got, []string{"ADD", "+a", "+b", "CURRENT"}) {
		t.Fatalf("collection-group target after the refused ones: %v", got)
	}
}

// TestListenFaultRemovesTarget: a removeTarget rule gives up the target of
// the next document (REMOVE with the rule's code as the cause, the
// document not sent) while the stream and its other targets go on, and
// nothing more comes for the removed target.
func TestListenFaultRemovesTarget(t *testing.T) {
	ctx := testContext(t)
	h := hooks(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	after := 0
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Listen"}, AfterDocuments: &after, Times: 1, Code: "ABORTED", RemoveTarget: true},
	}}); err != nil {
		if strings.Contains(err.Error(), "unknown field") && strings.Contains(err.Error(), "removeTarget") {
			t.Skipf("the emulator predates removeTarget rules (rebuild it): %v", err)
		}
		t.Fatal(err)
	}
	if st, err := h.Faults(ctx, project); err != nil || len(st.Rules) != 1 || !st.Rules[0].RemoveTarget {
		t.Skipf("the emulator does not know removeTarget rules: %v %v", st.Rules, err)
	}
	l := openListen(t, raw, project)
	l.add(project, queryTarget(project, 1, "one"))
	l.add(project, queryTarget(project, 2, "two"))
	for range 2 {
		if msgs, _ := l.untilNoChange(); !eq(summarize(msgs), []string{"ADD", "CURRENT"}) {
			t.Fatalf("empty targets: %v", summarize(msgs))
		}
	}
	mustSet(t, ctx, c.Doc("one/a"), map[string]any{"live": true})
	msgs, _ := l.untilNoChange()
	if len(msgs) != 1 {
		t.Fatalf("after the first document: %v, want one REMOVE", summarize(msgs))
	}
	tc := msgs[0].GetTargetChange()
	if tc.GetTargetChangeType() != pb.TargetChange_REMOVE || fmt.Sprint(tc.GetTargetIds()) != "[1]" || codes.Code(tc.GetCause().GetCode()) != codes.Aborted {
		t.Fatalf("after the first document: %v, want REMOVE of target 1 with an ABORTED cause", msgs[0])
	}
	mustSet(t, ctx, c.Doc("one/b"), map[string]any{"live": true})
	mustSet(t, ctx, c.Doc("two/b"), map[string]any{"live": true})
	var later []string
	for !contains(later, "+b") {
		msgs, _ := l.untilNoChange()
		later = append(later, summarize(msgs)...)
	}
	if !eq(later, []string{"+b"}) {
		t.Fatalf("after the REMOVE: %v, want only two/b", later)
	}
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"RunQuery"}, AfterDocuments: &after, RemoveTarget: true},
	}}); err == nil || !strings.Contains(err.Error(), "removeTarget") {
		t.Errorf("removeTarget on RunQuery: %v, want it refused", err)
	}
}
