package firestoreemu_test

import (
	"context"
	"math"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestSetMergeUpdateDelete(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	d := c.Doc("users/alice")
	mustSet(t, ctx, d, map[string]any{"name": "Alice", "age": 30, "addr": map[string]any{"city": "Paris", "zip": "75001"}, "a.b": 1})

	// Set without merge replaces the document.
	mustSet(t, ctx, d, map[string]any{"name": "Alice2"})
	if got := mustGet(t, ctx, d).Data(); !reflect.DeepEqual(got, map[string]any{"name": "Alice2"}) {
		t.Fatalf("after replace: %v", got)
	}
	// Set with merge keeps other fields, merges nested maps.
	mustSet(t, ctx, d, map[string]any{"addr": map[string]any{"city": "Lyon", "zip": "69001"}, "age": 31}, firestore.MergeAll)
	mustSet(t, ctx, d, map[string]any{"addr": map[string]any{"city": "Nice"}}, firestore.MergeAll)
	want := map[string]any{"name": "Alice2", "age": int64(31), "addr": map[string]any{"city": "Nice", "zip": "69001"}}
	if got := mustGet(t, ctx, d).Data(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after merge: %v, want %v", got, want)
	}
	// Merge on specific paths.
	mustSet(t, ctx, d, map[string]any{"age": 40, "name": "ignored"}, firestore.Merge([]string{"age"}))
	if got := mustGet(t, ctx, d).Data(); got["age"] != int64(40) || got["name"] != "Alice2" {
		t.Fatalf("after Merge(age): %v", got)
	}
	// Update with nested and quoted paths, and field deletion.
	_, err := d.Update(ctx, []firestore.Update{
		{Path: "addr.city", Value: "Marseille"},
		{FieldPath: firestore.FieldPath{"weird.key", "x y"}, Value: "quoted"},
		{Path: "age", Value: firestore.Delete},
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := mustGet(t, ctx, d).Data()
	want = map[string]any{"name": "Alice2", "addr": map[string]any{"city": "Marseille", "zip": "69001"}, "weird.key": map[string]any{"x y": "quoted"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after Update: %v, want %v", got, want)
	}
	// Update replaces a non-map intermediate value.
	if _, err := d.Update(ctx, []firestore.Update{{Path: "name.first", Value: "A"}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, ctx, d).Data(); !reflect.DeepEqual(got["name"], map[string]any{"first": "A"}) {
		t.Fatalf("update through scalar: %v", got["name"])
	}
	// Delete, then the document is gone.
	if _, err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx); codeOf(err) != codes.NotFound {
		t.Fatalf("Get after delete: %v", err)
	}
	// Deleting a missing document succeeds.
	if _, err := d.Delete(ctx); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
}

func TestPreconditions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	d := c.Doc("p/one")
	if _, err := d.Update(ctx, []firestore.Update{{Path: "a", Value: 1}}); codeOf(err) != codes.NotFound {
		t.Fatalf("update of missing doc: %v, want NotFound", err)
	}
	if _, err := d.Create(ctx, map[string]any{"a": 1}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := d.Create(ctx, map[string]any{"a": 2}); codeOf(err) != codes.AlreadyExists {
		t.Fatalf("second Create: %v, want AlreadyExists", err)
	}
	snap := mustGet(t, ctx, d)
	wr := mustSet(t, ctx, d, map[string]any{"a": 3})
	if _, err := d.Update(ctx, []firestore.Update{{Path: "a", Value: 4}}, firestore.LastUpdateTime(snap.UpdateTime)); codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("stale LastUpdateTime: %v, want FailedPrecondition", err)
	}
	if _, err := d.Update(ctx, []firestore.Update{{Path: "a", Value: 5}}, firestore.LastUpdateTime(wr.UpdateTime)); err != nil {
		t.Fatalf("current LastUpdateTime: %v", err)
	}
	if _, err := d.Delete(ctx, firestore.LastUpdateTime(wr.UpdateTime)); codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("delete with stale time: %v", err)
	}
	if _, err := c.Doc("p/missing").Delete(ctx, firestore.Exists); codeOf(err) != codes.NotFound {
		t.Fatalf("delete missing with Exists: %v, want NotFound", err)
	}
	if got := mustGet(t, ctx, d).Data()["a"]; got != int64(5) {
		t.Fatalf("a = %v, want 5", got)
	}
}

func TestCommitAtomicMonotonicAndLimited(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	raw := newRawClient(t)
	project := newProject(t)
	set := func(path string, v int) *pb.Write {
		return &pb.Write{Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, path), Fields: pbFields(map[string]any{"v": v})}}}
	}
	first := rawCommit(t, ctx, raw, project, set("a/1", 1), set("a/2", 1))
	// A batch whose last write fails applies nothing.
	_, err := raw.Commit(ctx, &pb.CommitRequest{Database: dbPath(project), Writes: []*pb.Write{
		set("a/1", 2), set("a/3", 2),
		{Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, "a/2")}},
			CurrentDocument: &pb.Precondition{ConditionType: &pb.Precondition_Exists{Exists: false}}},
	}})
	wantCode(t, err, codes.AlreadyExists, "commit with failing precondition")
	res, err := raw.BatchGetDocuments(ctx, &pb.BatchGetDocumentsRequest{Database: dbPath(project), Documents: []string{docName(project, "a/1"), docName(project, "a/3")}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := res.Recv()
		if err != nil {
			break
		}
		if f := r.GetFound(); f != nil && f.Name == docName(project, "a/1") && f.Fields["v"].GetIntegerValue() != 1 {
			t.Fatalf("a/1 changed by a failed commit: %v", f)
		}
		if r.GetFound() != nil && r.GetFound().Name == docName(project, "a/3") {
			t.Fatalf("a/3 created by a failed commit")
		}
	}
	// More than 500 writes are refused.
	var many []*pb.Write
	for i := 0; i < 501; i++ {
		many = append(many, set("many/"+strconv.Itoa(i), i))
	}
	_, err = raw.Commit(ctx, &pb.CommitRequest{Database: dbPath(project), Writes: many})
	wantCode(t, err, codes.InvalidArgument, "501 writes")
	// 500 are fine, and commit times strictly increase.
	last := first.CommitTime.AsTime()
	for i := 0; i < 5; i++ {
		r := rawCommit(t, ctx, raw, project, many[:500]...)
		ct := r.CommitTime.AsTime()
		if !ct.After(last) {
			t.Fatalf("commit time %v not after %v", ct, last)
		}
		if len(r.WriteResults) != 500 {
			t.Fatalf("got %d write results", len(r.WriteResults))
		}
		last = ct
		for j := range many[:500] {
			many[j] = set("many/"+strconv.Itoa(j), i*1000+j)
		}
	}
	// Create and update times.
	r1 := rawCommit(t, ctx, raw, project, set("times/x", 1))
	r2 := rawCommit(t, ctx, raw, project, set("times/x", 2))
	doc, err := raw.GetDocument(ctx, &pb.GetDocumentRequest{Name: docName(project, "times/x")})
	if err != nil {
		t.Fatal(err)
	}
	if !doc.CreateTime.AsTime().Equal(r1.CommitTime.AsTime()) || !doc.UpdateTime.AsTime().Equal(r2.CommitTime.AsTime()) {
		t.Fatalf("create/update time %v/%v, want %v/%v", doc.CreateTime.AsTime(), doc.UpdateTime.AsTime(), r1.CommitTime.AsTime(), r2.CommitTime.AsTime())
	}
}

func TestNoOpWriteKeepsUpdateTime(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	d := c.Doc("noop/x")
	w1 := mustSet(t, ctx, d, map[string]any{"a": 1, "f": 1.5})
	w2 := mustSet(t, ctx, d, map[string]any{"a": 1, "f": 1.5})
	if !w2.UpdateTime.Equal(w1.UpdateTime) {
		t.Fatalf("identical set changed update time: %v -> %v", w1.UpdateTime, w2.UpdateTime)
	}
	// 1 and 1.0 are different stored values.
	w3 := mustSet(t, ctx, d, map[string]any{"a": 1.0, "f": 1.5})
	if !w3.UpdateTime.After(w1.UpdateTime) {
		t.Fatalf("changing int to double did not change update time")
	}
}

func TestTransforms(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	d := c.Doc("t/x")
	wr := mustSet(t, ctx, d, map[string]any{
		"ts":      firestore.ServerTimestamp,
		"nested":  map[string]any{"ts": firestore.ServerTimestamp},
		"n":       int64(5),
		"big":     int64(math.MaxInt64 - 1),
		"small":   int64(math.MinInt64 + 1),
		"f":       1.5,
		"s":       "text",
		"arr":     []any{int64(1), int64(2), 3.0, "x"},
		"mx":      int64(3),
		"mn":      3.5,
		"nanmax":  math.NaN(),
		"missing": nil,
	})
	snap := mustGet(t, ctx, d)
	if ts, _ := snap.Data()["ts"].(time.Time); !ts.Equal(wr.UpdateTime) {
		t.Fatalf("server timestamp %v != commit time %v", snap.Data()["ts"], wr.UpdateTime)
	}
	_, err := d.Update(ctx, []firestore.Update{
		{Path: "n", Value: firestore.Increment(2)},
		{Path: "big", Value: firestore.Increment(10)},
		{Path: "small", Value: firestore.Increment(-10)},
		{Path: "f", Value: firestore.Increment(1)},
		{Path: "s", Value: firestore.Increment(7)},
		{Path: "absent", Value: firestore.Increment(2.5)},
		{Path: "arr", Value: firestore.ArrayUnion(int64(3), "y", "x", "y")},
		{Path: "arr2", Value: firestore.ArrayUnion("a")},
		{Path: "mx", Value: firestore.FieldTransformMaximum(3.0)},
		{Path: "mn", Value: firestore.FieldTransformMinimum(int64(2))},
		{Path: "nanmax", Value: firestore.FieldTransformMaximum(7)},
	})
	if err != nil {
		t.Fatalf("Update with transforms: %v", err)
	}
	got := mustGet(t, ctx, d).Data()
	want := map[string]any{
		"n":      int64(7),
		"big":    int64(math.MaxInt64),
		"small":  int64(math.MinInt64),
		"f":      2.5,
		"s":      int64(7),
		"absent": 2.5,
		"arr":    []any{int64(1), int64(2), 3.0, "x", "y"},
		"arr2":   []any{"a"},
		"mx":     int64(3), // 3.0 is equivalent: the stored value stays
		"mn":     int64(2),
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if f, _ := got["nanmax"].(float64); !math.IsNaN(f) {
		t.Errorf("maximum(NaN, 7) = %v, want NaN", got["nanmax"])
	}
	if _, err := d.Update(ctx, []firestore.Update{{Path: "arr", Value: firestore.ArrayRemove(1.0, "x")}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, ctx, d).Data()["arr"]; !reflect.DeepEqual(got, []any{int64(2), 3.0, "y"}) {
		t.Errorf("after ArrayRemove(1.0, x): %#v", got)
	}
	if _, err := d.Update(ctx, []firestore.Update{{Path: "f", Value: firestore.Increment(math.Inf(1))}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, ctx, d).Data()["f"]; got != math.Inf(1) {
		t.Errorf("f + Inf = %v", got)
	}
}

func TestTransformResults(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	raw := newRawClient(t)
	project := newProject(t)
	name := docName(project, "tr/x")
	rawCommit(t, ctx, raw, project, &pb.Write{Operation: &pb.Write_Update{Update: &pb.Document{Name: name, Fields: pbFields(map[string]any{"n": 40})}}})
	res := rawCommit(t, ctx, raw, project, &pb.Write{
		Operation:  &pb.Write_Update{Update: &pb.Document{Name: name}},
		UpdateMask: &pb.DocumentMask{},
		UpdateTransforms: []*pb.DocumentTransform_FieldTransform{
			{FieldPath: "n", TransformType: &pb.DocumentTransform_FieldTransform_Increment{Increment: pbValue(2)}},
			{FieldPath: "at", TransformType: &pb.DocumentTransform_FieldTransform_SetToServerValue{SetToServerValue: pb.DocumentTransform_FieldTransform_REQUEST_TIME}},
			{FieldPath: "tags", TransformType: &pb.DocumentTransform_FieldTransform_AppendMissingElements{AppendMissingElements: &pb.ArrayValue{Values: []*pb.Value{pbValue("a")}}}},
			{FieldPath: "low", TransformType: &pb.DocumentTransform_FieldTransform_Minimum{Minimum: pbValue(1.5)}},
		},
	})
	tr := res.WriteResults[0].TransformResults
	if len(tr) != 4 {
		t.Fatalf("got %d transform results, want 4", len(tr))
	}
	if tr[0].GetIntegerValue() != 42 {
		t.Errorf("increment result %v, want 42", tr[0])
	}
	if !tr[1].GetTimestampValue().AsTime().Equal(res.CommitTime.AsTime()) {
		t.Errorf("server time result %v, commit time %v", tr[1], res.CommitTime)
	}
	if tr[2].GetNullValue() != 0 || tr[2].ValueType == nil {
		t.Errorf("array transform result %v, want null", tr[2])
	}
	if tr[3].GetDoubleValue() != 1.5 {
		t.Errorf("minimum result %v, want 1.5", tr[3])
	}
}

func TestBatchWriteStatuses(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	raw := newRawClient(t)
	project := newProject(t)
	rawCommit(t, ctx, raw, project, &pb.Write{Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, "bw/exists")}}})
	res, err := raw.BatchWrite(ctx, &pb.BatchWriteRequest{Database: dbPath(project), Writes: []*pb.Write{
		{Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, "bw/a"), Fields: pbFields(map[string]any{"x": 1})}}},
		{Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, "bw/exists")}},
			CurrentDocument: &pb.Precondition{ConditionType: &pb.Precondition_Exists{Exists: false}}},
		{Operation: &pb.Write_Delete{Delete: docName(project, "bw/none")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Status) != 3 || res.Status[0].Code != 0 || codes.Code(res.Status[1].Code) != codes.AlreadyExists || res.Status[2].Code != 0 {
		t.Fatalf("statuses %v", res.Status)
	}
	if res.WriteResults[0].UpdateTime == nil {
		t.Fatalf("missing update time for a successful write")
	}
	// BulkWriter (the Go client's BatchWrite user) works too.
	c := clientFor(t, project, "(default)")
	bw := c.BulkWriter(ctx)
	var jobs []*firestore.BulkWriterJob
	for i := 0; i < 100; i++ {
		j, err := bw.Set(c.Doc("bulk/"+strconv.Itoa(i)), map[string]any{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for _, j := range jobs {
		if _, err := j.Results(); err != nil {
			t.Fatalf("bulk job: %v", err)
		}
	}
	n, err := c.Collection("bulk").NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil || n["n"].(*pb.Value).GetIntegerValue() != 100 {
		t.Fatalf("count after bulk write: %v %v", n, err)
	}
}

func TestDocumentRPCs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	raw := newRawClient(t)
	project := newProject(t)
	parent := dbPath(project) + "/documents"
	created, err := raw.CreateDocument(ctx, &pb.CreateDocumentRequest{Parent: parent, CollectionId: "rpc", Document: &pb.Document{Fields: pbFields(map[string]any{"a": 1, "b": 2})}})
	if err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	if len(created.Name) == 0 || created.CreateTime == nil {
		t.Fatalf("created %v", created)
	}
	_, err = raw.CreateDocument(ctx, &pb.CreateDocumentRequest{Parent: parent, CollectionId: "rpc", DocumentId: created.Name[len(created.Name)-20:]})
	wantCode(t, err, codes.AlreadyExists, "CreateDocument of existing ID")
	upd, err := raw.UpdateDocument(ctx, &pb.UpdateDocumentRequest{
		Document:   &pb.Document{Name: created.Name, Fields: pbFields(map[string]any{"a": 10})},
		UpdateMask: &pb.DocumentMask{FieldPaths: []string{"a"}},
		Mask:       &pb.DocumentMask{FieldPaths: []string{"b"}},
	})
	if err != nil {
		t.Fatalf("UpdateDocument: %v", err)
	}
	if len(upd.Fields) != 1 || upd.Fields["b"].GetIntegerValue() != 2 {
		t.Fatalf("UpdateDocument with mask returned %v", upd.Fields)
	}
	got, err := raw.GetDocument(ctx, &pb.GetDocumentRequest{Name: created.Name})
	if err != nil || got.Fields["a"].GetIntegerValue() != 10 || got.Fields["b"].GetIntegerValue() != 2 {
		t.Fatalf("GetDocument: %v %v", got, err)
	}
	err = raw.DeleteDocument(ctx, &pb.DeleteDocumentRequest{Name: created.Name, CurrentDocument: &pb.Precondition{ConditionType: &pb.Precondition_UpdateTime{UpdateTime: timestamppb.New(time.Unix(1, 0))}}})
	wantCode(t, err, codes.FailedPrecondition, "DeleteDocument with wrong update_time")
	if err := raw.DeleteDocument(ctx, &pb.DeleteDocumentRequest{Name: created.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = raw.GetDocument(ctx, &pb.GetDocumentRequest{Name: created.Name})
	wantCode(t, err, codes.NotFound, "GetDocument after delete")
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	counter := c.Doc("tx/counter")
	mustSet(t, ctx, counter, map[string]any{"n": 0})
	// Concurrent read-modify-write transactions must not lose updates.
	const workers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
					s, err := tx.Get(counter)
					if err != nil {
						return err
					}
					return tx.Set(counter, map[string]any{"n": s.Data()["n"].(int64) + 1})
				})
			}
		}()
	}
	// Interleave writes outside transactions: they make some transactions
	// abort and retry, which must still not lose updates.
	other := c.Doc("tx/other")
	for i := 0; i < 5; i++ {
		mustSet(t, ctx, other, map[string]any{"i": i})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("transaction: %v", err)
		}
	}
	if n := mustGet(t, ctx, counter).Data()["n"]; n != int64(workers*each) {
		t.Fatalf("counter = %v, want %d", n, workers*each)
	}

	// A non-transactional write between a transaction's read and its commit
	// aborts the attempt; the retry sees the new value.
	attempts := 0
	err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		attempts++
		s, err := tx.Get(counter)
		if err != nil {
			return err
		}
		if attempts == 1 {
			mustSet(t, ctx, counter, map[string]any{"n": 1000})
		}
		return tx.Set(counter, map[string]any{"n": s.Data()["n"].(int64) + 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := mustGet(t, ctx, counter).Data()["n"]; attempts < 2 || n != int64(1001) {
		t.Fatalf("after conflicting write: attempts %d, n = %v, want >= 2 and 1001", attempts, n)
	}

	// A query inside a transaction, and a failing function rolls back.
	mustSet(t, ctx, c.Doc("tx/q1"), map[string]any{"kind": "q"})
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		docs, err := tx.Documents(c.Collection("tx").Where("kind", "==", "q")).GetAll()
		if err != nil {
			return err
		}
		if len(docs) != 1 {
			t.Errorf("query in transaction: %d docs", len(docs))
		}
		if err := tx.Set(c.Doc("tx/written"), map[string]any{"x": 1}); err != nil {
			return err
		}
		return errTestRollback
	})
	if err != errTestRollback {
		t.Fatalf("RunTransaction error %v", err)
	}
	if _, err := c.Doc("tx/written").Get(ctx); codeOf(err) != codes.NotFound {
		t.Fatalf("write of a rolled-back transaction is visible: %v", err)
	}

	// Read-only transaction at a past read time.
	w1 := mustSet(t, ctx, c.Doc("tx/ro"), map[string]any{"v": 1})
	mustSet(t, ctx, c.Doc("tx/ro"), map[string]any{"v": 2})
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		s, err := tx.Get(c.Doc("tx/ro"))
		if err != nil {
			return err
		}
		if s.Data()["v"] != int64(1) {
			t.Errorf("read-only transaction at %v read %v", w1.UpdateTime, s.Data())
		}
		return nil
	}, firestore.ReadOnly, firestore.TransactionReadTime(w1.UpdateTime))
	if err != nil {
		t.Fatal(err)
	}
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		return tx.Set(c.Doc("tx/ro"), map[string]any{"v": 3})
	}, firestore.ReadOnly)
	if err == nil {
		t.Fatal("write in a read-only transaction succeeded")
	}
}
