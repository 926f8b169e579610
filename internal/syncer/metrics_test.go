package syncer

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// TestMetricsExposeLagAndCounts scrapes the Prometheus handler after a
// batch: the lag gauge is computed at the scrape, counters add up.
func TestMetricsExposeLagAndCounts(t *testing.T) {
	m := NewMetrics()
	st := &postgres.SyncStream{ReadTime: time.Now().Add(-90 * time.Second)}
	m.started("job a", st)
	chunk := []record.Change{{Op: record.OpUpsert, CommitTime: time.Now().Add(-time.Second)}, {Op: record.OpDelete, CommitTime: time.Now()}}
	m.applied("job a", st, postgres.SyncBatch{Applied: 1, Deleted: 1}, chunk)
	m.polled("job b", &PollResult{SourceReads: 7, Elapsed: time.Second})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`baasmigrate_sync_applied_total{job="job a"} 1`,
		`baasmigrate_sync_deleted_total{job="job a"} 1`,
		`baasmigrate_sync_apply_lag_seconds_count{job="job a"} 2`,
		`baasmigrate_sync_poll_source_reads_total{job="job b"} 7`,
		`baasmigrate_sync_lag_seconds{job="job a"} 9`, // 90.x seconds
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.applied("job", st, postgres.SyncBatch{}, chunk) // records nothing, no panic
}
