package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

var fast = Policy{Attempts: 4, Initial: time.Microsecond, Max: time.Millisecond}

// logTo returns a context whose retries are logged, at debug level, to
// the returned buffer.
func logTo() (context.Context, *syncBuffer) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return WithLogger(context.Background(), log), &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDoRetriesOnlyTransientErrors(t *testing.T) {
	calls := 0
	err := Do(context.Background(), fast, "op", func(context.Context) error {
		calls++
		if calls < 3 {
			return Mark(errors.New("busy"), true)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want success after 3", err, calls)
	}

	calls = 0
	permanent := errors.New("bad request")
	err = Do(context.Background(), fast, "op", func(context.Context) error {
		calls++
		return Mark(permanent, false)
	})
	if !errors.Is(err, permanent) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want the permanent error after 1", err, calls)
	}
}

// TestDoLogsEveryRetry: each retry is a debug line naming the operation,
// the attempt, the delay and the class; the give-up error counts the
// attempts and keeps the class.
func TestDoLogsEveryRetry(t *testing.T) {
	ctx, log := logTo()
	err := Do(ctx, fast, "reading users", func(context.Context) error {
		return Mark(errors.New("unavailable"), true)
	})
	var gaveUp *GaveUpError
	if !errors.As(err, &gaveUp) || gaveUp.Attempts != 4 || !strings.Contains(err.Error(), "reading users: gave up after 4 attempts") {
		t.Fatalf("Do = %v, want a give-up after 4 attempts naming the operation", err)
	}
	if !IsRetryable(err) {
		t.Fatalf("the give-up error should still be classified transient")
	}
	lines := strings.Count(log.String(), "level=DEBUG msg=retrying op=\"reading users\"")
	if lines != 3 || !strings.Contains(log.String(), "class=transient") || !strings.Contains(log.String(), "attempt=3 of=4") {
		t.Fatalf("want 3 debug retry lines with attempt and class, got:\n%s", log)
	}
}

// TestRetriesDoNotNest: an error an inner loop gave up on is not retried
// by an enclosing Do (how a full disk once took 8×8 = 64 attempts).
func TestRetriesDoNotNest(t *testing.T) {
	ctx, log := logTo()
	outer, inner := 0, 0
	err := Do(ctx, fast, "batch", func(ctx context.Context) error {
		outer++
		return Do(ctx, fast, "object", func(context.Context) error {
			inner++
			return Mark(errors.New("reset"), true)
		})
	})
	if err == nil || outer != 1 || inner != 4 {
		t.Fatalf("Do = %v after %d outer and %d inner calls, want 1 and 4", err, outer, inner)
	}
	if n := strings.Count(log.String(), "msg=retrying"); n != 3 {
		t.Fatalf("%d retries logged, want 3:\n%s", n, log)
	}
}

// TestDoWarnsOnceAfterWarnAfter: an operation retrying for longer than
// WarnAfter gets one warning. The clock is the test's: Backoff.start is
// moved back rather than waiting.
func TestDoWarnsOnceAfterWarnAfter(t *testing.T) {
	ctx, log := logTo()
	b := fast.Start("listing objects")
	b.start = b.start.Add(-WarnAfter - time.Second)
	for range 3 {
		if err := b.Retry(ctx, Mark(errors.New("throttled"), true)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(log.String(), "level=WARN msg=\"still retrying\" op=\"listing objects\""); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, log)
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow := Policy{Attempts: 10, Initial: time.Hour, Max: time.Hour}
	calls := 0
	err := Do(ctx, slow, "op", func(context.Context) error {
		calls++
		cancel()
		return Mark(errors.New("unavailable"), true)
	})
	if calls != 1 || err == nil {
		t.Fatalf("Do = %v after %d calls, want the error after 1", err, calls)
	}
}

// TestDoCutsSilentCalls: a call that hears nothing for the policy's
// timeout is cut with a StallError (transient, logged as a warning) and
// retried; one that keeps receiving (Alive) or is busy on its own side
// (Hold) is not cut, however long it takes.
func TestDoCutsSilentCalls(t *testing.T) {
	ctx, log := logTo()
	p := Policy{Attempts: 3, Initial: time.Microsecond, Max: time.Millisecond, Timeout: 200 * time.Millisecond, TimeoutOption: "source-timeout"}
	calls := 0
	err := Do(ctx, p, "reading a page", func(ctx context.Context) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // the source says nothing
			return ctx.Err()
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Do = %v after %d calls, want success at the second", err, calls)
	}
	if !strings.Contains(log.String(), "stopped answering") || !strings.Contains(log.String(), "no answer for 200ms (--source-timeout)") {
		t.Fatalf("the stall was not logged:\n%s", log)
	}

	// A busy caller holds the clock; a talking source keeps it alive.
	err = Do(ctx, p, "streaming", func(ctx context.Context) error {
		release := Hold(ctx)
		time.Sleep(3 * p.Timeout) // the caller's own work, not a wait for the source
		release()
		for range 20 {
			time.Sleep(p.Timeout / 20)
			Alive(ctx)
		}
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("a busy or talking call was cut: %v", err)
	}
}

func TestStallErrorIsTransient(t *testing.T) {
	err := fmt.Errorf("reading: %w", &StallError{Timeout: time.Second, Err: context.Canceled})
	if failure.Classify(err) != failure.Transient {
		t.Fatalf("a stall wrapping context.Canceled must be transient, got %v", failure.Classify(err))
	}
}

// TestPatienceIsBounded documents the default policy's total patience.
func TestPatienceIsBounded(t *testing.T) {
	p := Default
	// Delays 250ms, 500ms, 1s, 2s, 4s, 8s, 15s, each at most +25%.
	if got, want := p.Patience(), (30*time.Second+750*time.Millisecond)*5/4; got != want {
		t.Fatalf("Patience() = %s, want %s", got, want)
	}
	p.Timeout = time.Minute
	if got := p.Patience(); got != (30*time.Second+750*time.Millisecond)*5/4+8*time.Minute {
		t.Fatalf("Patience() with a timeout = %s", got)
	}
}

func TestFromConfigTimeouts(t *testing.T) {
	p, err := FromConfig(plugin.Config{})
	if err != nil || p.Timeout != time.Minute || p.Attempts != 8 {
		t.Fatalf("FromConfig({}) = %+v, %v; want the defaults, a 1m timeout", p, err)
	}
	p, err = FromConfig(plugin.Config{"source-timeout": "5s"})
	if err != nil || p.Timeout != 5*time.Second {
		t.Fatalf("FromConfig(5s) = %+v, %v", p, err)
	}
	for _, bad := range []string{"0", "0s", "-1s", "soon"} {
		if _, err := FromConfig(plugin.Config{"source-timeout": bad}); err == nil || !strings.Contains(err.Error(), "--source-timeout") {
			t.Errorf("--source-timeout %q: err %v, want a refusal naming the option", bad, err)
		}
		if _, err := Timeout(plugin.Config{"target-timeout": bad}, TargetTimeoutOption); err == nil || !strings.Contains(err.Error(), "--target-timeout") {
			t.Errorf("--target-timeout %q: err %v, want a refusal naming the option", bad, err)
		}
	}
}

// TestDoFailsAtOnceOnAFullDisk: a full disk — the target database's
// (SQLSTATE 53100) or a directory's (ENOSPC, here from /dev/full) — is not
// retried, and the error says what to do, once however many loops it
// passes through.
func TestDoFailsAtOnceOnAFullDisk(t *testing.T) {
	full := []error{fmt.Errorf("committing a batch: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"})}
	if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err == nil {
		_, werr := f.Write([]byte("x"))
		f.Close()
		full = append(full, fmt.Errorf("writing a file: %w", werr))
	}
	for _, cause := range full {
		ctx, log := logTo()
		calls := 0
		err := Do(ctx, fast, "outer", func(ctx context.Context) error {
			return Do(ctx, fast, "inner", func(context.Context) error {
				calls++
				return cause
			})
		})
		if calls != 1 || strings.Contains(log.String(), "retrying") {
			t.Errorf("%v: %d calls, retries logged:\n%s", cause, calls, log)
		}
		if !strings.Contains(err.Error(), "free space") || strings.Count(err.Error(), "free space") != 1 {
			t.Errorf("%v: the error should say once what to do: %v", cause, err)
		}
		if failure.Classify(err) != failure.Permanent {
			t.Errorf("%v: class %v, want permanent", cause, failure.Classify(err))
		}
	}
}

func TestDescribeNamesTheOperationOnce(t *testing.T) {
	base := errors.New("refused")
	if err := Describe("listing", base); err.Error() != "listing: refused" || !errors.Is(err, base) {
		t.Errorf("Describe = %v", err)
	}
	gaveUp := &GaveUpError{What: "listing", Attempts: 2, Err: base}
	if err := Describe("listing", fmt.Errorf("x: %w", gaveUp)); err.Error() != "x: "+gaveUp.Error() {
		t.Errorf("Describe of a give-up = %v", err)
	}
	if Describe("listing", nil) != nil {
		t.Error("Describe(nil) is not nil")
	}
}
