// Package retry runs operations against remote services with a deadline
// per attempt and exponential backoff, retrying only what
// failure.Classify calls transient, and logging every retry.
//
// # Policies
//
// A Policy bounds the patience of one operation: at most Attempts calls,
// each cut after Timeout without an answer, with delays between them
// doubling from Initial up to Max (jittered ±25%). Patience returns the
// resulting upper bound. The defaults (Default, the --retry-attempts,
// --retry-backoff, --source-timeout and --target-timeout options) give
// about 31 s of delays over 8 attempts, plus the time the attempts
// themselves take, each bounded by its timeout.
//
// Retries do not nest: an error that already exhausted a policy (a
// *GaveUpError in its chain) is not retried again by an enclosing Do, so
// that, say, an object retried 8 times inside a batch does not make the
// batch retry 8 times more (that is how a full disk once took 64 attempts
// and 4 minutes to fail).
//
// # Logging
//
// Do logs each retry at debug level (baasmigrate -v) — what is retried,
// the attempt, the delay and the error's class — and a warning, once per
// operation, when it has been retrying for more than WarnAfter. The logger
// travels in the context (WithLogger), so that extractors and sinks need
// no logger of their own.
package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

// Policy says how often and how patiently to retry.
type Policy struct {
	// Attempts is the maximum number of calls, including the first (≥ 1).
	Attempts int
	// Initial is the delay before the first retry; each retry doubles it up
	// to Max. Delays are jittered by ±25%.
	Initial, Max time.Duration
	// Timeout cuts an attempt that has received nothing for this long (a
	// unary call: its whole duration; a stream: the wait for the next
	// message, see Alive). Zero means no deadline of its own.
	Timeout time.Duration
	// TimeoutOption names the setting of Timeout in messages
	// ("source-timeout").
	TimeoutOption string
}

// Default suits calls to cloud APIs: 8 attempts, about 31 s of delays in
// total.
var Default = Policy{Attempts: 8, Initial: 250 * time.Millisecond, Max: 15 * time.Second}

// WarnAfter is how long an operation retries before a warning says so.
const WarnAfter = 30 * time.Second

// Patience is the longest p can take to give up: every attempt running to
// its Timeout (when set) plus every delay at its longest (MaxDelays).
func (p Policy) Patience() time.Duration {
	return p.MaxDelays() + time.Duration(max(p.Attempts, 1))*p.Timeout
}

// MaxDelays is the longest p waits between attempts, in total.
func (p Policy) MaxDelays() time.Duration {
	var total time.Duration
	delay := p.Initial
	for i := 1; i < max(p.Attempts, 1); i++ {
		total += delay + delay/4
		if delay *= 2; delay > p.Max {
			delay = p.Max
		}
	}
	return total
}

// IsRetryable reports whether err is worth retrying: failure.Classify
// calls it transient.
func IsRetryable(err error) bool {
	return err != nil && failure.Classify(err) == failure.Transient
}

// Mark wraps err so that it is classified transient (retry true) or
// permanent. A nil err stays nil.
func Mark(err error, retry bool) error {
	if retry {
		return failure.Mark(err, failure.Transient)
	}
	return failure.Mark(err, failure.Permanent)
}

// GaveUpError is the error of an operation whose retries are used up. It
// keeps the class of its last error, but is not retried again.
type GaveUpError struct {
	What     string
	Attempts int
	Elapsed  time.Duration
	Err      error
}

func (e *GaveUpError) Error() string {
	s := fmt.Sprintf("gave up after %d attempts in %s", e.Attempts, e.Elapsed.Round(time.Millisecond))
	if e.What != "" {
		s = e.What + ": " + s
	}
	s += ": " + e.Err.Error()
	if a := failure.Advice(e.Err, ""); a != "" {
		s += "; " + a
	}
	return s
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// Describe returns err, the outcome of retrying the operation what,
// prefixed with what ("what: err") — unless it is a *GaveUpError, which
// names the operation already. A nil err stays nil.
func Describe(what string, err error) error {
	var gaveUp *GaveUpError
	if err == nil || errors.As(err, &gaveUp) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// StallError says an attempt was cut because the other side sent nothing
// for Timeout. It is transient.
type StallError struct {
	Timeout time.Duration
	Option  string // the setting of Timeout ("source-timeout"), if known
	Err     error
}

func (e *StallError) Error() string {
	s := fmt.Sprintf("no answer for %s", e.Timeout)
	if e.Option != "" {
		s += " (--" + e.Option + ")"
	}
	return s + ", cut: " + e.Err.Error()
}

func (e *StallError) Unwrap() error               { return e.Err }
func (e *StallError) FailureClass() failure.Class { return failure.Transient }

// Backoff follows the retries of one operation for loops that decide
// themselves what to retry; Do is built on it. It is not safe for
// concurrent use.
type Backoff struct {
	p       Policy
	what    string
	start   time.Time
	delay   time.Duration
	attempt int
	warned  bool
}

// Start begins following the operation what (a phrase such as "reading
// users partition p0001").
func (p Policy) Start(what string) *Backoff {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	return &Backoff{p: p, what: what, start: time.Now(), delay: p.Initial, attempt: 1}
}

// Retry decides about err, the failure of the current attempt: it returns
// err itself when it is not to be retried (not transient — then with
// failure.Advice put before it —, already given up by an inner retry loop,
// or ctx ended), a *GaveUpError when the
// attempts are used up, or nil after logging the retry and waiting its
// delay.
func (b *Backoff) Retry(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	class := failure.Classify(err)
	var gaveUp *GaveUpError
	if errors.As(err, &gaveUp) {
		return err
	}
	if class != failure.Transient {
		return failure.Advise(err, "") // a full disk says so
	}
	if b.attempt >= b.p.Attempts {
		return &GaveUpError{What: b.what, Attempts: b.attempt, Elapsed: time.Since(b.start), Err: err}
	}
	return b.wait(ctx, err, class, true)
}

// Again logs err and waits the next delay without using up an attempt,
// for failures that a loop bounds by other means.
func (b *Backoff) Again(ctx context.Context, err error) error {
	return b.wait(ctx, err, failure.Classify(err), false)
}

func (b *Backoff) wait(ctx context.Context, err error, class failure.Class, counted bool) error {
	d := jitter(b.delay)
	log := Logger(ctx)
	log.Debug("retrying", "op", b.what, "attempt", b.attempt, "of", b.p.Attempts, "delay", d, "class", class,
		"max_total_delay", b.p.MaxDelays(), "err", err)
	if elapsed := time.Since(b.start); !b.warned && elapsed > WarnAfter {
		b.warned = true
		log.Warn("still retrying", "op", b.what, "for", elapsed.Round(time.Second), "attempt", b.attempt, "of", b.p.Attempts,
			"max_total_delay", b.p.MaxDelays(), "err", err)
	}
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return fmt.Errorf("%w (while waiting to retry after: %v)", ctx.Err(), err)
	case <-t.C:
	}
	if counted {
		b.attempt++
	}
	if b.delay *= 2; b.delay > b.p.Max {
		b.delay = b.p.Max
	}
	return nil
}

// Do calls fn until it succeeds, returns an error that is not transient,
// ctx ends, or the policy's attempts are used up (then the error is a
// *GaveUpError saying how many were made). Each call gets a context cut
// after p.Timeout without an answer (see Alive and Hold); an attempt so
// cut fails with a *StallError, which is transient, and a warning is
// logged. what names the operation in logs and in the give-up error.
func Do(ctx context.Context, p Policy, what string, fn func(ctx context.Context) error) error {
	b := p.Start(what)
	for {
		actx, w := Watch(ctx, p.Timeout, p.TimeoutOption)
		err := w.Err(fn(actx))
		w.Stop()
		if err == nil {
			return nil
		}
		var stall *StallError
		if errors.As(err, &stall) && ctx.Err() == nil {
			Logger(ctx).Warn("the other side stopped answering; cut the call, retrying it", "op", what, "after", stall.Timeout, "attempt", b.attempt, "err", err)
		}
		if err := b.Retry(ctx, err); err != nil {
			return err
		}
	}
}

// Value is Do for a call that returns a value: it runs fn under p,
// logging retries to log, and returns the value of the attempt that
// succeeded.
func Value[T any](ctx context.Context, log *slog.Logger, p Policy, what string, fn func(context.Context) (T, error)) (T, error) {
	var out T
	err := Do(WithLogger(ctx, log), p, what, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	return out, err
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// Watchdog cuts a call whose other side has been silent for too long: it
// cancels the context it made when neither Alive nor Hold was called for
// its timeout.
type Watchdog struct {
	timeout time.Duration
	option  string
	timer   *time.Timer
	cancel  context.CancelFunc
	fired   atomic.Bool
}

type watchdogKey struct{}

// Watch returns a context that ends when ctx does, or when it has been
// silent for timeout (no Alive, outside Hold), and its Watchdog, which the
// caller must Stop. A timeout ≤ 0 means no deadline. option names the
// setting of timeout in messages.
func Watch(ctx context.Context, timeout time.Duration, option string) (context.Context, *Watchdog) {
	w := &Watchdog{timeout: timeout, option: option}
	ctx, w.cancel = context.WithCancel(ctx)
	if timeout > 0 {
		w.timer = time.AfterFunc(timeout, func() {
			w.fired.Store(true)
			w.cancel()
		})
	}
	return context.WithValue(ctx, watchdogKey{}, w), w
}

// Alive says the other side just answered: the silence starts again.
func (w *Watchdog) Alive() {
	if w != nil && w.timer != nil && !w.fired.Load() {
		w.timer.Reset(w.timeout)
	}
}

// Hold stops the clock while the caller itself is busy (handing a record
// downstream, waiting for the target); the returned function starts it
// again.
func (w *Watchdog) Hold() (release func()) {
	if w == nil || w.timer == nil {
		return func() {}
	}
	w.timer.Stop()
	return w.Alive
}

// Stop releases the watchdog; the context it made ends.
func (w *Watchdog) Stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.cancel()
}

// Stalled reports whether the watchdog cut the call.
func (w *Watchdog) Stalled() bool { return w != nil && w.fired.Load() }

// Err returns err, as a *StallError when the watchdog cut the call.
func (w *Watchdog) Err(err error) error {
	if err == nil || !w.Stalled() {
		return err
	}
	return &StallError{Timeout: w.timeout, Option: w.option, Err: err}
}

// Alive tells the watchdog of ctx's call, if any, that the other side just
// answered (a stream delivered a message).
func Alive(ctx context.Context) { watchdogOf(ctx).Alive() }

// Hold stops the clock of ctx's watchdog, if any, while the caller is busy;
// the returned function starts it again.
func Hold(ctx context.Context) (release func()) { return watchdogOf(ctx).Hold() }

func watchdogOf(ctx context.Context) *Watchdog {
	w, _ := ctx.Value(watchdogKey{}).(*Watchdog)
	return w
}

type loggerKey struct{}

// WithLogger returns ctx carrying log, which Do and Backoff log retries to.
func WithLogger(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, log)
}

// Logger returns the logger ctx carries, or one that discards.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// Options that let users tune retries and deadlines; extractors list the
// source ones among their options and build their policy with FromConfig.
var (
	AttemptsOption = plugin.Option{
		Name:    "retry-attempts",
		Type:    plugin.Int,
		Help:    "Attempts at a failing operation (a source call, an object copy, a batch written to the target) before it is given up; throttling, outages and timeouts are retried with backoff, a full disk or refused credentials are not.",
		Default: "8",
	}
	BackoffOption = plugin.Option{
		Name:    "retry-backoff",
		Type:    plugin.Duration,
		Help:    "Delay before the first retry; it doubles up to 15s.",
		Default: "250ms",
	}
	SourceTimeoutOption = plugin.Option{
		Name: "source-timeout",
		Type: plugin.Duration,
		Help: "Longest wait for one answer from the source: a call, a page, the next message of a stream, the next bytes of a file. " +
			"A source silent for longer is cut, and the read retried from where it was.",
		Default: "1m",
	}
	TargetTimeoutOption = plugin.Option{
		Name: "target-timeout",
		Type: plugin.Duration,
		Help: "Longest wait for one statement, commit or object-store request of the target. " +
			"One that takes longer (blocked by a lock, say) is cut and the batch retried.",
		Default: "2m",
	}
)

// FromConfig builds the source's policy from the retry options and
// --source-timeout.
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
	if cfg.String(BackoffOption.Name) != "" {
		if p.Initial, err = cfg.Duration(BackoffOption.Name); err != nil {
			return p, err
		}
	}
	if p.Timeout, err = Timeout(cfg, SourceTimeoutOption); err != nil {
		return p, err
	}
	p.TimeoutOption = SourceTimeoutOption.Name
	return p, nil
}

// Timeout returns the duration of a timeout option (its default when
// unset); zero and negative durations are refused.
func Timeout(cfg plugin.Config, o plugin.Option) (time.Duration, error) {
	s := cfg.String(o.Name)
	if s == "" {
		s = o.Default
	}
	d, err := plugin.Config{o.Name: s}.Duration(o.Name)
	if err != nil {
		return 0, err
	}
	if d == 0 {
		return 0, fmt.Errorf("--%s: %q is not a positive duration like 30s or 2m", o.Name, s)
	}
	return d, nil
}
