package postgres_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/loadertest"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/passwords"
)

func newPool(t *testing.T) *pgxpool.Pool { return testenv.NewPool(t) }

// digestRows runs sql, whose rows are (key text, content text, version
// text), and returns per key the hash of its contents and the list of its
// versions, accumulated over rows of the same key.
func digestRows(t *testing.T, pool *pgxpool.Pool, sql string) (contents, versions map[string]string) {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	contents, versions = map[string]string{}, map[string]string{}
	for rows.Next() {
		var key, content, version string
		if err := rows.Scan(&key, &content, &version); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(contents[key] + "\x00" + content))
		contents[key] = hex.EncodeToString(h[:])
		versions[key] += version + " "
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return contents, versions
}

// Documents: a root collection and a subcollection, with typed columns,
// overflow and nested values.

func conformanceDoc(key string, i int) record.Record {
	t0 := time.Date(2022, 3, 4, 5, 6, 7, 891000, time.UTC)
	return record.Record{
		Kind: record.KindDocument, Key: key, Cursor: key,
		CreateTime: t0.Add(time.Duration(i) * time.Second), UpdateTime: t0.Add(time.Duration(i) * time.Hour),
		Fields: map[string]record.Value{
			"title": record.String(fmt.Sprintf("Item №%d", i)),
			"n":     record.Int(int64(i)),
			"at":    record.Timestamp(t0.Add(time.Duration(i) * time.Minute)),
			"tags":  record.Array(record.String("a"), record.String("ü")),
			"meta":  record.Map(map[string]record.Value{"ok": record.Bool(i%2 == 0), "score": record.Double(float64(i) / 4)}),
		},
	}
}

func goodDocs(n int) []record.Record {
	var out []record.Record
	for i := range n {
		key := fmt.Sprintf("items/i%03d", i)
		if i%4 == 3 { // under an item of the batch, or under one with no document
			key = fmt.Sprintf("items/i%03d/parts/p%d", i-1+(i%8/4)*100, i)
		}
		out = append(out, conformanceDoc(key, i))
	}
	return out
}

// incompressible returns n hex digits that do not repeat.
func incompressible(n int) string {
	var b strings.Builder
	h := sha256.Sum256(nil)
	for b.Len() < n {
		h = sha256.Sum256(h[:])
		b.WriteString(hex.EncodeToString(h[:]))
	}
	return b.String()[:n]
}

func badDocs() []record.Record {
	notDoc := conformanceDoc("items/user", 3)
	notDoc.Kind = record.KindUser
	return []record.Record{
		conformanceDoc("unmapped/x", 4), // a collection the mapping has no table for
		// An ID PostgreSQL refuses: beyond what a btree index entry holds,
		// even compressed.
		conformanceDoc("items/"+incompressible(12000), 5),
		conformanceDoc("items/a\x00b", 2),    // a NUL byte, which a text key cannot hold
		conformanceDoc("items/odd/parts", 6), // not a document path
		notDoc,
	}
}

func docsMapping(t *testing.T) *mappings.Mapping {
	t.Helper()
	in := mappings.NewInferrer(mappings.InferOptions{Schema: "app"})
	for _, r := range goodDocs(200) {
		in.Observe(r.Key, r.Fields)
	}
	m := in.Mapping()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// storedDocs reads every non-placeholder row of the mapping's tables, keyed
// by the document path its key columns make.
func storedDocs(m *mappings.Mapping, versions bool) func(t *testing.T, pool *pgxpool.Pool) map[string]string {
	return func(t *testing.T, pool *pgxpool.Pool) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, tb := range m.Tables {
			var exists bool
			name := pgx.Identifier{m.Schema, tb.Name}
			if err := pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, name.Sanitize()).Scan(&exists); err != nil || !exists {
				continue
			}
			key := `'` + strings.ReplaceAll(tb.Collection, "{}", `' || %s || '`) + `/' || ` + pgx.Identifier{tb.IDColumn}.Sanitize()
			var parents []any
			for _, c := range tb.ParentColumns {
				parents = append(parents, pgx.Identifier{c}.Sanitize())
			}
			key = fmt.Sprintf(key, parents...)
			contents, vers := digestRows(t, pool, fmt.Sprintf(`SELECT %s, to_jsonb(t)::text, xmin::text FROM %s t WHERE NOT _missing`, key, name.Sanitize()))
			if versions {
				contents = vers
			}
			for k, v := range contents {
				out[k] = v
			}
		}
		return out
	}
}

func TestDocumentsConformance(t *testing.T) {
	m := docsMapping(t)
	loadertest.Run(t, loadertest.Harness{
		Pool: newPool,
		Sink: func(t *testing.T, _ *pgxpool.Pool) loaders.Sink {
			s, err := postgres.NewDocuments(m)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Good:     goodDocs,
		Bad:      badDocs,
		Stored:   storedDocs(m, false),
		Versions: storedDocs(m, true),
	})
}

// Users: with passwords, providers and MFA factors.

func sp(s string) *string { return &s }

func goodUsers(n int) []record.Record {
	var out []record.Record
	for i := range n {
		u := record.User{
			UID: fmt.Sprintf("uid-%03d", i), Email: sp(fmt.Sprintf("u%d@example.com", i)), EmailVerified: i%2 == 0,
			CreatedAt: time.UnixMilli(1600000000000 + int64(i)).UTC(), CustomClaims: sp(`{"role":"r"}`),
			Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt},
		}
		if i%3 == 0 {
			u.Providers = []record.Provider{{ProviderID: "google.com", RawID: fmt.Sprintf("g%d", i), Email: u.Email}}
		}
		if i%5 == 0 {
			u.MFA = []record.MFAFactor{{EnrollmentID: fmt.Sprintf("m%d", i), FactorID: "phone", PhoneNumber: sp("+15555550100")}}
		}
		out = append(out, u.Record(u.UID))
	}
	return out
}

func badUsers() []record.Record {
	return []record.Record{
		record.User{UID: "bad-hash", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: "not*base64", Salt: testSalt}}.Record("bad-hash"),
		record.User{UID: "bad-claims", CustomClaims: sp(`[1]`)}.Record("bad-claims"),
		record.User{UID: "bad-invalid", Invalid: "line 9 has 30 columns"}.Record("bad-invalid"),
		// PostgreSQL refuses a NUL in a child row's text.
		record.User{UID: "bad-nul", Providers: []record.Provider{{ProviderID: "google.com", RawID: "x", DisplayName: sp("a\x00b")}}}.Record("bad-nul"),
		record.User{UID: "bad-dup", Providers: []record.Provider{{ProviderID: "a", RawID: "1"}, {ProviderID: "a", RawID: "1"}}}.Record("bad-dup"),
	}
}

func storedUsers(versions bool) func(t *testing.T, pool *pgxpool.Pool) map[string]string {
	return func(t *testing.T, pool *pgxpool.Pool) map[string]string {
		t.Helper()
		var exists bool
		if err := pool.QueryRow(context.Background(), `SELECT to_regclass('firebase_auth.users') IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return nil
		}
		contents, vers := digestRows(t, pool, `
			SELECT uid, 'user ' || to_jsonb(u)::text, xmin::text FROM firebase_auth.users u
			UNION ALL SELECT uid, 'provider ' || to_jsonb(p)::text, xmin::text FROM firebase_auth.provider_identities p
			UNION ALL SELECT uid, 'mfa ' || to_jsonb(m)::text, xmin::text FROM firebase_auth.mfa_factors m
			ORDER BY 1, 2`)
		if versions {
			return vers
		}
		return contents
	}
}

func TestUsersConformance(t *testing.T) {
	loadertest.Run(t, loadertest.Harness{
		Pool: newPool,
		Sink: func(t *testing.T, _ *pgxpool.Pool) loaders.Sink {
			return postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)})
		},
		Good:     goodUsers,
		Bad:      badUsers,
		Stored:   storedUsers(false),
		Versions: storedUsers(true),
	})
}

// Supabase Auth users: auth.users and auth.identities of the fixture
// schema (supabasetest.AuthSchema), helpers in supabase_users_test.go.

func TestSupabaseUsersConformance(t *testing.T) {
	loadertest.Run(t, loadertest.Harness{
		Pool: supabasePool,
		Sink: func(t *testing.T, _ *pgxpool.Pool) loaders.Sink {
			return newSupabaseUsers(t, postgres.SupabaseUsersConfig{SharedHash: testShared(t)})
		},
		Good:     goodUsers,
		Bad:      badSupabaseUsers,
		Stored:   storedSupabase(false),
		Versions: storedSupabase(true),
	})
}

// Files: over a directory and over MinIO.

func conformanceFile(name string, data []byte, gone bool, meta map[string]string) record.Record {
	sum := md5.Sum(data)
	f := record.File{Bucket: "demo.appspot.com", Name: name, Size: int64(len(data)), MD5: sum[:],
		CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), HasCRC32C: true,
		ContentType: "text/plain", Metadata: meta, Generation: 7, Metageneration: 1,
		Created: time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC), Updated: time.Date(2021, 1, 2, 4, 4, 5, 0, time.UTC)}
	return record.Record{Kind: record.KindFile, Key: name, Cursor: name, CreateTime: f.Created, UpdateTime: f.Updated, Fields: f.Fields(),
		Open: func(context.Context) (io.ReadCloser, error) {
			if gone {
				return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
}

func goodFiles(n int) []record.Record {
	var out []record.Record
	for i := range n {
		out = append(out, conformanceFile(fmt.Sprintf("users/u%d/obj-%03d.txt", i%3, i), bytes.Repeat([]byte{byte('a' + i%26)}, i*37),
			false, map[string]string{"firebaseStorageDownloadTokens": fmt.Sprintf("tok%d", i)}))
	}
	return out
}

func badFiles() []record.Record {
	// Copied, then refused by PostgreSQL: a time beyond timestamptz.
	farFuture := conformanceFile("far-future.txt", []byte("f"), false, nil)
	farFuture.CreateTime = time.Date(294500, 1, 1, 0, 0, 0, 0, time.UTC)
	return []record.Record{
		conformanceFile("../escape.txt", []byte("no"), false, nil),
		conformanceFile("gone.txt", []byte("vanished at the source"), true, nil),
		conformanceFile("nul\x00name.txt", []byte("x"), false, nil),
		conformanceFile("meta.txt", []byte("m"), false, map[string]string{"k": "v\x00"}),
		farFuture,
	}
}

// filesTargets gives each pool its own store, shared by every sink made
// for that pool.
type filesTargets struct {
	mu     sync.Mutex
	stores map[*pgxpool.Pool]string
	open   func(t *testing.T) string // a fresh store's URL
	read   func(t *testing.T, url, key string) ([]byte, error)
}

func (ft *filesTargets) sink(t *testing.T, pool *pgxpool.Pool) loaders.Sink {
	ft.mu.Lock()
	url, ok := ft.stores[pool]
	if !ok {
		url = ft.open(t)
		ft.stores[pool] = url
	}
	ft.mu.Unlock()
	store, err := objectstore.Open(url, objectstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return postgres.NewFiles(store, "", "")
}

// stored digests each row with the bytes its object holds in the store.
func (ft *filesTargets) stored(versions bool) func(t *testing.T, pool *pgxpool.Pool) map[string]string {
	return func(t *testing.T, pool *pgxpool.Pool) map[string]string {
		t.Helper()
		var exists bool
		if err := pool.QueryRow(context.Background(), `SELECT to_regclass('public.files') IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return nil
		}
		contents, vers := digestRows(t, pool, `SELECT name, target_key || ' ' || to_jsonb(f)::text, xmin::text FROM public.files f`)
		if versions {
			return vers
		}
		ft.mu.Lock()
		url := ft.stores[pool]
		ft.mu.Unlock()
		rows, err := pool.Query(context.Background(), `SELECT name, target_key FROM public.files`)
		if err != nil {
			t.Fatal(err)
		}
		type obj struct{ Name, Key string }
		objs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[obj])
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			data, err := ft.read(t, url, o.Key)
			if err != nil {
				t.Fatalf("object %q has a row but its bytes cannot be read: %v", o.Name, err)
			}
			sum := sha256.Sum256(data)
			contents[o.Name] += " bytes " + hex.EncodeToString(sum[:])
		}
		return contents
	}
}

func runFilesConformance(t *testing.T, ft *filesTargets) {
	ft.stores = map[*pgxpool.Pool]string{}
	loadertest.Run(t, loadertest.Harness{
		Pool:     newPool,
		Sink:     ft.sink,
		Good:     goodFiles,
		Bad:      badFiles,
		Stored:   ft.stored(false),
		Versions: ft.stored(true),
	})
}

func TestFilesDirectoryConformance(t *testing.T) {
	runFilesConformance(t, &filesTargets{
		open: func(t *testing.T) string { return "file://" + t.TempDir() },
		read: func(t *testing.T, url, key string) ([]byte, error) {
			return os.ReadFile(filepath.Join(strings.TrimPrefix(url, "file://"), filepath.FromSlash(key)))
		},
	})
}

func TestFilesS3Conformance(t *testing.T) {
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
	runFilesConformance(t, &filesTargets{
		open: func(t *testing.T) string {
			bucket := strings.ReplaceAll(testenv.UniqueName("conf-"+t.Name(), 40), "_", "-")
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
