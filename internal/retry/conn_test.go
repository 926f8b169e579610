package retry_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// freezingProxy forwards TCP connections to upstream until frozen: then
// it holds every byte, as a stopped server or a dead path would.
type freezingProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	thawed chan struct{} // closed while traffic flows
}

func newFreezingProxy(t *testing.T, upstream string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, thawed: make(chan struct{})}
	close(p.thawed)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		p.thaw()
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

func (p *freezingProxy) pipe(dst, src net.Conn) {
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

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawed = make(chan struct{})
}

func (p *freezingProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// TestReplyDeadlineConnNoticesAFrozenServer talks to the real PostgreSQL
// through a proxy that then stops passing bytes: the statement in flight
// fails with a transient timeout instead of waiting forever (the server's
// statement_timeout cannot help when nothing reaches it).
func TestReplyDeadlineConnNoticesAFrozenServer(t *testing.T) {
	cfg, err := pgconn.ParseConfig(testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFreezingProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	host, port, _ := net.SplitHostPort(proxy.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	cfg.Host, cfg.Port, cfg.Fallbacks = host, uint16(p), nil
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return retry.ReplyDeadlineConn(c, time.Second), nil
	}
	// A safety net far beyond the deadline under test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Idle for longer than the deadline: nothing happens to a connection
	// that waits for nothing.
	time.Sleep(1500 * time.Millisecond)
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatalf("a statement before the freeze: %v", err)
	}
	proxy.freeze()
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	if err == nil {
		t.Fatal("a statement through a frozen path succeeded")
	}
	if ctx.Err() != nil {
		t.Fatalf("the statement waited for the test's safety net, not the deadline: %v", err)
	}
	if failure.Classify(err) != failure.Transient {
		t.Fatalf("the cut statement's error %v is %v, want transient", err, failure.Classify(err))
	}
}
