package main

import (
	"context"
	"fmt"
	"os"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"
	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/auth"
)

// step is one change liveChanges makes.
type step struct {
	what string
	do   func() error
}

// liveChanges makes what a live app does while `baasmigrate sync` runs:
// it changes, deletes and adds documents (one in a brand-new subcollection,
// one in a brand-new root collection), deletes one Auth user and adds
// another, and uploads one file and deletes another. It prints each.
func liveChanges(ctx context.Context, project string) error {
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer fs.Close()
	users := fs.Collection("users")
	steps := []step{
		{"updated users/user0003 (name changed, age deleted)", func() error {
			_, err := users.Doc("user0003").Update(ctx, []firestore.Update{{Path: "name", Value: "Renamed during sync"}, {Path: "age", Value: firestore.Delete}})
			return err
		}},
		{"deleted users/user0004", func() error { _, err := users.Doc("user0004").Delete(ctx); return err }},
		{"added users/user0005/badges/first (a brand-new subcollection)", func() error {
			b := fs.Batch()
			b.Set(users.Doc("user0005").Collection("badges").Doc("first"), map[string]any{"label": "early adopter", "level": 1})
			b.Update(users.Doc("user0005"), []firestore.Update{{Path: "badges", Value: 1}})
			_, err := b.Commit(ctx)
			return err
		}},
		{"added announcements/launch (a brand-new root collection)", func() error {
			_, err := fs.Collection("announcements").Doc("launch").Set(ctx, map[string]any{"title": "We moved!", "pinned": true})
			return err
		}},
	}
	if os.Getenv("FIREBASE_AUTH_EMULATOR_HOST") != "" {
		app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project})
		if err != nil {
			return err
		}
		client, err := app.Auth(ctx)
		if err != nil {
			return err
		}
		steps = append(steps,
			step{"deleted Auth user user0002", func() error { return client.DeleteUser(ctx, "user0002") }},
			step{"created Auth user newcomer", func() error {
				_, err := client.CreateUser(ctx, (&auth.UserToCreate{}).UID("newcomer").Email("newcomer@example.com").Password("newcomer-password"))
				return err
			}},
		)
	}
	if os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		st, err := storage.NewClient(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		bucket := st.Bucket(project + ".appspot.com")
		steps = append(steps,
			step{"uploaded uploads/during-sync.txt", func() error {
				w := bucket.Object("uploads/during-sync.txt").NewWriter(ctx)
				w.ContentType = "text/plain"
				if _, err := w.Write([]byte("written while sync was running\n")); err != nil {
					return err
				}
				return w.Close()
			}},
		)
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		fmt.Println("  " + s.what)
	}
	return nil
}
