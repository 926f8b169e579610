package firestoreemu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Options configures an Emulator. The zero value is usable.
type Options struct {
	// History is how long past versions of documents are kept for reads at
	// a past read time (and for resuming listeners). Reads older than that
	// fail with FAILED_PRECONDITION. Default 1h, Firestore's own window.
	History time.Duration
	// ListenHeartbeat is how often an idle Listen stream gets a global
	// NO_CHANGE with a fresh read time and resume token. Default 10s;
	// negative disables heartbeats.
	ListenHeartbeat time.Duration
	// TransactionLockWait is how long a read-write transaction waits for
	// another one on the same database before it is ABORTED. Default 20s.
	TransactionLockWait time.Duration
	// TransactionIdle is how long an unused transaction lives. Default 60s.
	TransactionIdle time.Duration
	// Now replaces the wall clock (tests of the emulator itself).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.History <= 0 {
		o.History = time.Hour
	}
	if o.ListenHeartbeat == 0 {
		o.ListenHeartbeat = 10 * time.Second
	}
	if o.TransactionLockWait <= 0 {
		o.TransactionLockWait = 20 * time.Second
	}
	if o.TransactionIdle <= 0 {
		o.TransactionIdle = 60 * time.Second
	}
	return o
}

// Emulator is an in-memory Cloud Firestore serving the
// google.firestore.v1.Firestore gRPC API and the emulator's HTTP hooks on a
// single port. It is safe for concurrent use.
type Emulator struct {
	opts   Options
	clock  *clock
	reads  *readCounter
	faults *faultInjector

	mu  sync.Mutex
	dbs map[dbID]*database

	grpcServer *grpc.Server
	httpServer *http.Server
	done       chan struct{}
	closeOnce  sync.Once
	loopDone   chan struct{}

	lnMu sync.Mutex
	ln   net.Listener
}

// New returns an emulator with no data. Call Serve (or Start) to accept
// connections and Close to stop it.
func New(opts Options) *Emulator {
	opts = opts.withDefaults()
	e := &Emulator{
		opts:     opts,
		clock:    newClock(opts.Now),
		reads:    newReadCounter(),
		faults:   newFaultInjector(),
		dbs:      map[dbID]*database{},
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	e.grpcServer = grpc.NewServer(
		grpc.MaxRecvMsgSize(64<<20),
		grpc.ChainUnaryInterceptor(e.faults.unaryInterceptor),
		grpc.ChainStreamInterceptor(e.faults.streamInterceptor),
	)
	pb.RegisterFirestoreServer(e.grpcServer, &server{emu: e})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	e.httpServer = &http.Server{
		Handler:           e.Handler(),
		Protocols:         &protocols,
		ReadHeaderTimeout: 30 * time.Second,
	}
	go e.maintain()
	return e
}

// Start listens on addr (for example "127.0.0.1:0") and serves in the
// background. Addr tells the address chosen.
func Start(addr string, opts Options) (*Emulator, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("firestoreemu: listening on %s: %w", addr, err)
	}
	e := New(opts)
	e.setListener(ln)
	go func() { _ = e.Serve(ln) }()
	return e, nil
}

// Addr returns the address the emulator serves on ("" before Serve), in the
// form FIRESTORE_EMULATOR_HOST takes.
func (e *Emulator) Addr() string {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

func (e *Emulator) setListener(l net.Listener) {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	if e.ln == nil {
		e.ln = l
	}
}

// Serve accepts connections on l until Close. gRPC requests (HTTP/2 with
// content-type application/grpc) go to the Firestore API, everything else to
// the HTTP hooks. It returns nil after Close.
func (e *Emulator) Serve(l net.Listener) error {
	e.setListener(l)
	err := e.httpServer.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the single-port handler: gRPC plus HTTP hooks.
func (e *Emulator) Handler() http.Handler {
	hooks := e.hooksMux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			e.grpcServer.ServeHTTP(w, r)
			return
		}
		hooks.ServeHTTP(w, r)
	})
}

// Close stops serving, ends open streams and releases resources.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.done)
		<-e.loopDone
		e.mu.Lock()
		for _, db := range e.dbs {
			close(db.closed)
		}
		e.mu.Unlock()
		err = e.httpServer.Close()
		e.grpcServer.Stop()
	})
	return err
}

// database returns the database id, creating it on first use.
func (e *Emulator) database(id dbID) *database {
	e.mu.Lock()
	defer e.mu.Unlock()
	db := e.dbs[id]
	if db == nil {
		db = newDatabase(e, id, rand.Uint64())
		e.dbs[id] = db
	}
	return db
}

// wipe drops all data of the matching databases (database "-" matches every
// database of the project). Open listeners of a wiped database are ended
// with UNAVAILABLE; when they resume they see the new, empty database.
func (e *Emulator) wipe(project, database string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for id, db := range e.dbs {
		if id.project == project && (database == "-" || id.database == database) {
			delete(e.dbs, id)
			close(db.closed)
			n++
		}
	}
	return n
}

// horizon is the oldest time reads may ask for.
func (e *Emulator) horizon() int64 {
	return e.clock.wall() - e.opts.History.Microseconds()
}

// resolveReadTime checks a client-supplied read time: not older than the
// history window (FAILED_PRECONDITION) and not in the future
// (INVALID_ARGUMENT, as Firestore). Nanoseconds are truncated to µs.
func (e *Emulator) resolveReadTime(ts *timestamppb.Timestamp) (int64, error) {
	if err := ts.CheckValid(); err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "invalid read_time: %v", err)
	}
	t := protoToMicros(ts)
	if t > e.clock.latest() {
		return 0, status.Errorf(codes.InvalidArgument, "read_time cannot be in the future: %s", ts.AsTime().Format(time.RFC3339Nano))
	}
	if t < e.horizon() {
		return 0, status.Errorf(codes.FailedPrecondition,
			"read_time %s is older than the emulator keeps versions (history window %s)",
			ts.AsTime().Format(time.RFC3339Nano), e.opts.History)
	}
	e.clock.observe(t)
	return t, nil
}

// maintain prunes old versions and expires idle transactions until Close.
func (e *Emulator) maintain() {
	defer close(e.loopDone)
	pruneEvery := min(max(e.opts.History/4, 50*time.Millisecond), 30*time.Second)
	tick := time.NewTicker(min(pruneEvery, time.Second))
	defer tick.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-e.done:
			return
		case <-tick.C:
		}
		e.mu.Lock()
		dbs := make([]*database, 0, len(e.dbs))
		for _, db := range e.dbs {
			dbs = append(dbs, db)
		}
		e.mu.Unlock()
		prune := time.Since(lastPrune) >= pruneEvery
		if prune {
			lastPrune = time.Now()
		}
		for _, db := range dbs {
			db.expireTransactions(time.Now().Add(-e.opts.TransactionIdle))
			if prune {
				db.sweep(e.horizon())
			}
		}
	}
}

// dbFor resolves a database name from a request.
func (e *Emulator) dbFor(name string) (*database, error) {
	id, err := parseDatabaseName(name)
	if err != nil {
		return nil, err
	}
	return e.database(id), nil
}

// ensureOpen returns UNAVAILABLE once the emulator is closing.
func (e *Emulator) ensureOpen(ctx context.Context) error {
	select {
	case <-e.done:
		return status.Error(codes.Unavailable, "firestoreemu: shutting down")
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	default:
		return nil
	}
}
