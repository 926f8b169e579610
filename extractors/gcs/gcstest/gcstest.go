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
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// BinaryVar names an environment variable that may point at the
// fake-gcs-server binary; otherwise it is looked for on PATH and in
// <module root>/.local/bin, where `make services-up` installs it.
const BinaryVar = "BAASMIGRATE_FAKE_GCS_SERVER"

// Binary returns the path of the fake-gcs-server binary, skipping t (or
// failing it when services are required) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryVar); p != "" {
		return p
	}
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".local", "bin", "fake-gcs-server")
				if _, err := os.Stat(p); err == nil {
					return p
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
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
	bin := Binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-public-host", host, "-external-url", "http://"+host, "-log-level", "error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting fake-gcs-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/_internal/healthcheck", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + host
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("fake-gcs-server exited at start: %v", err)
		case <-ctx.Done():
			t.Fatalf("fake-gcs-server did not answer on %s within 30s", host)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
