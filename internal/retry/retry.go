// Package retry runs operations against remote services with exponential
// backoff, retrying only errors that are known to be safe to retry.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// Policy says how often and how patiently to retry.
type Policy struct {
	// Attempts is the maximum number of calls, including the first (≥ 1).
	Attempts int
	// Initial is the delay before the first retry; each retry doubles it up
	// to Max. Delays are jittered by ±25%.
	Initial, Max time.Duration
}

// Default suits calls to cloud APIs: about a minute of patience in total.
var Default = Policy{Attempts: 8, Initial: 250 * time.Millisecond, Max: 15 * time.Second}

// Retryable is implemented by errors that know whether retrying may help.
type Retryable interface {
	Retryable() bool
}

// IsRetryable reports whether any error in err's chain says it is retryable.
func IsRetryable(err error) bool {
	var r Retryable
	return errors.As(err, &r) && r.Retryable()
}

// Mark wraps err so that IsRetryable reports retry. A nil err stays nil.
func Mark(err error, retry bool) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, retry: retry}
}

type markedError struct {
	err   error
	retry bool
}

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() error   { return e.err }
func (e *markedError) Retryable() bool { return e.retry }

// Do calls fn until it succeeds, returns an error classify does not call
// retryable, ctx ends, or the policy's attempts are used up. A nil classify
// means IsRetryable. The error after the last attempt says how many were
// made. onRetry, if not nil, is told about each retry before its delay.
func Do(ctx context.Context, p Policy, classify func(error) bool, onRetry func(attempt int, err error, delay time.Duration), fn func(ctx context.Context) error) error {
	if classify == nil {
		classify = IsRetryable
	}
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	delay := p.Initial
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !classify(err) {
			return err
		}
		if attempt >= p.Attempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		d := jitter(delay)
		if onRetry != nil {
			onRetry(attempt, err, d)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting to retry after: %v)", ctx.Err(), err)
		case <-t.C:
		}
		if delay *= 2; delay > p.Max {
			delay = p.Max
		}
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// Options that let users tune retries of a source's calls; extractors list
// them among their options and build their policy with FromConfig.
var (
	AttemptsOption = plugin.Option{
		Name:    "retry-attempts",
		Help:    "Calls made to the source before a failing operation is given up (throttling and outages are retried with backoff).",
		Default: "8",
	}
	BackoffOption = plugin.Option{
		Name:    "retry-backoff",
		Help:    "Delay before the first retry; it doubles up to 15s.",
		Default: "250ms",
	}
)

// FromConfig builds a policy from the retry options.
func FromConfig(cfg plugin.Config) (Policy, error) {
	p := Default
	n, err := cfg.Int(AttemptsOption.Name, p.Attempts)
	if err != nil {
		return p, err
	}
	if n < 1 {
		return p, fmt.Errorf("--%s must be at least 1", AttemptsOption.Name)
	}
	p.Attempts = n
	if s := cfg.String(BackoffOption.Name); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return p, fmt.Errorf("--%s: %q is not a duration like 250ms", BackoffOption.Name, s)
		}
		p.Initial = d
	}
	return p, nil
}
