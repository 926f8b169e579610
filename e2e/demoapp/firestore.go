// Package demoapp generates and seeds a realistic sample application — the
// data of a small social shop — into the local emulators, for the demo and
// the end-to-end tests. Generation is deterministic for a given seed.
package demoapp

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/type/latlng"
)

// Scale sets how many documents the generator makes.
type Scale struct {
	Users, Posts, CommentsPerPost, Orders, ItemsPerOrder int
	// Archive adds documents under parents that exist only through their
	// subcollections, three levels deep.
	Archive int
}

// Small is the demo's size: a few thousand documents.
var Small = Scale{Users: 200, Posts: 400, CommentsPerPost: 4, Orders: 300, ItemsPerOrder: 3, Archive: 40}

// Doc is one generated document: its path relative to the database root
// and its fields as the Firestore Go client accepts them.
type Doc struct {
	Path   string
	Fields map[string]any
}

// Documents generates the sample application's documents:
//
//   - users/{uid}: strings, integers, doubles, booleans, timestamps, bytes,
//     geo points, string arrays, nested maps, vectors, references to other
//     users; a few users have age as a string ("unknown") — a type conflict;
//   - posts/{id} with comments/{id}: references to authors, int/double
//     mix in rating;
//   - orders/{id} with items/{id} with adjustments/{id}: three levels;
//   - archive/{year}/months/{month}/entries/{id}: archive/{year} and
//     months/{month} are never written, so the entries live under
//     "missing" parents;
//   - kitchen_sink/{id}: every value type and its edge values, odd field
//     names.
func Documents(seed uint64, s Scale) []Doc {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func() time.Time {
		return base.Add(time.Duration(r.Int64N(int64(500 * 24 * time.Hour)))).Truncate(time.Microsecond)
	}
	var docs []Doc
	add := func(path string, f map[string]any) { docs = append(docs, Doc{Path: path, Fields: f}) }

	uid := func(i int) string { return fmt.Sprintf("user%04d", i) }
	cities := []string{"Lisbon", "Osaka", "Nairobi", "Montréal", "São Paulo", "Zürich"}
	for i := range s.Users {
		f := map[string]any{
			"name":     fmt.Sprintf("User %d", i),
			"email":    fmt.Sprintf("user%d@example.com", i),
			"age":      int64(18 + r.IntN(60)),
			"score":    math.Round(r.Float64()*10000) / 100,
			"active":   r.IntN(5) != 0,
			"joinedAt": at(),
			"avatar":   []byte{0x89, 'P', 'N', 'G', byte(i), byte(i >> 8)},
			"location": &latlng.LatLng{Latitude: r.Float64()*180 - 90, Longitude: r.Float64()*360 - 180},
			"tags":     []string{"t" + fmt.Sprint(r.IntN(10)), "t" + fmt.Sprint(r.IntN(10))},
			"address": map[string]any{
				"street": fmt.Sprintf("%d Main St", r.IntN(999)),
				"city":   cities[r.IntN(len(cities))],
				"zip":    fmt.Sprintf("%05d", r.IntN(99999)),
			},
			"embedding": firestore.Vector64{r.Float64(), r.Float64(), r.Float64(), r.Float64()},
		}
		if i > 0 {
			f["referrer"] = docRef("users/" + uid(r.IntN(i)))
		} else {
			f["referrer"] = nil
		}
		if i%50 == 7 {
			f["age"] = "unknown" // a type conflict: most users have an integer age
		}
		add("users/"+uid(i), f)
	}
	for i := range s.Posts {
		id := fmt.Sprintf("post%05d", i)
		rating := any(int64(r.IntN(5) + 1))
		if i%3 == 0 {
			rating = float64(r.IntN(50)) / 10 // integers and doubles mixed
		}
		add("posts/"+id, map[string]any{
			"title":     fmt.Sprintf("Post number %d", i),
			"body":      strings.Repeat("lorem ipsum ", 1+r.IntN(20)),
			"author":    docRef("users/" + uid(r.IntN(max(s.Users, 1)))),
			"createdAt": at(),
			"likes":     int64(r.IntN(1000)),
			"rating":    rating,
			"tags":      []string{"news", "tips", "life"}[:1+r.IntN(3)],
			"published": r.IntN(4) != 0,
		})
		for c := range s.CommentsPerPost {
			add(fmt.Sprintf("posts/%s/comments/c%03d", id, c), map[string]any{
				"author":    docRef("users/" + uid(r.IntN(max(s.Users, 1)))),
				"text":      "Nice post! " + strings.Repeat("👍", r.IntN(3)),
				"createdAt": at(),
				"likes":     int64(r.IntN(50)),
			})
		}
	}
	for i := range s.Orders {
		id := fmt.Sprintf("order%05d", i)
		items := 1 + r.IntN(max(s.ItemsPerOrder, 1))
		var total float64
		for j := range items {
			qty, price := int64(1+r.IntN(4)), float64(100+r.IntN(9900))/100
			total += float64(qty) * price
			item := fmt.Sprintf("orders/%s/items/i%02d", id, j)
			add(item, map[string]any{"sku": fmt.Sprintf("SKU-%03d", r.IntN(200)), "qty": qty, "price": price})
			if j == 0 && i%4 == 0 {
				add(item+"/adjustments/a0", map[string]any{"reason": "coupon", "amount": -1.5, "at": at()})
			}
		}
		add("orders/"+id, map[string]any{
			"user":      docRef("users/" + uid(r.IntN(max(s.Users, 1)))),
			"status":    []string{"placed", "paid", "shipped", "delivered"}[r.IntN(4)],
			"total":     math.Round(total*100) / 100,
			"itemCount": int64(items),
			"createdAt": at(),
		})
	}
	for i := range s.Archive {
		year, month := 2019+i%4, 1+i%12
		add(fmt.Sprintf("archive/%d/months/%02d/entries/e%04d", year, month, i), map[string]any{
			"note": fmt.Sprintf("archived entry %d", i), "at": at(),
		})
	}
	for i, f := range kitchenSink() {
		add(fmt.Sprintf("kitchen_sink/k%02d", i), f)
	}
	return docs
}

// docRef is a placeholder for a reference, resolved against the client
// when seeding.
type docRef string

// kitchenSink returns documents holding every value type and its edges.
func kitchenSink() []map[string]any {
	return []map[string]any{
		{
			"null": nil, "true": true, "false": false,
			"intMax": int64(math.MaxInt64), "intMin": int64(math.MinInt64), "zero": int64(0),
			"double": 3.14159, "nan": math.NaN(), "inf": math.Inf(1), "ninf": math.Inf(-1), "negzero": math.Copysign(0, -1),
			"tiny": 5e-324, "huge": 1.7976931348623157e308,
			"ts": time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC), "tsMin": time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			"tsMax":  time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
			"string": "héllo wörld 日本語 🎉", "empty": "", "bytes": []byte{0, 1, 2, 254, 255}, "noBytes": []byte{},
			"geo":    &latlng.LatLng{Latitude: -33.8688, Longitude: 151.2093},
			"ref":    docRef("users/user0001"),
			"vector": firestore.Vector64{0.25, -1, 1e10},
		},
		{
			"emptyArray": []any{}, "emptyMap": map[string]any{},
			"mixedArray": []any{int64(1), 2.5, "three", true, nil, map[string]any{"four": int64(4)}},
			"nested":     map[string]any{"a": map[string]any{"b": map[string]any{"c": []any{int64(1), map[string]any{"d": "deep"}}}}},
			"intArray":   []any{int64(1), int64(2), int64(3)},
			"refArray":   []any{docRef("posts/post00001"), docRef("orders/order00001")},
			"tsArray":    []any{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		},
		{
			"with space": "a", "dotted.name": "b", "`backtick`": "c", "ünïcödé": "d", "日本": "e",
			"\"; DROP TABLE users; --": "f", "camelCaseField": "g", "camel_case_field": "h",
			strings.Repeat("long", 100): "i", "$dollar": "j", "nul\x00inside": "k",
		},
	}
}

// Seed writes docs to the Firestore database behind client, in batches of
// 500 documents, several batches at a time.
func Seed(ctx context.Context, client *firestore.Client, docs []Doc) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for start := 0; start < len(docs); start += 500 {
		chunk := docs[start:min(start+500, len(docs))]
		g.Go(func() error {
			b := client.Batch()
			for _, d := range chunk {
				b.Set(client.Doc(d.Path), resolve(client, d.Fields).(map[string]any))
			}
			if _, err := b.Commit(gctx); err != nil {
				return fmt.Errorf("seeding documents %s…: %w", chunk[0].Path, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// resolve turns docRef placeholders into *firestore.DocumentRef.
func resolve(c *firestore.Client, v any) any {
	switch x := v.(type) {
	case docRef:
		ref := c.Doc(string(x))
		if ref == nil {
			panic(fmt.Sprintf("demoapp: %q is not a document path", string(x)))
		}
		return ref
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = resolve(c, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolve(c, e)
		}
		return out
	}
	return v
}
