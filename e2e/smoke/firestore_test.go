package smoke

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// firestoreEmulatorSource is where the repo's own emulator lives.
const firestoreEmulatorSource = "e2e/firestoreemu/cmd/firestoreemu"

// TestFirestoreEmulator writes a document with the Go Firestore client
// (configured only by FIRESTORE_EMULATOR_HOST) and reads the same values
// back.
func TestFirestoreEmulator(t *testing.T) {
	// Until the emulator exists in this checkout services-up cannot start
	// it; that is a skip even under BAASMIGRATE_REQUIRE_SERVICES.
	if _, err := os.Stat(filepath.Join("..", "..", firestoreEmulatorSource)); os.IsNotExist(err) {
		t.Skipf("%s is not in this checkout yet, so services-up does not start a Firestore emulator", firestoreEmulatorSource)
	}
	testenv.FirestoreEmulatorHost(t) // also exports FIRESTORE_EMULATOR_HOST for the client
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := firestore.NewClient(ctx, testenv.FreshProjectID(t))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	created := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC) // µs precision survives
	doc := client.Collection("users").Doc("Alice_1").Collection("orders").Doc("o-1")
	want := map[string]any{
		"total":   int64(42),
		"price":   9.5,
		"name":    "ü ✓",
		"paid":    true,
		"none":    nil,
		"created": created,
		"tags":    []any{"a", int64(2)},
		"addr":    map[string]any{"city": "Lyon"},
	}
	if _, err := doc.Set(ctx, want); err != nil {
		t.Fatalf("Set: %v", err)
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got := snap.Data()
	for k, w := range want {
		g := got[k]
		switch wv := w.(type) {
		case time.Time:
			if gt, ok := g.(time.Time); !ok || !gt.Equal(wv) {
				t.Errorf("%s = %v, want %v", k, g, wv)
			}
		case []any:
			if gs, ok := g.([]any); !ok || len(gs) != 2 || gs[0] != "a" || gs[1] != int64(2) {
				t.Errorf("%s = %#v, want %#v", k, g, wv)
			}
		case map[string]any:
			if gm, ok := g.(map[string]any); !ok || gm["city"] != "Lyon" {
				t.Errorf("%s = %#v, want %#v", k, g, wv)
			}
		default:
			if g != w {
				t.Errorf("%s = %#v, want %#v", k, g, w)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("read back %d fields, want %d: %v", len(got), len(want), got)
	}
}
