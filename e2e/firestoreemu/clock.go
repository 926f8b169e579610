package firestoreemu

import (
	"sync/atomic"
	"time"
)

// clock issues the emulator's timestamps, in microseconds since the Unix
// epoch. Commit times are strictly increasing; a read time is never before
// an issued commit time, and no later commit gets a time at or before an
// issued read time. So a read at an issued time is repeatable.
type clock struct {
	last atomic.Int64
	now  func() time.Time
}

func newClock(now func() time.Time) *clock {
	if now == nil {
		now = time.Now
	}
	return &clock{now: now}
}

func (c *clock) wall() int64 { return c.now().UnixMicro() }

// commitTime returns a new commit time, greater than every time issued so far.
func (c *clock) commitTime() int64 {
	for {
		last := c.last.Load()
		t := max(c.wall(), last+1)
		if c.last.CompareAndSwap(last, t) {
			return t
		}
	}
}

// readTime returns the current read time: not before any issued time.
func (c *clock) readTime() int64 {
	for {
		last := c.last.Load()
		t := max(c.wall(), last)
		if c.last.CompareAndSwap(last, t) {
			return t
		}
	}
}

// observe records that t was handed out as a read time, so later commits
// are after it. It returns the latest issued time.
func (c *clock) observe(t int64) int64 {
	for {
		last := c.last.Load()
		if t <= last {
			return last
		}
		if c.last.CompareAndSwap(last, t) {
			return t
		}
	}
}

// latest returns max(now, last issued time) without issuing anything.
func (c *clock) latest() int64 { return max(c.wall(), c.last.Load()) }
