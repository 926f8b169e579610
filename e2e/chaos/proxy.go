package chaos

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// faultProxy is an HTTP reverse proxy that, while enabled, answers a
// seeded share of requests with an error status (503 by default) and cuts
// the connection of another share without answering — a flaky network
// or an overloaded server — or holds requests unanswered (hold). Disabled,
// it passes everything through, so a re-run sees the same endpoint without
// the faults.
type faultProxy struct {
	ln    net.Listener
	srv   *http.Server
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	rng      *rand.Rand
	enabled  bool
	errShare float64
	cutShare float64
	status   int
	body     string

	errors, cuts, passed atomic.Int64

	// failedInRow counts, per request (method and URL), the faults in a
	// row answered to it; a request that got maxFaultsInRow in a row
	// passes. The faults stay transient, as the cases that use them
	// promise: by chance alone a 25% share fails some request 8 times in a
	// row (the retry policy's attempts) once in ~65,000 requests, which a
	// campaign reaches, and that run's exit 2 would be the proxy's doing.
	failedInRow map[string]int

	// Holding: from request number holdFrom on, requests get no answer
	// until released (or their client gives up) — a server that stopped
	// answering. heldSince is when the first one was held.
	requests  atomic.Int64
	holdFrom  int64
	heldSince time.Time
	released  chan struct{}
}

// maxFaultsInRow is how many faults in a row one request can get: well
// under the retry policy's attempts (internal/retry.Default: 8), also
// when one attempt makes two requests (metadata, then bytes).
const maxFaultsInRow = 3

// newFaultProxy proxies to upstream ("http://host:port"). keepHost keeps
// the Host header the client sent (S3 signatures cover it); otherwise it
// becomes the upstream's (fake-gcs-server tells buckets apart by host).
func newFaultProxy(upstream string, keepHost bool, seed uint64) (*faultProxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &faultProxy{ln: ln, rng: rand.New(rand.NewPCG(seed, 77)), status: http.StatusServiceUnavailable, failedInRow: map[string]int{}}
	p.proxy = httputil.NewSingleHostReverseProxy(u)
	p.proxy.FlushInterval = -1
	direct := p.proxy.Director
	p.proxy.Director = func(r *http.Request) {
		host := r.Host
		direct(r)
		if keepHost {
			r.Host = host
		} else {
			r.Host = u.Host
		}
	}
	p.proxy.ErrorLog = nil
	p.srv = &http.Server{Handler: p}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is where clients should connect: "http://127.0.0.1:PORT".
func (p *faultProxy) URL() string { return "http://" + p.ln.Addr().String() }

// HostPort is the proxy's host:port.
func (p *faultProxy) HostPort() string { return p.ln.Addr().String() }

// set enables faults: errShare of requests get status (with body), cutShare
// have their connection closed unanswered.
func (p *faultProxy) set(errShare, cutShare float64, status int, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enabled, p.errShare, p.cutShare, p.status, p.body = true, errShare, cutShare, status, body
}

// hold makes request number n and every later one wait, unanswered, until
// unhold.
func (p *faultProxy) hold(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdFrom, p.released = n, make(chan struct{})
}

// unhold lets held requests through and stops holding.
func (p *faultProxy) unhold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holdFrom > 0 {
		close(p.released)
		p.holdFrom = 0
	}
}

// held returns when the first request was held (zero: none yet).
func (p *faultProxy) held() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heldSince
}

// disable lets everything through.
func (p *faultProxy) disable() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enabled = false
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.requests.Add(1)
	p.mu.Lock()
	if p.holdFrom > 0 && n >= p.holdFrom {
		if p.heldSince.IsZero() {
			p.heldSince = time.Now()
		}
		released := p.released
		p.mu.Unlock()
		select {
		case <-released:
		case <-r.Context().Done():
			return
		}
		p.mu.Lock()
	}
	action := 0
	if p.enabled {
		x := p.rng.Float64()
		switch {
		case x < p.errShare:
			action = 1
		case x < p.errShare+p.cutShare:
			action = 2
		}
		key := r.Method + " " + r.URL.String()
		switch {
		case action == 0:
			delete(p.failedInRow, key)
		case p.failedInRow[key] >= maxFaultsInRow:
			action = 0
			delete(p.failedInRow, key)
		default:
			p.failedInRow[key]++
		}
	}
	status, body := p.status, p.body
	p.mu.Unlock()
	switch action {
	case 1:
		p.errors.Add(1)
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		w.Header().Set("Retry-After", "0")
		if strings.HasPrefix(body, "<?xml") {
			w.Header().Set("Content-Type", "application/xml")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	case 2:
		p.cuts.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, not a clean close
				}
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	default:
		p.passed.Add(1)
		p.proxy.ServeHTTP(w, r)
	}
}

func (p *faultProxy) close() { _ = p.srv.Close() }
