package firestoreemu_test

import (
	"context"
	"fmt"
	"testing"

	"cloud.google.com/go/firestore"
)

// BenchmarkPageCollectionGroup pages a 100,000-document collection group
// ordered by __name__ with start_after + limit 500, at the start and at
// the end of the group. With an ordered index both cost the same.
//
//	go test -run '^$' -bench PageCollectionGroup ./e2e/firestoreemu/
func BenchmarkPageCollectionGroup(b *testing.B) {
	ctx := context.Background()
	c, project := newClient(b)
	raw := newRawClient(b)
	const n = 100000
	docs := map[string]map[string]any{}
	for i := 0; i < n; i++ {
		docs[fmt.Sprintf("orgs/o%03d/events/e%07d", i%100, i)] = map[string]any{"i": i}
		// Unrelated collections must not slow the group down.
		docs[fmt.Sprintf("noise/n%07d", i)] = map[string]any{"i": i}
	}
	writeDocs(b, ctx, raw, project, docs)
	q := c.CollectionGroup("events").OrderBy(firestore.DocumentID, firestore.Asc).Limit(500)
	for _, tc := range []struct {
		name  string
		after *firestore.DocumentRef
	}{
		{"first-page", c.Doc("orgs/o000/events/e0000000")},
		{"last-page", c.Doc("orgs/o099/events/e0000099")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			page := q.StartAfter(tc.after)
			for b.Loop() {
				got, err := page.Documents(ctx).GetAll()
				if err != nil || len(got) == 0 {
					b.Fatalf("page: %d docs, %v", len(got), err)
				}
			}
		})
	}
}
