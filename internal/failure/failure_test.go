package failure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minio/minio-go/v7"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/baasmigrate/baasmigrate/internal/faultnet"
)

// realErrors makes errors the way the tool meets them: from the kernel,
// the network, and the libraries' own error types.
func realErrors(t *testing.T) map[string]struct {
	err  error
	want Class
} {
	t.Helper()
	type c = struct {
		err  error
		want Class
	}
	out := map[string]c{}

	// A write to /dev/full fails with ENOSPC, as a full disk does.
	if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err == nil {
		_, werr := f.Write([]byte("x"))
		f.Close()
		out["ENOSPC from /dev/full"] = c{fmt.Errorf("writing an object: %w", werr), Permanent}
	}
	out["EDQUOT"] = c{&os.PathError{Op: "write", Path: "/q", Err: syscall.EDQUOT}, Permanent}
	out["EROFS"] = c{&os.PathError{Op: "open", Path: "/ro", Err: syscall.EROFS}, Permanent}
	out["EACCES"] = c{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, Permanent}
	_, err := os.Open("/no/such/file")
	out["ENOENT"] = c{err, Permanent}

	addr := faultnet.ClosedAddr(t)
	_, err = net.Dial("tcp", addr)
	out["connection refused"] = c{err, Transient}
	_, err = (&http.Client{}).Get("http://" + addr + "/")
	out["HTTP connection refused (url.Error)"] = c{err, Transient}

	a, b := net.Pipe()
	a.SetReadDeadline(time.Now().Add(-time.Second))
	_, err = a.Read(make([]byte, 1))
	a.Close()
	b.Close()
	out["net i/o timeout"] = c{err, Transient}
	out["closed connection"] = c{fmt.Errorf("reading: %w", net.ErrClosed), Transient}
	out["unexpected EOF"] = c{fmt.Errorf("reading the answer: %w", io.ErrUnexpectedEOF), Transient}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out["context canceled"] = c{fmt.Errorf("reading: %w", ctx.Err()), Permanent}
	ctx, cancel = context.WithTimeout(context.Background(), time.Nanosecond)
	<-ctx.Done()
	cancel()
	out["deadline of a call"] = c{ctx.Err(), Transient}

	for code, want := range map[string]Class{
		"21000": Record, "22P02": Record, "23505": Record, "54000": Record, "22021": Record, // invalid UTF-8
		"53100": Permanent, "28P01": Permanent, "42501": Permanent, "42P01": Permanent, "3D000": Permanent,
		"55P03": Transient, "57014": Transient, "40P01": Transient, "40001": Transient, "57P01": Transient,
		"08006": Transient, "53300": Transient, "58030": Transient,
	} {
		out["SQLSTATE "+code] = c{fmt.Errorf("loading rows: %w", &pgconn.PgError{Code: code, Message: "m"}), want}
	}
	out["pgx encode"] = c{errors.New("COPY from stdin failed: unable to encode 1.5 into binary format for int8"), Record}
	_, err = pgconn.Connect(context.Background(), "postgres://u@"+addr+"/db?connect_timeout=5&sslmode=disable")
	var connErr *pgconn.ConnectError
	if !errors.As(err, &connErr) {
		t.Fatalf("connecting to a closed port: %v, want a *pgconn.ConnectError", err)
	}
	out["pgconn connect refused"] = c{err, Transient}

	for code, want := range map[codes.Code]Class{
		codes.Unavailable: Transient, codes.ResourceExhausted: Transient, codes.Aborted: Transient,
		codes.DeadlineExceeded: Transient, codes.Internal: Transient,
		codes.PermissionDenied: Permanent, codes.Unauthenticated: Permanent, codes.NotFound: Permanent,
		codes.InvalidArgument: Permanent, codes.FailedPrecondition: Permanent, codes.Canceled: Permanent,
	} {
		out["gRPC "+code.String()] = c{fmt.Errorf("listing: %w", status.Error(code, "m")), want}
	}

	for code, want := range map[int]Class{429: Transient, 500: Transient, 503: Transient, 408: Transient,
		400: Permanent, 401: Permanent, 403: Permanent, 404: Permanent} {
		out[fmt.Sprintf("googleapi %d", code)] = c{fmt.Errorf("listing: %w", &googleapi.Error{Code: code}), want}
		out[fmt.Sprintf("minio %d", code)] = c{fmt.Errorf("put: %w", minio.ErrorResponse{StatusCode: code, Code: "X"}), want}
	}
	out["minio 507 storage full"] = c{minio.ErrorResponse{StatusCode: 507, Code: "XMinioStorageFull"}, Permanent}
	out["S3 RequestTimeout (a 400)"] = c{fmt.Errorf("put: %w", minio.ErrorResponse{StatusCode: 400, Code: "RequestTimeout"}), Transient}
	out["S3 RequestTimeTooSkewed (a 403)"] = c{minio.ErrorResponse{StatusCode: 403, Code: "RequestTimeTooSkewed"}, Transient}
	out["S3 SlowDown without a status"] = c{minio.ErrorResponse{Code: "SlowDown"}, Transient}

	out["marked transient"] = c{fmt.Errorf("x: %w", Mark(errors.New("odd"), Transient)), Transient}
	out["marked permanent over a network error"] = c{Mark(fmt.Errorf("x: %w", net.ErrClosed), Permanent), Permanent}
	out["Retryable method"] = c{fmt.Errorf("x: %w", retryableErr(true)), Transient}
	out["joined, first decides"] = c{errors.Join(&pgconn.PgError{Code: "23505"}, net.ErrClosed), Record}
	out["unknown"] = c{errors.New("something odd"), Permanent}
	return out
}

type retryableErr bool

func (r retryableErr) Error() string   { return "api" }
func (r retryableErr) Retryable() bool { return bool(r) }

func TestClassify(t *testing.T) {
	for name, tc := range realErrors(t) {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
	if Classify(nil) != Permanent {
		t.Errorf("Classify(nil) should be Permanent: nothing to retry")
	}
}

// TestAdviceForAFullDisk: a real ENOSPC gets advice naming where and
// saying that a re-run resumes.
func TestAdviceForAFullDisk(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	defer f.Close()
	_, err = f.Write([]byte("x"))
	got := Advice(fmt.Errorf("copying: %w", err), "the target directory")
	if got != "no space left on the target directory: free space and run again to resume" {
		t.Fatalf("Advice = %q", got)
	}
	if a := Advice(&pgconn.PgError{Code: "53100"}, ""); !strings.Contains(a, "disk is full") {
		t.Fatalf("Advice(53100) = %q", a)
	}
	if a := Advice(&pgconn.PgError{Code: "55P03"}, ""); !strings.Contains(a, "lock another session holds") {
		t.Fatalf("Advice(55P03) = %q", a)
	}
	if a := Advice(errors.New("odd"), ""); a != "" {
		t.Fatalf("Advice(odd) = %q, want none", a)
	}
}
