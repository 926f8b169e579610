package postgres_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/baasmigrate/baasmigrate/internal/testenv"

	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/loadertest"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// markedRows runs sql, whose rows are (key text, deleted_at timestamptz),
// and returns the deletion times by key.
func markedRows(t *testing.T, pool *pgxpool.Pool, sql string) map[string]time.Time {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out := map[string]time.Time{}
	var key string
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&key, &at}, func() error { out[key] = at; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// docPathExpr is the SQL expression of the document path of a row of tb.
func docPathExpr(tb *mappings.Table) string {
	key := `'` + strings.ReplaceAll(tb.Collection, "{}", `' || %s || '`) + `/' || ` + pgx.Identifier{tb.IDColumn}.Sanitize()
	var parents []any
	for _, c := range tb.ParentColumns {
		parents = append(parents, pgx.Identifier{c}.Sanitize())
	}
	return fmt.Sprintf(key, parents...)
}

func markedDocs(m *mappings.Mapping) func(t *testing.T, pool *pgxpool.Pool) map[string]time.Time {
	return func(t *testing.T, pool *pgxpool.Pool) map[string]time.Time {
		t.Helper()
		out := map[string]time.Time{}
		for _, tb := range m.Tables {
			ok, err := postgres.ColumnExists(context.Background(), pool, m.Schema, tb.Name, loaders.DeletedAtColumn)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			for k, v := range markedRows(t, pool, fmt.Sprintf(`SELECT %s, _deleted_at FROM %s WHERE _deleted_at IS NOT NULL AND NOT _missing`,
				docPathExpr(tb), pgx.Identifier{m.Schema, tb.Name}.Sanitize())) {
				out[k] = v
			}
		}
		return out
	}
}

func TestDocumentsDeletes(t *testing.T) {
	m := docsMapping(t)
	loadertest.RunDeletes(t, loadertest.Harness{
		Pool: newPool,
		Sink: func(t *testing.T, _ *pgxpool.Pool) loaders.Sink {
			s, err := postgres.NewDocuments(m)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Good:   goodDocs,
		Bad:    badDocs,
		Stored: storedDocs(m, false),
	}, loadertest.Deletes{Marked: markedDocs(m)})
}

func TestUsersDeletes(t *testing.T) {
	loadertest.RunDeletes(t, loadertest.Harness{
		Pool: newPool,
		Sink: func(t *testing.T, _ *pgxpool.Pool) loaders.Sink {
			return postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
		},
		Good:   goodUsers,
		Bad:    badUsers,
		Stored: storedUsers(false),
	}, loadertest.Deletes{Marked: func(t *testing.T, pool *pgxpool.Pool) map[string]time.Time {
		return markedRows(t, pool, `SELECT uid, _deleted_at FROM firebase_auth.users WHERE _deleted_at IS NOT NULL`)
	}})
}

func filesDeletes(t *testing.T, ft *filesTargets) {
	ft.stores = map[*pgxpool.Pool]string{}
	loadertest.RunDeletes(t, loadertest.Harness{
		Pool:   newPool,
		Sink:   ft.sink,
		Good:   goodFiles,
		Bad:    badFiles,
		Stored: ft.stored(false),
	}, loadertest.Deletes{
		Marked: func(t *testing.T, pool *pgxpool.Pool) map[string]time.Time {
			return markedRows(t, pool, `SELECT name, _deleted_at FROM public.files WHERE _deleted_at IS NOT NULL`)
		},
		Present: func(t *testing.T, pool *pgxpool.Pool, key string) bool {
			ft.mu.Lock()
			url := ft.stores[pool]
			ft.mu.Unlock()
			_, err := ft.read(t, url, key)
			return err == nil
		},
	})
}

func TestFilesDirectoryDeletes(t *testing.T) {
	filesDeletes(t, &filesTargets{
		open: func(t *testing.T) string { return "file://" + t.TempDir() },
		read: func(t *testing.T, url, key string) ([]byte, error) {
			return os.ReadFile(filepath.Join(strings.TrimPrefix(url, "file://"), filepath.FromSlash(key)))
		},
	})
}

func TestFilesS3Deletes(t *testing.T) {
	cfg := testenv.S3(t)
	host, secure := cfg.Host()
	client, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: secure, Region: cfg.Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
	ctx := context.Background()
	buckets := map[string]string{} // url → bucket
	filesDeletes(t, &filesTargets{
		open: func(t *testing.T) string {
			bucket := strings.ReplaceAll(testenv.UniqueName("del-"+t.Name(), 40), "_", "-")
			t.Cleanup(func() {
				for o := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
					_ = client.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
				}
				_ = client.RemoveBucket(ctx, bucket)
			})
			url := fmt.Sprintf("s3://%s?endpoint=%s&region=%s", bucket, cfg.Endpoint, cfg.Region)
			buckets[url] = bucket
			return url
		},
		read: func(t *testing.T, url, key string) ([]byte, error) {
			o, err := client.GetObject(ctx, buckets[url], key, minio.GetObjectOptions{})
			if err != nil {
				return nil, err
			}
			defer o.Close()
			return io.ReadAll(o)
		},
	})
}
