package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Options of the files kind, besides its extractor's.
var (
	objectsOption = plugin.Option{
		Name:     "objects",
		Help:     "Where file bytes go: s3://BUCKET?endpoint=URL&region=REGION (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or file:///DIRECTORY.",
		Required: true,
	}
	objectsPrefixOption = plugin.Option{
		Name: "objects-prefix",
		Help: "Put this before every object name to make its key in the target (default: keep names).",
	}
	objectsConcurrencyOption = plugin.Option{
		Name:    "objects-concurrency",
		Help:    "Objects copied at the same time, over all partitions.",
		Default: strconv.Itoa(objectstore.DefaultConcurrency),
		Type:    plugin.Int,
	}
	objectsInflightOption = plugin.Option{
		Name:    "objects-max-inflight",
		Help:    "Total size of the objects copied at the same time (e.g. 256MiB); a larger object is copied alone.",
		Default: "256MiB",
		Type:    plugin.Size,
	}
	objectsPartSizeOption = plugin.Option{
		Name:    "objects-part-size",
		Help:    "Objects larger than this are uploaded to S3 in parts of this size, streamed (at least 5MiB).",
		Default: "64MiB",
		Type:    plugin.Size,
	}
	objectsCaseInsensitiveOption = plugin.Option{
		Name: "objects-case-insensitive",
		Help: "Compare object keys without case and Unicode normalization, as macOS and Windows file systems do, whatever the target says of itself (a directory is probed; an S3 bucket compares exactly); objects whose keys then coincide are rejected.",
		Type: plugin.Switch,
	}
	objectsOverwriteOption = plugin.Option{
		Name: "objects-overwrite",
		Help: "Replace objects or files already in the target that baasmigrate did not write (by default such an object is left alone and its source object rejected).",
		Type: plugin.Switch,
	}
	filesTableOption = plugin.Option{
		Name:    "files-table",
		Help:    "PostgreSQL table that gets one metadata row per object.",
		Default: postgres.DefaultFilesTable,
	}
	filesSchemaOption = plugin.Option{
		Name:    "files-schema",
		Help:    "PostgreSQL schema of --files-table.",
		Default: "public",
	}
)

func init() {
	registerKind(&kindSpec{
		Kind: record.KindFile,
		Options: []plugin.Option{objectsOption, objectsPrefixOption,
			objectsConcurrencyOption, objectsInflightOption, objectsPartSizeOption, objectsCaseInsensitiveOption, objectsOverwriteOption,
			shareTablesOption, filesTableOption, filesSchemaOption, retry.TargetTimeoutOption},
		Build:   buildFiles,
		Compare: compareFiles,
	})
}

// objectURL names source objects in the files sink's messages as ex's
// platform does (extractors.ObjectURL).
func objectURL(ex extractors.Extractor) func(bucket, name string) string {
	return func(bucket, name string) string { return extractors.ObjectURL(ex, bucket, name) }
}

// objectsConcurrency is --objects-concurrency, at least 1.
func objectsConcurrency(cfg plugin.Config) (int, error) {
	n, err := cfg.Int(objectsConcurrencyOption.Name, objectstore.DefaultConcurrency)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("--%s must be at least 1", objectsConcurrencyOption.Name)
	}
	return n, nil
}

// buildFiles assembles the bucket → object store + PostgreSQL job.
// The target URL, key prefix and table are part of the run's settings: a
// run resumes only into the same place.
func buildFiles(ctx context.Context, env *buildEnv) (migration.Job, error) {
	cfg := env.Config
	concurrency, err := objectsConcurrency(cfg)
	if err != nil {
		return migration.Job{}, err
	}
	inflight, err := cfg.Size(objectsInflightOption.Name)
	if err != nil {
		return migration.Job{}, err
	}
	partSize, err := cfg.Size(objectsPartSizeOption.Name)
	if err != nil {
		return migration.Job{}, err
	}
	// Objects are retried by the same policy as source calls, each
	// attempt cut when the object store is silent for --target-timeout.
	policy, err := retry.FromConfig(cfg)
	if err != nil {
		return migration.Job{}, err
	}
	if policy.Timeout, err = retry.Timeout(cfg, retry.TargetTimeoutOption); err != nil {
		return migration.Job{}, err
	}
	policy.TimeoutOption = retry.TargetTimeoutOption.Name
	caseInsensitive, err := cfg.Bool(objectsCaseInsensitiveOption.Name)
	if err != nil {
		return migration.Job{}, err
	}
	overwrite, err := cfg.Bool(objectsOverwriteOption.Name)
	if err != nil {
		return migration.Job{}, err
	}
	store, err := objectstore.Open(cfg.String(objectsOption.Name), objectstore.Options{
		Prefix: cfg.String(objectsPrefixOption.Name), Concurrency: concurrency, MaxInflight: inflight,
		PartSize: partSize, Retry: policy, CaseInsensitive: caseInsensitive, ReplaceForeign: overwrite,
	})
	if err != nil {
		return migration.Job{}, fmt.Errorf("--%s: %w", objectsOption.Name, err)
	}
	_, ex, err := env.Extractor(ctx, record.KindFile)
	if err != nil {
		return migration.Job{}, err
	}
	sink := postgres.NewFiles(store, cfg.String(filesSchemaOption.Name), cfg.String(filesTableOption.Name))
	sink.SetObjectURL(objectURL(ex))
	owner, err := tableOwner(cfg, ex)
	if err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	sink.SetTableOwner(owner)
	// Refuse before the run is recorded; Prepare checks again, atomically.
	if err := postgres.CheckTableOwners(ctx, env.Pool, owner, []pgx.Identifier{{sink.Schema(), sink.Name()}}); err != nil {
		ex.Close()
		return migration.Job{}, err
	}
	sink.SetOwner(ex.Source(), owner.Share)
	conf := map[string]string{
		"objects": store.String(), "objects-prefix": cfg.String(objectsPrefixOption.Name),
		"files-table": cfg.String(filesSchemaOption.Name) + "." + cfg.String(filesTableOption.Name),
	}
	if caseInsensitive {
		// How keys are compared is part of where objects go.
		conf[objectsCaseInsensitiveOption.Name] = "true"
	}
	return migration.Job{Kind: record.KindFile, Extractor: ex, Sink: sink, Config: conf}, nil
}

// compareFiles prepares plan and verify for files: the same bucket,
// object store, key prefix and table as migrate, so that each object is
// compared with exactly the row migrate would write for it, and its object
// is looked for under the key migrate would copy it to. The object store
// is only read (a missing bucket or directory holds nothing); it is
// inspected --objects-concurrency requests or files at a time.
func compareFiles(ctx context.Context, env *buildEnv) (*comparer, error) {
	cfg := env.Config
	concurrency, err := objectsConcurrency(cfg)
	if err != nil {
		return nil, err
	}
	store, err := objectstore.Open(cfg.String(objectsOption.Name), objectstore.Options{
		Prefix: cfg.String(objectsPrefixOption.Name), Concurrency: concurrency,
	})
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", objectsOption.Name, err)
	}
	spec, ex, err := env.Extractor(ctx, record.KindFile)
	if err != nil {
		return nil, err
	}
	b, ok := ex.(extractors.Bucketed)
	if !ok {
		ex.Close()
		return nil, fmt.Errorf("the %s extractor does not say which bucket it reads (extractors.Bucketed), so its files cannot be compared with the target", spec.Name)
	}
	schema, table := cfg.String(filesSchemaOption.Name), cfg.String(filesTableOption.Name)
	adapter := diff.NewFiles(diff.FilesConfig{
		Store: store, Schema: schema, Table: table,
		Bucket: b.Bucket(), Prefix: b.Prefix(), ObjectURL: objectURL(ex),
	})
	sink := postgres.NewFiles(store, schema, table)
	owner, err := tableOwner(cfg, ex)
	if err != nil {
		ex.Close()
		return nil, err
	}
	sink.SetTableOwner(owner)
	return &comparer{
		Extractor: ex,
		Adapter:   adapter,
		DDL: func(ctx context.Context) ([]diff.DDL, error) {
			stmts, err := sink.PlannedDDL(ctx, env.Pool)
			return diff.DDLFrom(stmts), err
		},
		Bytes: func(*diff.Report) int64 { return adapter.BytesToCopy() },
	}, nil
}
