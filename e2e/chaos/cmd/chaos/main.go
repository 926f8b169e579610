// Command chaos runs the fault campaign (package e2e/chaos) against the
// local services and records its report in RELIABILITY.md. `make chaos`
// runs it after services-up; it reads the services from the environment or
// .local/services.env.
//
//	go run ./e2e/chaos/cmd/chaos [-seed N] [-only documents/kill9,files] [-scale small|full] [-record RELIABILITY.md]
//
// It exits 1 when a record was lost or duplicated or a case failed, 2 when
// it could not run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/chaos"
	"github.com/baasmigrate/baasmigrate/extractors/gcs/gcstest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
	os.Exit(code)
}

func run() (int, error) {
	seed := flag.Uint64("seed", 0, "seed of every random choice (0: a new one, printed)")
	only := flag.String("only", "", "comma-separated cases (kind/fault), kinds or faults to run (default: the whole matrix)")
	scale := flag.String("scale", "full", "dataset size per case: small or full")
	record := flag.String("record", "", "Markdown file whose chaos section gets the report (e.g. RELIABILITY.md)")
	sourceTimeout := flag.Duration("source-timeout", 5*time.Second, "--source-timeout given to the binary in stall cases")
	binary := flag.String("binary", "", "baasmigrate binary (default: built from this checkout)")
	keep := flag.Bool("keep", false, "keep the work directory: each case's mapping and every run's log (run-NN.log)")
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano()) % 1_000_000
	}
	fmt.Fprintf(os.Stderr, "[chaos] seed %d (repeat with -seed %d)\n", *seed, *seed)

	cases, err := selectCases(*only)
	if err != nil {
		return 2, err
	}
	cfg := chaos.Config{Seed: *seed, SourceTimeout: *sourceTimeout, Log: os.Stderr, Binary: *binary}
	switch *scale {
	case "small":
		cfg.Scale = chaos.Small
	case "full":
		cfg.Scale = chaos.Full
	default:
		return 2, fmt.Errorf("-scale %q: want small or full", *scale)
	}
	need := func(key string) string {
		v, ok := testenv.Lookup(key)
		if !ok || v == "" {
			err = fmt.Errorf("%s is not set (run make services-up, or set it)", key)
		}
		return v
	}
	cfg.PostgresURL = need("DATABASE_URL")
	cfg.PostgresAdminURL = need("BAASMIGRATE_PG_ADMIN_URL")
	cfg.FirestoreHost = need("FIRESTORE_EMULATOR_HOST")
	cfg.AuthHost = need("FIREBASE_AUTH_EMULATOR_HOST")
	cfg.S3Endpoint = need("S3_ENDPOINT")
	cfg.S3AccessKey = need("S3_ACCESS_KEY")
	cfg.S3SecretKey = need("S3_SECRET_KEY")
	cfg.S3Region, _ = testenv.Lookup("AWS_REGION")
	if err != nil {
		return 2, err
	}
	// The Go clients seeding the sources read these.
	os.Setenv("FIRESTORE_EMULATOR_HOST", cfg.FirestoreHost)
	os.Setenv("FIREBASE_AUTH_EMULATOR_HOST", cfg.AuthHost)
	root, err := testenv.ModuleRoot()
	if err != nil {
		return 2, err
	}
	cfg.FakeGCSBinary = gcstest.Find()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "baasmigrate-chaos-")
	if err != nil {
		return 2, err
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "[chaos] keeping the work directory %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	cfg.WorkDir = work
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join(work, "baasmigrate")
		build := exec.CommandContext(ctx, "go", "build", "-o", cfg.Binary, "./cmd/baasmigrate")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return 2, fmt.Errorf("building baasmigrate: %w", err)
		}
	}
	camp, err := chaos.New(cfg)
	if err != nil {
		return 2, err
	}
	defer camp.Close()

	start := time.Now()
	var results []*chaos.Result
	for _, cs := range cases {
		if ctx.Err() != nil {
			return 2, ctx.Err()
		}
		res, err := camp.Run(ctx, cs)
		if err != nil {
			return 2, fmt.Errorf("%s: %w", cs, err)
		}
		results = append(results, res)
	}
	took := time.Since(start)
	report := chaos.Report(cfg, results, took)
	fmt.Println(report)
	if *record != "" {
		if err := chaos.Record(filepath.Join(root, *record), report); err != nil {
			return 2, fmt.Errorf("recording the report: %w", err)
		}
		fmt.Fprintf(os.Stderr, "[chaos] recorded in %s\n", *record)
	}
	t := chaos.Sum(results)
	fmt.Fprintf(os.Stderr, "[chaos] seed %d: %d cases run, %d failed, lost %d, duplicated %d, in %s\n", *seed, t.Ran, t.Failed, t.Lost, t.Duplicated, took.Round(time.Second))
	if t.Failed > 0 || t.Lost > 0 || t.Duplicated > 0 {
		return 1, nil
	}
	return 0, nil
}

// selectCases returns the matrix's cases matching the -only list: each
// entry a case (kind/fault), a kind, or a fault. Not-applicable cases are
// kept (the report says why they did not run) unless -only is given.
func selectCases(only string) ([]chaos.Case, error) {
	var all []chaos.Case
	for _, k := range chaos.Kinds {
		for _, f := range chaos.Faults {
			all = append(all, chaos.Case{Kind: k, Fault: f})
		}
	}
	if only == "" {
		return all, nil
	}
	var out []chaos.Case
	for _, want := range strings.Split(only, ",") {
		want = strings.TrimSpace(want)
		n := len(out)
		for _, cs := range all {
			if ok, _ := cs.Applicable(); ok && (want == cs.String() || want == string(cs.Kind) || want == string(cs.Fault)) {
				out = append(out, cs)
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("-only %q matches no applicable case (kinds %v, faults %v)", want, chaos.Kinds, chaos.Faults)
		}
	}
	return out, nil
}
