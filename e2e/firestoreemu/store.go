package firestoreemu

import (
	"sort"
	"sync"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
)

// The store keeps every document's versions (MVCC) for the history window,
// so reads can be answered at any time within it.
//
// Indexes (all ordered by path key, see encodePath):
//   - all: every document path, for ListDocuments(show_missing) and
//     ListCollectionIds, which walk a subtree;
//   - byCollection: per collection path ("users/u1/orders"), its documents,
//     for plain collection queries;
//   - byGroup: per collection ID ("orders"), the documents of every
//     collection with that ID, for collection-group queries. A group query
//     under a parent document scans only the contiguous key range of that
//     parent's descendants.
// A query ordered by __name__ walks an index from its start cursor and stops
// after its limit: O(log n + page) per page.

// docVersion is one state of a document. doc is nil when the document was
// deleted at time.
type docVersion struct {
	time int64
	doc  *pb.Document
}

// docEntry is everything the store knows about one document path.
type docEntry struct {
	key      string
	segs     []string
	versions []docVersion // ascending by time
}

// at returns the document as it was at time t, or nil if it did not exist.
func (e *docEntry) at(t int64) *pb.Document {
	v, ok := e.versionAt(t)
	if !ok {
		return nil
	}
	return v.doc
}

// versionAt returns the latest version at or before t.
func (e *docEntry) versionAt(t int64) (docVersion, bool) {
	vs := e.versions
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].time <= t {
			return vs[i], true
		}
	}
	return docVersion{}, false
}

// latestTime returns the time of the latest version (0 when none): what a
// read-write transaction remembers to detect a concurrent change.
func (e *docEntry) latestTime() int64 {
	if e == nil || len(e.versions) == 0 {
		return 0
	}
	return e.versions[len(e.versions)-1].time
}

// prune drops versions no read at or after horizon can see. It reports
// whether the entry is now empty.
func (e *docEntry) prune(horizon int64) bool {
	vs := e.versions
	i := sort.Search(len(vs), func(i int) bool { return vs[i].time > horizon }) - 1
	// vs[i] is the version visible at horizon; older ones are invisible.
	if i >= 0 && vs[i].doc == nil {
		i++ // a deletion visible at horizon is the same as no version
	}
	if i > 0 {
		e.versions = append([]docVersion(nil), vs[i:]...)
	}
	return len(e.versions) == 0
}

// commitRecord lists the documents one commit changed, for listeners.
type commitRecord struct {
	time int64
	keys []string
}

// database is one (project, database) of the emulator.
type database struct {
	id      dbID
	epoch   uint64 // distinguishes this instance in resume tokens
	emu     *Emulator
	created int64

	mu           sync.RWMutex
	entries      map[string]*docEntry
	all          *orderedIndex[*docEntry]
	byCollection map[string]*orderedIndex[*docEntry]
	byGroup      map[string]*orderedIndex[*docEntry]
	log          []commitRecord // ascending by time
	logFloor     int64          // records at or before this time were pruned
	changed      chan struct{}  // closed and replaced by every commit
	closed       chan struct{}  // closed when the database is wiped or the emulator stops

	txMu   sync.Mutex
	txns   map[string]*transaction
	txLock chan struct{} // held by the one read-write transaction that has read
}

func newDatabase(e *Emulator, id dbID, epoch uint64) *database {
	return &database{
		id:           id,
		epoch:        epoch,
		emu:          e,
		created:      e.clock.readTime(),
		entries:      map[string]*docEntry{},
		all:          &orderedIndex[*docEntry]{},
		byCollection: map[string]*orderedIndex[*docEntry]{},
		byGroup:      map[string]*orderedIndex[*docEntry]{},
		changed:      make(chan struct{}),
		closed:       make(chan struct{}),
		txns:         map[string]*transaction{},
		txLock:       make(chan struct{}, 1),
	}
}

// docName returns the full resource name of a document path.
func (db *database) docName(segs []string) string {
	return db.id.documentsRoot() + "/" + relPath(segs)
}

// lookup returns the entry of a key, or nil. Callers hold db.mu.
func (db *database) lookup(key string) *docEntry { return db.entries[key] }

// getAt returns the document at segs as of time t, or nil. Callers hold db.mu.
func (db *database) getAt(segs []string, t int64) *pb.Document {
	e := db.entries[encodePath(segs)]
	if e == nil {
		return nil
	}
	return e.at(t)
}

// entryFor returns the entry of segs, creating and indexing it if needed.
// Callers hold db.mu for writing.
func (db *database) entryFor(segs []string) *docEntry {
	key := encodePath(segs)
	if e := db.entries[key]; e != nil {
		return e
	}
	e := &docEntry{key: key, segs: segs}
	db.entries[key] = e
	db.all.Set(key, e)
	coll := relPath(segs[:len(segs)-1])
	ci := db.byCollection[coll]
	if ci == nil {
		ci = &orderedIndex[*docEntry]{}
		db.byCollection[coll] = ci
	}
	ci.Set(key, e)
	gid := segs[len(segs)-2]
	gi := db.byGroup[gid]
	if gi == nil {
		gi = &orderedIndex[*docEntry]{}
		db.byGroup[gid] = gi
	}
	gi.Set(key, e)
	return e
}

// removeEntry drops an entry from the map and every index. Callers hold
// db.mu for writing.
func (db *database) removeEntry(e *docEntry) {
	delete(db.entries, e.key)
	db.all.Delete(e.key)
	coll := relPath(e.segs[:len(e.segs)-1])
	if ci := db.byCollection[coll]; ci != nil {
		ci.Delete(e.key)
		if ci.Len() == 0 {
			delete(db.byCollection, coll)
		}
	}
	gid := e.segs[len(e.segs)-2]
	if gi := db.byGroup[gid]; gi != nil {
		gi.Delete(e.key)
		if gi.Len() == 0 {
			delete(db.byGroup, gid)
		}
	}
}

// stagedDoc is the new state of one document in a commit being applied.
type stagedDoc struct {
	segs []string
	doc  *pb.Document // nil: deleted
}

// applyLocked stores the staged documents as versions at time t, records
// the commit for listeners and wakes them. Callers hold db.mu for writing.
func (db *database) applyLocked(t int64, staged []stagedDoc) {
	if len(staged) == 0 {
		return
	}
	horizon := db.emu.horizon()
	keys := make([]string, 0, len(staged))
	for _, s := range staged {
		e := db.entryFor(s.segs)
		e.versions = append(e.versions, docVersion{time: t, doc: s.doc})
		if e.prune(horizon) {
			db.removeEntry(e)
		}
		keys = append(keys, e.key)
	}
	db.log = append(db.log, commitRecord{time: t, keys: keys})
	close(db.changed)
	db.changed = make(chan struct{})
}

// changedSince returns the keys of documents changed by commits with times
// in (after, upTo]. ok is false when records of that range were pruned.
// Callers hold db.mu.
func (db *database) changedSince(after, upTo int64) (keys map[string]struct{}, ok bool) {
	if after < db.logFloor {
		return nil, false
	}
	i := sort.Search(len(db.log), func(i int) bool { return db.log[i].time > after })
	keys = map[string]struct{}{}
	for ; i < len(db.log) && db.log[i].time <= upTo; i++ {
		for _, k := range db.log[i].keys {
			keys[k] = struct{}{}
		}
	}
	return keys, true
}

// sweep prunes versions and commit records older than horizon and drops
// entries that no read can see any more.
func (db *database) sweep(horizon int64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	var empty []*docEntry
	for _, e := range db.entries {
		if e.prune(horizon) {
			empty = append(empty, e)
		}
	}
	for _, e := range empty {
		db.removeEntry(e)
	}
	i := sort.Search(len(db.log), func(i int) bool { return db.log[i].time > horizon })
	if i > 0 {
		db.logFloor = db.log[i-1].time
		db.log = append([]commitRecord(nil), db.log[i:]...)
	}
}

// subtreeHasDocAt reports whether any document strictly under the path with
// key k exists at time t. Callers hold db.mu.
func (db *database) subtreeHasDocAt(k string, t int64) bool {
	lo, hi := childPrefix(k), childLimit(k)
	for key, e := range db.all.Ascend(lo) {
		if hi != "" && key >= hi {
			return false
		}
		if e.at(t) != nil {
			return true
		}
	}
	return false
}
