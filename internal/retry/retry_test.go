package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var fast = Policy{Attempts: 4, Initial: time.Microsecond, Max: time.Millisecond}

func TestDoRetriesOnlyRetryableErrors(t *testing.T) {
	calls := 0
	err := Do(context.Background(), fast, nil, nil, func(context.Context) error {
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
	err = Do(context.Background(), fast, nil, nil, func(context.Context) error {
		calls++
		return Mark(permanent, false)
	})
	if !errors.Is(err, permanent) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want the permanent error after 1", err, calls)
	}
}

func TestDoGivesUpWithCount(t *testing.T) {
	var retries int
	err := Do(context.Background(), fast, nil, func(int, error, time.Duration) { retries++ }, func(context.Context) error {
		return Mark(errors.New("unavailable"), true)
	})
	if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") || retries != 3 {
		t.Fatalf("Do = %v with %d retries, want give-up after 4 attempts and 3 retries", err, retries)
	}
	if !IsRetryable(err) {
		t.Fatalf("the give-up error should still be classified retryable")
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow := Policy{Attempts: 10, Initial: time.Hour, Max: time.Hour}
	err := Do(ctx, slow, nil, func(int, error, time.Duration) { cancel() }, func(context.Context) error {
		return Mark(errors.New("unavailable"), true)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
}
