package firestoreemu_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
)

func TestResetWipesData(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	mustSet(t, ctx, c.Doc("r/a"), map[string]any{"x": 1})
	// Google's endpoint works on any emulator.
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+emulatorHost+"/emulator/v1/projects/"+project+"/databases/(default)/documents", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("DELETE documents: %s", res.Status)
	}
	if _, err := c.Doc("r/a").Get(ctx); codeOf(err) != codes.NotFound {
		t.Fatalf("after reset: %v", err)
	}
	if cols, err := c.Collections(ctx).GetAll(); err != nil || len(cols) != 0 {
		t.Fatalf("collections after reset: %v %v", cols, err)
	}
	mustSet(t, ctx, c.Doc("r/b"), map[string]any{"x": 2})
	if got := mustGet(t, ctx, c.Doc("r/b")).Data()["x"]; got != int64(2) {
		t.Fatalf("write after reset: %v", got)
	}
}

// TestCollectGarbage: the hook runs a collection (the count grows by at
// least one) and reports a heap that holds the emulator's documents.
func TestCollectGarbage(t *testing.T) {
	t.Parallel()
	h := hooks(t)
	ctx := testContext(t)
	first, err := h.CollectGarbage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.CollectGarbage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.NumGC <= first.NumGC || second.HeapAlloc == 0 {
		t.Fatalf("two collections: %+v then %+v", first, second)
	}
}

func TestReadCounter(t *testing.T) {
	t.Parallel()
	h := hooks(t)
	ctx := testContext(t)
	c, project := newClient(t)
	for i := 0; i < 5; i++ {
		mustSet(t, ctx, c.Doc(fmt.Sprintf("rc/d%d", i)), map[string]any{"i": i})
	}
	reads := func() int64 {
		t.Helper()
		st, err := h.DocumentsRead(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		return st.DocumentsRead
	}
	step := func(name string, want int64, f func()) {
		t.Helper()
		before := reads()
		f()
		if got := reads() - before; got != want {
			t.Errorf("%s: %d reads, want %d", name, got, want)
		}
	}
	if n := reads(); n != 0 {
		t.Fatalf("writes counted as reads: %d", n)
	}
	step("get", 1, func() { mustGet(t, ctx, c.Doc("rc/d0")) })
	step("get missing", 1, func() { _, _ = c.Doc("rc/none").Get(ctx) })
	step("get all", 3, func() {
		if _, err := c.GetAll(ctx, []*firestore.DocumentRef{c.Doc("rc/d1"), c.Doc("rc/d2"), c.Doc("rc/none")}); err != nil {
			t.Fatal(err)
		}
	})
	step("query", 4, func() { ids(t, ctx, c.Collection("rc").Where("i", ">", 0)) })
	step("empty query", 1, func() { ids(t, ctx, c.Collection("rc").Where("i", ">", 100)) })
	step("count", 1, func() {
		if _, err := c.Collection("rc").NewAggregationQuery().WithCount("n").Get(ctx); err != nil {
			t.Fatal(err)
		}
	})
	step("list documents", 5, func() {
		if _, err := c.Collection("rc").DocumentRefs(ctx).GetAll(); err != nil {
			t.Fatal(err)
		}
	})
	step("listen", 5, func() {
		s := watchQuery(t, ctx, c.Collection("rc").Query)
		s.next(t)
	})
	st, err := h.ResetDocumentsRead(ctx, project)
	if err != nil || st.ByMethod["RunQuery"] != 5 || st.ByMethod["Listen"] != 5 {
		t.Errorf("reset returned %+v %v", st, err)
	}
	if n := reads(); n != 0 {
		t.Errorf("after reset: %d", n)
	}
}

// faultProject returns the emulator's hooks, a context and a client on a
// fresh project holding n documents coll/d<i> {"i": i}, for a test that
// injects faults; the project's faults are cleared when t ends.
func faultProject(t *testing.T, coll string, n int) (*firestoreemu.Hooks, context.Context, *firestore.Client, string) {
	t.Helper()
	h := hooks(t)
	ctx := testContext(t)
	c, project := newClient(t)
	t.Cleanup(func() { _ = h.ClearFaults(ctx, project) })
	for i := 0; i < n; i++ {
		mustSet(t, ctx, c.Doc(fmt.Sprintf("%s/d%d", coll, i)), map[string]any{"i": i})
	}
	return h, ctx, c, project
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	h, ctx, c, project := faultProject(t, "f", 10)

	// Commits fail twice with UNAVAILABLE: the client retries them and
	// succeeds; reads are untouched.
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Seed: 1, Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Commit"}, Code: "UNAVAILABLE", Times: 2},
	}}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, ctx, c.Doc("f/d1"))
	mustSet(t, ctx, c.Doc("f/x"), map[string]any{})
	st, err := h.Faults(ctx, project)
	if err != nil || len(st.Injected) != 1 || st.Injected[0] != 2 {
		t.Fatalf("fault status %+v %v", st, err)
	}
	// Without client retries the failure shows.
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"Commit"}, Times: 1}}}); err != nil {
		t.Fatal(err)
	}
	raw := newRawClient(t)
	_, err = raw.Commit(ctx, &pb.CommitRequest{Database: dbPath(project)}, gax.WithRetry(func() gax.Retryer { return nil }))
	wantCode(t, err, codes.Unavailable, "commit with an injected fault")
	// Other projects are unaffected by a project's faults.
	other, _ := newClient(t)
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Code: "RESOURCE_EXHAUSTED"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Doc("f/d1").Get(ctx); codeOf(err) != codes.ResourceExhausted {
		t.Fatalf("get with RESOURCE_EXHAUSTED fault: %v", err)
	}
	mustSet(t, ctx, other.Doc("o/x"), map[string]any{})

	// A fraction with a seed is deterministic: the same sequence of calls
	// fails the same way twice.
	half := 0.5
	pattern := func() string {
		if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Seed: 42, Rules: []firestoreemu.FaultRule{{Methods: []string{"GetDocument"}, Fraction: &half}}}); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := 0; i < 40; i++ {
			_, err := raw.GetDocument(ctx, &pb.GetDocumentRequest{Name: docName(project, "f/d1")}, gax.WithRetry(func() gax.Retryer { return nil }))
			if err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	p1, p2 := pattern(), pattern()
	if p1 != p2 || !strings.Contains(p1, "x") || !strings.Contains(p1, ".") {
		t.Fatalf("seeded fraction patterns %q and %q", p1, p2)
	}

	// A RunQuery stream cut after 3 documents.
	three := 3
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"RunQuery"}, AfterDocuments: &three, Times: 1}}}); err != nil {
		t.Fatal(err)
	}
	it := c.Collection("f").Documents(ctx)
	got := 0
	for {
		_, err := it.Next()
		if errors.Is(err, iterator.Done) {
			t.Fatalf("stream was not cut (read %d)", got)
		}
		if err != nil {
			if codeOf(err) != codes.Unavailable || got != 3 {
				t.Fatalf("cut after %d documents with %v, want 3 and Unavailable", got, err)
			}
			break
		}
		got++
	}
	it.Stop()
	if n := len(ids(t, ctx, c.Collection("f").Query)); n != 11 {
		t.Fatalf("after the single cut: %d documents", n)
	}

	// Reset keeps faults unless asked.
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"RunQuery"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Reset(ctx, project); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collection("f").Documents(ctx).GetAll(); codeOf(err) != codes.Unavailable {
		t.Fatalf("faults after reset: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+emulatorHost+"/emulator/v1/projects/"+project+"/databases/(default)/documents?faults=true", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if _, err := c.Collection("f").Documents(ctx).GetAll(); err != nil {
		t.Fatalf("after reset with faults=true: %v", err)
	}
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"RunQuery"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.ClearFaults(ctx, project); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collection("f").Documents(ctx).GetAll(); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
	// Bad configurations are refused.
	bad := 2.0
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Fraction: &bad}}}); err == nil {
		t.Fatal("fraction 2 accepted")
	}
}

// TestListenSurvivesStreamCut cuts an open Listen stream; the client
// resumes with its token and sees each change exactly once.
func TestListenSurvivesStreamCut(t *testing.T) {
	t.Parallel()
	h, ctx, c, project := faultProject(t, "cut", 3)
	col := c.Collection("cut")
	s := watchQuery(t, ctx, col.Query)
	if docs, _ := describe(t, s.next(t)); len(docs) != 3 {
		t.Fatalf("initial: %v", docs)
	}
	// The open stream has sent 3 documents: the next one is cut, once.
	three := 3
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"Listen"}, AfterDocuments: &three, Times: 1}}}); err != nil {
		t.Fatal(err)
	}
	mustSet(t, ctx, col.Doc("d3"), map[string]any{"i": 3})
	mustSet(t, ctx, col.Doc("d0"), map[string]any{"i": 10})
	var changes []string
	size := 0
	for len(changes) < 2 {
		snap := s.next(t)
		_, ch := describe(t, snap)
		changes = append(changes, ch...)
		size = snap.Size
	}
	sort.Strings(changes)
	if !eq(changes, []string{"DocumentAdded:d3", "DocumentModified:d0"}) || size != 4 {
		t.Fatalf("changes across the cut: %v (size %d)", changes, size)
	}
	st, err := h.Faults(ctx, project)
	if err != nil || st.Injected[0] != 1 {
		t.Fatalf("the stream was not cut: %+v %v", st, err)
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	const writers, perWriter = 6, 30
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				d := c.Doc(fmt.Sprintf("cc/w%d/items/i%03d", w, i))
				if _, err := d.Set(ctx, map[string]any{"w": w, "i": i}); err != nil {
					errs <- err
					return
				}
				if _, err := d.Update(ctx, []firestore.Update{{Path: "n", Value: firestore.Increment(1)}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				docs, err := c.CollectionGroup("items").Where("i", ">=", 0).Documents(ctx).GetAll()
				if err != nil {
					errs <- err
					return
				}
				for _, d := range docs {
					if d.Data()["w"] == nil {
						errs <- fmt.Errorf("partial document %v", d.Data())
						return
					}
				}
				if _, err := c.Collection("cc").DocumentRefs(ctx).GetAll(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	docs, err := c.CollectionGroup("items").Documents(ctx).GetAll()
	if err != nil || len(docs) != writers*perWriter {
		t.Fatalf("%d documents, %v", len(docs), err)
	}
	for _, d := range docs {
		if d.Data()["n"] != int64(1) {
			t.Fatalf("%s: n = %v", d.Ref.Path, d.Data()["n"])
		}
	}
}

// TestMainBinary builds and runs cmd/firestoreemu: readiness line, probe,
// clean exit on SIGTERM.
func TestMainBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	ctx := testContext(t)
	bin := filepath.Join(t.TempDir(), "firestoreemu")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/firestoreemu")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "--port", "0", "--history", "5m")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading readiness line: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "firestoreemu listening on ")
	if !ok {
		t.Fatalf("readiness line %q", line)
	}
	res, err := http.Get("http://" + addr + "/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("probe: %v %v", res, err)
	}
	res.Body.Close()
	client := clientAt(t, addr, "bin-project")
	mustSet(t, ctx, client.Doc("a/b"), map[string]any{"ok": true})
	if got := mustGet(t, ctx, client.Doc("a/b")).Data()["ok"]; got != true {
		t.Fatalf("read through the binary: %v", got)
	}
	info, err := firestoreemu.HooksFor(addr).Info(ctx)
	if err != nil || info.History != "5m0s" {
		t.Fatalf("info %+v %v", info, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("binary did not exit within 15s of SIGTERM")
	}
}

// TestStallFault holds calls and streams without an error: a stalled unary
// call ends only when the client's deadline passes, a stalled stream
// resumes where it stopped once the faults are cleared, and a timed stall
// just delays. The status reports each stall and what ended it.
func TestStallFault(t *testing.T) {
	t.Parallel()
	h, ctx, c, project := faultProject(t, "s", 5)
	raw := newRawClient(t)
	noRetry := gax.WithRetry(func() gax.Retryer { return nil })

	// A unary call stalled "forever" ends with the client's deadline.
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"GetDocument"}, Stall: "forever", Times: 1}}}); err != nil {
		t.Fatal(err)
	}
	callCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := raw.GetDocument(callCtx, &pb.GetDocumentRequest{Name: docName(project, "s/d1")}, noRetry)
	cancel()
	wantCode(t, err, codes.DeadlineExceeded, "get stalled forever")
	st := waitStalls(t, h, project, func(ev []firestoreemu.StallEvent) bool { return len(ev) == 1 && ev[0].Ended != "" })
	if ev := st.Stalls[0]; ev.Ended != "cancelled" || ev.Method != "GetDocument" || ev.Rule != 0 || st.Injected[0] != 1 {
		t.Fatalf("stall status after a cancelled call: %+v", st)
	}
	// Times: 1 — the next call is not held.
	mustGet(t, ctx, c.Doc("s/d1"))

	// A RunQuery stream stalled after 2 documents sends nothing more until
	// the faults are cleared, then carries on: every document once.
	two := 2
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"RunQuery"}, AfterDocuments: &two, Stall: "forever", Times: 1}}}); err != nil {
		t.Fatal(err)
	}
	it := c.Collection("s").Documents(ctx)
	defer it.Stop()
	var got []string
	for range 2 {
		d, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Ref.ID)
	}
	waitStalls(t, h, project, func(ev []firestoreemu.StallEvent) bool { return len(ev) == 1 && ev[0].Ended == "" })
	next := make(chan error, 1)
	go func() {
		for {
			d, err := it.Next()
			if err != nil {
				if errors.Is(err, iterator.Done) {
					err = nil
				}
				next <- err
				return
			}
			got = append(got, d.Ref.ID)
		}
	}()
	select {
	case err := <-next:
		t.Fatalf("a stalled stream went on before the faults were cleared: %v", err)
	default:
	}
	st, err = h.Faults(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ClearFaults(ctx, project); err != nil {
		t.Fatal(err)
	}
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if want := []string{"d0", "d1", "d2", "d3", "d4"}; !eq(got, want) {
		t.Fatalf("stream after a cleared stall: %v, want %v", got, want)
	}
	if len(st.Stalls) != 1 || st.Stalls[0].Method != "RunQuery" || st.Stalls[0].Ended != "" {
		t.Fatalf("status during the stall: %+v", st)
	}

	// A stall with a duration delays the call, which then succeeds.
	if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Methods: []string{"GetDocument"}, Stall: "50ms"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.GetDocument(ctx, &pb.GetDocumentRequest{Name: docName(project, "s/d2")}, noRetry); err != nil {
		t.Fatal(err)
	}
	st, err = h.Faults(ctx, project)
	if err != nil || len(st.Stalls) != 1 || st.Stalls[0].Ended != "elapsed" || st.Stalls[0].Seconds < 0.05 {
		t.Fatalf("status after a timed stall: %+v %v", st, err)
	}
	// Bad stalls are refused.
	for _, bad := range []string{"soon", "0s", "-1s"} {
		if err := h.SetFaults(ctx, project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{{Stall: bad}}}); err == nil {
			t.Errorf("stall %q accepted", bad)
		}
	}
}

// waitStalls polls a project's fault status until ok accepts its stalls.
func waitStalls(t *testing.T, h *firestoreemu.Hooks, project string, ok func([]firestoreemu.StallEvent) bool) firestoreemu.FaultStatus {
	t.Helper()
	ctx := testContext(t)
	for {
		st, err := h.Faults(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		if ok(st.Stalls) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stalls never reached the wanted state: %+v", st.Stalls)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
