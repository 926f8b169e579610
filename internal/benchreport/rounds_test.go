package benchreport

import (
	"errors"
	"slices"
	"testing"
)

func TestAlternately(t *testing.T) {
	for round, want := range [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}} {
		var ran []string
		step := func(name string) func() error { return func() error { ran = append(ran, name); return nil } }
		if err := Alternately(round, step("a"), step("b")); err != nil || !slices.Equal(ran, want) {
			t.Errorf("round %d ran %v (%v), want %v", round, ran, err, want)
		}
	}
	stop := errors.New("stop")
	if err := Alternately(0, func() error { return stop }, func() error { t.Error("ran after an error"); return nil }); err != stop {
		t.Errorf("error %v, want the first step's", err)
	}
}

func TestMedian(t *testing.T) {
	rounds := []float64{3, 1, 2, 5}
	if m := Median(rounds, func(x float64) float64 { return x }); m != 3 {
		t.Errorf("median %v, want 3 (the upper of an even count)", m)
	}
	if !slices.Equal(rounds, []float64{3, 1, 2, 5}) {
		t.Errorf("rounds reordered: %v", rounds)
	}
}
