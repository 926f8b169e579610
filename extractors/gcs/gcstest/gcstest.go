// Package gcstest starts private fake-gcs-server instances for tests.
//
// The stack's shared emulator (STORAGE_EMULATOR_HOST) runs fake-gcs-server's
// filesystem backend, which holds gigabytes without using memory but stores
// an object under its name as a file path: it cleans names ("a/../b" is
// stored as "b", "../x" escapes the bucket), cannot hold both "a" and "a/b",
// and refuses path components over 255 bytes. Tests of object names that
// Cloud Storage accepts use a private instance of the same pinned binary
// with the memory backend, which keeps every name exactly.
package gcstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// BinaryVar names an environment variable that may point at the
// fake-gcs-server binary; otherwise it is looked for on PATH and in
// <module root>/.local/bin, where `make services-up` installs it.
const BinaryVar = "BAASMIGRATE_FAKE_GCS_SERVER"

// Find returns the path of the fake-gcs-server binary: $BAASMIGRATE_FAKE_GCS_SERVER,
// else fake-gcs-server on PATH, else <module root>/.local/bin/fake-gcs-server;
// "" when there is none.
func Find() string {
	if p := os.Getenv(BinaryVar); p != "" {
		return p
	}
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p
	}
	if root, err := testenv.ModuleRoot(); err == nil {
		p := filepath.Join(root, ".local", "bin", "fake-gcs-server")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Binary returns the path of the fake-gcs-server binary, skipping t (or
// failing it when services are required) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := Find(); p != "" {
		return p
	}
	msg := "fake-gcs-server not found (set " + BinaryVar + ", put it on PATH, or run `make services-up`)"
	if testenv.ServicesRequired() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// MemoryEmulator starts a fake-gcs-server with the memory backend on a free
// loopback port for the duration of t and returns its URL
// ("http://127.0.0.1:PORT"), for --storage-emulator-host or
// STORAGE_EMULATOR_HOST.
func MemoryEmulator(t testing.TB) string {
	t.Helper()
	url, _ := MemoryEmulatorProcess(t)
	return url
}

// MemoryEmulatorProcess is MemoryEmulator that also returns the server's
// process, for tests that freeze it (SIGSTOP). The process is continued
// and killed when t ends.
func MemoryEmulatorProcess(t testing.TB) (string, *os.Process) {
	t.Helper()
	s, err := Start(Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.URL, s.Process
}

// Server is a fake-gcs-server that Start started.
type Server struct {
	URL     string      // "http://127.0.0.1:PORT"
	Process *os.Process // for callers that freeze it (SIGSTOP)
	exited  chan struct{}
}

// Stop continues the server (should it be stopped), kills it and waits
// for its exit.
func (s *Server) Stop() {
	_ = s.Process.Signal(syscall.SIGCONT)
	_ = s.Process.Kill()
	<-s.exited
}

// Start starts bin with the memory backend on a free loopback port and
// waits up to 30s for it to answer. It needs no testing.TB, so a harness
// outside tests (e2e/chaos) starts its server the same way; the caller
// stops it.
func Start(bin string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-public-host", host, "-external-url", "http://"+host, "-log-level", "error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting fake-gcs-server: %w", err)
	}
	s := &Server{URL: "http://" + host, Process: cmd.Process, exited: make(chan struct{})}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(s.exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/_internal/healthcheck", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("fake-gcs-server exited at start: %v", waitErr)
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("fake-gcs-server did not answer on %s within 30s", host)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
