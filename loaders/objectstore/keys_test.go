package objectstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// TestOpenRefusesCredentialsInURL: credentials in the URL are not used,
// so the URL is refused with where credentials come from, without echoing
// the secret.
func TestOpenRefusesCredentialsInURL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for _, url := range []string{
		"s3://user:hunter2-secret@bucket?endpoint=http://127.0.0.1:9000",
		"s3://hunter2-secret@bucket",
		"file://user:hunter2-secret@/srv/files",
		"s3://user:hunter2-secret@bucket/prefix",
		"s3://user:hunter2 secret@bucket%zz",
		"s3://b?endpoint=ftp://u:hunter2-secret@h",
		"s3://b?endpoint=http%3A%2F%2Fu%3Ahunter2-secret%40h&colour=blue",
	} {
		_, err := objectstore.Open(url, objectstore.Options{})
		if err == nil {
			t.Errorf("Open(%q) accepted credentials in the URL", url)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): the error echoes the secret: %v", url, err)
		}
	}
	_, err := objectstore.Open("s3://user:hunter2-secret@bucket", objectstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("Open: %v, want a refusal saying credentials come from AWS_ACCESS_KEY_ID", err)
	}
}

// TestS3RefusesKeysMinIOMerges copies "abs" and "/abs" (and "a//b" beside
// "a/b") to MinIO, which stores both of each pair as one object: the keys
// it would merge are rejected with the reason, and the others hold their
// own bytes.
func TestS3RefusesKeysMinIOMerges(t *testing.T) {
	e := newS3(t)
	src := newSource()
	recs := []record.Record{
		src.file("abs", []byte("plain"), record.File{}),
		src.file("/abs", []byte("leading slash"), record.File{}),
		src.file("a/b", []byte("one slash"), record.File{}),
		src.file("a//b", []byte("two slashes"), record.File{}),
	}
	res, err := open(t, e.url, objectstore.Options{}).Copy(e.ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/abs": `starts with "/" (an empty first path segment), which S3-compatible stores such as MinIO drop, merge or refuse (there it would be the object "abs")`,
		"a//b": "empty path segment"}
	for _, r := range res {
		if reason, bad := want[r.File.Name]; bad {
			if r.Outcome != objectstore.Rejected || !strings.Contains(r.Reason, reason) {
				t.Errorf("%q: %v %q, want rejected: %s", r.File.Name, r.Outcome, r.Reason, reason)
			}
		} else if r.Outcome != objectstore.Copied {
			t.Errorf("%q: %v %q, want copied", r.File.Name, r.Outcome, r.Reason)
		}
	}
	for key, data := range map[string]string{"abs": "plain", "a/b": "one slash"} {
		obj, err := e.client.GetObject(e.ctx, e.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 64)
		n, _ := obj.Read(got)
		obj.Close()
		if string(got[:n]) != data {
			t.Errorf("%q holds %q, want %q", key, got[:n], data)
		}
	}
}

// TestKeyComparison: a directory on Linux compares names exactly (the
// probe of Prepare says so), and Options.CaseInsensitive makes a store
// fold keys as macOS and Windows file systems do.
func TestKeyComparison(t *testing.T) {
	exact := open(t, "file://"+t.TempDir(), objectstore.Options{})
	if c := exact.Comparison(); c != objectstore.Exact {
		t.Errorf("a directory on this file system compares names %s, want exact", c)
	}
	if exact.Fold("Case.txt") == exact.Fold("case.txt") {
		t.Errorf("an exact store folds case")
	}
	dir := t.TempDir()
	folded := open(t, "file://"+dir, objectstore.Options{CaseInsensitive: true})
	if c := folded.Comparison(); c != objectstore.CaseInsensitive {
		t.Errorf("comparison %s, want case-insensitive", c)
	}
	for _, pair := range [][2]string{
		{"Case.txt", "case.txt"}, {"caf\u00e9", "cafe\u0301"}, {"STRASSE", "stra\u00dfe"}, {"Dir/X", "dir/x"},
	} {
		if folded.Fold(pair[0]) != folded.Fold(pair[1]) {
			t.Errorf("%q and %q fold apart on a case-insensitive store", pair[0], pair[1])
		}
	}
	if folded.Fold("a") == folded.Fold("b") {
		t.Errorf("distinct names fold together")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, ".baasmigrate-tmp")); len(entries) != 0 {
		t.Errorf("the probe left files: %v", entries)
	}
}

// TestGuardedCopyLeavesForeignObjects: an object already at a guarded key
// with other bytes — a file or an S3 object baasmigrate did not write —
// is left alone and the record rejected; an identical one is skipped; an
// unguarded key, or ReplaceForeign, replaces it.
func TestGuardedCopyLeavesForeignObjects(t *testing.T) {
	ctx := context.Background()
	src := newSource()
	notes := src.file("notes.txt", []byte("from the source"), record.File{})
	same := src.file("same.txt", []byte("identical"), record.File{})
	t.Run("Directory", func(t *testing.T) {
		dir := t.TempDir()
		for name, data := range map[string]string{"notes.txt": "the user's own notes", "same.txt": "identical"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		store := open(t, "file://"+dir, objectstore.Options{})
		res, err := store.CopyGuarded(ctx, []record.Record{notes, same}, []bool{true, true})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Outcome != objectstore.Rejected || !strings.Contains(res[0].Reason, "did not write") || !strings.Contains(res[0].Reason, "--objects-overwrite") {
			t.Errorf("notes.txt: %v %q, want rejected: a file baasmigrate did not write", res[0].Outcome, res[0].Reason)
		}
		if res[1].Outcome != objectstore.Skipped {
			t.Errorf("same.txt: %v %q, want skipped", res[1].Outcome, res[1].Reason)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(got) != "the user's own notes" {
			t.Errorf("the foreign file was overwritten: %q", got)
		}
		res, err = open(t, "file://"+dir, objectstore.Options{ReplaceForeign: true}).CopyGuarded(ctx, []record.Record{notes}, []bool{true})
		if err != nil || res[0].Outcome != objectstore.Copied {
			t.Fatalf("with ReplaceForeign: %v %v", res, err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(got) != "from the source" {
			t.Errorf("ReplaceForeign did not replace: %q", got)
		}
	})
	t.Run("S3", func(t *testing.T) {
		e := newS3(t)
		store := open(t, e.url, objectstore.Options{})
		if _, err := e.client.PutObject(ctx, e.bucket, "notes.txt", strings.NewReader("someone else's"), 14, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := store.CopyGuarded(ctx, []record.Record{notes}, []bool{true})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Outcome != objectstore.Rejected || !strings.Contains(res[0].Reason, "did not write") {
			t.Errorf("notes.txt: %v %q, want rejected", res[0].Outcome, res[0].Reason)
		}
		res, err = store.CopyGuarded(ctx, []record.Record{notes}, []bool{false})
		if err != nil || res[0].Outcome != objectstore.Copied {
			t.Errorf("unguarded: %v %v, want copied", res, err)
		}
	})
}
