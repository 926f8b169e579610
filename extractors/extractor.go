// Package extractors defines what a source extractor is and keeps the
// registry of them. Each source lives in its own sub-package (firestore,
// firebaseauth, gcs, ...) and registers itself in init; package
// extractors/all imports every one of them.
package extractors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// Partition and Stream are defined in package record, which loaders and
// the tool's state import without importing extractors.
type (
	Partition = record.Partition
	Stream    = record.Stream
)

// Extractor reads one source. Implementations are safe for concurrent use
// by several partition readers.
type Extractor interface {
	// Source identifies what the extractor reads, stably across runs and
	// without secrets ("firestore:projects/p/databases/(default)"). Runs of
	// the same source and kind resume each other.
	Source() string
	// Plan discovers the source's streams, as they were at readTime (zero:
	// now), and splits each into at most partitions partitions (fewer when
	// the stream is small). It is called once at the start of a fresh run;
	// streams it returns with a zero ReadTime are read at readTime.
	Plan(ctx context.Context, partitions int, readTime time.Time) ([]Stream, error)
	// Read calls emit, in order, for every record of p that comes after the
	// cursor after (a Record.Cursor from an earlier read; "" means from the
	// start of p), as the source was at readTime (zero: the latest data).
	// Reads are retried internally; an error returned is final for this
	// attempt and says what was being read. An error from emit is returned
	// unchanged.
	Read(ctx context.Context, p Partition, readTime time.Time, after string, emit func(record.Record) error) error
	// Close releases the extractor's connections.
	Close() error
}

// Parter is implemented by extractors that may read part of a source
// (some collections of a Firestore database, a prefix of a bucket).
type Parter interface {
	// WholeSource is Source without what narrows the read to a part: the
	// source whose target tables jobs reading its parts share.
	WholeSource() string
}

// WholeSource returns ex's WholeSource (see Parter), or its Source when ex
// always reads its source whole.
func WholeSource(ex Extractor) string {
	if p, ok := ex.(Parter); ok {
		return p.WholeSource()
	}
	return ex.Source()
}

// Snapshotter is implemented by extractors whose source can serve reads at a
// past time for a limited window (Firestore: one hour; seven days with
// point-in-time recovery).
type Snapshotter interface {
	// SnapshotTime returns a read time for a new snapshot: the source's
	// current time.
	SnapshotTime(ctx context.Context) (time.Time, error)
	// SnapshotWindow is how long a read time stays readable.
	SnapshotWindow() time.Duration
}

// Counter is implemented by extractors that can count a stream's records
// cheaply (an aggregation query), for progress totals and plans.
type Counter interface {
	Count(ctx context.Context, s Stream) (int64, error)
}

// Sizer is implemented by extractors of files that can tell a stream's
// number of records and total bytes (a listing), for progress totals.
type Sizer interface {
	Size(ctx context.Context, s Stream) (records, bytes int64, err error)
}

// Configured is implemented by extractors with settings that, beyond
// Source, decide whether an interrupted run may resume: the engine stores
// them with the run, and a run resumes (or a finished one counts as done)
// only with the same ones.
type Configured interface {
	// RunSettings returns the settings by name, values as the user gave
	// them; a setting that is unset is present with "". It must not
	// contain secrets.
	RunSettings() map[string]string
}

// Rooted is implemented by extractors of documents that can read only some
// root collections (and everything under them): plan and verify then
// compare only the tables of those.
type Rooted interface {
	// Roots returns the root collections read, or nil when every one is.
	Roots() []string
}

// KeyOrderer is implemented by extractors whose partitions deliver records
// in a known order of their keys (for documents: of each path segment, a
// document's key being its ancestors' IDs and its own), so that plan and
// verify merge them with target rows read in that order (KeyOrder's
// OrderBy); records of one partition come in strictly increasing order by
// it, and so do a stream's partitions, read one after the other in the
// order Plan lists them. Other extractors' records are looked up in the
// target by key where the kind's comparison can (users), and are otherwise
// taken to come in byte order (record.ByteOrder, see KeyOrderOf).
type KeyOrderer interface {
	KeyOrder() record.KeyOrder
}

// Unordered is implemented by extractors of documents whose partitions
// deliver records in no order of their keys that a target could be read in
// (a DynamoDB scan comes in the order of its keys' hashes). plan and verify
// then compare their streams batch by batch, looking the target's rows up
// by key, instead of merging; the conformance suite does not check their
// order.
type Unordered interface {
	Unordered() bool
}

// IsUnordered reports whether ex says its records come in no key order
// (see Unordered).
func IsUnordered(ex Extractor) bool {
	u, ok := ex.(Unordered)
	return ok && u.Unordered()
}

// ReadEstimator is implemented by extractors whose source bills reads by
// something other than one per record (DynamoDB: read capacity units by
// the bytes scanned). plan asks it for a stream's billable reads instead
// of counting one per record.
type ReadEstimator interface {
	// EstimateReads returns the billable reads reading stream s whole
	// takes; records is what Count said it holds.
	EstimateReads(ctx context.Context, s Stream, records int64) (int64, error)
}

// SharedHasher is implemented by extractors of users whose password hashes
// need parameters that every user of the source shares and that the source
// does not export (Firebase scrypt: the project's hash configuration), so
// the user gives them as options. The users sink stores them once and has
// the row of every user whose credential has their algorithm refer to them.
type SharedHasher interface {
	// SharedHash returns the shared parameters as a credential with only
	// Algorithm and Params set, or nil when the options give none. The
	// error says which options are wrong or missing, never their values.
	SharedHash() (*passwords.Credential, error)
	// SharedHashMissing says, for the warning shown when SharedHash is
	// nil, which hashes then cannot be verified ("Firebase scrypt
	// hashes") and the options that give the parameters ("--hash-rounds").
	SharedHashMissing() (hashes string, options []string)
}

// UsersSchemaDefaulter is implemented by extractors of users whose source
// keeps its users, when the user names no users schema (--users-schema),
// in a PostgreSQL schema of its own rather than the default one, so that
// the users of two platforms migrated into one database stay apart.
type UsersSchemaDefaulter interface {
	// DefaultUsersSchema is the schema's name: stable across releases
	// (runs resume only into the schema they started in).
	DefaultUsersSchema() string
}

// UsersSystemer is implemented by extractors of users that read the tables
// of an auth system a users target also writes (Supabase Auth). The CLI
// refuses to load such users into that same system: its users target is
// built for users of other platforms (new ids, mapped providers) and would
// not carry them as they are.
type UsersSystemer interface {
	// UsersSystem names the system as --users-target names it.
	UsersSystem() string
}

// TargetOwner is implemented by extractors whose claim on the target's
// tables depends on how the user configured them (an export file counts as
// its project's only when the user named the project). The engine claims
// tables for WholeSource otherwise.
type TargetOwner interface {
	// TargetOwner returns the source to claim the tables for ("" keeps
	// WholeSource) and a hint added to a refusal ("" for none). given
	// reports whether the user set an option on the command line or in the
	// --config file rather than through the environment or its default.
	TargetOwner(given func(option string) bool) (source, hint string)
}

// Bucketed is implemented by extractors of files that read one bucket, or
// the part of it whose object names start with a prefix. Plan and verify
// compare exactly the target rows of that bucket and prefix; the bucket is
// the one file records name in their bucket field (record.File.Bucket).
type Bucketed interface {
	// Bucket is the name of the bucket read, as file records give it.
	Bucket() string
	// Prefix is what the names of the objects read start with ("" for
	// every object of the bucket).
	Prefix() string
}

// ObjectNamer is implemented by extractors of files whose platform writes
// an object's address its own way ("gs://bucket/name"). Messages about an
// object (a target key collision, say) name it so, for objects of any
// bucket of the same platform.
type ObjectNamer interface {
	// ObjectURL returns the address of object name in bucket. It must be
	// a pure function of its arguments.
	ObjectURL(bucket, name string) string
}

// ObjectURL names object name of bucket as ex's platform does (see
// ObjectNamer), or "bucket/name" when ex has no naming of its own.
func ObjectURL(ex Extractor, bucket, name string) string {
	if n, ok := ex.(ObjectNamer); ok {
		return n.ObjectURL(bucket, name)
	}
	return bucket + "/" + name
}

// KeyOrderOf returns ex's key order (see KeyOrderer), or record.ByteOrder
// when ex does not declare one.
func KeyOrderOf(ex Extractor) record.KeyOrder {
	if k, ok := ex.(KeyOrderer); ok {
		if o := k.KeyOrder(); o != nil {
			return o
		}
	}
	return record.ByteOrder
}

// PlanSnapshot plans ex's streams the way a run does: it takes one read
// time from the source when ex is a Snapshotter (otherwise readTime is
// zero), plans at most partitions partitions per stream at that time, and
// sets every stream's zero ReadTime to it, so each returned stream says
// the time its partitions are to be read at. A failure to take the read
// time is returned as "taking a snapshot time of the source: ..."; an
// error from Plan is returned unchanged, for the caller to say what it
// was planning.
func PlanSnapshot(ctx context.Context, ex Extractor, partitions int) (readTime time.Time, streams []Stream, err error) {
	if s, ok := ex.(Snapshotter); ok {
		if readTime, err = s.SnapshotTime(ctx); err != nil {
			return time.Time{}, nil, fmt.Errorf("taking a snapshot time of the source: %w", err)
		}
	}
	if streams, err = ex.Plan(ctx, partitions, readTime); err != nil {
		return time.Time{}, nil, err
	}
	for i := range streams {
		if streams[i].ReadTime.IsZero() {
			streams[i].ReadTime = readTime
		}
	}
	return readTime, streams, nil
}

// ChangeStreamer is implemented by extractors whose source has a change
// feed (Firestore Listen; PostgreSQL logical replication and DynamoDB
// Streams plug in the same way). `sync` follows it after the copy;
// extractors without one are polled and compared with the target instead.
// Its contract is extractortest.ChangeStream.
type ChangeStreamer interface {
	// PositionAt returns the position from which Changes delivers every
	// change committed after t (the read time a copy recorded for its
	// stream). It does not contact the source.
	PositionAt(t time.Time) (string, error)
	// Changes follows the source from position from until ctx ends,
	// calling emit once per consistent point, in order (see
	// record.ChangeBatch):
	//   - every change committed after from's time is delivered, at least
	//     once (again after a reconnect, possibly), deletes as OpDelete —
	//     or, for sources that report state rather than history (Firestore
	//     Listen), each key's latest state at every consistent point, which
	//     the sink applies the same way (extractortest: Coalesces);
	//   - changes to one key come in commit order, and batches' ReadTimes
	//     never decrease;
	//   - a batch's Position resumes the stream just after it.
	// hints name what the target already holds (for documents, the
	// collection IDs of the mapping), for sources that must subscribe per
	// collection; they never limit what is delivered: records of
	// collections that appear later are delivered too (how they are found,
	// and what finding them costs, is the extractor's documentation).
	// Transient failures (a cut stream, UNAVAILABLE) are retried from the
	// last consistent point. It returns ErrSnapshotExpired (wrapped) when
	// from is older than the source can resume from, ctx.Err() when ctx
	// ends, and an error from emit unchanged.
	Changes(ctx context.Context, from string, hints ChangeHints, emit func(record.ChangeBatch) error) error
}

// ChangeKeeper is implemented by change streamers whose source keeps
// changes only for a named consumer that must be set up before the copy
// reads, and whose positions cannot be derived from a time without asking
// it (PostgreSQL logical replication: a replication slot and a
// publication). PositionAt is then not used: sync asks StartAfter where the
// stream starts and whether that covers the copy, and catch-ups and
// cutovers ask PositionNow. consumer names the job and its target, stably
// across runs; what the source keeps is named after it.
type ChangeKeeper interface {
	ChangeStreamer
	// KeepChanges makes the source keep, for consumer, every change
	// committed from now on, creating what that needs when it is missing
	// (nothing when the source keeps them already). sync calls it before
	// the copy's first read; plain migrate never does, since what the
	// source keeps costs it (WAL retained on its disk) until
	// ReleaseChanges. The error names what prevents following the source
	// (tables whose changes cannot be identified) and the fix.
	KeepChanges(ctx context.Context, consumer string) error
	// StartAfter returns where the stream of the changes the source kept
	// for consumer starts for a copy whose run started at copyStarted
	// (this machine's clock), and the read time it stands for. The copy
	// is covered when the source began keeping changes at or before
	// copyStarted: position is then where Changes delivers every change
	// it kept. Otherwise (or when the source cannot tell when it began)
	// covered is false, from is copyStarted, and Changes from position
	// reports ErrSnapshotExpired, so that sync catches up by a snapshot
	// comparison first. An error when the source keeps nothing for
	// consumer.
	StartAfter(ctx context.Context, consumer string, copyStarted time.Time) (position string, from time.Time, covered bool, err error)
	// PositionNow returns the position of the source now, for consumer,
	// and the source's time at it: Changes from position delivers every
	// change committed after at (a catch-up's start; a cutover's freeze
	// point, which a stream reaches when a batch's ReadTime is at or
	// after at).
	PositionNow(ctx context.Context, consumer string) (position string, at time.Time, err error)
	// Confirm tells the source that the target has committed everything
	// up to position (a batch's Position), which it may then forget. It
	// never blocks; a running Changes passes it on.
	Confirm(position string)
	// ReleaseChanges makes the source stop keeping changes for consumer
	// (drops what KeepChanges created); nil when it kept none.
	ReleaseChanges(ctx context.Context, consumer string) error
}

// ChangeHints are what a change stream may start from (see ChangeStreamer).
type ChangeHints struct {
	// Collections are document collection IDs (the last segment of each
	// collection path) the target already has tables for.
	Collections []string
}

// Getter is implemented by extractors that can read single records by key
// at a read time (Firestore BatchGetDocuments), so that a cutover re-checks
// only the keys that changed rather than every record.
type Getter interface {
	// Get reads the records with keys as they were at readTime (zero: now)
	// and calls emit once per key, in the order given: with the record, or
	// with nil when no record has that key at readTime. Reads are retried
	// internally; it returns ErrSnapshotExpired (wrapped) when readTime is
	// older than the source keeps, and an error from emit unchanged.
	Get(ctx context.Context, keys []string, readTime time.Time, emit func(key string, rec *record.Record) error) error
}

// ReadMeter is implemented by extractors whose source bills per record read;
// it reports the billable reads made so far.
type ReadMeter interface {
	BillableReads() int64
}

// ErrSnapshotExpired is returned (wrapped) by Read when readTime is older
// than the source keeps. The caller picks a new read time and continues.
var ErrSnapshotExpired = errors.New("snapshot read time is no longer available at the source")

// Spec describes a registered extractor: what one source offers for one
// kind of record.
type Spec struct {
	// Source is the platform the extractor reads ("firebase"), the value
	// of --source.
	Source string
	// Name is the extractor's own name ("firestore"), unique in the
	// registry.
	Name string
	// Kind is the kind of records it produces; a source registers at most
	// one extractor per kind.
	Kind record.Kind
	// Help is one sentence for `baasmigrate sources`.
	Help string
	// Options are its settings; the CLI turns them into flags. Extractors
	// of one source share options by name (plugin.Merge).
	Options []plugin.Option
	// New builds an extractor from resolved option values.
	New func(ctx context.Context, cfg plugin.Config) (Extractor, error)
}

var (
	registryMu sync.Mutex
	registry   = map[string]Spec{}
)

// Register adds an extractor to the registry. It panics on a duplicate
// name or a second extractor of one source for one kind; call it from
// init.
func Register(s Spec) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if s.Source == "" || s.Name == "" || s.Kind == "" || s.New == nil {
		panic(fmt.Sprintf("extractors: %q registered without a source, name, kind or constructor", s.Name))
	}
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("extractors: %q registered twice", s.Name))
	}
	for _, o := range registry {
		if o.Source == s.Source && o.Kind == s.Kind {
			panic(fmt.Sprintf("extractors: source %q registers two extractors of %ss (%q, %q)", s.Source, s.Kind, o.Name, s.Name))
		}
	}
	registry[s.Name] = s
}

// ForKind returns the extractor source registers for kind. The error says
// what is registered: the sources, or the kinds source offers.
func ForKind(source string, kind record.Kind) (Spec, error) {
	registryMu.Lock()
	defer registryMu.Unlock()
	var kinds []string
	for _, s := range registry {
		if s.Source != source {
			continue
		}
		if s.Kind == kind {
			return s, nil
		}
		kinds = append(kinds, string(s.Kind)+"s")
	}
	if len(kinds) == 0 {
		return Spec{}, unknownSourceLocked(source)
	}
	sort.Strings(kinds)
	return Spec{}, fmt.Errorf("source %q has no %ss (it offers %s)", source, kind, strings.Join(kinds, ", "))
}

// CheckSource returns nil when source is registered, and otherwise an
// error listing the registered sources.
func CheckSource(source string) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	if slices.Contains(sourcesLocked(), source) {
		return nil
	}
	return unknownSourceLocked(source)
}

func unknownSourceLocked(source string) error {
	return fmt.Errorf("unknown source %q (registered: %s)", source, strings.Join(sourcesLocked(), ", "))
}

func sourcesLocked() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range registry {
		if !seen[s.Source] {
			seen[s.Source] = true
			out = append(out, s.Source)
		}
	}
	sort.Strings(out)
	return out
}

// All returns every registered extractor, sorted by source, then in the
// order of record.Kinds.
func All() []Spec {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Spec, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return slices.Index(record.Kinds, out[i].Kind) < slices.Index(record.Kinds, out[j].Kind)
	})
	return out
}

// skipsKey is the context key of WithSkips.
type skipsKey struct{}

// WithSkips returns ctx asking extractors to emit the records they skip or
// cannot read (record.Record.Skip) instead of leaving them out: a run asks,
// so that its counts account for every record read, and so do verify (it
// reports the unreadable ones as rejected) and infer (it passes over
// them). Readers that do not ask (benchmarks) never see such records, and
// an extractor that cannot read a record fails their read instead.
func WithSkips(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipsKey{}, true)
}

// SkipsWanted reports whether ctx asks for skipped records (WithSkips).
func SkipsWanted(ctx context.Context) bool {
	v, _ := ctx.Value(skipsKey{}).(bool)
	return v
}
