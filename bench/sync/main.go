// Command sync benchmarks `baasmigrate sync` and `baasmigrate cutover`
// against the local stack (the Firestore emulator and PostgreSQL):
//
//   - lag: a steady writer (e2e/syncwriter) makes -rate document writes per
//     second for -duration while sync follows it. A poller reads, every
//     -poll, the newest source update time applied in each of the target's
//     tables (an index on _update_time, which the benchmark adds, makes
//     that a cheap read); a commit counts as applied at the first poll at
//     which every table it wrote to has reached its commit time. Reported:
//     p50, p90, p99 and max lag (source commit → applied, within the poll's
//     resolution), writes applied per second, the sync process's CPU and
//     peak RSS, and its RSS over time (second sixth against last third).
//     With -compare-discovery (default) the phase runs again with sync's
//     discovery of new collections off, to show what discovery costs;
//   - cutover window: for each of -cutover-docs documents, migrate, sync,
//     `cutover --prepare`, then -cutover-changes document writes, then
//     `cutover`: the window it reports and its wall time, next to a full
//     `verify` of the same target (what the window would be if cutover
//     re-read everything), so the figures are ratios measured in one run.
//
// Results go to standard output and, with -record, into BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/e2e/syncwriter"
	"github.com/baasmigrate/baasmigrate/internal/benchreport"
	"github.com/baasmigrate/baasmigrate/internal/procstat"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

type config struct {
	rate           float64
	duration       time.Duration
	docs           int
	batch          int
	poll           time.Duration
	cutoverDocs    []int
	cutoverChanges int
	record         string
	skipLag        bool
	skipCutover    bool
	// compareDiscovery repeats the lag phase with sync's discovery of new
	// collections off (--firestore-discover=false).
	compareDiscovery bool
}

func main() {
	var c config
	var sizes string
	flag.Float64Var(&c.rate, "rate", 1000, "Document writes per second of the steady writer")
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "How long the writer runs (lag phase)")
	flag.IntVar(&c.docs, "docs", 10000, "Documents in the source before the lag phase")
	flag.IntVar(&c.batch, "batch", 10, "Most document writes per commit of the writer (1..batch, 5.5 on average for 10)")
	flag.DurationVar(&c.poll, "poll", 10*time.Millisecond, "How often the target is polled for what sync applied")
	flag.StringVar(&sizes, "cutover-docs", "10000,100000", "Source sizes for the cutover window, comma-separated")
	flag.IntVar(&c.cutoverChanges, "cutover-changes", 1000, "Document writes between `cutover --prepare` and `cutover`")
	flag.StringVar(&c.record, "record", "", "Also write the result section into this Markdown file (e.g. BENCHMARKS.md)")
	flag.BoolVar(&c.skipLag, "skip-lag", false, "Skip the lag phase")
	flag.BoolVar(&c.skipCutover, "skip-cutover", false, "Skip the cutover phase")
	flag.BoolVar(&c.compareDiscovery, "compare-discovery", true, "Repeat the lag phase with sync's discovery of new collections off (--firestore-discover=false), to show its cost")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench/sync: -cutover-docs %q: want positive integers\n", sizes)
			os.Exit(2)
		}
		c.cutoverDocs = append(c.cutoverDocs, n)
	}
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sync:", err)
		os.Exit(1)
	}
}

// stack is the local services and the binary under test.
type stack struct {
	host, admin, dsn, bin, dir string
}

func need(key string) (string, error) {
	v, ok := testenv.Lookup(key)
	if !ok {
		return "", fmt.Errorf("%s is not set: run `make services-up` first", key)
	}
	return v, nil
}

func run(ctx context.Context, c config) error {
	var s stack
	var err error
	if s.host, err = need("FIRESTORE_EMULATOR_HOST"); err != nil {
		return err
	}
	if s.admin, err = need("BAASMIGRATE_PG_ADMIN_URL"); err != nil {
		return err
	}
	if s.dsn, err = need("DATABASE_URL"); err != nil {
		return err
	}
	os.Setenv("FIRESTORE_EMULATOR_HOST", s.host)
	if s.dir, err = os.MkdirTemp("", "bench-sync-"); err != nil {
		return err
	}
	defer os.RemoveAll(s.dir)
	if s.bin, err = benchreport.Build(s.dir); err != nil {
		return err
	}

	var lags []*lagResult
	if !c.skipLag {
		variants := [][]string{nil}
		if c.compareDiscovery {
			variants = append(variants, []string{"--firestore-discover=false"})
		}
		for i, flags := range variants {
			lag, err := lagPhase(ctx, s, c, fmt.Sprintf("lag%d", i+1), flags...)
			if err != nil {
				return fmt.Errorf("lag phase %v: %w", flags, err)
			}
			lags = append(lags, lag)
		}
	}
	var cuts []cutoverResult
	if !c.skipCutover {
		for _, n := range c.cutoverDocs {
			r, err := cutoverPhase(ctx, s, n, c.cutoverChanges)
			if err != nil {
				return fmt.Errorf("cutover phase, %d documents: %w", n, err)
			}
			cuts = append(cuts, r)
		}
	}
	section := report(c, lags, cuts)
	fmt.Print(section)
	if c.record != "" {
		return benchreport.Record(c.record, "sync", section)
	}
	return nil
}

// source is one fresh project with a writer's documents, migrated into a
// fresh database.
type source struct {
	project, targetDSN, mapping string
	client                      *firestore.Client
	w                           *syncwriter.Writer
	pool                        *pgxpool.Pool
	env                         []string
}

func (src *source) close() {
	src.client.Close()
	src.pool.Close()
}

// newSource seeds n documents into a fresh project and migrates them.
func newSource(ctx context.Context, s stack, name string, n int, opts syncwriter.Options) (*source, error) {
	src := &source{project: fmt.Sprintf("demo-bench-sync-%s-%d", name, time.Now().UnixNano())}
	var err error
	if src.targetDSN, err = benchreport.RecreateDatabase(ctx, s.admin, s.dsn, "bench_sync_"+name); err != nil {
		return nil, err
	}
	if src.client, err = firestore.NewClient(ctx, src.project); err != nil {
		return nil, err
	}
	if src.pool, err = pgxpool.New(ctx, src.targetDSN); err != nil {
		return nil, err
	}
	src.w = syncwriter.New(src.client, opts)
	start := time.Now()
	if err := src.w.Seed(ctx, n); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%s: seeded %d documents in %s\n", name, n, time.Since(start).Round(time.Millisecond))
	src.env = append(os.Environ(), "GCLOUD_PROJECT="+src.project, "DATABASE_URL="+src.targetDSN, "FIRESTORE_EMULATOR_HOST="+s.host)
	src.mapping = filepath.Join(s.dir, name+"-mapping.yaml")
	if out, err := command(src.env, s.bin, "infer", "--out", src.mapping).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("infer: %v\n%s", err, out)
	}
	start = time.Now()
	if out, err := command(src.env, s.bin, "migrate", "--only", "documents", "--mapping", src.mapping, "--no-progress").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("migrate: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "%s: migrated in %s\n", name, time.Since(start).Round(time.Millisecond))
	return src, nil
}

// syncProcess is a running `baasmigrate sync`.
type syncProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	peak   <-chan int64
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startSync(s stack, src *source, extra ...string) (*syncProcess, error) {
	args := append([]string{"sync", "--only", "documents", "--no-progress"}, extra...)
	p := &syncProcess{cmd: command(src.env, s.bin, args...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	p.peak = procstat.WatchPeakRSS(p.cmd.Process.Pid, exited)
	go func() {
		p.err = p.cmd.Wait()
		close(exited)
		close(p.done)
	}()
	return p, nil
}

// stop interrupts sync (SIGINT) and returns its CPU time and peak RSS.
func (p *syncProcess) stop() (cpu time.Duration, peak int64, err error) {
	select {
	case <-p.done:
		return 0, 0, fmt.Errorf("sync ended by itself: %v\n%s", p.err, p.stderr.String())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
	peak = <-p.peak
	if p.err != nil {
		return 0, peak, fmt.Errorf("sync after SIGINT: %v\n%s", p.err, p.stderr.String())
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime(), peak, nil
}

// lagResult is what the lag phase measured.
type lagResult struct {
	writes, commits, measured int64
	achievedRate, appliedRate float64
	p50, p90, p99, maxLag     time.Duration
	cpu                       time.Duration
	peak                      int64
	rssFirst, rssLast         int64
	rssSamples                []int64
	duration                  time.Duration
	catchUp                   time.Duration
	load                      string
	tables, startDocs         int
	pollInterval              time.Duration
	flags                     string // sync's flags beyond --only documents
}

// commitInfo is one commit of the writer: when the source committed it and
// the tables it wrote rows of.
type commitInfo struct {
	at     time.Time
	tables []string
}

// sample is one poll: when it was taken and the newest update time applied
// per table (a running maximum).
type sample struct {
	wall   time.Time
	newest map[string]time.Time
}

func lagPhase(ctx context.Context, s stack, c config, name string, syncFlags ...string) (*lagResult, error) {
	weights := map[syncwriter.Op]int{syncwriter.OpUpdate: 45, syncwriter.OpOverwrite: 10, syncwriter.OpFieldDelete: 10,
		syncwriter.OpAdd: 25, syncwriter.OpDeleteLeaf: 7, syncwriter.OpRecreate: 3}
	var mu sync.Mutex
	var commits []commitInfo
	var m *mappings.Mapping
	tableOf := func(path string) string {
		segs := strings.Split(path, "/")
		for i := 1; i < len(segs)-1; i += 2 {
			segs[i] = "{}"
		}
		pattern := strings.Join(segs[:len(segs)-1], "/")
		for _, t := range m.Tables {
			if t.Collection == pattern {
				return t.Name
			}
		}
		return ""
	}
	src, err := newSource(ctx, s, name, c.docs, syncwriter.Options{Seed: 1, Rate: c.rate, MaxBatch: c.batch, NewCollections: -1, Weights: weights,
		OnCommit: func(seq int64, at time.Time, written, _ []string) {
			mu.Lock()
			defer mu.Unlock()
			if m == nil {
				return
			}
			ci := commitInfo{at: at}
			for _, p := range written {
				if t := tableOf(p); t != "" && !slices.Contains(ci.tables, t) {
					ci.tables = append(ci.tables, t)
				}
			}
			commits = append(commits, ci)
		}})
	if err != nil {
		return nil, err
	}
	defer src.close()
	loaded, err := mappings.Load(src.mapping)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	m = loaded
	mu.Unlock()
	// An index per table makes the poll's max(_update_time) cheap; sync's
	// writes maintain it too (a small extra cost, the same for every row).
	for _, t := range m.Tables {
		q := fmt.Sprintf("CREATE INDEX ON %s (%s)", pgx.Identifier{m.Schema, t.Name}.Sanitize(), pgx.Identifier{mappings.ColUpdateTime}.Sanitize())
		if _, err := src.pool.Exec(ctx, q); err != nil {
			return nil, err
		}
	}

	p, err := startSync(s, src, syncFlags...)
	if err != nil {
		return nil, err
	}
	// Poll the target and the sync process's memory.
	pollCtx, stopPoll := context.WithCancel(ctx)
	var samples []sample
	var rss []int64
	var pollErr error
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		newest := map[string]time.Time{}
		tick := time.NewTicker(c.poll)
		defer tick.Stop()
		lastRSS := time.Time{}
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-tick.C:
			}
			cur := map[string]time.Time{}
			for _, t := range m.Tables {
				var at *time.Time
				err := src.pool.QueryRow(pollCtx, fmt.Sprintf("SELECT max(%s) FROM %s", pgx.Identifier{mappings.ColUpdateTime}.Sanitize(),
					pgx.Identifier{m.Schema, t.Name}.Sanitize())).Scan(&at)
				if err != nil {
					if pollCtx.Err() == nil {
						pollErr = err
					}
					return
				}
				if at != nil && at.After(newest[t.Name]) {
					newest[t.Name] = *at
				}
				cur[t.Name] = newest[t.Name]
			}
			mu.Lock()
			samples = append(samples, sample{wall: time.Now(), newest: cur})
			if time.Since(lastRSS) >= time.Second {
				lastRSS = time.Now()
				rss = append(rss, vmRSS(p.cmd.Process.Pid))
			}
			mu.Unlock()
		}
	}()

	// The writer starts once sync follows: one commit is made and waited
	// for, so the lag measured is that of following, not of starting.
	if err := src.w.Step(ctx); err != nil {
		stopPoll()
		p.stop()
		return nil, err
	}
	mu.Lock()
	first := commits[len(commits)-1]
	commits = nil
	mu.Unlock()
	if err := waitApplied(&mu, &samples, first, 2*time.Minute, p); err != nil {
		stopPoll()
		p.stop()
		return nil, fmt.Errorf("waiting for sync to apply a first change: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: writer at %.0f writes/s for %s, sync %v\n", name, c.rate, c.duration, syncFlags)
	wctx, stopWriter := context.WithTimeout(ctx, c.duration)
	start := time.Now()
	werr := src.w.Run(wctx)
	stopWriter()
	writeTime := time.Since(start)
	if werr != nil {
		stopPoll()
		p.stop()
		return nil, werr
	}
	mu.Lock()
	all := append([]commitInfo(nil), commits...)
	mu.Unlock()
	// Wait (at most two minutes) until the last commit is applied.
	var last commitInfo
	for _, ci := range all {
		if len(ci.tables) > 0 {
			last = ci
		}
	}
	if err := waitApplied(&mu, &samples, last, 2*time.Minute, p); err != nil {
		stopPoll()
		p.stop()
		return nil, fmt.Errorf("the writer's last commit: %w", err)
	}
	caughtUp := time.Since(start)
	stopPoll()
	<-polled
	if pollErr != nil {
		p.stop()
		return nil, pollErr
	}
	cpu, peak, err := p.stop()
	if err != nil {
		return nil, err
	}

	// Lag of each commit that wrote a row: first sample at which all its
	// tables reached its commit time.
	// Each table's newest time only grows from sample to sample, so
	// "applied" is monotone in the sample index: a binary search finds it.
	var lags []time.Duration
	for _, ci := range all {
		if len(ci.tables) == 0 {
			continue
		}
		k := sort.Search(len(samples), func(i int) bool { return applied(samples[i], ci.at, ci.tables) })
		if k == len(samples) {
			return nil, fmt.Errorf("a commit at %s was never seen applied", ci.at)
		}
		lags = append(lags, max(0, samples[k].wall.Sub(ci.at)))
	}
	slices.Sort(lags)
	pct := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	st := src.w.Stats()
	r := &lagResult{
		writes: st.Writes, commits: st.Commits, measured: int64(len(lags)),
		achievedRate: float64(st.Writes) / writeTime.Seconds(),
		appliedRate:  float64(st.Writes) / caughtUp.Seconds(),
		p50:          pct(0.50), p90: pct(0.90), p99: pct(0.99), maxLag: lags[len(lags)-1],
		cpu: cpu, peak: peak, rssSamples: rss, duration: writeTime, catchUp: caughtUp - writeTime,
		load: benchreport.LoadAverage(), tables: len(m.Tables), startDocs: c.docs, pollInterval: c.poll,
	}
	if n := len(rss); n >= 6 {
		r.rssFirst, r.rssLast = mean(rss[n/6:n/3]), mean(rss[2*n/3:])
	}
	r.flags = strings.Join(syncFlags, " ")
	fmt.Fprintf(os.Stderr, "%s: %d writes in %d commits, p50 %s p99 %s, applied %.0f writes/s, peak RSS %d MiB\n",
		name, r.writes, r.commits, r.p50, r.p99, r.appliedRate, r.peak>>20)
	return r, nil
}

// waitApplied polls the samples until ci is applied, sync exits, or limit
// passes.
func waitApplied(mu *sync.Mutex, samples *[]sample, ci commitInfo, limit time.Duration, p *syncProcess) error {
	deadline := time.Now().Add(limit)
	for {
		mu.Lock()
		n := len(*samples)
		ok := n > 0 && applied((*samples)[n-1], ci.at, ci.tables)
		mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("sync exited: %v\n%s", p.err, tail(p.stderr.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not applied within %s\n%s", limit, tail(p.stderr.String(), 30))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// applied reports whether every table has reached at in sample s.
func applied(s sample, at time.Time, tables []string) bool {
	for _, t := range tables {
		if s.newest[t].Before(at) {
			return false
		}
	}
	return true
}

func mean(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	var s int64
	for _, x := range xs {
		s += x
	}
	return s / int64(len(xs))
}

// vmRSS is the process's current resident memory in bytes (0 when gone).
func vmRSS(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cutoverResult is one size's cutover measurement.
type cutoverResult struct {
	docs, changes  int
	wall           time.Duration // the cutover command, start to exit
	window         time.Duration // freeze → verified, as cutover reports it (0: not reported)
	reread         int64         // records cutover re-read, as it reports (-1: not reported)
	prepare        time.Duration // cutover --prepare, start to exit
	verify         time.Duration // a full verify of the same target, start to exit
	cutoverStdout  string
	stoppedWall    time.Duration // the same cutover again, sync stopped, nothing to apply
	stoppedWindow  time.Duration
	windowReported bool
}

func cutoverPhase(ctx context.Context, s stack, n, changes int) (cutoverResult, error) {
	r := cutoverResult{docs: n, changes: changes, reread: -1}
	name := fmt.Sprintf("cut%d", n)
	src, err := newSource(ctx, s, name, n, syncwriter.Options{Seed: uint64(n), MaxBatch: 10, NewCollections: -1,
		Weights: map[syncwriter.Op]int{syncwriter.OpUpdate: 60, syncwriter.OpFieldDelete: 10, syncwriter.OpAdd: 20, syncwriter.OpDeleteLeaf: 10}})
	if err != nil {
		return r, err
	}
	defer src.close()
	p, err := startSync(s, src)
	if err != nil {
		return r, err
	}
	defer func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}()
	t0 := time.Now()
	if out, code, err := runCode(src.env, s.bin, "cutover", "--only", "documents", "--prepare", "--json"); err != nil || code != 0 {
		return r, fmt.Errorf("cutover --prepare: exit %d, %v\n%s", code, err, out)
	}
	r.prepare = time.Since(t0)
	// Exactly `changes` document writes, then the freeze.
	for src.w.Stats().Writes < int64(changes) {
		if err := src.w.Step(ctx); err != nil {
			return r, err
		}
	}
	r.changes = int(src.w.Stats().Writes)
	t0 = time.Now()
	out, code, err := runCode(src.env, s.bin, "cutover", "--only", "documents", "--json")
	r.wall = time.Since(t0)
	if err != nil || code != 0 {
		return r, fmt.Errorf("cutover: exit %d, %v\n%s", code, err, out)
	}
	r.cutoverStdout = out
	r.window, r.reread, r.windowReported = cutoverFigures(out)
	if _, _, err := p.stop(); err != nil {
		return r, err
	}
	// The same cutover again with sync stopped and nothing left to apply:
	// no wait for sync's next consistent point, only the re-check.
	t0 = time.Now()
	out, code, err = runCode(src.env, s.bin, "cutover", "--only", "documents", "--json")
	r.stoppedWall = time.Since(t0)
	if err != nil || code != 0 {
		return r, fmt.Errorf("cutover with sync stopped: exit %d, %v\n%s", code, err, out)
	}
	r.stoppedWindow, _, _ = cutoverFigures(out)
	t0 = time.Now()
	if out, code, err := runCode(src.env, s.bin, "verify", "--only", "documents", "--format", "json"); err != nil || code != 0 {
		return r, fmt.Errorf("verify: exit %d, %v\n%s", code, err, tail(out, 20))
	}
	r.verify = time.Since(t0)
	fmt.Fprintf(os.Stderr, "%s: prepare %s, cutover %s (window %s, re-read %d), with sync stopped %s (window %s), full verify %s\n", name,
		r.prepare.Round(time.Millisecond), r.wall.Round(time.Millisecond), r.window, r.reread, r.stoppedWall.Round(time.Millisecond),
		r.stoppedWindow, r.verify.Round(time.Millisecond))
	return r, nil
}

// cutoverFigures finds the window and the records re-read in cutover's
// JSON: the first number under a key naming the window ("window…", in
// seconds or as a Go duration string) and under a key naming re-reads.
func cutoverFigures(out string) (window time.Duration, reread int64, ok bool) {
	reread = -1
	var v any
	if json.Unmarshal([]byte(out), &v) != nil {
		return 0, -1, false
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		k := strings.ToLower(key)
		switch x := v.(type) {
		case map[string]any:
			for kk, vv := range x {
				walk(kk, vv)
			}
		case []any:
			for _, vv := range x {
				walk(key, vv)
			}
		case float64:
			switch {
			case strings.Contains(k, "window") && !ok:
				if strings.Contains(k, "ms") || strings.Contains(k, "milli") {
					window = time.Duration(x * float64(time.Millisecond))
				} else {
					window = time.Duration(x * float64(time.Second))
				}
				ok = true
			case (strings.Contains(k, "reread") || strings.Contains(k, "re_read") || strings.Contains(k, "rechecked")) && reread < 0:
				reread = int64(x)
			}
		case string:
			if strings.Contains(k, "window") && !ok {
				if d, err := time.ParseDuration(x); err == nil {
					window, ok = d, true
				}
			}
		}
	}
	walk("", v)
	return window, reread, ok
}

func report(c config, lags []*lagResult, cuts []cutoverResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Sync and cutover: Firestore emulator → PostgreSQL\n\nMeasured %s on %s. Command: `go run ./bench/sync -record BENCHMARKS.md`",
		time.Now().UTC().Format("2006-01-02"), benchreport.Machine())
	if c.duration != 60*time.Second || c.rate != 1000 {
		fmt.Fprintf(&b, " (here `-rate %g -duration %s`)", c.rate, c.duration)
	}
	b.WriteString(".\n\n")
	if len(lags) > 0 {
		l := lags[0]
		fmt.Fprintf(&b, `### Lag under a steady writer

A writer (e2e/syncwriter, seeded) makes document writes at %.0f/s for %s, in commits of 1–%d writes (updates,
overwrites, field deletes, adds, deletes, re-creations), against a source of %d documents in %d tables, while
`+"`baasmigrate sync --only documents`"+` follows it. Lag is the source's commit time → the first poll of the
target (every %s, an index on _update_time) at which every table the commit wrote has reached that time.
Each column is its own run, one after the other, each with a fresh source and target.

`, c.rate, c.duration, c.batch, l.startDocs, l.tables, l.pollInterval)
		row := func(name string, f func(*lagResult) string) {
			fmt.Fprintf(&b, "| %s |", name)
			for _, l := range lags {
				fmt.Fprintf(&b, " %s |", f(l))
			}
			b.WriteString("\n")
		}
		ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
		b.WriteString("| figure |")
		for _, l := range lags {
			name := "sync (defaults)"
			if l.flags != "" {
				name = "sync `" + l.flags + "`"
			}
			fmt.Fprintf(&b, " %s |", name)
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(lags)) + "\n")
		row("writes made (commits) / achieved rate", func(l *lagResult) string {
			return fmt.Sprintf("%d (%d) / %.0f/s", l.writes, l.commits, l.achievedRate)
		})
		row("p50 lag", func(l *lagResult) string { return ms(l.p50) })
		row("p90 lag", func(l *lagResult) string { return ms(l.p90) })
		row("p99 lag (goal < 1 s)", func(l *lagResult) string { return "**" + ms(l.p99) + "**" })
		row("max lag", func(l *lagResult) string { return ms(l.maxLag) })
		row("writes applied per second (all ÷ time until the last was applied)", func(l *lagResult) string { return fmt.Sprintf("%.0f", l.appliedRate) })
		row("applied ÷ written rate (goal 1.00)", func(l *lagResult) string { return fmt.Sprintf("**%.2f**", l.appliedRate/l.achievedRate) })
		row("writer's end → last write applied", func(l *lagResult) string { return ms(l.catchUp) })
		row("CPU of sync (share of one core)", func(l *lagResult) string {
			return fmt.Sprintf("%s (%.0f%%)", ms(l.cpu), 100*l.cpu.Seconds()/(l.duration+l.catchUp).Seconds())
		})
		row("peak RSS of sync", func(l *lagResult) string { return fmt.Sprintf("%d MiB", l.peak>>20) })
		row("RSS: second sixth → last third (goal ≈ 1.00)", func(l *lagResult) string {
			return fmt.Sprintf("%d → %d MiB (**%.2f**)", l.rssFirst>>20, l.rssLast>>20, ratio(l.rssLast, l.rssFirst))
		})
		b.WriteString("\n")
		if len(lags) == 2 {
			on, off := lags[0], lags[1]
			fmt.Fprintf(&b, "Discovery on ÷ off: p99 lag %.2f×, max lag %.2f×, applied rate %.2f×, CPU %.2f×, peak RSS %.2f×. "+
				"Sync's discovery lists, at every consistent point, the root collections and the collection IDs under each document "+
				"the batch writes, one call per document (docs/sources.md), before the batch is applied.\n\n",
				on.p99.Seconds()/off.p99.Seconds(), on.maxLag.Seconds()/off.maxLag.Seconds(), on.appliedRate/off.appliedRate,
				on.cpu.Seconds()/off.cpu.Seconds(), float64(on.peak)/float64(off.peak))
		}
		for _, l := range lags {
			name := "defaults"
			if l.flags != "" {
				name = "`" + l.flags + "`"
			}
			fmt.Fprintf(&b, "RSS every second, %s (MiB): %s. Load average after it: %s.\n\n", name, mibList(l.rssSamples), l.load)
		}
	}
	if len(cuts) > 0 {
		b.WriteString(`### Cutover window

For each size: migrate, start sync, ` + "`cutover --prepare`" + ` (the bulk verify while sync runs), then the
given number of document writes (updates, field deletes, adds, deletes), then ` + "`cutover`" + ` with sync running
(freeze → sync has applied everything up to the freeze → re-check of the changed keys and the counts); then sync
is stopped and the same ` + "`cutover`" + ` runs again (nothing left to apply: no wait for sync, only the re-check).
Baseline in the same run: a full ` + "`verify`" + ` of the same target, i.e. what the window would be if cutover
re-read everything.

| documents | writes since --prepare | --prepare | cutover, sync running: wall (reported window) | records re-read | again, sync stopped: wall (window) | full verify | window ÷ full verify |
|---:|---:|---:|---:|---:|---:|---:|---:|
`)
		for _, r := range cuts {
			win := "not reported"
			if r.windowReported {
				win = r.window.Round(time.Millisecond).String()
			}
			rr := "not reported"
			if r.reread >= 0 {
				rr = fmt.Sprint(r.reread)
			}
			fmt.Fprintf(&b, "| %d | %d | %s | %s (%s) | %s | %s (%s) | %s | **%.2f** |\n", r.docs, r.changes, r.prepare.Round(time.Millisecond),
				r.wall.Round(time.Millisecond), win, rr, r.stoppedWall.Round(time.Millisecond), r.stoppedWindow.Round(time.Millisecond),
				r.verify.Round(time.Millisecond), r.window.Seconds()/r.verify.Seconds())
		}
		if len(cuts) >= 2 {
			a, z := cuts[0], cuts[len(cuts)-1]
			fmt.Fprintf(&b, "\nData grew %.1f×: cutover's reported window with sync running %.2f×, with sync stopped %.2f×; a full verify %.2f× "+
				"(goal: the window grows with the changes, not with the data).\n", float64(z.docs)/float64(a.docs),
				z.window.Seconds()/a.window.Seconds(), z.stoppedWindow.Seconds()/a.stoppedWindow.Seconds(), z.verify.Seconds()/a.verify.Seconds())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func mibList(xs []int64) string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprint(x>>20))
	}
	return strings.Join(out, " ")
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func command(env []string, bin string, args ...string) *exec.Cmd {
	c := exec.Command(bin, args...)
	c.Env = env
	return c
}

// runCode runs the binary and returns its standard output (followed, when
// it did not exit 0, by its standard error) and exit status.
func runCode(env []string, bin string, args ...string) (string, int, error) {
	cmd := command(env, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String() + "\n" + errb.String(), exit.ExitCode(), nil
	}
	return out.String(), 0, err
}
