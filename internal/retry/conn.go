package retry

import (
	"net"
	"sync"
	"time"
)

// ReplyDeadlineConn wraps a request/response connection (a PostgreSQL
// session) so that a peer that goes silent is noticed: each write sets a
// deadline d ahead for the reads that follow, and each read that returns
// data moves it d ahead again. A read fails with a timeout (a net.Error,
// transient) once the peer has sent nothing for d since the last request
// or answer. An idle connection, with no read pending, is unaffected.
//
// Use it for servers whose own timeouts (statement_timeout) cannot fire
// because the server itself, or the path to it, is frozen; d should be a
// little longer than those timeouts, so that they report first.
func ReplyDeadlineConn(c net.Conn, d time.Duration) net.Conn {
	if d <= 0 {
		return c
	}
	return &replyDeadlineConn{Conn: c, d: d}
}

type replyDeadlineConn struct {
	net.Conn
	d  time.Duration
	mu sync.Mutex // orders deadline updates from concurrent reads and writes
}

func (c *replyDeadlineConn) Write(p []byte) (int, error) {
	c.extend()
	return c.Conn.Write(p)
}

func (c *replyDeadlineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.extend()
	}
	return n, err
}

func (c *replyDeadlineConn) extend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.d))
}
