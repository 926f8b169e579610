package supabasestorage

import (
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"testing"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

func TestCustomMetadata(t *testing.T) {
	owner := "0a1e4c3e-0000-4000-8000-000000000001"
	got := customMetadata(object{id: "obj", owner: &owner, ownerID: &owner,
		userMetadata: []byte(`{"s": "text", "n": 12345678901234567890, "b": true, "o": {"k": [1, 2]}, "supabase-object-id": "mine"}`)})
	want := map[string]string{"s": "text", "n": "12345678901234567890", "b": "true", "o": `{"k": [1, 2]}`,
		MetaObjectID: "obj", MetaOwner: owner, MetaOwnerID: owner}
	if !maps.Equal(got, want) {
		t.Errorf("customMetadata = %v, want %v", got, want)
	}
	if got := customMetadata(object{id: "obj", userMetadata: []byte(`[1]`)}); got["supabase-user-metadata"] != "[1]" || got[MetaObjectID] != "obj" || len(got) != 2 {
		t.Errorf("user_metadata that is not an object: %v", got)
	}
}

// TestMissingBytesAndMetadata: a row whose bytes the endpoint does not
// have is still read (its copy then fails with fs.ErrNotExist); a row
// without metadata gets its size, and MD5, from its bytes.
func TestMissingBytesAndMetadata(t *testing.T) {
	p := supabasetest.NewProject(t)
	s := p.SeedStorage(t, nil)
	p.Exec(t, `INSERT INTO storage.objects (bucket_id, name, metadata) VALUES
		($1, 'gone-multipart', '{"eTag": "\"0123456789abcdef0123456789abcdef-2\"", "size": 11}'), ($1, 'gone-no-size', NULL)`, s.Bucket)
	s.Put(t, p, supabasetest.Object{Name: "no-metadata", Data: []byte("hello"), ContentType: "text/plain"})
	p.Exec(t, `UPDATE storage.objects SET metadata = NULL WHERE name = 'no-metadata'`)

	ex := newExtractor(t, config(p, s))
	_, streams, err := extractors.PlanSnapshot(context.Background(), ex, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]record.File{}
	opened := map[string]error{}
	for _, pt := range streams[0].Partitions {
		err := ex.Read(context.Background(), pt, streams[0].ReadTime, "", func(r record.Record) error {
			f, err := record.FileFrom(r)
			if err != nil {
				return err
			}
			got[r.Key] = f
			rc, err := r.Open(context.Background())
			if err == nil {
				rc.Close()
			}
			opened[r.Key] = err
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if f := got["gone-multipart"]; f.Size != 11 || f.MD5 != nil || !errors.Is(opened["gone-multipart"], fs.ErrNotExist) {
		t.Errorf("gone-multipart: size %d, md5 %x, open %v", f.Size, f.MD5, opened["gone-multipart"])
	}
	if f := got["gone-no-size"]; f.Size != 0 || !errors.Is(opened["gone-no-size"], fs.ErrNotExist) {
		t.Errorf("gone-no-size: size %d, open %v", f.Size, opened["gone-no-size"])
	}
	if f := got["no-metadata"]; f.Size != 5 || hex.EncodeToString(f.MD5) != "5d41402abc4b2a76b9719d911017c592" || opened["no-metadata"] != nil {
		t.Errorf("no-metadata: size %d, md5 %x, open %v", f.Size, f.MD5, opened["no-metadata"])
	}
}
