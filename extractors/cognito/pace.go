package cognito

import (
	"context"
	"errors"
	"sync"

	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"
)

// pacer keeps one category of Cognito requests under a rate: a token
// bucket (golang.org/x/time/rate) of the configured requests per second,
// with a burst of one, so requests are spread evenly rather than sent in
// bursts. A throttling answer (TooManyRequestsException) halves the rate,
// down to a floor of one request per second; every 20 requests that succeed
// after that raise it by one request per second, up to the configured rate
// again. The pacer only spaces requests out; the retries themselves (with
// their exponential backoff) are the SDK's and the read's retry policy's.
type pacer struct {
	lim *rate.Limiter
	max rate.Limit

	mu sync.Mutex
	ok int // successes since the last change of rate
}

func newPacer(rps float64) *pacer {
	return &pacer{lim: rate.NewLimiter(rate.Limit(rps), 1), max: rate.Limit(rps)}
}

// wait blocks until the next request may be sent, or ctx ends.
func (p *pacer) wait(ctx context.Context) error { return p.lim.Wait(ctx) }

// done records the outcome of a request: a throttling error slows the
// pacer down, a success lets it recover.
func (p *pacer) done(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case isThrottle(err):
		next := p.lim.Limit() / 2
		if next < 1 {
			next = 1
		}
		p.lim.SetLimit(next)
		p.ok = 0
	case err == nil && p.lim.Limit() < p.max:
		if p.ok++; p.ok >= 20 {
			p.lim.SetLimit(min(p.lim.Limit()+1, p.max))
			p.ok = 0
		}
	}
}

// rate is the current rate, for tests and logs.
func (p *pacer) rate() float64 { return float64(p.lim.Limit()) }

// isThrottle reports whether err is Cognito saying the account's request
// rate quota was exceeded.
func isThrottle(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "TooManyRequestsException" || ae.ErrorCode() == "ThrottlingException")
}
