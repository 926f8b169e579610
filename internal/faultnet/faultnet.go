// Package faultnet breaks the network path to a real service in tests: a
// TCP proxy that forwards to the service until frozen, then holds every
// byte, as a stopped server or a dead route would, until thawed.
package faultnet

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
)

// ClosedAddr returns a loopback address ("127.0.0.1:PORT") nothing listens
// on, for a service that cannot be reached.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Proxy forwards TCP connections to one upstream address.
type Proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	thawed chan struct{} // closed while traffic flows
}

// NewProxy starts a proxy to upstream on a free loopback port for the
// duration of t.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, thawed: make(chan struct{})}
	close(p.thawed)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		p.Thaw()
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(u, c) }()
			go func() { defer conns.Done(); p.pipe(c, u) }()
		}
	}()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.thawed
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Freeze stops forwarding: bytes already received wait, in both directions.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default: // frozen already
	}
}

// Thaw forwards again, the held bytes first.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// OnLog returns a logger that calls fn, synchronously, with the attributes
// (rendered as text) of every record whose message is msg, and drops
// everything else: a test learns from the code's own log that something
// happened (a retry after a freeze) and reacts at that moment.
func OnLog(msg string, fn func(attrs map[string]string)) *slog.Logger {
	return slog.New(&hookHandler{msg: msg, fn: fn})
}

type hookHandler struct {
	msg string
	fn  func(map[string]string)
}

func (h *hookHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *hookHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	h.fn(attrs)
	return nil
}

func (h *hookHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *hookHandler) WithGroup(string) slog.Handler      { return h }
