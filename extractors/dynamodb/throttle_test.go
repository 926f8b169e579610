package dynamodb_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// throttler forwards requests to DynamoDB Local but answers the Scans it
// is told to with ProvisionedThroughputExceededException, as DynamoDB does
// when a table's read capacity is used up.
type throttler struct {
	next     http.Handler
	throttle func(n int64) bool // for the n-th Scan (from 1)
	scans    atomic.Int64
	refused  atomic.Int64
}

func (th *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".Scan") && th.throttle(th.scans.Add(1)) {
		th.refused.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}`))
		return
	}
	th.next.ServeHTTP(w, r)
}

// TestThrottling: throttled Scans are retried with backoff and the read
// completes; a table that stays throttled ends in an error saying what to
// do, naming the table.
func TestThrottling(t *testing.T) {
	awsCredentials(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // only our retries, so they can be counted
	ctx := context.Background()
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	table := dynamodbtest.Table(t, c, "id", "S", "", "")
	if err := dynamodbtest.Seed(ctx, c, table, 0, 60); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(ep)
	th := &throttler{next: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(th)
	defer srv.Close()

	// Every other Scan page is refused once: all items still come.
	th.throttle = func(n int64) bool { return n%2 == 1 }
	cfg := config(srv.URL, table)
	cfg["retry-attempts"] = "3"
	ex := newExtractor(t, cfg)
	n, _ := readAll(t, ex, 2)
	if n != 59 || th.refused.Load() == 0 {
		t.Errorf("read %d items through %d throttled scans; want 59", n, th.refused.Load())
	}

	// Always refused: the error says what to do.
	th.throttle = func(int64) bool { return true }
	th.refused.Store(0)
	ex = newExtractor(t, cfg)
	streams, err := ex.Plan(ctx, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	err = ex.Read(ctx, streams[0].Partitions[0], time.Time{}, "", func(record.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "DynamoDB kept throttling the scan of table "+table) ||
		!strings.Contains(err.Error(), "--dynamodb-export") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("a table that stays throttled: %v", err)
	}
	if got := th.refused.Load(); got != 3 {
		t.Errorf("%d scans refused, want 3 (--retry-attempts)", got)
	}
}
