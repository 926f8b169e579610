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
)

// faultProxy is an HTTP reverse proxy that, while enabled, answers a
// seeded share of requests with an error status (503 by default) and cuts
// the connection of another share without answering — a flaky network
// or an overloaded server. Disabled, it passes everything through, so a
// re-run sees the same endpoint without the faults.
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
}

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
	p := &faultProxy{ln: ln, rng: rand.New(rand.NewPCG(seed, 77)), status: http.StatusServiceUnavailable}
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

// disable lets everything through.
func (p *faultProxy) disable() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enabled = false
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	action := 0
	if p.enabled {
		x := p.rng.Float64()
		switch {
		case x < p.errShare:
			action = 1
		case x < p.errShare+p.cutShare:
			action = 2
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

// freezeProxy is a TCP proxy that can freeze: while frozen it accepts
// connections and reads what clients send but relays nothing in either
// direction — what a client sees of a server stopped with SIGSTOP (the
// kernel still completes handshakes and buffers requests).
type freezeProxy struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	thawed chan struct{} // closed while not frozen
	conns  map[net.Conn]bool
	closed bool
}

func newFreezeProxy(upstream string) (*freezeProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &freezeProxy{ln: ln, upstream: upstream, thawed: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.thawed)
	go p.accept()
	return p, nil
}

func (p *freezeProxy) HostPort() string { return p.ln.Addr().String() }

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default:
	}
}

func (p *freezeProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// gate waits until the proxy is not frozen.
func (p *freezeProxy) gate() {
	p.mu.Lock()
	ch := p.thawed
	p.mu.Unlock()
	<-ch
}

func (p *freezeProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *freezeProxy) serve(c net.Conn) {
	if !p.track(c, true) {
		c.Close()
		return
	}
	defer p.track(c, false)
	defer c.Close()
	p.gate()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	if !p.track(up, true) {
		up.Close()
		return
	}
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	relay := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go relay(up, c)
	go relay(c, up)
	<-done
}

// close stops accepting and closes every connection (thawing first, so
// no relay stays blocked).
func (p *freezeProxy) close() {
	p.thaw()
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}
