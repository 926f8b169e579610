// Command baasmigrate moves an application off a Backend-as-a-Service
// (Firebase first) onto PostgreSQL and an S3-compatible object store:
// users with working passwords, documents, and files.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// Exit statuses shared by the subcommands.
const (
	exitOK       = 0
	exitProblems = 1 // the command ran but found problems (rejects, differences)
	exitError    = 2 // the command could not do its job
)

// exitError carries a specific exit status out of a command.
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startProfile()
	err := newRootCommand().ExecuteContext(ctx)
	stopProfile()
	os.Exit(exitCode(err))
}

// startProfile writes a CPU profile to $BAASMIGRATE_CPUPROFILE when it is
// set, for engineers measuring the tool (see BENCHMARKS.md).
func startProfile() (stop func()) {
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

// exitCode prints err (once) and returns the process exit status for it.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) {
		if st.err != nil {
			fmt.Fprintln(os.Stderr, "baasmigrate:", st.err)
		}
		return st.code
	}
	fmt.Fprintln(os.Stderr, "baasmigrate:", err)
	return exitError
}
