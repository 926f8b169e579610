package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// barProgress draws one progress bar per stream (streams run one after
// another): records or, for files, bytes, with rate and ETA.
type barProgress struct{ w io.Writer }

func (p barProgress) StartStream(info migration.StreamInfo) migration.StreamProgress {
	kind, stream, total, done := info.Kind, info.Name, info.Total, info.Done
	unit := string(kind) + "s"
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-24s", truncate(stream, 24))),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	}
	if kind == record.KindFile {
		// Files progress in bytes: the rate and ETA that matter.
		opts = append(opts, progressbar.OptionShowBytes(true))
		total, done = info.TotalBytes, 0
	}
	bar := progressbar.NewOptions64(total, opts...)
	if done > 0 && kind != record.KindFile {
		_ = bar.Set64(done)
	}
	return &barStream{bar: bar, files: kind == record.KindFile}
}

type barStream struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	files bool
}

func (s *barStream) Add(records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files {
		_ = s.bar.Add64(bytes)
		return
	}
	_ = s.bar.Add64(records)
}

func (s *barStream) Finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.bar.Finish()
}

// logProgress reports progress as log lines, at most every interval, for
// runs whose stderr is not a terminal.
type logProgress struct {
	log      *slog.Logger
	interval time.Duration
}

func (p logProgress) StartStream(info migration.StreamInfo) migration.StreamProgress {
	p.log.Info("reading stream", "kind", info.Kind, "stream", info.Name, "total", info.Total, "total_bytes", info.TotalBytes, "already_committed", info.Done)
	return &logStream{p: p, kind: info.Kind, stream: info.Name, total: info.Total, records: info.Done, start: time.Now(), last: time.Now()}
}

type logStream struct {
	p              logProgress
	kind           record.Kind
	stream         string
	mu             sync.Mutex
	total, records int64
	bytes          int64
	start, last    time.Time
}

func (s *logStream) Add(records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records += records
	s.bytes += bytes
	if time.Since(s.last) >= s.p.interval {
		s.last = time.Now()
		s.p.log.Info("progress", "stream", s.stream, "records", s.records, "total", s.total, "bytes", s.bytes)
	}
}

func (s *logStream) Finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.log.Info("stream done", "stream", s.stream, "records", s.records, "bytes", s.bytes, "elapsed", time.Since(s.start).Round(time.Millisecond))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
