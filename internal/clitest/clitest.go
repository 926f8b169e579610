// Package clitest runs the real baasmigrate binary in end-to-end tests:
// built once per test process, run with a controlled environment, and
// startable in the background so tests can kill it at any moment.
package clitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/procstat"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

var (
	buildMu sync.Mutex
	builds  = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of a baasmigrate binary built from this checkout,
// once per test process. It is built without the race detector, which would
// make the end-to-end runs several times slower; the packages' own tests
// run under -race.
func Binary(t testing.TB) string {
	t.Helper()
	return Build(t, "./cmd/baasmigrate")
}

// Build returns the path of a binary built from pkg, a main package of this
// module given from its root ("./cmd/baasmigrate"), once per test process
// and without the race detector, as Binary does.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{}
		builds[pkg] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		root, err := testenv.ModuleRoot()
		if err != nil {
			b.err = err
			return
		}
		b.path, b.err = buildInto(root, pkg)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// buildInto builds pkg to <root>/.local/testbin/<name>, a path that is the
// same for every test process of this checkout, so test runs leave no
// binaries behind (a temporary directory per process is never removed: no
// hook runs when a test binary exits, and a killed one runs nothing).
// Several test processes build concurrently (go test runs packages in
// parallel), so each builds to a file of its own and renames it into
// place: a rename replaces the path atomically, and a process already
// running the old file keeps it.
func buildInto(root, pkg string) (string, error) {
	name := path.Base(pkg)
	dir := filepath.Join(root, ".local", "testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, name+".building-")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed
	cmd := exec.Command("go", "build", "-o", tmp.Name(), pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", name, err, out)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	return final, nil
}

// Result is what one run of the binary produced.
type Result struct {
	Stdout, Stderr string
	// Code is the exit status (-1 when killed by a signal).
	Code int
	// PeakRSS is the process's peak resident memory in bytes, as last seen
	// in /proc (VmHWM) while it ran. (The rusage of a child is no use: on
	// Linux it includes the parent's memory at the time of the fork.)
	PeakRSS int64
}

// Env is the environment of a run: the test process's environment without
// the service variables (so a test says exactly what it uses), plus these
// KEY=VALUE entries.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
			"GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// Run runs the binary to completion (at most ten minutes).
func Run(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("running baasmigrate %v: %v", args, err)
	}
	exited := make(chan struct{})
	peak := procstat.WatchPeakRSS(cmd.Process.Pid, exited)
	err := cmd.Wait()
	close(exited)
	res := Result{Stdout: out.String(), Stderr: errb.String(), PeakRSS: <-peak}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("running baasmigrate %v: %v", args, err)
	}
	return res
}

// Process is a run in the background.
type Process struct {
	cmd  *exec.Cmd
	out  output
	errb output
	done chan struct{}
	err  error
}

// output collects what a process writes, safely read while it runs, and
// wakes those waiting for a piece of text.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// next returns the text so far and a channel closed at the next write.
func (o *output) next() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed == nil {
		o.changed = make(chan struct{})
	}
	return o.buf.String(), o.changed
}

// Start starts the binary in the background. The test's cleanup kills it if
// it is still running.
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(Binary(t), args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting baasmigrate: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to baasmigrate: %v", sig, err)
	}
}

// WaitStderr waits until the process has written text to its standard
// error and returns true, or returns false when it exits first. It fails t
// when neither happens within limit (a guard against a hung run, not a
// timing assertion).
func (p *Process) WaitStderr(t testing.TB, text string, limit time.Duration) bool {
	t.Helper()
	timeout := time.After(limit)
	for {
		so, changed := p.errb.next()
		if strings.Contains(so, text) {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			return strings.Contains(p.errb.String(), text)
		case <-timeout:
			t.Fatalf("baasmigrate wrote no %q to stderr within %s; so far:\n%s", text, limit, so)
		}
	}
}

// Stderr returns what the process has written to its standard error so
// far.
func (p *Process) Stderr() string { return p.errb.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Result returns the outcome; call it after Done is closed.
func (p *Process) Result() Result {
	<-p.done
	res := Result{Stdout: p.out.String(), Stderr: p.errb.String()}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		res.Code = exit.ExitCode()
	}
	return res
}

// KillAt starts the binary and kills it with SIGKILL (kill -9) as soon as
// progress() reaches target, polling every few milliseconds, unless it exits
// first — then it must have exited 0. It reports whether the run was killed
// mid-way, and fails t when progress stalls for longer than stall.
func KillAt(t testing.TB, env []string, args []string, target int64, progress func() int64, stall time.Duration) (killed bool) {
	t.Helper()
	p := Start(t, env, args...)
	deadline := time.Now().Add(stall)
	for progress() < target {
		select {
		case <-p.Done():
			if res := p.Result(); res.Code != 0 {
				t.Fatalf("baasmigrate exited %d before being killed:\n%s", res.Code, res.Stderr)
			}
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress to %d within %s", target, stall)
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case <-p.Done():
		if res := p.Result(); res.Code != 0 {
			t.Fatalf("baasmigrate exited %d:\n%s", res.Code, res.Stderr)
		}
		return false
	default:
		p.Kill()
		return true
	}
}
