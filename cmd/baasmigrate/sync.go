package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/syncer"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

func init() {
	extraCommands = append(extraCommands, newSyncCommand, newCutoverCommand, newStatusCommand)
}

func newSyncCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Copy, then keep the target converging with the live source until interrupted",
		Long: `sync first does what migrate does (copies, or resumes or skips a finished copy),
then follows the source until it is stopped (SIGINT or SIGTERM; exit 0):

  documents  from the source's change stream (Firestore: Listen; DynamoDB: the
             tables' Streams, checked before the copy), starting at the read time
             the copy recorded, so nothing written during or after the copy is
             missed: creates, updates, field deletes and deletes at every depth,
             and collections or tables that appear later (--new-collections);
  tables     from the source's logical replication (PostgreSQL/Supabase): a
             publication and a replication slot that sync creates before the
             copy reads (cutover drops them), read with pgoutput;
  users, files
             polled every --poll-interval: each poll compares the whole source with
             the target and applies what was added, changed or deleted (each poll
             costs a full listing; its source reads are logged and exported).

Every change is committed together with the stream's resume position, so a sync
killed at any moment (kill -9 included) continues exactly where it stopped when
started again. If the stored position is older than the source keeps (Firestore:
one hour), sync says so and catches up by comparing a fresh snapshot with the
target before it streams again.

Lag (how far the target is behind the source) is logged every --status-interval,
shown by baasmigrate status, and exported as Prometheus metrics with --metrics-addr.
When the application is about to switch, run baasmigrate cutover (see its help).`,
		Args: cobra.NoArgs,
		RunE: runSync,
	}
	f := cmd.Flags()
	addOptionFlags(f, targetOptions)
	f.String("only", "", "Comma-separated kinds to sync: documents, users, tables, files (default: all)")
	f.Int("workers", 4, "Partitions read and written at the same time during the copy")
	addSyncSettingsFlags(f)
	f.String("metrics-addr", "", "Serve Prometheus metrics on this `host:port` (/metrics)")
	f.Duration("status-interval", 10*time.Second, "How often to log each job's progress and lag")
	f.Bool("restart", false, "Copy everything again and follow the source from the new copy")
	f.Bool("allow-rejects", false, "Go on syncing when the copy rejected records")
	addOptionFlags(f, allKindOptions())
	return cmd
}

// addSyncSettingsFlags adds the flags readSyncSettings reads: sync's, and
// cutover's for when it catches up by itself (so one --config serves both).
func addSyncSettingsFlags(f *pflag.FlagSet) {
	addExcludeFlag(f)
	f.Int("batch-size", 500, "Records committed per transaction")
	addOptionFlags(f, []plugin.Option{batchBytesOption})
	f.Duration("poll-interval", time.Minute, "Pause between two polls of users and files (each poll reads the whole listing)")
	f.String("deletes", "hard", "What a record deleted at the source does to its row: hard (removed) or soft (kept, with _deleted_at set)")
	f.String("new-collections", syncer.NewCollectionsInfer, "Documents of collections with no table: infer (create a table for them) or reject (store them as rejects)")
	f.Duration("count-interval", 10*time.Minute, "How often documents' counts per root collection are compared with the source (cheap aggregation reads); a disagreement triggers a catch-up by snapshot comparison")
}

// syncSettings are the flags sync and cutover share.
type syncSettings struct {
	batchSize      int
	batchBytes     int64
	pollInterval   time.Duration
	softDeletes    bool
	newCollections string
	countInterval  time.Duration
}

func readSyncSettings(cmd *cobra.Command) (syncSettings, error) {
	f := cmd.Flags()
	var s syncSettings
	s.batchSize, _ = f.GetInt("batch-size")
	s.pollInterval, _ = f.GetDuration("poll-interval")
	deletes, _ := f.GetString("deletes")
	s.newCollections, _ = f.GetString("new-collections")
	s.countInterval, _ = f.GetDuration("count-interval")
	switch deletes {
	case "hard":
	case "soft":
		s.softDeletes = true
	default:
		return s, fmt.Errorf("--deletes: %q is not hard or soft", deletes)
	}
	if s.newCollections != syncer.NewCollectionsInfer && s.newCollections != syncer.NewCollectionsReject {
		return s, fmt.Errorf("--new-collections: %q is not infer or reject", s.newCollections)
	}
	if s.batchSize < 1 || s.pollInterval <= 0 {
		return s, errors.New("--batch-size and --poll-interval must be positive")
	}
	cfg, err := pluginConfig(f, []plugin.Option{batchBytesOption})
	if err != nil {
		return s, err
	}
	if s.batchBytes, err = cfg.Size(batchBytesOption.Name); err != nil {
		return s, err
	}
	return s, nil
}

func (s syncSettings) options(log *slog.Logger, m *syncer.Metrics) syncer.Options {
	return syncer.Options{BatchSize: s.batchSize, BatchBytes: s.batchBytes, SoftDeletes: s.softDeletes, NewCollections: s.newCollections,
		PollInterval: s.pollInterval, CountInterval: s.countInterval, Log: log, Metrics: m}
}

func runSync(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	settings, err := readSyncSettings(cmd)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	only, _ := f.GetString("only")
	workers, _ := f.GetInt("workers")
	restart, _ := f.GetBool("restart")
	allowRejects, _ := f.GetBool("allow-rejects")
	metricsAddr, _ := f.GetString("metrics-addr")
	statusEvery, _ := f.GetDuration("status-interval")
	source := sourceName(f)
	kinds, err := selectKinds(only, source)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	log := newLogger(cmd)

	exclusions, err := loadExclusions(cmd)
	if err != nil {
		return err
	}
	// Sources that keep changes for a consumer (PostgreSQL: a replication
	// slot) start keeping them before the copy's first read.
	if err := keepChanges(ctx, cmd, kinds, workers); err != nil {
		return err
	}

	// The copy, exactly as migrate does it (and reports it).
	m := &migrateRun{
		cmd: cmd, log: log, source: source, workers: workers, batchSize: settings.batchSize, restart: restart,
		sum: &migrateSummary{Started: time.Now().UTC()}, exclusions: exclusions,
	}
	err = m.end(ctx, m.run(ctx, kinds), "", allowRejects)
	m.close()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}

	target, err := pluginConfig(f, targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, state, err := openSyncTarget(ctx, target, len(kinds)*2+2)
	if err != nil {
		return err
	}
	defer pool.Close()
	var metrics *syncer.Metrics
	if metricsAddr != "" {
		metrics = syncer.NewMetrics()
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("--metrics-addr: %w", err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(cmd.ErrOrStderr(), "baasmigrate: metrics on http://%s/metrics\n", ln.Addr())
	}
	jobs, closeJobs, err := buildSyncJobs(ctx, cmd, "sync", kinds, pool, state, workers)
	if err != nil {
		return err
	}
	defer closeJobs()
	if restart {
		for _, j := range jobs {
			running, err := postgres.SyncRunning(ctx, pool, j.Name)
			if err != nil {
				return err
			}
			if running {
				return &exitStatus{code: exitError, err: fmt.Errorf("--restart: another process follows %s now; stop it first", j.Name)}
			}
			if err := state.ResetSync(ctx, j.Name); err != nil {
				return err
			}
		}
	}
	opts := settings.options(log, metrics)
	opts.WaitForLock = true
	g, gctx := errgroup.WithContext(ctx)
	for _, j := range jobs {
		g.Go(func() error {
			if err := syncer.Follow(gctx, pool, state, j, opts); err != nil {
				return fmt.Errorf("syncing %ss: %w", j.Kind, err)
			}
			return nil
		})
	}
	g.Go(func() error { return logSyncStatus(gctx, state, jobs, statusEvery, cmd.ErrOrStderr()) })
	fmt.Fprintf(cmd.ErrOrStderr(), "baasmigrate: following %s; stop with Ctrl-C (everything applied is kept)\n", jobNames(jobs))
	err = g.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "baasmigrate: sync stopped; everything applied is committed, and the next sync continues from there")
		return nil
	}
	return err
}

func jobNames(jobs []*syncer.Job) string {
	var names []string
	for _, j := range jobs {
		names = append(names, fmt.Sprintf("%ss (%s)", j.Kind, j.Mode()))
	}
	return strings.Join(names, ", ")
}

// syncKeepers are the kinds whose extractors may check that their source
// can be followed (extractors.ChangeChecker) or keep changes for a
// consumer (extractors.ChangeKeeper), which sync asks them to do before
// the copy; syncFinishers make what a kind does at an identical cutover
// (syncer.Job.Finish). Kinds register in init.
var (
	syncKeepers   = map[record.Kind]bool{}
	syncFinishers = map[record.Kind]func(ex extractors.Extractor, sink loaders.Sink, pool *pgxpool.Pool) func(context.Context) (string, error){}
)

// keepChanges asks the extractor of each kind in syncKeepers to check
// that its source can be followed (extractors.ChangeChecker) and, when it
// keeps changes for a named consumer (extractors.ChangeKeeper), to start
// keeping them.
func keepChanges(ctx context.Context, cmd *cobra.Command, kinds []*kindSpec, workers int) error {
	f := cmd.Flags()
	var keepers []*kindSpec
	for _, k := range kinds {
		if syncKeepers[k.Kind] {
			keepers = append(keepers, k)
		}
	}
	if len(keepers) == 0 {
		return nil
	}
	target, err := pluginConfig(f, targetOptions)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pool, _, err := openSyncTarget(ctx, target, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, k := range keepers {
		cfg, err := pluginConfig(f, k.Options)
		if err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w", k.Kind, err)}
		}
		env := &buildEnv{Command: "sync", Source: sourceName(f), Config: cfg, Pool: pool, Log: newLogger(cmd), Stderr: cmd.ErrOrStderr(), Workers: workers, Given: optionGiven(f)}
		_, ex, err := env.Extractor(ctx, k.Kind)
		if err != nil {
			return fmt.Errorf("preparing to sync %ss: %w", k.Kind, err)
		}
		if c, ok := ex.(extractors.ChangeChecker); ok {
			err = c.CheckChanges(ctx)
		}
		ck, ok := ex.(extractors.ChangeKeeper)
		if ok && err == nil {
			var consumer string
			if consumer, err = syncConsumer(ctx, pool, postgres.Job(k.Kind, ex.Source())); err == nil {
				err = ck.KeepChanges(ctx, consumer)
			}
		}
		ex.Close()
		if err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("syncing %ss: %w", k.Kind, err)}
		}
	}
	return nil
}

// syncConsumer names job followed into the target pool connects to, for
// sources that keep changes per consumer: the job and the target cluster
// and database, so that two targets of one source never share what the
// source keeps.
func syncConsumer(ctx context.Context, pool *pgxpool.Pool, job string) (string, error) {
	var id string
	if err := pool.QueryRow(ctx, "SELECT (SELECT system_identifier::text FROM pg_control_system()) || '/' || current_database()").Scan(&id); err != nil {
		return "", fmt.Errorf("reading the target's identity: %w", err)
	}
	return job + " into " + id, nil
}

// openSyncTarget connects to the target and opens the state.
func openSyncTarget(ctx context.Context, target plugin.Config, conns int) (*pgxpool.Pool, *postgres.State, error) {
	timeout, err := retry.Timeout(target, retry.TargetTimeoutOption)
	if err != nil {
		return nil, nil, &exitStatus{code: exitError, err: err}
	}
	pool, err := connectTarget(ctx, target.String("postgres"), conns, timeout)
	if err != nil {
		return nil, nil, err
	}
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, state, nil
}

// buildSyncJobs assembles, per kind, what sync and cutover follow: the
// extractor and sink migrate uses, and the adapter verify uses.
func buildSyncJobs(ctx context.Context, cmd *cobra.Command, command string, kinds []*kindSpec, pool *pgxpool.Pool, state *postgres.State, workers int) ([]*syncer.Job, func(), error) {
	f := cmd.Flags()
	log := newLogger(cmd)
	exclusions, err := loadExclusions(cmd)
	if err != nil {
		return nil, nil, err
	}
	var jobs []*syncer.Job
	closeAll := func() {
		for _, j := range jobs {
			j.Extractor.Close()
		}
	}
	for _, k := range kinds {
		cfg, err := pluginConfig(f, k.Options)
		if err != nil {
			closeAll()
			return nil, nil, &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w", k.Kind, err)}
		}
		if err := plugin.CheckRequired(k.Options, cfg); err != nil {
			closeAll()
			return nil, nil, &exitStatus{code: exitError, err: fmt.Errorf("%ss: %w", k.Kind, err)}
		}
		env := &buildEnv{Command: command, Source: sourceName(f), Config: cfg, Pool: pool, State: state, Log: log,
			Stderr: cmd.ErrOrStderr(), Workers: workers, Given: optionGiven(f)}
		built, err := k.Build(ctx, env)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("preparing to sync %ss: %w", k.Kind, err)
		}
		venv := *env
		venv.Command = "cutover"
		cmp, err := k.Compare(ctx, &venv)
		if err != nil {
			built.Extractor.Close()
			closeAll()
			return nil, nil, fmt.Errorf("preparing to compare %ss: %w", k.Kind, err)
		}
		cmp.Extractor.Close()
		j := &syncer.Job{
			Name: postgres.Job(k.Kind, built.Extractor.Source()), Kind: k.Kind,
			Extractor: built.Extractor, Sink: built.Sink, Adapter: cmp.Adapter, Config: built.Config,
			Exclude: exclusions.For(k.Kind),
		}
		if exclusions != nil {
			j.Config = maps.Clone(j.Config)
			if j.Config == nil {
				j.Config = map[string]string{}
			}
			j.Config[excludeConfigKey] = exclusions.Digest()
		}
		if _, ok := built.Extractor.(extractors.ChangeKeeper); ok {
			if j.Consumer, err = syncConsumer(ctx, pool, j.Name); err != nil {
				closeAll()
				built.Extractor.Close()
				return nil, nil, err
			}
		}
		// An extractor that reads differently for comparisons (tables)
		// does so here: sync and cutover read the source only to compare
		// (catch-ups, verification) and to follow its changes.
		if c, ok := built.Extractor.(interface{ ForComparison() }); ok {
			c.ForComparison()
		}
		if s, ok := built.Sink.(interface{ ForSync() }); ok {
			s.ForSync()
		}
		if fin := syncFinishers[k.Kind]; fin != nil {
			j.Finish = fin(built.Extractor, built.Sink, pool)
		}
		// Deletes of files name objects of the bucket read, not another
		// bucket sharing the table.
		if b, ok := built.Extractor.(extractors.Bucketed); ok {
			if s, ok := built.Sink.(interface{ SetBucket(string) }); ok {
				s.SetBucket(b.Bucket())
			}
		}
		if k.Kind == record.KindDocument {
			if j.Mapping, err = mappings.Parse([]byte(built.Config["mapping"]), "(mapping of the copy)"); err != nil {
				closeAll()
				return nil, nil, err
			}
			j.Remap = documentsRemap(ctx, env, built.Extractor, built.Config["schema-evolution"])
		}
		jobs = append(jobs, j)
	}
	return jobs, closeAll, nil
}

// documentsRemap builds the documents sink and adapter of a mapping sync
// extended with new collections.
func documentsRemap(ctx context.Context, env *buildEnv, ex extractors.Extractor, evolution string) func(m *mappings.Mapping) (loaders.Sink, diff.Adapter, error) {
	return func(m *mappings.Mapping) (loaders.Sink, diff.Adapter, error) {
		sink, err := newDocumentsSink(env, ex, m, evolution)
		if err != nil {
			return nil, nil, err
		}
		owner, err := tableOwner(env.Config, ex)
		if err != nil {
			return nil, nil, err
		}
		sink.SetOwner(owner)
		var roots []string
		if r, ok := ex.(extractors.Rooted); ok {
			roots = r.Roots()
		}
		a, err := diff.NewDocuments(m, extractors.KeyOrderOf(ex), roots...)
		if err != nil {
			return nil, nil, err
		}
		if err := useVault(ctx, env, sink, a); err != nil {
			return nil, nil, err
		}
		return sink, a, nil
	}
}

// logSyncStatus writes every job's progress and lag to w every interval.
func logSyncStatus(ctx context.Context, state *postgres.State, jobs []*syncer.Job, every time.Duration, w io.Writer) error {
	if every <= 0 {
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, j := range jobs {
			st, err := state.SyncStream(ctx, j.Name)
			if err != nil || st == nil {
				continue
			}
			line := fmt.Sprintf("sync %ss: applied %d, deleted %d, rejected %d, lag %s (source time %s)",
				j.Kind, st.Applied, st.Deleted, st.Rejected, lagOf(st).Round(time.Millisecond), st.ReadTime.Format(time.RFC3339))
			if st.LastError != "" {
				line += "; last error: " + st.LastError
			}
			fmt.Fprintln(w, line)
		}
	}
}

// lagOf is how far st's target is behind: now minus the source time it
// reflects.
func lagOf(st *postgres.SyncStream) time.Duration {
	if st.ReadTime.IsZero() {
		return 0
	}
	return max(time.Since(st.ReadTime), 0)
}
