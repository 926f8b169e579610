// Command seed-demo fills the local emulators with the sample application
// the demo migrates (see package demoapp).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
)

func main() {
	project := flag.String("project", os.Getenv("GCLOUD_PROJECT"), "Firebase project ID to seed (emulators only)")
	seed := flag.Uint64("seed", 1, "Random seed; the same seed gives the same data")
	scale := flag.Int("scale", 1, "Multiply the demo's size by this factor")
	flag.Parse()
	if err := run(context.Background(), *project, *seed, *scale); err != nil {
		fmt.Fprintln(os.Stderr, "seed-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, project string, seed uint64, scale int) error {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		return fmt.Errorf("FIRESTORE_EMULATOR_HOST is not set: seed-demo only writes to emulators")
	}
	if project == "" {
		return fmt.Errorf("no project: pass --project or set GCLOUD_PROJECT")
	}
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer client.Close()
	s := demoapp.Small
	s.Users *= scale
	s.Posts *= scale
	s.Orders *= scale
	s.Archive *= scale
	start := time.Now()
	docs := demoapp.Documents(seed, s)
	if err := demoapp.Seed(ctx, client, docs); err != nil {
		return err
	}
	fmt.Printf("seeded %d Firestore documents into project %s in %s\n", len(docs), project, time.Since(start).Round(time.Millisecond))
	return nil
}
