package firestoreemu

import (
	"iter"
	"sort"
)

// orderedIndex is a set of string keys kept in byte order, each with a value.
//
// It is a two-level structure: a slice of sorted chunks of at most
// maxChunkLen items each. Lookups are two binary searches; an insert or a
// delete moves at most one chunk's items, and splitting a chunk copies only
// the slice of chunk headers. For the sizes a test emulator holds (up to a
// few million keys) this is as fast as a B-tree and much simpler.
//
// An orderedIndex is not safe for concurrent use; the database's lock guards
// it. Iterators must not outlive a mutation of the index.
type orderedIndex[V any] struct {
	chunks [][]indexItem[V]
	n      int
}

type indexItem[V any] struct {
	key string
	val V
}

const maxChunkLen = 512

// Len returns the number of keys in the index.
func (x *orderedIndex[V]) Len() int { return x.n }

// chunkFor returns the index of the chunk that holds key or would hold it:
// the last chunk whose first key is <= key, or 0.
func (x *orderedIndex[V]) chunkFor(key string) int {
	i := sort.Search(len(x.chunks), func(i int) bool { return x.chunks[i][0].key > key })
	if i > 0 {
		i--
	}
	return i
}

// Set inserts key with value v, or replaces the value of an existing key.
func (x *orderedIndex[V]) Set(key string, v V) {
	if len(x.chunks) == 0 {
		x.chunks = [][]indexItem[V]{{{key, v}}}
		x.n = 1
		return
	}
	ci := x.chunkFor(key)
	c := x.chunks[ci]
	i := sort.Search(len(c), func(i int) bool { return c[i].key >= key })
	if i < len(c) && c[i].key == key {
		c[i].val = v
		return
	}
	c = append(c, indexItem[V]{})
	copy(c[i+1:], c[i:])
	c[i] = indexItem[V]{key, v}
	x.n++
	if len(c) <= maxChunkLen {
		x.chunks[ci] = c
		return
	}
	// Split the full chunk in two halves, each with its own backing array.
	half := len(c) / 2
	left := make([]indexItem[V], half, maxChunkLen+1)
	copy(left, c[:half])
	right := make([]indexItem[V], len(c)-half, maxChunkLen+1)
	copy(right, c[half:])
	x.chunks = append(x.chunks, nil)
	copy(x.chunks[ci+2:], x.chunks[ci+1:])
	x.chunks[ci] = left
	x.chunks[ci+1] = right
}

// Delete removes key and reports whether it was present.
func (x *orderedIndex[V]) Delete(key string) bool {
	if len(x.chunks) == 0 {
		return false
	}
	ci := x.chunkFor(key)
	c := x.chunks[ci]
	i := sort.Search(len(c), func(i int) bool { return c[i].key >= key })
	if i == len(c) || c[i].key != key {
		return false
	}
	copy(c[i:], c[i+1:])
	var zero indexItem[V]
	c[len(c)-1] = zero
	c = c[:len(c)-1]
	x.n--
	if len(c) == 0 {
		x.chunks = append(x.chunks[:ci], x.chunks[ci+1:]...)
		return true
	}
	x.chunks[ci] = c
	return true
}

// seek returns the position of the first key >= key (ci == len(chunks) when
// there is none).
func (x *orderedIndex[V]) seek(key string) (ci, i int) {
	if len(x.chunks) == 0 {
		return 0, 0
	}
	ci = x.chunkFor(key)
	c := x.chunks[ci]
	i = sort.Search(len(c), func(i int) bool { return c[i].key >= key })
	if i == len(c) {
		return ci + 1, 0
	}
	return ci, i
}

// Ascend yields the keys >= from in ascending order.
func (x *orderedIndex[V]) Ascend(from string) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		ci, i := x.seek(from)
		for ; ci < len(x.chunks); ci, i = ci+1, 0 {
			c := x.chunks[ci]
			for ; i < len(c); i++ {
				if !yield(c[i].key, c[i].val) {
					return
				}
			}
		}
	}
}

// Descend yields, in descending order, the keys < below (or <= below when
// inclusive). With below == "" and inclusive == false it yields nothing;
// use DescendAll to start from the largest key.
func (x *orderedIndex[V]) Descend(below string, inclusive bool) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		ci, i := x.seek(below)
		// Step to the last key < below, or include an exact match.
		if inclusive && ci < len(x.chunks) && x.chunks[ci][i].key == below {
			i++
		}
		x.descendFrom(ci, i, yield)
	}
}

// DescendAll yields every key in descending order.
func (x *orderedIndex[V]) DescendAll() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		x.descendFrom(len(x.chunks), 0, yield)
	}
}

// descendFrom yields the items strictly before position (ci, i).
func (x *orderedIndex[V]) descendFrom(ci, i int, yield func(string, V) bool) {
	for {
		if i == 0 {
			ci--
			if ci < 0 {
				return
			}
			i = len(x.chunks[ci])
		}
		i--
		it := x.chunks[ci][i]
		if !yield(it.key, it.val) {
			return
		}
	}
}
