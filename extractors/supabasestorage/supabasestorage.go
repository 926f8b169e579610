// Package supabasestorage extracts the objects of a Supabase Storage bucket
// as file records: their metadata from storage.objects in the project's
// database, their bytes through Storage's S3 endpoint (bucket = the
// bucket's id, key = the object's name), the only way to the bytes that
// users of hosted Supabase have.
//
// # How a bucket is read
//
// A bucket is one stream. Plan cuts its object names, in byte order
// (COLLATE "C"), into at most n ranges of about equal count; a partition
// covers the names in [Start, End). Read pages through a range by keyset
// (name > the last name read, --supabase-page-size rows). A record's
// cursor is its name, so a read resumed after a cursor yields exactly the
// objects that follow; records come in the byte order of names, as plan
// and verify merge files.
//
// # Records
//
// Key is the object's name, exactly (names the current Storage API would
// refuse — non-ASCII, "%" — included). Bucket is bucket_id; size,
// mimetype (content type) and cacheControl come from the metadata column;
// custom metadata is user_metadata (string values as they are, other JSON
// values as their JSON text) plus supabase-owner-id, supabase-owner and
// supabase-object-id; created_at and updated_at are the record's times.
//
// Checksums: the eTag of an object uploaded whole is the quoted MD5 of its
// bytes, and becomes the record's MD5, which every copy is checked
// against. An object uploaded in parts has an eTag "<md5 of the parts'
// MD5s>-<parts>", which is no MD5 of its bytes: with
// --supabase-compute-md5 (the default) Read reads such an object once,
// computing the MD5 and size of its bytes, and the record carries those.
// Without it such a record has no MD5, and copies and verify check its
// size only. An object without metadata (an upload that never finished)
// is treated the same way.
//
// ".emptyFolderPlaceholder" objects — the empty objects Storage's
// dashboard creates to show an empty folder — are copied like any other
// object: they are rows of storage.objects, so plan and verify count
// them, and the target keeps the folder.
package supabasestorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/s3objects"
	"github.com/baasmigrate/baasmigrate/extractors/supabase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Options of the Supabase Storage extractor.
var (
	BucketOption = plugin.Option{
		Name: "supabase-bucket",
		Help: "Supabase Storage bucket (its id) to copy files from (default: the project's only bucket; with several, run once per bucket).",
	}
	EndpointOption = plugin.Option{
		Name: "supabase-s3-endpoint",
		Help: "Storage's S3 endpoint the bytes are read through (https://REF.supabase.co/storage/v1/s3).",
		Env:  []string{"SUPABASE_S3_ENDPOINT"},
	}
	RegionOption = plugin.Option{
		Name:    "supabase-s3-region",
		Help:    "Region of Storage's S3 endpoint (the project's region, as its dashboard shows it).",
		Env:     []string{"SUPABASE_S3_REGION"},
		Default: "us-east-1",
	}
	AccessKeyOption = plugin.Option{
		Name:   "supabase-s3-access-key-id",
		Help:   "Access key id of Storage's S3 endpoint (its dashboard's S3 access keys).",
		Env:    []string{"SUPABASE_S3_ACCESS_KEY_ID"},
		Secret: true,
	}
	SecretKeyOption = plugin.Option{
		Name:   "supabase-s3-secret-access-key",
		Help:   "Secret access key of Storage's S3 endpoint.",
		Env:    []string{"SUPABASE_S3_SECRET_ACCESS_KEY"},
		Secret: true,
	}
	ComputeMD5Option = plugin.Option{
		Name: "supabase-compute-md5",
		Help: "Read objects uploaded in parts (eTag <md5>-<parts>, no MD5 of their bytes) once more to compute their MD5, " +
			"so that copies and verify check their bytes; false checks their size only.",
		Type:    plugin.Switch,
		Default: "true",
	}
)

// Custom metadata keys the extractor adds to an object's user_metadata.
// A user_metadata key of the same name is overwritten.
const (
	MetaOwnerID  = "supabase-owner-id"
	MetaOwner    = "supabase-owner"
	MetaObjectID = "supabase-object-id"
)

func init() {
	extractors.Register(extractors.Spec{
		Source: supabase.Source,
		Name:   "supabase-storage",
		Kind:   record.KindFile,
		Help:   "Every object of a Supabase Storage bucket: metadata from storage.objects, bytes through Storage's S3 endpoint.",
		Options: []plugin.Option{
			supabase.DBOption, supabase.PageSizeOption, BucketOption, EndpointOption, RegionOption,
			AccessKeyOption, SecretKeyOption, ComputeMD5Option,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// Extractor reads one bucket. It is safe for concurrent use.
type Extractor struct {
	db         *supabase.DB
	s3         *s3objects.Bucket
	endpoint   string // without credentials, for messages
	bucket     string
	pageSize   int
	computeMD5 bool
	policy     retry.Policy
}

var (
	_ extractors.Extractor  = (*Extractor)(nil)
	_ extractors.Sizer      = (*Extractor)(nil)
	_ extractors.Counter    = (*Extractor)(nil)
	_ extractors.Bucketed   = (*Extractor)(nil)
	_ extractors.KeyOrderer = (*Extractor)(nil)
	_ extractors.Configured = (*Extractor)(nil)
	_ extractors.Parter     = (*Extractor)(nil)
)

// New connects to the database and the S3 endpoint cfg names. Without
// --supabase-bucket it reads the project's only bucket, and fails naming
// the buckets when there are several.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	e := &Extractor{bucket: cfg.String(BucketOption.Name)}
	var err error
	if e.pageSize, err = supabase.PageSize(cfg); err != nil {
		return nil, err
	}
	if e.policy, err = retry.FromConfig(cfg); err != nil {
		return nil, err
	}
	e.computeMD5 = true // the default, also when cfg was not resolved by the CLI
	if cfg.String(ComputeMD5Option.Name) != "" {
		if e.computeMD5, err = cfg.Bool(ComputeMD5Option.Name); err != nil {
			return nil, err
		}
	}
	endpoint := cfg.String(EndpointOption.Name)
	if endpoint == "" {
		return nil, fmt.Errorf("no S3 endpoint to read Supabase Storage's bytes through: pass --%s", EndpointOption.Name)
	}
	region := cfg.String(RegionOption.Name)
	if region == "" {
		region = RegionOption.Default
	}
	access, secret := cfg.String(AccessKeyOption.Name), cfg.String(SecretKeyOption.Name)
	if (access == "") != (secret == "") {
		return nil, fmt.Errorf("give both --%s and --%s (or %s and %s), or neither",
			AccessKeyOption.Name, SecretKeyOption.Name, AccessKeyOption.Env[0], SecretKeyOption.Env[0])
	}
	client, err := s3objects.NewPathClient(endpoint, region, access, secret)
	if err != nil {
		return nil, fmt.Errorf("--%s %w, such as https://REF.supabase.co/storage/v1/s3", EndpointOption.Name, err)
	}
	e.endpoint = endpointName(endpoint)
	if e.db, err = supabase.Connect(ctx, cfg, 8); err != nil {
		return nil, err
	}
	if e.bucket == "" {
		if e.bucket, err = e.onlyBucket(ctx); err != nil {
			e.db.Pool.Close()
			return nil, err
		}
	}
	e.s3 = &s3objects.Bucket{Client: client, Name: e.bucket, Endpoint: e.endpoint, Listed: "storage.objects", Policy: e.policy}
	return e, nil
}

// onlyBucket returns the id of the project's only bucket.
func (e *Extractor) onlyBucket(ctx context.Context) (string, error) {
	var ids []string
	err := retry.Do(ctx, e.policy, "listing the buckets of "+e.db.Name, func(ctx context.Context) error {
		rows, err := e.db.Pool.Query(ctx, `SELECT id FROM storage.buckets ORDER BY id COLLATE "C"`)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return "", retry.Describe("listing the buckets of "+e.db.Name, err)
	}
	switch len(ids) {
	case 1:
		return ids[0], nil
	case 0:
		return "", fmt.Errorf("the Supabase project %s has no Storage bucket", e.db.Name)
	}
	return "", fmt.Errorf("the Supabase project %s has %d Storage buckets (%s): pass --%s, once per bucket",
		e.db.Name, len(ids), strings.Join(ids, ", "), BucketOption.Name)
}

// endpointName is the endpoint's host and path, for messages and Source.
func endpointName(endpoint string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	return strings.TrimSuffix(s, "/")
}

// Bucket is the id of the bucket read.
func (e *Extractor) Bucket() string { return e.bucket }

// Prefix is "": the whole bucket is read.
func (e *Extractor) Prefix() string { return "" }

// KeyOrder is byte order, the order of names in every files stream.
func (e *Extractor) KeyOrder() record.KeyOrder { return record.ByteOrder }

// Source names the database and bucket: "supabase-storage:host:port/db/bucket".
func (e *Extractor) Source() string { return e.WholeSource() + "/" + e.bucket }

// WholeSource is the project's Storage, "supabase-storage:host:port/db":
// runs reading its buckets one at a time share the files table.
func (e *Extractor) WholeSource() string { return "supabase-storage:" + e.db.Name }

// RunSettings are the settings that change what records say: whether
// MD5s of objects uploaded in parts are computed.
func (e *Extractor) RunSettings() map[string]string {
	return map[string]string{ComputeMD5Option.Name: strconv.FormatBool(e.computeMD5)}
}

// Close closes the pool.
func (e *Extractor) Close() error {
	e.db.Pool.Close()
	return nil
}

// streamName is the bucket's stream.
func (e *Extractor) streamName() string { return "storage.objects/" + e.bucket }

// Plan returns the bucket as one stream split into at most partitions
// ranges of names of about equal count. readTime is ignored.
func (e *Extractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	what := "planning " + e.Source()
	var points []string
	err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
		var exists bool
		if err := e.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM storage.buckets WHERE id = $1)`, e.bucket).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return retry.Mark(fmt.Errorf("the Supabase project %s has no Storage bucket %q (see --%s)", e.db.Name, e.bucket, BucketOption.Name), false)
		}
		var err error
		points, err = supabase.SplitPoints(ctx, e.db.Pool, "o.name", `o.name COLLATE "C"`,
			"FROM storage.objects o WHERE o.bucket_id = $1", []any{e.bucket}, partitions)
		return err
	})
	if err != nil {
		return nil, retry.Describe(what, err)
	}
	return []extractors.Stream{extractors.RangeStream(e.streamName(), record.KindFile, points)}, nil
}

// rangeWhere is the condition selecting the objects of p after the name
// after, with its arguments.
func (e *Extractor) rangeWhere(p extractors.Partition, after string) (string, []any) {
	where, args := "o.bucket_id = $1", []any{e.bucket}
	for _, b := range []struct{ val, op string }{{p.Start, ">="}, {p.End, "<"}, {after, ">"}} {
		if b.val != "" {
			args = append(args, b.val)
			where += fmt.Sprintf(` AND o.name COLLATE "C" %s $%d`, b.op, len(args))
		}
	}
	return where, args
}

// Count returns the number of objects in s's partitions.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	n, _, err := e.Size(ctx, s)
	return n, err
}

// Size returns the number of objects in s's partitions and their bytes
// as storage.objects' metadata says.
func (e *Extractor) Size(ctx context.Context, s extractors.Stream) (objects, bytes int64, err error) {
	what := "sizing " + e.Source()
	for _, p := range s.Partitions {
		where, args := e.rangeWhere(p, "")
		var n, b int64
		err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			return e.db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(CASE WHEN o.metadata->>'size' ~ '^[0-9]{1,18}$'
				THEN (o.metadata->>'size')::bigint END), 0)::bigint FROM storage.objects o WHERE `+where, args...).Scan(&n, &b)
		})
		if err != nil {
			return 0, 0, retry.Describe(what, err)
		}
		objects, bytes = objects+n, bytes+b
	}
	return objects, bytes, nil
}

// object is a row of storage.objects.
type object struct {
	id, name               string
	owner, ownerID         *string
	metadata, userMetadata []byte
	created, updated       pgtype.Timestamptz
}

// Read emits the objects of p after the name after, in byte order of
// names, one page at a time.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	what := fmt.Sprintf("reading partition %s of %s", p.ID, e.Source())
	for {
		where, args := e.rangeWhere(p, after)
		var page []object
		err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			rows, err := e.db.Pool.Query(ctx, `SELECT o.id::text, o.name, o.owner::text, o.owner_id, o.metadata::text, o.user_metadata::text,
					o.created_at, o.updated_at
				FROM storage.objects o WHERE `+where+fmt.Sprintf(` ORDER BY o.name COLLATE "C" LIMIT %d`, e.pageSize), args...)
			if err != nil {
				return err
			}
			page = page[:0]
			for rows.Next() {
				var o object
				var meta, umeta *string
				if err := rows.Scan(&o.id, &o.name, &o.owner, &o.ownerID, &meta, &umeta, &o.created, &o.updated); err != nil {
					rows.Close()
					return err
				}
				if meta != nil {
					o.metadata = []byte(*meta)
				}
				if umeta != nil {
					o.userMetadata = []byte(*umeta)
				}
				page = append(page, o)
			}
			return rows.Err()
		})
		if err != nil {
			return retry.Describe(what, err)
		}
		for _, o := range page {
			rec, err := e.toRecord(ctx, o)
			if err != nil {
				return err
			}
			if err := emit(rec); err != nil {
				return err
			}
			after = o.name
		}
		if len(page) < e.pageSize {
			return nil
		}
	}
}

// storageMetadata is what Storage keeps in storage.objects.metadata.
type storageMetadata struct {
	ETag          *string     `json:"eTag"`
	Size          json.Number `json:"size"`
	ContentLength json.Number `json:"contentLength"`
	Mimetype      string      `json:"mimetype"`
	CacheControl  string      `json:"cacheControl"`
}

// toRecord turns a row into a file record, reading the object's bytes
// first when its MD5 must be computed.
func (e *Extractor) toRecord(ctx context.Context, o object) (record.Record, error) {
	f := record.File{Bucket: e.bucket, Name: o.name, Size: -1}
	if o.created.Valid && o.created.InfinityModifier == pgtype.Finite {
		f.Created = o.created.Time
	}
	if o.updated.Valid && o.updated.InfinityModifier == pgtype.Finite {
		f.Updated = o.updated.Time
	}
	var m storageMetadata
	if len(o.metadata) > 0 {
		d := json.NewDecoder(strings.NewReader(string(o.metadata)))
		d.UseNumber()
		_ = d.Decode(&m) // metadata of another shape: every field stays unknown
	}
	for _, n := range []json.Number{m.Size, m.ContentLength} {
		if v, err := n.Int64(); err == nil && v >= 0 {
			f.Size = v
			break
		}
	}
	f.ContentType, f.CacheControl = m.Mimetype, m.CacheControl
	if m.ETag != nil {
		f.MD5 = s3objects.ETagMD5(*m.ETag)
	}
	f.Metadata = customMetadata(o)
	if f.Size < 0 || (f.MD5 == nil && e.computeMD5) {
		sum, size, err := e.s3.Digest(ctx, o.name)
		var gone *GoneError
		switch {
		case errors.As(err, &gone):
			// Deleted after it was listed: the copy reports it (Open
			// fails with the same GoneError).
			f.Size = max(f.Size, 0)
		case err != nil:
			return record.Record{}, err
		default:
			f.Size = size
			if f.MD5 == nil && e.computeMD5 {
				f.MD5 = sum
			}
		}
	}
	name := o.name
	return record.Record{
		Kind: record.KindFile, Key: o.name, CreateTime: f.Created, UpdateTime: f.Updated,
		Fields: f.Fields(), Cursor: o.name,
		Open: func(ctx context.Context) (io.ReadCloser, error) { return e.s3.Open(ctx, name) },
	}, nil
}

// customMetadata is the object's user_metadata as strings (a string value
// as it is, any other JSON value as its JSON text) and its owner and id.
func customMetadata(o object) map[string]string {
	out := map[string]string{}
	if len(o.userMetadata) > 0 {
		var um map[string]json.RawMessage
		if json.Unmarshal(o.userMetadata, &um) == nil {
			for k, raw := range um {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					out[k] = s
				} else {
					out[k] = string(raw)
				}
			}
		} else {
			out["supabase-user-metadata"] = string(o.userMetadata) // not an object
		}
	}
	if o.ownerID != nil && *o.ownerID != "" {
		out[MetaOwnerID] = *o.ownerID
	}
	if o.owner != nil && *o.owner != "" {
		out[MetaOwner] = *o.owner
	}
	out[MetaObjectID] = o.id
	return out
}

// GoneError says an object listed in storage.objects is not in Storage's
// S3 endpoint (deleted after it was listed, or its bytes lost). It
// matches fs.ErrNotExist.
type GoneError = s3objects.GoneError
