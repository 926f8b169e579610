package firestoreemu

import (
	"maps"
	"sync"
)

// readCounter counts billed document reads per project, with Firestore's
// billing rules (see README.md).
type readCounter struct {
	mu        sync.Mutex
	byProject map[string]map[string]int64 // project → method → reads
}

func newReadCounter() *readCounter {
	return &readCounter{byProject: map[string]map[string]int64{}}
}

func (c *readCounter) add(project, method string, n int) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byProject[project]
	if m == nil {
		m = map[string]int64{}
		c.byProject[project] = m
	}
	m[method] += int64(n)
}

// ReadStats is the JSON body of the read-counter hook.
type ReadStats struct {
	Project string `json:"project"`
	// DocumentsRead is the total of billed document reads.
	DocumentsRead int64 `json:"documentsRead"`
	// ByMethod splits DocumentsRead by RPC method name.
	ByMethod map[string]int64 `json:"byMethod"`
}

// get returns the counts of a project; with reset it also zeroes them.
func (c *readCounter) get(project string, reset bool) ReadStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ReadStats{Project: project, ByMethod: maps.Clone(c.byProject[project])}
	if st.ByMethod == nil {
		st.ByMethod = map[string]int64{}
	}
	for _, n := range st.ByMethod {
		st.DocumentsRead += n
	}
	if reset {
		delete(c.byProject, project)
	}
	return st
}
