package firestore_test

import (
	"context"
	"net"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestConformance runs the extractor conformance suite against the demo
// app in the Firestore emulator: three levels of subcollections, documents
// under missing parents, every value type.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	host := testenv.FirestoreEmulatorHost(t)
	project := testenv.FreshProjectID(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	scale := demoapp.Scale{Users: 60, Posts: 40, CommentsPerPost: 2, Orders: 30, ItemsPerOrder: 3, Archive: 12}
	if err := demoapp.Seed(ctx, client, demoapp.Documents(3, scale)); err != nil {
		t.Fatal(err)
	}
	want, err := demoapp.ReadAll(ctx, client, project, demoapp.Groups...)
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
		Want:  want,
		Times: true,
		Unreachable: func(t *testing.T) extractors.Extractor {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closed := ln.Addr().String()
			ln.Close()
			ex, err := fsx.New(ctx, config(closed))
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
	})
}

func TestComparePathsOrdersLikeFirestore(t *testing.T) {
	ordered := []string{"a/1", "a/1/b/1", "a/1/b/2", "a/10", "a/2", "a\x00/x", "ab/1"}
	for i := range ordered {
		for j := range ordered {
			got := fsx.ComparePaths(ordered[i], ordered[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) {
				t.Errorf("ComparePaths(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
}
