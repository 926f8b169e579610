package record

import "time"

// Op is what a change did to a record.
type Op uint8

// The operations a change stream reports.
const (
	// OpUpsert: the record was created or changed; Change.Record holds it
	// whole, as it is after the change.
	OpUpsert Op = iota + 1
	// OpDelete: the record is gone; Change.Record has only Kind and Key.
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return "op(?)"
}

// Change is one change of one record at the source.
type Change struct {
	Op Op
	// Record is the record after the change (OpUpsert: whole, as Read
	// would deliver it, its Cursor empty); for OpDelete only Kind and Key
	// are set.
	Record Record
	// CommitTime is when the source committed the change: the record's
	// update time for an upsert; for a delete, the source's time of the
	// change when it reports one, else the ReadTime of the batch that
	// reports it.
	CommitTime time.Time
}

// ChangeBatch is what a change stream delivers at one consistent point of
// the source: every change committed up to ReadTime that no earlier batch
// delivered (a change may be delivered again after a reconnect; never one
// committed at or before the position the stream was started from).
// Changes to one key come in commit order. A batch may hold no change at
// all: it then only says that the source has nothing new up to ReadTime
// (a heartbeat, which is how lag is measured on an idle source).
type ChangeBatch struct {
	Changes []Change
	// ReadTime is the source time the batch is consistent at.
	ReadTime time.Time
	// Position resumes the stream just after this batch: starting the
	// stream again from Position delivers what follows it. It is what sync
	// stores, in the transaction that applies the batch.
	Position string
}
