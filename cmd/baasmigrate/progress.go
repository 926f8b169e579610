package main

import (
	"errors"
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
// another): records or, for files, bytes, with rate and ETA once the
// stream's size is known (a spinner until then).
type barProgress struct{ w io.Writer }

func (p barProgress) StartStream(info migration.StreamInfo) migration.StreamProgress {
	kind, stream, done := info.Kind, info.Name, info.Done
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
		done = 0
	}
	bar := progressbar.NewOptions64(-1, opts...)
	if done > 0 {
		_ = bar.Set64(done)
	}
	return &barStream{bar: bar, opts: opts, done: done, files: kind == record.KindFile}
}

// barStream is one stream's bar: a spinner until the stream's total is
// known, then a bar with percentage and ETA.
type barStream struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	opts  []progressbar.Option
	done  int64 // what the bar counts (records, or bytes for files) so far
	files bool
}

// SetTotal replaces the spinner with a bar of the total, started where the
// stream is. (The library's spinner keeps its position modulo its width,
// so changing its length would start the bar from a wrong position.)
func (s *barStream) SetTotal(records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.counted(records, bytes)
	if total < 0 {
		return
	}
	_ = s.bar.Clear()
	s.bar = progressbar.NewOptions64(total, s.opts...)
	_ = s.bar.Set64(min(s.done, total))
}

func (s *barStream) Add(records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.counted(records, bytes)
	s.done += n
	_ = s.bar.Add64(n)
}

// counted is what the bar counts of records and bytes: bytes for files,
// records otherwise.
func (s *barStream) counted(records, bytes int64) int64 {
	if s.files {
		return bytes
	}
	return records
}

// Finish fills the bar when the stream is complete, and otherwise leaves
// it where the stream stopped.
func (s *barStream) Finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		_ = s.bar.Exit()
		return
	}
	_ = s.bar.Finish()
}

// logProgress reports progress as log lines, for runs whose stderr is not a
// terminal: after the first commit of a stream (the run is moving), then at
// most every interval.
type logProgress struct {
	log      *slog.Logger
	interval time.Duration
}

func (p logProgress) StartStream(info migration.StreamInfo) migration.StreamProgress {
	p.log.Info("reading stream", "kind", info.Kind, "stream", info.Name, "already_committed", info.Done)
	return &logStream{p: p, kind: info.Kind, stream: info.Name, total: -1, records: info.Done, start: time.Now()}
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

func (s *logStream) SetTotal(records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total = records
	s.p.log.Info("stream sized", "stream", s.stream, "total", records, "total_bytes", bytes)
}

func (s *logStream) Add(records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records += records
	s.bytes += bytes
	if s.last.IsZero() || time.Since(s.last) >= s.p.interval {
		s.last = time.Now()
		s.p.log.Info("progress", "stream", s.stream, "records", s.records, "total", s.total, "bytes", s.bytes)
	}
}

func (s *logStream) Finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := time.Since(s.start).Round(time.Millisecond)
	switch {
	case err == nil:
		s.p.log.Info("stream done", "stream", s.stream, "records", s.records, "total", s.total, "bytes", s.bytes, "elapsed", elapsed)
	case errors.Is(err, migration.ErrInterrupted):
		s.p.log.Info("stream interrupted", "stream", s.stream, "records", s.records, "bytes", s.bytes, "elapsed", elapsed)
	default:
		s.p.log.Info("stream failed", "stream", s.stream, "records", s.records, "bytes", s.bytes, "elapsed", elapsed, "err", err)
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
