package syncer

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Metrics exports sync's progress in the Prometheus format. A nil
// *Metrics records nothing.
type Metrics struct {
	registry   *prometheus.Registry
	lag        *lagCollector
	readTime   *prometheus.GaugeVec
	lastCommit *prometheus.GaugeVec
	pendingG   *prometheus.GaugeVec
	appliedC   *prometheus.CounterVec
	deletedC   *prometheus.CounterVec
	rejectedC  *prometheus.CounterVec
	lagH       *prometheus.HistogramVec
	polls      *prometheus.CounterVec
	pollReads  *prometheus.CounterVec
	pollTime   *prometheus.GaugeVec
}

// NewMetrics creates sync's metrics in a registry of their own (with the
// Go runtime and process collectors).
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	job := []string{"job"}
	m := &Metrics{
		registry: r,
		readTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baasmigrate_sync_read_time_seconds",
			Help: "Source time (Unix seconds) up to which the target reflects the source: the last applied consistent point, or the start of the last complete poll."}, job),
		lastCommit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baasmigrate_sync_last_commit_time_seconds",
			Help: "Source commit time (Unix seconds) of the last change applied."}, job),
		pendingG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baasmigrate_sync_pending_changes",
			Help: "Changes delivered by the source and not yet committed to the target."}, job),
		appliedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baasmigrate_sync_applied_total",
			Help: "Records written (created or changed) by sync."}, job),
		deletedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baasmigrate_sync_deleted_total",
			Help: "Records deleted (or marked deleted) by sync."}, job),
		rejectedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baasmigrate_sync_rejected_total",
			Help: "Records sync could not store (see baasmigrate.rejects)."}, job),
		lagH: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baasmigrate_sync_apply_lag_seconds",
			Help:    "Time from a change's commit at the source to its commit in the target.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, job),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baasmigrate_sync_polls_total",
			Help: "Complete polls of sources without a change stream."}, job),
		pollReads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baasmigrate_sync_poll_source_reads_total",
			Help: "Billable source reads spent by polls."}, job),
		pollTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baasmigrate_sync_last_poll_seconds",
			Help: "How long the last complete poll took."}, job),
	}
	m.lag = &lagCollector{desc: prometheus.NewDesc("baasmigrate_sync_lag_seconds",
		"How far the target is behind the source now: the time since the source time it reflects (baasmigrate_sync_read_time_seconds).",
		[]string{"job"}, nil), readTimes: map[string]time.Time{}}
	r.MustRegister(m.lag, m.readTime, m.lastCommit, m.pendingG, m.appliedC, m.deletedC, m.rejectedC, m.lagH, m.polls, m.pollReads, m.pollTime)
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func (m *Metrics) started(job string, st *postgres.SyncStream) {
	if m == nil {
		return
	}
	m.lag.set(job, st.ReadTime)
	m.readTime.WithLabelValues(job).Set(unix(st.ReadTime))
	m.lastCommit.WithLabelValues(job).Set(unix(st.LastCommit))
	m.pendingG.WithLabelValues(job).Set(0)
}

// pendingNone says nothing waits (a stream that ended drops what it
// delivered and did not apply; it comes again).
func (m *Metrics) pendingNone(job string) {
	if m == nil {
		return
	}
	m.pendingG.WithLabelValues(job).Set(0)
}

func (m *Metrics) pending(job string, n int) {
	if m == nil {
		return
	}
	m.pendingG.WithLabelValues(job).Add(float64(n))
}

func (m *Metrics) applied(job string, st *postgres.SyncStream, b postgres.SyncBatch, chunk []record.Change) {
	if m == nil {
		return
	}
	m.lag.set(job, st.ReadTime)
	m.readTime.WithLabelValues(job).Set(unix(st.ReadTime))
	m.lastCommit.WithLabelValues(job).Set(unix(st.LastCommit))
	m.appliedC.WithLabelValues(job).Add(float64(b.Applied))
	m.deletedC.WithLabelValues(job).Add(float64(b.Deleted))
	m.rejectedC.WithLabelValues(job).Add(float64(len(b.Rejects)))
	now := time.Now()
	h := m.lagH.WithLabelValues(job)
	for _, c := range chunk {
		if !c.CommitTime.IsZero() {
			h.Observe(now.Sub(c.CommitTime).Seconds())
		}
	}
}

func (m *Metrics) polled(job string, r *PollResult) {
	if m == nil {
		return
	}
	m.polls.WithLabelValues(job).Inc()
	m.pollReads.WithLabelValues(job).Add(float64(r.SourceReads))
	m.pollTime.WithLabelValues(job).Set(r.Elapsed.Seconds())
}

// lagCollector reports each job's lag computed when scraped, so that it
// grows while nothing is applied.
type lagCollector struct {
	desc      *prometheus.Desc
	mu        sync.Mutex
	readTimes map[string]time.Time
}

func (c *lagCollector) set(job string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readTimes[job] = t
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for job, t := range c.readTimes {
		if t.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, max(now.Sub(t).Seconds(), 0), job)
	}
}
