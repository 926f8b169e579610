package migration

import (
	"testing"
	"time"
)

// TestWallTimeIsTheUnionOfIntervals: overlapping and touching intervals
// count once, in whatever order they arrive, across merges.
func TestWallTimeIsTheUnionOfIntervals(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var w wallTime
	w.add(at(10), at(20))
	w.add(at(0), at(5))
	w.add(at(15), at(30)) // overlaps [10,20]
	w.add(at(5), at(6))   // touches [0,5]
	w.add(at(12), at(13)) // inside
	if got := w.total(); got != 26*time.Second {
		t.Fatalf("total = %s, want 26s ([0,6] and [10,30])", got)
	}
	// Many disjoint intervals, as one worker writes: merged in steps.
	var one wallTime
	for i := range 1000 {
		one.add(at(3*i), at(3*i+2))
	}
	if got := one.total(); got != 2000*time.Second {
		t.Fatalf("total = %s, want 2000s", got)
	}
	// Four workers over the same ten seconds: ten seconds.
	var four wallTime
	for range 4 {
		for i := range 10 {
			four.add(at(i), at(i+1))
		}
	}
	if got := four.total(); got != 10*time.Second {
		t.Fatalf("total = %s, want 10s", got)
	}
}
