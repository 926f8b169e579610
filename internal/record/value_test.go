package record

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestValueIsSmall keeps Value at its documented size: documents hold
// many Values in maps and every stage copies them.
func TestValueIsSmall(t *testing.T) {
	if size := unsafe.Sizeof(Value{}); unsafe.Sizeof(uintptr(0)) == 8 && size > 56 {
		t.Fatalf("Value is %d bytes, want at most 56", size)
	}
}

// TestTimestampKeepsTheInstant checks that a timestamp reads back as the
// instant it was given, truncated to the microsecond, in UTC, whatever its
// zone and range, and that Equal compares instants.
func TestTimestampKeepsTheInstant(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		{}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(-50, 3, 1, 0, 0, 0, 1, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(200000, 1, 1, 0, 0, 0, 7000, time.FixedZone("x", 3600)), time.Unix(0, 0).In(time.FixedZone("y", -5*3600)),
		time.Now(),
	}
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9)).In(time.FixedZone("z", 60*(r.IntN(1500)-750))))
	}
	for _, tm := range times {
		want := tm.UTC().Truncate(time.Microsecond)
		v := Timestamp(tm)
		got := v.TimeValue()
		if !got.Equal(want) || got.Location() != time.UTC || got != want {
			t.Fatalf("Timestamp(%v).TimeValue() = %v, want %v", tm, got, want)
		}
		if !Equal(v, Timestamp(want.In(time.FixedZone("w", 7200)))) {
			t.Fatalf("Timestamp(%v) is not Equal to the same instant in another zone", tm)
		}
		if Equal(v, Timestamp(want.Add(time.Microsecond))) {
			t.Fatalf("Timestamp(%v) is Equal to the next microsecond", tm)
		}
	}
}

// TestCompositeValues checks arrays, vectors and maps give back what they
// were built from, empty ones as empty (not nil) slices and maps.
func TestCompositeValues(t *testing.T) {
	if a := Array().ArrayValue(); a == nil || len(a) != 0 {
		t.Errorf("Array().ArrayValue() = %#v", a)
	}
	if v := Vector(nil).VectorValue(); v == nil || len(v) != 0 {
		t.Errorf("Vector(nil).VectorValue() = %#v", v)
	}
	if m := Map(nil).MapValue(); m == nil || len(m) != 0 {
		t.Errorf("Map(nil).MapValue() = %#v", m)
	}
	elems := make([]Value, 3, 10)
	elems[0], elems[1], elems[2] = Int(1), String("two"), Array(Null())
	got := Array(elems...).ArrayValue()
	if len(got) != 3 || &got[0] != &elems[0] || !Equal(got[2], Array(Null())) {
		t.Errorf("ArrayValue = %v", got)
	}
	fs := []float64{0.5, -1}
	if got := Vector(fs).VectorValue(); len(got) != 2 || &got[0] != &fs[0] {
		t.Errorf("VectorValue = %v", got)
	}
	if Equal(Array(Int(1)), Array(Int(1), Int(2))) || !Equal(Vector([]float64{1}), Vector([]float64{1})) ||
		Equal(Vector([]float64{1}), Array(Double(1))) {
		t.Error("Equal on arrays and vectors")
	}
	if Array(Int(1)).VectorValue() != nil || Vector(fs).ArrayValue() != nil || Int(1).MapValue() != nil {
		t.Error("an accessor of another type must return nil")
	}
}

// TestDeepEqualComparesContent keeps reflect.DeepEqual meaningful on
// Values (tests compare records and users with it): two arrays, vectors or
// maps are DeepEqual exactly when their elements are.
func TestDeepEqualComparesContent(t *testing.T) {
	same := [][2]Value{
		{Array(Int(1), String("x")), Array(Int(1), String("x"))},
		{Vector([]float64{1, 2}), Vector([]float64{1, 2})},
		{Map(map[string]Value{"a": Array(Int(1))}), Map(map[string]Value{"a": Array(Int(1))})},
		{Timestamp(time.Unix(5, 1000)), Timestamp(time.Unix(5, 1999).In(time.FixedZone("z", 3600)))},
	}
	for _, p := range same {
		if !reflect.DeepEqual(p[0], p[1]) {
			t.Errorf("%v and %v are not DeepEqual", p[0], p[1])
		}
	}
	differ := [][2]Value{
		{Array(Int(1), String("x")), Array(Int(1), String("y"))},
		{Vector([]float64{1, 2}), Vector([]float64{1, 3})},
		{Map(map[string]Value{"a": Array(Int(1))}), Map(map[string]Value{"a": Array(Int(2))})},
		{Timestamp(time.Unix(5, 1000)), Timestamp(time.Unix(5, 2000))},
	}
	for _, p := range differ {
		if reflect.DeepEqual(p[0], p[1]) {
			t.Errorf("%v and %v are DeepEqual", p[0], p[1])
		}
	}
}

// TestMemSize: the estimate grows with every part of a value that holds
// memory (strings, bytes, elements, entries, nested maps), and a record's
// counts its key, cursor and fields.
func TestMemSize(t *testing.T) {
	base := Null().MemSize()
	if base <= 0 {
		t.Fatalf("a null value's size is %d", base)
	}
	big := strings.Repeat("x", 1<<20)
	cases := []struct {
		name string
		v    Value
		min  int
	}{
		{"string", String(big), 1 << 20},
		{"bytes", Bytes([]byte(big)), 1 << 20},
		{"array of strings", Array(String(big), String(big)), 2 << 20},
		{"vector", Vector(make([]float64, 1000)), 8000},
		{"nested map", Map(map[string]Value{"a": Map(map[string]Value{big: Int(1)})}), 1 << 20},
	}
	for _, c := range cases {
		if got := c.v.MemSize(); got < c.min || got > c.min+4096 {
			t.Errorf("%s: MemSize %d, want about %d", c.name, got, c.min)
		}
	}
	r := Record{Key: "users/" + big, Cursor: big, Fields: map[string]Value{"f": String(big)}}
	if got := r.MemSize(); got < 3<<20 || got > 3<<20+4096 {
		t.Errorf("record: MemSize %d, want about %d", got, 3<<20)
	}
}
