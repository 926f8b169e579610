package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"
	"golang.org/x/net/html"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/diff"
)

// compareDoc decodes `plan` or `verify --format json` output.
func compareDoc(t *testing.T, stdout string) diff.Document {
	t.Helper()
	var d diff.Document
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("decoding the JSON report: %v\n%s", err, stdout)
	}
	return d
}

// tableReports indexes the report of one kind by table.
func tableReports(t *testing.T, d diff.Document, kind string) map[string]*diff.TableReport {
	t.Helper()
	for _, k := range d.Kinds {
		if k.Kind == kind && k.Report != nil {
			out := map[string]*diff.TableReport{}
			for _, tr := range k.Tables {
				out[tr.Table] = tr
			}
			return out
		}
	}
	t.Fatalf("no %s report in %+v", kind, d)
	return nil
}

// databaseFingerprint is a checksum of the target's catalog and rows.
func (f *docsFixture) databaseFingerprint() string {
	f.t.Helper()
	return databaseFingerprint(f.t, f.pool)
}

// TestPlanAndVerifyDocuments follows a migration with plan and verify:
// everything is an insert on an empty target, unchanged after migrate;
// changes on either side show up exactly, with the fields named; plan
// writes nothing.
func TestPlanAndVerifyDocuments(t *testing.T) {
	f := newDocsFixture(t)
	f.seed(demoapp.Documents(21, demoapp.Scale{Users: 120, Posts: 80, CommentsPerPost: 2, Orders: 60, ItemsPerOrder: 2, Archive: 10}))
	mapping := f.infer()
	src := f.sourceDocs(demoapp.Groups...)
	ctx := context.Background()

	// On an empty target: every document is an insert, DDL creates every
	// table, and the database is left exactly as it was (no state schema).
	before := f.databaseFingerprint()
	res := f.run(0, "plan", "--only", "documents", "--mapping", mapping, "--format", "json")
	after := f.databaseFingerprint()
	if before != after {
		t.Fatalf("plan changed the target:\nbefore %s\nafter  %s", before, after)
	}
	plan := compareDoc(t, res.Stdout)
	var inserts int64
	for name, tr := range tableReports(t, plan, "document") {
		if tr.Matching != 0 || tr.Mismatched != 0 || tr.ExtraInTarget != 0 || tr.Rejected != 0 {
			t.Errorf("empty target, table %s: %+v; want inserts only", name, tr)
		}
		inserts += tr.MissingInTarget
	}
	if inserts != int64(len(src)) {
		t.Fatalf("plan would insert %d documents; the source has %d", inserts, len(src))
	}
	k := plan.Kinds[0]
	if len(k.DDL) == 0 || !strings.Contains(k.DDL[0].SQL+k.DDL[1].SQL, "CREATE") {
		t.Fatalf("plan shows no CREATE statements: %+v", k.DDL)
	}
	if k.Estimate == nil || k.Estimate.Records != int64(len(src)) || k.Estimate.Reads < k.Estimate.Records || k.Estimate.Cost <= 0 {
		t.Fatalf("estimate %+v for %d documents", k.Estimate, len(src))
	}
	if k.SourceReads < int64(len(src)) {
		t.Fatalf("the plan's own reads (%d) are not counted", k.SourceReads)
	}

	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	res = f.run(0, "verify", "--only", "documents", "--format", "json")
	if v := compareDoc(t, res.Stdout); !v.Identical {
		t.Fatalf("verify after migrate is not identical: %s", res.Stdout)
	}
	before = f.databaseFingerprint()
	res = f.run(0, "plan", "--only", "documents", "--format", "json")
	if after := f.databaseFingerprint(); before != after {
		t.Fatal("plan changed a migrated target")
	}
	for name, tr := range tableReports(t, compareDoc(t, res.Stdout), "document") {
		if tr.Matching != tr.Source || tr.MissingInTarget+tr.Mismatched+tr.ExtraInTarget != 0 {
			t.Errorf("after migrate, table %s: %+v; want everything unchanged", name, tr)
		}
	}

	// Change one source document; tamper with one target value; delete two
	// target rows; add a row the source does not have.
	if _, err := f.client.Doc("posts/post00003").Update(ctx, []firestore.Update{{Path: "title", Value: "edited"}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE users SET email = 'tampered@example.com' WHERE id = 'user0005'`,
		`DELETE FROM orders_items WHERE orders_id = 'order00002'`,
		`DELETE FROM posts_comments WHERE posts_id = 'post00004' AND id = 'c001'`,
		`INSERT INTO users (id, name) VALUES ('intruder', 'not in Firestore')`,
	} {
		if _, err := f.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var deletedItems int64
	for path := range src {
		if strings.HasPrefix(path, "orders/order00002/items/") && strings.Count(path, "/") == 3 {
			deletedItems++
		}
	}
	res = f.run(1, "verify", "--only", "documents", "--format", "json", "--samples", "10")
	v := compareDoc(t, res.Stdout)
	reps := tableReports(t, v, "document")
	want := map[string][4]int64{ // mismatched, missing, extra, matching delta
		"posts":          {1, 0, 0, -1},
		"users":          {1, 0, 1, -1},
		"orders_items":   {0, deletedItems, 0, -deletedItems},
		"posts_comments": {0, 1, 0, -1},
	}
	for name, tr := range reps {
		w := want[name]
		if tr.Mismatched != w[0] || tr.MissingInTarget != w[1] || tr.ExtraInTarget != w[2] || tr.Matching != tr.Source+w[3] {
			t.Errorf("table %s: %+v; want mismatched %d, missing %d, extra %d", name, tr, w[0], w[1], w[2])
		}
	}
	wantSamples := map[string]string{
		"posts/post00003":               "mismatched title",
		"users/user0005":                "mismatched email",
		"users/intruder":                "extra_in_target",
		"posts/post00004/comments/c001": "missing_in_target",
	}
	for key, w := range wantSamples {
		found := false
		for _, tr := range reps {
			for _, s := range tr.Samples {
				got := s.Outcome
				var fields []string
				for _, fl := range s.Fields {
					if fl != "__update_time__" { // the edited post also has a new update time
						fields = append(fields, fl)
					}
				}
				if len(fields) > 0 {
					got += " " + strings.Join(fields, ",")
				}
				if s.Key == key && got == w {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no sample %q for %s in %s", w, key, res.Stdout)
		}
	}

	// The same report as text and as HTML.
	res = f.run(1, "verify", "--only", "documents")
	if !strings.Contains(res.Stdout, "DIFFERENT") || !strings.Contains(res.Stdout, `"email"`) {
		t.Fatalf("text report:\n%s", res.Stdout)
	}
	html := filepath.Join(f.dir, "verify.html")
	f.run(1, "verify", "--only", "documents", "--format", "html", "--out", html)
	checkHTMLReport(t, html, "users", "users/user0005")
}

// TestVerifyMemoryIsFlat verifies a table and then one ten times larger:
// the process's peak memory must not grow with the table.
func TestVerifyMemoryIsFlat(t *testing.T) {
	peak := func(users int) int64 {
		f := newDocsFixture(t)
		f.seed(demoapp.Documents(2, demoapp.Scale{Users: users}))
		mapping := f.infer()
		f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--batch-size", "1000")
		res := f.run(0, "verify", "--only", "documents", "--format", "json")
		if v := compareDoc(t, res.Stdout); !v.Identical {
			t.Fatalf("verify of %d users is not identical", users)
		}
		return res.PeakRSS
	}
	small, large := peak(3000), peak(30000)
	t.Logf("peak RSS: %d MiB for 3,000 users, %d MiB for 30,000", small>>20, large>>20)
	if large > small*3/2+16<<20 {
		t.Fatalf("verify's memory grows with the table: %d MiB for 3,000 users, %d MiB for 30,000", small>>20, large>>20)
	}
}

// checkHTMLReport parses a report page and checks it is self-contained,
// has a chart with bars, a row for table and a sample naming key.
func checkHTMLReport(t *testing.T, path, table, key string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not HTML: %v", path, err)
	}
	var rects, rows int
	var external []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "rect":
				rects++
			case "tr":
				for _, a := range n.Attr {
					if a.Key == "data-table" && a.Val == table {
						rows++
					}
				}
			case "script", "link", "img":
				external = append(external, n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if rects == 0 || rows != 1 || len(external) > 0 || !bytes.Contains(data, []byte(key)) {
		t.Fatalf("%s: %d bars, %d rows for %s, external resources %v, mentions %s: %v", path, rects, rows, table, external, key, bytes.Contains(data, []byte(key)))
	}
}
