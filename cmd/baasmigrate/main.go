// Command baasmigrate moves an application off a Backend-as-a-Service
// (Firebase first) onto PostgreSQL and an S3-compatible object store:
// users with working passwords, documents, and files.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"
)

// Exit statuses shared by the subcommands (listed in the root command's
// help).
const (
	exitOK          = 0
	exitProblems    = 1 // the command ran but found problems (rejects, differences, a plan migrate would refuse)
	exitError       = 2 // the command could not do its job
	exitInterrupted = 3 // stopped by SIGINT/SIGTERM; running the same command again resumes
)

// interruptedMessage is what an interrupted command says last.
const interruptedMessage = "interrupted; run the same command again to resume"

// Interrupt timing: after the first SIGINT/SIGTERM the work in flight gets
// interruptGrace to finish; once it is abandoned (that, or a second signal)
// the process exits by force if it has not within interruptForce — as safe
// as kill -9, which every command survives.
const (
	interruptGrace = 20 * time.Second
	interruptForce = 5 * time.Second
)

// exitStatus carries a specific exit status out of a command.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

func main() {
	in := watchInterrupts(os.Stderr)
	stopProfile := startProfile()
	err := newRootCommand().ExecuteContext(in.context())
	stopProfile()
	os.Exit(exitCode(os.Stderr, err, in.received()))
}

// interrupts turns SIGINT and SIGTERM into two stages of cancellation.
// The first signal ends the stop context — the one commands run with:
// they stop starting work, and migrate lets its batches in flight commit —
// and starts the grace period. The second signal, or the end of the grace
// period, ends the work context as well: work in flight is abandoned (a
// transaction in flight rolls back).
type interrupts struct {
	stop, work             context.Context
	cancelStop, cancelWork context.CancelFunc
	count                  atomic.Int32
}

type interruptsKey struct{}

func watchInterrupts(stderr io.Writer) *interrupts {
	in := &interrupts{}
	in.work, in.cancelWork = context.WithCancel(context.Background())
	in.stop, in.cancelStop = context.WithCancel(in.work)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		var grace, force <-chan time.Time
		abandon := func() {
			in.cancelWork()
			grace, force = nil, time.After(interruptForce)
		}
		for {
			select {
			case sig := <-sigs:
				if in.count.Add(1) == 1 {
					fmt.Fprintf(stderr, "baasmigrate: %v: stopping after the work in flight (at most %s; %v again stops at once)\n", sig, interruptGrace, sig)
					in.cancelStop()
					grace = time.After(interruptGrace)
					continue
				}
				fmt.Fprintf(stderr, "baasmigrate: %v again: stopping at once; the batches in flight roll back\n", sig)
				abandon()
			case <-grace:
				fmt.Fprintf(stderr, "baasmigrate: the work in flight did not finish within %s: stopping at once; the batches in flight roll back\n", interruptGrace)
				abandon()
			case <-force:
				fmt.Fprintln(stderr, "baasmigrate: exiting by force;", interruptedMessage)
				os.Exit(exitInterrupted)
			}
		}
	}()
	return in
}

// context is the context commands run with; it ends at the first signal.
func (in *interrupts) context() context.Context {
	return context.WithValue(in.stop, interruptsKey{}, in)
}

func (in *interrupts) received() bool { return in.count.Load() > 0 }

// workContext returns the context for work that should finish when a
// command is interrupted, if it can within the grace period (migrate's
// commits): it ends only at a second signal or when the grace period is
// over. Outside main it is ctx itself.
func workContext(ctx context.Context) context.Context {
	if in, ok := ctx.Value(interruptsKey{}).(*interrupts); ok {
		return valuesOf{Context: in.work, values: ctx}
	}
	return ctx
}

// valuesOf is a context that ends with its Context but carries the values
// of another (the retry logger of the command's context, say).
type valuesOf struct {
	context.Context
	values context.Context
}

func (c valuesOf) Value(key any) any { return c.values.Value(key) }

// startProfile writes a CPU profile to $BAASMIGRATE_CPUPROFILE and, at
// stop, an allocation profile to $BAASMIGRATE_MEMPROFILE, when they are
// set, for engineers measuring the tool (see BENCHMARKS.md).
func startProfile() (stop func()) {
	stopCPU := startCPUProfile()
	return func() {
		stopCPU()
		writeAllocProfile()
	}
}

// writeAllocProfile writes the allocations made so far to
// $BAASMIGRATE_MEMPROFILE when it is set.
func writeAllocProfile() {
	path := os.Getenv("BAASMIGRATE_MEMPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "baasmigrate: BAASMIGRATE_MEMPROFILE:", err)
	}
}

func startCPUProfile() (stop func()) {
	path := os.Getenv("BAASMIGRATE_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baasmigrate: BAASMIGRATE_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "baasmigrate: BAASMIGRATE_CPUPROFILE:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// exitCode prints err (once, on stderr) and returns the process exit
// status for it: 0 for none; the code of an *exitStatus in its chain; 2
// for any other error (a usage error among them). A command that fails
// after an interrupt was interrupted: it exits 3, without reporting the
// cancellation as an error.
func exitCode(stderr io.Writer, err error, interrupted bool) int {
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) && !(interrupted && st.code == exitError) {
		if st.err != nil {
			fmt.Fprintln(stderr, "baasmigrate:", st.err)
		}
		return st.code
	}
	if interrupted {
		fmt.Fprintln(stderr, "baasmigrate:", interruptedMessage)
		return exitInterrupted
	}
	fmt.Fprintln(stderr, "baasmigrate:", err)
	return exitError
}
