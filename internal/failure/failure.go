// Package failure classifies errors, in one place, by what should happen
// next: retry the operation (Transient), stop and tell the user
// (Permanent), or reject the one record and go on (Record). Every retry
// decision of the tool — extractors, the object store, the migration's
// batches — asks Classify.
package failure

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minio/minio-go/v7"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class is what an error calls for.
type Class int

// Classes of errors.
const (
	// Transient errors may pass: network failures, a call cut by its
	// deadline, throttling, a server restarting. The operation is retried.
	Transient Class = iota + 1
	// Permanent errors will not pass by retrying: refused credentials,
	// something not found, a full or read-only disk, an invalid request,
	// the run's own cancellation. The operation fails at once.
	Permanent
	// Record errors are about one record, which the target cannot hold: it
	// is rejected with the reason and the others go on.
	Record
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Record:
		return "record"
	}
	return "unclassified"
}

// Classed is implemented by errors that know their class. The outermost
// such error in a chain decides.
type Classed interface {
	FailureClass() Class
}

// retryable is the older form of Classed: Retryable true is Transient,
// false Permanent.
type retryable interface {
	Retryable() bool
}

// Mark wraps err so that Classify returns c for it. A nil err stays nil.
func Mark(err error, c Class) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: c}
}

type marked struct {
	err   error
	class Class
}

func (e *marked) Error() string       { return e.err.Error() }
func (e *marked) Unwrap() error       { return e.err }
func (e *marked) FailureClass() Class { return e.class }

// Classify returns the class of err (Permanent for nil and for anything it
// does not recognise: an unknown failure is not retried blindly).
//
// In order: an error marked with its class (Mark, Classed, or a
// Retryable method) in the chain; context.Canceled is Permanent and
// context.DeadlineExceeded Transient (the deadline of one call — retry.Do
// never retries once the run's own context has ended); ENOSPC, EDQUOT and
// EROFS Permanent; PostgreSQL errors by SQLSTATE (class 22, 23, 54 and
// values pgx cannot encode: Record; 53100 disk full, 28 authorization:
// Permanent; 08, 40, 53, 57, 58, 55P03: Transient); gRPC statuses
// (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, DEADLINE_EXCEEDED, INTERNAL:
// Transient); HTTP statuses from Google's and MinIO's clients (408, 429,
// 5xx: Transient); network errors, an unexpected EOF or a closed
// connection: Transient.
func Classify(err error) Class {
	if err == nil {
		return Permanent
	}
	for e := err; e != nil; e = unwrapOne(e) {
		switch x := e.(type) {
		case Classed:
			return x.FailureClass()
		case retryable:
			if x.Retryable() {
				return Transient
			}
			return Permanent
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Permanent
	case errors.Is(err, context.DeadlineExceeded):
		return Transient
	case IsEncodeError(err):
		return Record
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgClass(pgErr.Code)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errnoClass(errno)
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.OK && s.Code() != codes.Unknown {
		return grpcClass(s.Code())
	}
	var gErr *googleapi.Error
	if errors.As(err, &gErr) {
		return httpClass(gErr.Code)
	}
	var mErr minio.ErrorResponse
	if errors.As(err, &mErr) {
		if s3TransientCodes[mErr.Code] {
			return Transient
		}
		if mErr.StatusCode != 0 {
			return httpClass(mErr.StatusCode)
		}
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return Permanent
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return Permanent // a misspelt host does not appear by waiting
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Transient
	}
	msg := err.Error()
	for _, s := range transientMessages {
		if strings.Contains(msg, s) {
			return Transient
		}
	}
	return Permanent
}

// s3TransientCodes are S3 error codes worth retrying whatever their HTTP
// status (RequestTimeout is a 400, RequestTimeTooSkewed a 403,
// OperationAborted a 409): throttling, a server starting, a clock skew
// the client corrects.
var s3TransientCodes = map[string]bool{
	"SlowDown": true, "SlowDownWrite": true, "SlowDownRead": true, "ServiceUnavailable": true, "InternalError": true,
	"RequestTimeout": true, "RequestTimeTooSkewed": true, "XMinioServerNotInitialized": true, "OperationAborted": true,
}

// transientMessages are failures some clients report without a type.
var transientMessages = []string{
	"connection reset", "broken pipe", "conn closed", // pgx's closed connection has no type
	"http2: client connection lost", "http2: server sent GOAWAY", "unexpected EOF",
}

// unwrapOne returns the next error of a chain, following the first of a
// joined list.
func unwrapOne(err error) error {
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		return x.Unwrap()
	case interface{ Unwrap() []error }:
		if errs := x.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return nil
}

// pgClass classifies a SQLSTATE.
func pgClass(code string) Class {
	if len(code) < 2 {
		return Permanent
	}
	switch code {
	case "53100": // disk_full
		return Permanent
	case "55P03", // lock_not_available: a lock timeout
		"57014": // query_canceled: a statement timeout
		return Transient
	}
	switch code[:2] {
	case "21", // cardinality violation: one batch holding a key twice
		"22", // data exception: a value refused
		"23", // integrity constraint violation
		"54": // program limit exceeded: an index row too large
		return Record
	case "08", // connection exception
		"40", // transaction rollback: serialization failure, deadlock
		"53", // insufficient resources (but disk full, above)
		"57", // operator intervention: admin shutdown, crash, cannot connect now
		"58": // system error
		return Transient
	}
	return Permanent // 28 authorization, 42 syntax or access, 3D no database, ...
}

func errnoClass(errno syscall.Errno) Class {
	switch errno {
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.ENETRESET, syscall.EAGAIN, syscall.EINTR:
		return Transient
	}
	return Permanent // ENOSPC, EDQUOT, EROFS, EACCES, EIO, ...
}

func grpcClass(c codes.Code) Class {
	switch c {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded, codes.Internal:
		return Transient
	}
	return Permanent // PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND, INVALID_ARGUMENT, CANCELLED, ...
}

func httpClass(code int) Class {
	if code == http.StatusInsufficientStorage { // 507: MinIO's disk is full
		return Permanent
	}
	if code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500 {
		return Transient
	}
	return Permanent
}

// IsEncodeError recognises pgx's refusal to encode a value (inside COPY
// it comes back as "COPY from stdin failed", SQLSTATE 57014). It is a
// Record error.
func IsEncodeError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to encode")
}

// Advise returns err with its Advice put before it ("no space left on the
// target directory: free space and run again to resume: write …"), or err
// itself when there is none or it was given already.
func Advise(err error, where string) error {
	if a := Advice(err, where); a != "" {
		return &advised{err: err, advice: a}
	}
	return err
}

type advised struct {
	err    error
	advice string
}

func (e *advised) Error() string { return e.advice + ": " + e.err.Error() }
func (e *advised) Unwrap() error { return e.err }

// Advice says what the user can do about err, naming where (such as "the
// target directory") when it is about a disk, and that a re-run resumes;
// "" when there is nothing specific to say, or Advise said it already.
func Advice(err error, where string) string {
	var done *advised
	if err == nil || errors.As(err, &done) {
		return "" // said already
	}
	if where == "" {
		where = "the device"
	}
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "no space left on " + where + ": free space and run again to resume"
	case errors.Is(err, syscall.EDQUOT):
		return "the disk quota of " + where + " is used up: free space or raise the quota and run again to resume"
	case errors.Is(err, syscall.EROFS):
		return where + " is on a read-only file system: make it writable and run again to resume"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "53100":
			return "the target database's disk is full: free space on the PostgreSQL server and run again to resume"
		case "55P03":
			return "a statement waited longer than --target-timeout for a lock another session holds " +
				"(look for it in pg_stat_activity and pg_locks); run again to resume once it is released"
		case "57014":
			return "a statement ran longer than --target-timeout (blocked, or the server overloaded); " +
				"raise --target-timeout if it is just slow, and run again to resume"
		}
	}
	return ""
}
