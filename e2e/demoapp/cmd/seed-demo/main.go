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
	"cloud.google.com/go/storage"
	firebase "firebase.google.com/go/v4"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
)

func main() {
	project := flag.String("project", os.Getenv("GCLOUD_PROJECT"), "Firebase project ID to seed (emulators only)")
	seed := flag.Uint64("seed", 1, "Random seed; the same seed gives the same data")
	scale := flag.Int("scale", 1, "Multiply the demo's size by this factor")
	users := flag.Int("users", 0, "Also import this many Auth users (needs FIREBASE_AUTH_EMULATOR_HOST)")
	files := flag.Int("files", 0, "Also upload this many files to <project>.appspot.com (needs STORAGE_EMULATOR_HOST)")
	live := flag.Bool("live-changes", false, "Instead of seeding, make a few changes a live app would make (documents, a new subcollection and root collection, a user, a file)")
	flag.Parse()
	if *live {
		if err := liveChanges(context.Background(), *project); err != nil {
			fmt.Fprintln(os.Stderr, "seed-demo:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), *project, *seed, *scale); err != nil {
		fmt.Fprintln(os.Stderr, "seed-demo:", err)
		os.Exit(1)
	}
	if err := seedFiles(context.Background(), *project, *files); err != nil {
		fmt.Fprintln(os.Stderr, "seed-demo:", err)
		os.Exit(1)
	}
	if err := seedUsers(context.Background(), *project, *users); err != nil {
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

func seedUsers(ctx context.Context, project string, n int) error {
	if n == 0 {
		return nil
	}
	if os.Getenv("FIREBASE_AUTH_EMULATOR_HOST") == "" {
		return fmt.Errorf("FIREBASE_AUTH_EMULATOR_HOST is not set: seed-demo only writes to emulators")
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project})
	if err != nil {
		return err
	}
	client, err := app.Auth(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	users, err := demoapp.Users(n)
	if err != nil {
		return err
	}
	if err := demoapp.SeedUsers(ctx, client, users); err != nil {
		return err
	}
	fmt.Printf("seeded %d Auth users into project %s in %s (user0001's password: %s)\n", n, project, time.Since(start).Round(time.Millisecond), demoapp.UserPassword(1))
	return nil
}

func seedFiles(ctx context.Context, project string, n int) error {
	if n == 0 {
		return nil
	}
	if os.Getenv("STORAGE_EMULATOR_HOST") == "" {
		return fmt.Errorf("STORAGE_EMULATOR_HOST is not set: seed-demo only writes to emulators")
	}
	client, err := storage.NewClient(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	start := time.Now()
	if err := demoapp.ClearBucket(ctx, client, project+".appspot.com"); err != nil {
		return err
	}
	bytes, err := demoapp.SeedFiles(ctx, client, project+".appspot.com", n)
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d files (%.1f MB) into gs://%s.appspot.com in %s\n", n, float64(bytes)/1e6, project, time.Since(start).Round(time.Millisecond))
	return nil
}
