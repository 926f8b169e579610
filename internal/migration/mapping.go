package migration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Inference is what Infer found.
type Inference struct {
	Mapping *mappings.Mapping
	// Documents is the number of documents observed.
	Documents int64
	// Reads is what the scan cost in billable source reads; -1 when the
	// source does not meter them (extractors.ReadMeter).
	Reads   int64
	Elapsed time.Duration
}

var errSampleFull = errors.New("sample complete")

// firstReader is implemented by extractors that can read the first n
// records of a partition asking the source for no more (Firestore: a query
// limit), so a sample is billed for what it reads, not for what the source
// sent before the reader stopped it.
type firstReader interface {
	ReadFirst(ctx context.Context, p extractors.Partition, readTime time.Time, n int, emit func(record.Record) error) error
}

// SampleAuto asks Infer to size each stream's sample itself (see
// AutoSample).
const SampleAuto = -1

// AutoSample is how many documents Infer with SampleAuto reads of a stream
// (a root collection and everything under it) that holds n documents: 1%
// of them, at least 25 (or all, when fewer) and at most 1000. A run whose
// schema grows while it copies (loaders/postgres.EvolvingDocuments) needs
// no more: what the sample misses costs an ALTER TABLE, not a second read.
// n < 0 (the source cannot count cheaply) reads 100.
func AutoSample(n int64) int {
	if n < 0 {
		return 100
	}
	return int(min(max(n/100, min(n, 25)), 1000))
}

// Infer scans the documents ex reads and infers a mapping from them: every
// document when sample is 0, else the first sample documents of each
// stream (a root collection), deterministically — each stream is then read
// as one partition. With SampleAuto each stream is first counted, when ex
// counts cheaply (extractors.Counter: Firestore bills one read per 1,000
// documents counted), and AutoSample of it read; a stream whose sample is
// empty is not read at all. Streams and partitions are read in parallel,
// workers at a time, at one snapshot (extractors.PlanSnapshot). opts are
// the inferrer's options (mappings.InferOptions).
func Infer(ctx context.Context, ex extractors.Extractor, workers, sample int, opts mappings.InferOptions) (*Inference, error) {
	start := time.Now()
	parts := workers
	if sample != 0 {
		parts = 1
	}
	_, streams, err := extractors.PlanSnapshot(ctx, ex, parts)
	if err != nil {
		return nil, fmt.Errorf("planning the scan: %w", err)
	}
	samples := make([]int, len(streams))
	for i, st := range streams {
		samples[i] = sample
		if sample == SampleAuto {
			n := int64(-1)
			if c, ok := ex.(extractors.Counter); ok {
				if n, err = c.Count(ctx, st); err != nil {
					return nil, fmt.Errorf("counting the documents of %s to size the sample: %w", st.Name, err)
				}
			}
			samples[i] = AutoSample(n)
		}
	}
	in := mappings.NewInferrer(opts)
	var docs atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i, st := range streams {
		limit := samples[i]
		if sample == SampleAuto && limit == 0 {
			continue // an empty stream: nothing to sample
		}
		if f, ok := ex.(firstReader); ok && limit > 0 && len(st.Partitions) == 1 {
			g.Go(func() error {
				return f.ReadFirst(gctx, st.Partitions[0], st.ReadTime, limit, func(r record.Record) error {
					in.Observe(r.Key, r.Fields)
					docs.Add(1)
					return nil
				})
			})
			continue
		}
		for _, p := range st.Partitions {
			g.Go(func() error {
				n := 0
				// Records an extractor skips or cannot read (record.Skip)
				// are no sample of the data, but asking for them lets a
				// malformed one pass, as the run it prepares lets it.
				err := ex.Read(extractors.WithSkips(gctx), p, st.ReadTime, "", func(r record.Record) error {
					if r.Skip != nil {
						return nil
					}
					in.Observe(r.Key, r.Fields)
					docs.Add(1)
					if n++; limit > 0 && n >= limit {
						return errSampleFull
					}
					return nil
				})
				if errors.Is(err, errSampleFull) {
					return nil
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scanning documents: %w", err)
	}
	res := &Inference{Mapping: in.Mapping(), Documents: docs.Load(), Reads: -1, Elapsed: time.Since(start)}
	if m, ok := ex.(extractors.ReadMeter); ok {
		res.Reads = m.BillableReads()
	}
	return res, nil
}

// MappingRequest says where a documents job may take its mapping from.
type MappingRequest struct {
	// Path is a mapping file to load ("" for none); it wins over all else.
	Path string
	// State, when set and Restart is not, is searched for the mapping
	// stored with the job's interrupted run, or else its last finished one,
	// so that a resumed or repeated run keeps its layout. It is only read.
	State   *postgres.State
	Restart bool
	// NoInfer forbids scanning the source for a mapping (verify: it
	// compares with what migrate did, not with a guess).
	NoInfer bool
	// Synced prefers, in State, the mapping `sync` extended with tables
	// for collections that appeared after the copy (verify and cutover
	// compare with what sync did; migrate keeps its run's mapping).
	Synced bool
	// Workers and Sample tune the inference (see Infer; Sample may be
	// SampleAuto).
	Workers, Sample int
}

// Where a mapping came from (ChosenMapping.From).
const (
	MappingFromFile     = "file"
	MappingFromRun      = "run"
	MappingFromSync     = "sync"
	MappingFromInferred = "inferred"
)

// ChosenMapping is the mapping a documents job uses and where it came from.
type ChosenMapping struct {
	Mapping *mappings.Mapping
	// From is MappingFromFile, MappingFromRun or MappingFromInferred.
	From string
	// Run is the run whose stored mapping it is (MappingFromRun), and
	// RunConfig that run's stored configuration (it says, for one, whether
	// the run grew its mapping: "schema-evolution").
	Run       int64
	RunConfig map[string]string
	// Inference is set for MappingFromInferred.
	Inference *Inference
}

// ErrNoMapping is returned by ChooseMapping when there is no file, no
// stored mapping and inference is forbidden.
var ErrNoMapping = errors.New("no mapping: none given, none stored with a run of the job, and inferring one is not allowed")

// ChooseMapping picks the mapping a documents job reading ex uses, in
// order: the file req.Path; with req.Synced, the one sync extended; the
// one stored (Job.Config "mapping") with the
// interrupted, or else the last finished, run of the same job (kind and
// ex.Source()), unless req.Restart; one inferred from the source (Infer),
// unless req.NoInfer, in which case the error is ErrNoMapping.
func ChooseMapping(ctx context.Context, ex extractors.Extractor, req MappingRequest) (*ChosenMapping, error) {
	if req.Path != "" {
		m, err := mappings.Load(req.Path)
		if err != nil {
			return nil, err
		}
		return &ChosenMapping{Mapping: m, From: MappingFromFile}, nil
	}
	if req.State != nil && !req.Restart {
		job := postgres.Job(record.KindDocument, ex.Source())
		if req.Synced {
			text, err := req.State.SyncMapping(ctx, job)
			if err != nil {
				return nil, err
			}
			if text != "" {
				m, err := mappings.Parse([]byte(text), "(mapping extended by sync)")
				if err != nil {
					return nil, err
				}
				return &ChosenMapping{Mapping: m, From: MappingFromSync}, nil
			}
		}
		run, err := req.State.RunningRun(ctx, job)
		if err != nil {
			return nil, err
		}
		if run == nil {
			if run, err = req.State.LastFinishedRun(ctx, job); err != nil {
				return nil, err
			}
		}
		if run != nil && run.Config["mapping"] != "" {
			m, err := mappings.Parse([]byte(run.Config["mapping"]), fmt.Sprintf("(mapping of run %d)", run.ID))
			if err != nil {
				return nil, err
			}
			return &ChosenMapping{Mapping: m, From: MappingFromRun, Run: run.ID, RunConfig: run.Config}, nil
		}
	}
	if req.NoInfer {
		return nil, ErrNoMapping
	}
	res, err := Infer(ctx, ex, req.Workers, req.Sample, mappings.InferOptions{})
	if err != nil {
		return nil, err
	}
	return &ChosenMapping{Mapping: res.Mapping, From: MappingFromInferred, Inference: res}, nil
}
