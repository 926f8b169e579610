// Package benchreport is what the benchmark programs (bench/*) share to
// find the services, build the command, make fresh target databases and
// write their results into BENCHMARKS.md: a description of the machine,
// CPU times and the replacement of one program's section between its
// markers.
package benchreport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// Build builds the baasmigrate command (./cmd/baasmigrate, run from the
// module root as the benchmarks are) into dir and returns its path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "baasmigrate")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/baasmigrate").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building: %v\n%s", err, out)
	}
	return bin, nil
}

// Need is the value of the service setting key (from the environment or
// what `make services-up` wrote), or an error saying to start the services.
func Need(key string) (string, error) {
	v, ok := testenv.Lookup(key)
	if !ok {
		return "", fmt.Errorf("%s is not set: run `make services-up` first", key)
	}
	return v, nil
}

// CPUOrNA prints a CPU time rounded to the millisecond, or "n/a" for one
// not measured (negative, as procstat.WatchBackendCPU sends when
// PostgreSQL's backends are not visible on this machine).
func CPUOrNA(d time.Duration) string {
	if d < 0 {
		return "n/a (PostgreSQL is not on this machine)"
	}
	return d.Round(time.Millisecond).String()
}

// Machine describes the computer, for the record: CPU model, CPU count,
// memory, OS/architecture and Go version.
func Machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(data), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %d GiB RAM", (kb+(1<<19))>>20)
	}
	return fmt.Sprintf("%s, %d CPUs%s, %s/%s, %s", cpu, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// LoadAverage is the machine's 1-, 5- and 15-minute load, which says how
// much else ran beside a benchmark.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Record puts section between the markers of the named program
// ("<!-- bench/NAME:begin -->" … ":end -->") in the Markdown file at path,
// creating the file or the markers when missing. Other sections are left
// alone.
func Record(path, name, section string) error {
	begin, end := "<!-- bench/"+name+":begin -->", "<!-- bench/"+name+":end -->"
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		data = []byte("# Benchmarks\n\n")
	} else if err != nil {
		return err
	}
	text := string(data)
	block := begin + "\n" + strings.TrimRight(section, "\n") + "\n" + end + "\n"
	if i, j := strings.Index(text, begin), strings.Index(text, end); i >= 0 && j > i {
		text = text[:i] + block + strings.TrimPrefix(text[j+len(end):], "\n")
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + block
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// FreshDatabase creates database name (dropping one left by an earlier
// run) on the server of the connection string base and returns its URL
// and a function dropping it.
func FreshDatabase(ctx context.Context, base, name string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to the target database: %w", err)
	}
	defer conn.Close(ctx)
	if err := DropDatabase(ctx, conn, name); err != nil {
		return "", nil, fmt.Errorf("dropping database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL is not a URL")
	}
	u.Path = "/" + name
	drop := func() {
		if c, err := pgx.Connect(context.WithoutCancel(ctx), base); err == nil {
			DropDatabase(context.WithoutCancel(ctx), c, name)
			c.Close(context.WithoutCancel(ctx))
		}
	}
	return u.String(), drop, nil
}

// DropDatabase drops database name, if it exists, ending its sessions.
func DropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// RecreateDatabase drops database name if it exists and creates it anew,
// owned by the role baasmigrate, through the admin connection string, and
// returns the connection string dsn with name as its database.
func RecreateDatabase(ctx context.Context, admin, dsn, name string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connecting as the administrator: %w", err)
	}
	defer conn.Close(ctx)
	if err := DropDatabase(ctx, conn, name); err != nil {
		return "", fmt.Errorf("recreating database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER baasmigrate"); err != nil {
		return "", fmt.Errorf("recreating database %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.User, cfg.Password), Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))),
		Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String(), nil
}

// Alternately runs a then b in even rounds (0, 2, …) and b then a in odd
// ones, so that neither always runs second, on caches the other warmed. It
// stops at the first error.
func Alternately(round int, a, b func() error) error {
	if round%2 == 1 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}

// Median is the round whose key is the median of rounds' (the upper one
// of an even count); rounds keep their order. rounds must not be empty.
func Median[R any](rounds []R, key func(R) float64) R {
	sorted := slices.Clone(rounds)
	slices.SortStableFunc(sorted, func(a, b R) int { return cmp.Compare(key(a), key(b)) })
	return sorted[len(sorted)/2]
}
