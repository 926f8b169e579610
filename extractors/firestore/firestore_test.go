package firestore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/faultnet"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestConformance runs the extractor conformance suite against the demo
// app in the Firestore emulator: three levels of subcollections, documents
// under missing parents, every value type — plus a collection mixing
// numeric (__id<n>__) and string IDs, which Firestore orders numeric first,
// so that split points fall among both.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	scale := demoapp.Scale{Users: 60, Posts: 40, CommentsPerPost: 2, Orders: 30, ItemsPerOrder: 3, Archive: 12}
	host, project, client := seedEmulator(t, append(demoapp.Documents(3, scale), legacyDocs()...))
	want, err := demoapp.ReadAll(ctx, client, project, slices.Concat(demoapp.Groups, []string{"legacy", "sub"})...)
	if err != nil {
		t.Fatal(err)
	}
	config := func(host string) plugin.Config {
		return plugin.Config{
			"firebase-project": project, "firestore-emulator-host": host, "firestore-page-size": "17",
			"firestore-snapshot-window": "1h", "retry-attempts": "2", "retry-backoff": "1ms",
		}
	}
	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			ex, err := fsx.New(ctx, config(host))
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
		Want:       want,
		Times:      true,
		Partitions: []int{1, 3, 8, 24},
		Unreachable: func(t *testing.T) extractors.Extractor {
			ex, err := fsx.New(ctx, config(faultnet.ClosedAddr(t)))
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
	})
}

// legacyDocs is a collection of documents with numeric IDs (legacy ones,
// from Datastore) over the whole int64 range and string IDs that sort
// between them in bytes ("0", "A", "__id1_"), with subcollections — one
// under a numeric parent that does not exist — and a nested collection of
// the same ID.
func legacyDocs() []demoapp.Doc {
	var docs []demoapp.Doc
	add := func(path string) { docs = append(docs, demoapp.Doc{Path: path, Fields: map[string]any{"path": path}}) }
	for i := -12; i <= 24; i++ {
		add(fmt.Sprintf("legacy/__id%d__", i*i*i*7919))
	}
	for _, id := range []string{"__id-9223372036854775808__", "__id9223372036854775807__", "0", "9", "A", "__id", "__id1_", "_id1__", "b"} {
		add("legacy/" + id)
	}
	for _, p := range []string{
		"legacy/__id0__/sub/__id2__", "legacy/__id0__/sub/__id-2__", "legacy/__id0__/sub/x",
		"legacy/__id5__/sub/y", "legacy/A/sub/__id1__", "legacy/__id7919__/legacy/__id-1__", "legacy/b/legacy/__id1__",
	} {
		add(p)
	}
	return docs
}

func TestComparePathsOrdersLikeFirestore(t *testing.T) {
	ordered := []string{
		"a/__id-3__", "a/__id-3__/b/1", "a/__id7__", "a/__id7__/b/__id1__", "a/__id7__/b/x", "a/__id10__",
		"a/1", "a/1/b/1", "a/1/b/2", "a/10", "a/2", "a/__id07__", "a\x00/x", "ab/1",
	}
	checkOrder(t, "ComparePaths", fsx.ComparePaths, ordered)
}

// TestCompareIDsOrdersLikeFirestore checks the order of IDs that the
// Firestore SDKs' integration tests read back from the server ordered by
// document ID (firebase-js-sdk#8673, googleapis/java-firestore#1945,
// firebase-android-sdk#6594), plus IDs that only look numeric.
func TestCompareIDsOrdersLikeFirestore(t *testing.T) {
	ordered := []string{
		// Numeric IDs, by value, over the whole int64 range.
		"__id-9223372036854775808__", "__id-9223372036854775807__", "__id-2__", "__id0__", "__id7__",
		"__id12__", "__id9223372036854775806__", "__id9223372036854775807__",
		// Everything else, by UTF-8 bytes: not canonical, out of range, or
		// not of the form at all.
		"12", "7", "A", "Aa", "__id", "__id+5__", "__id-0__", "__id-9223372036854775809__", "__id007__",
		"__id1_", "__id9223372036854775808__", "__id_1__", "__id__", "_id1__", "a", "é",
	}
	checkOrder(t, "CompareIDs", fsx.CompareIDs, ordered)
}

// checkOrder checks that cmp orders every pair of ordered as listed.
func checkOrder(t *testing.T, name string, cmp func(a, b string) int, ordered []string) {
	t.Helper()
	for i := range ordered {
		for j := range ordered {
			got := cmp(ordered[i], ordered[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) || (i > j) != (got > 0) {
				t.Errorf("%s(%q, %q) = %d", name, ordered[i], ordered[j], got)
			}
		}
	}
}

// TestNewRefusesANonPositiveSnapshotWindow: a window of zero or less would
// renew the snapshot forever (or never); it is refused with the flag named.
func TestNewRefusesANonPositiveSnapshotWindow(t *testing.T) {
	for _, w := range []string{"0", "0s", "-1h", "soon"} {
		_, err := fsx.New(context.Background(), plugin.Config{
			"firebase-project": "p", "firestore-emulator-host": "127.0.0.1:1", "firestore-snapshot-window": w,
		})
		if err == nil || !strings.Contains(err.Error(), "--firestore-snapshot-window") {
			t.Errorf("window %q: New = %v; want it refused, naming the flag", w, err)
		}
	}
}

// TestStalledStreamIsCutAndResumed reads a partition through a network
// path that freezes in the middle of a RunQuery stream (after the first
// document of a page of large ones): the silent stream is cut after
// --source-timeout, the cut is logged as a retry, and once the path thaws
// the query resumes after the last document read — every document once, in
// order.
func TestStalledStreamIsCutAndResumed(t *testing.T) {
	ctx := context.Background()
	var docs []demoapp.Doc
	var want []string
	for i := range 200 {
		path := fmt.Sprintf("big/d%03d", i)
		docs = append(docs, demoapp.Doc{Path: path, Fields: map[string]any{"pad": strings.Repeat("x", 16<<10)}})
		want = append(want, path)
	}
	host, project, _ := seedEmulator(t, docs)
	proxy := faultnet.NewProxy(t, host)
	ex, err := fsx.New(ctx, plugin.Config{
		"firebase-project": project, "firestore-emulator-host": proxy.Addr(), "firestore-page-size": "1000",
		"firestore-snapshot-window": "1h", "source-timeout": "1s", "retry-backoff": "1ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	streams, err := ex.Plan(ctx, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var retried []string
	var got []string
	rctx := retry.WithLogger(ctx, faultnet.OnLog("retrying", func(a map[string]string) {
		retried = append(retried, a["err"])
		t.Logf("retry after %d documents: %s", len(got), a["err"])
		proxy.Thaw()
	}))
	err = ex.Read(rctx, streams[0].Partitions[0], time.Time{}, "", func(r record.Record) error {
		got = append(got, r.Key)
		if len(got) == 1 {
			proxy.Freeze()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("read %d documents %v…, want the %d in order", len(got), got[:min(len(got), 5)], len(want))
	}
	if len(retried) == 0 || !strings.Contains(retried[0], "no answer for 1s (--source-timeout)") {
		t.Fatalf("retries %q: want the stalled stream cut and retried", retried)
	}
}

// seedEmulator seeds docs into a fresh project of the Firestore emulator,
// with FIRESTORE_EMULATOR_HOST set for t, and returns the emulator's host,
// the project and a client on it (closed when t ends).
func seedEmulator(t *testing.T, docs []demoapp.Doc) (host, project string, client *firestore.Client) {
	t.Helper()
	host = testenv.FirestoreEmulatorHost(t)
	project = testenv.FreshProjectID(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	client, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := demoapp.Seed(context.Background(), client, docs); err != nil {
		t.Fatal(err)
	}
	return host, project, client
}
