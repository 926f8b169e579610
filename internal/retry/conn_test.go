package retry_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/faultnet"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestReplyDeadlineConnNoticesAFrozenServer talks to the real PostgreSQL
// through a proxy that then stops passing bytes: the statement in flight
// fails with a transient timeout instead of waiting forever (the server's
// statement_timeout cannot help when nothing reaches it).
func TestReplyDeadlineConnNoticesAFrozenServer(t *testing.T) {
	cfg, err := pgconn.ParseConfig(testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultnet.NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	host, port, _ := net.SplitHostPort(proxy.Addr())
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
	proxy.Freeze()
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
