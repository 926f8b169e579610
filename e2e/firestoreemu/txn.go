package firestoreemu

import (
	"context"
	"crypto/rand"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Transactions.
//
// A read-only transaction reads at one time: its read_time option, or the
// time it began.
//
// A read-write transaction reads the latest data. Its first read takes the
// database's transaction lock, so read-write transactions on one database
// run one after another (like Firestore's pessimistic locks, but coarser);
// a transaction that cannot get the lock within Options.TransactionLockWait
// is ABORTED, which the client retries. Because writes outside transactions
// do not take the lock, the commit also checks optimistically that nothing
// the transaction read has changed since (documents by their latest version,
// queries by re-running them); if something has, the commit is ABORTED.

// transaction is the server state of one transaction. Its fields are guarded
// by database.txMu.
type transaction struct {
	id        string
	readOnly  bool
	readTime  int64 // read-only: the snapshot time
	lastUsed  time.Time
	holdsLock bool
	// reads: key → latest version time seen (0: no version).
	reads   map[string]int64
	queries []queryRead
}

// queryRead is a query a read-write transaction ran and what it saw.
type queryRead struct {
	q      *compiledQuery
	result []string // key@version of each result, in order
}

func newTransactionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return string(b)
}

// beginTransaction starts a transaction with the given options.
func (db *database) beginTransaction(opts *pb.TransactionOptions) (*transaction, error) {
	tx := &transaction{id: newTransactionID(), lastUsed: time.Now(), reads: map[string]int64{}}
	if ro := opts.GetReadOnly(); ro != nil {
		tx.readOnly = true
		if rt := ro.GetReadTime(); rt != nil {
			t, err := db.emu.resolveReadTime(rt)
			if err != nil {
				return nil, err
			}
			tx.readTime = t
		} else {
			tx.readTime = db.emu.clock.readTime()
		}
	}
	db.txMu.Lock()
	db.txns[tx.id] = tx
	db.txMu.Unlock()
	return tx, nil
}

// transaction looks up a live transaction.
func (db *database) transaction(id []byte) (*transaction, error) {
	db.txMu.Lock()
	defer db.txMu.Unlock()
	tx := db.txns[string(id)]
	if tx == nil {
		return nil, status.Errorf(codes.InvalidArgument, "transaction %x has expired or is not valid", id)
	}
	tx.lastUsed = time.Now()
	return tx, nil
}

// lockForRead makes a read-write transaction hold the database's
// transaction lock before it reads.
func (db *database) lockForRead(ctx context.Context, tx *transaction) error {
	if tx.readOnly {
		return nil
	}
	db.txMu.Lock()
	held := tx.holdsLock
	db.txMu.Unlock()
	if held {
		return nil
	}
	timer := time.NewTimer(db.emu.opts.TransactionLockWait)
	defer timer.Stop()
	select {
	case db.txLock <- struct{}{}:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-timer.C:
		return status.Errorf(codes.Aborted, "transaction %x aborted: another transaction on this database held its lock for %s", tx.id, db.emu.opts.TransactionLockWait)
	}
	db.txMu.Lock()
	defer db.txMu.Unlock()
	if db.txns[tx.id] != tx || tx.holdsLock {
		// Ended or locked concurrently: give the lock back.
		<-db.txLock
		if tx.holdsLock {
			return nil
		}
		return status.Errorf(codes.InvalidArgument, "transaction %x has expired or is not valid", tx.id)
	}
	tx.holdsLock = true
	return nil
}

// endTransaction forgets a transaction and releases its lock.
func (db *database) endTransaction(tx *transaction) {
	db.txMu.Lock()
	defer db.txMu.Unlock()
	if db.txns[tx.id] == tx {
		delete(db.txns, tx.id)
	}
	if tx.holdsLock {
		tx.holdsLock = false
		<-db.txLock
	}
}

// expireTransactions ends transactions unused since before cutoff.
func (db *database) expireTransactions(cutoff time.Time) {
	db.txMu.Lock()
	var old []*transaction
	for _, tx := range db.txns {
		if tx.lastUsed.Before(cutoff) {
			old = append(old, tx)
		}
	}
	db.txMu.Unlock()
	for _, tx := range old {
		db.endTransaction(tx)
	}
}

// recordRead remembers the version of a document a read-write transaction
// read at time at. Callers hold db.mu.
func (db *database) recordRead(tx *transaction, key string, at int64) {
	if tx == nil || tx.readOnly {
		return
	}
	var t int64
	if e := db.lookup(key); e != nil {
		if v, ok := e.versionAt(at); ok {
			t = v.time
		}
	}
	db.txMu.Lock()
	if _, ok := tx.reads[key]; !ok {
		tx.reads[key] = t
	}
	db.txMu.Unlock()
}

// recordQuery remembers a query a read-write transaction ran.
func (db *database) recordQuery(tx *transaction, q *compiledQuery, docs []*pb.Document) {
	if tx == nil || tx.readOnly {
		return
	}
	db.txMu.Lock()
	tx.queries = append(tx.queries, queryRead{q: q, result: resultSignature(docs)})
	db.txMu.Unlock()
}

func resultSignature(docs []*pb.Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Name + "@" + d.UpdateTime.AsTime().String()
	}
	return out
}

// validateLocked checks that nothing a read-write transaction read changed.
// Callers hold db.mu for writing.
func (db *database) validateLocked(tx *transaction, now int64) error {
	db.txMu.Lock()
	reads := tx.reads
	queries := tx.queries
	db.txMu.Unlock()
	for key, seen := range reads {
		if db.lookup(key).latestTime() != seen {
			return status.Errorf(codes.Aborted, "transaction aborted: document %q changed after the transaction read it", relPath(decodeKey(key)))
		}
	}
	for _, qr := range queries {
		docs, err := db.runQueryAll(qr.q, now)
		if err != nil {
			return err
		}
		sig := resultSignature(docs)
		if len(sig) != len(qr.result) {
			return status.Errorf(codes.Aborted, "transaction aborted: the result of a query it ran changed")
		}
		for i := range sig {
			if sig[i] != qr.result[i] {
				return status.Errorf(codes.Aborted, "transaction aborted: the result of a query it ran changed")
			}
		}
	}
	return nil
}
