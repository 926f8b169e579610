package extractortest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/memory"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// brokenEnv names the way TestBrokenChangeStream breaks the memory
// source's change stream; coalescesEnv, when set, runs the suite with
// ChangeHarness.Coalesces.
const (
	brokenEnv    = "EXTRACTORTEST_BROKEN_CHANGES"
	coalescesEnv = "EXTRACTORTEST_COALESCES"
)

// broken wraps the memory source and breaks one promise of its change
// stream (or Get), named by mode.
type broken struct {
	*memory.Extractor
	mode string
}

func (b *broken) PositionAt(t time.Time) (string, error) {
	if b.mode == "starts-a-microsecond-early" {
		t = t.Add(-time.Microsecond)
	}
	return b.Extractor.PositionAt(t)
}

func (b *broken) Changes(ctx context.Context, from string, hints extractors.ChangeHints, emit func(record.ChangeBatch) error) error {
	if b.mode == "never-expires" {
		now, err := b.SnapshotTime(ctx)
		if err != nil {
			return err
		}
		if at, err := time.Parse(time.RFC3339Nano, from); err == nil && at.Before(now.Add(-b.SnapshotWindow())) {
			from, _ = b.Extractor.PositionAt(now)
		}
	}
	start := from
	err := b.Extractor.Changes(ctx, from, hints, func(batch record.ChangeBatch) error {
		switch b.mode {
		case "drops-deletes":
			batch.Changes = slices.DeleteFunc(slices.Clone(batch.Changes), func(c record.Change) bool { return c.Op == record.OpDelete })
		case "keeps-each-keys-last-change":
			var kept []record.Change
			for i, c := range batch.Changes {
				if !slices.ContainsFunc(batch.Changes[i+1:], func(d record.Change) bool { return d.Record.Key == c.Record.Key }) {
					kept = append(kept, c)
				}
			}
			batch.Changes = kept
		case "reverses-batches":
			batch.Changes = slices.Clone(batch.Changes)
			slices.Reverse(batch.Changes)
		case "positions-at-the-start":
			batch.Position = start
		case "positions-a-microsecond-late":
			batch.Position, _ = b.Extractor.PositionAt(batch.ReadTime.Add(time.Microsecond))
		case "adds-a-field":
			batch.Changes = slices.Clone(batch.Changes)
			for i, c := range batch.Changes {
				if c.Op == record.OpUpsert {
					c.Record.Fields = maps.Clone(c.Record.Fields)
					c.Record.Fields["added"] = record.Bool(true)
					batch.Changes[i] = c
				}
			}
		case "heartbeat-from-the-past":
			if len(batch.Changes) > 0 {
				if err := emit(batch); err != nil {
					return err
				}
				batch = record.ChangeBatch{ReadTime: batch.ReadTime.Add(-time.Second), Position: batch.Position}
			}
		}
		return emit(batch)
	})
	switch {
	case b.mode == "hides-the-context-error" && errors.Is(err, context.Canceled):
		return errors.New("stopped following")
	case b.mode == "wraps-emit-errors" && err != nil && ctx.Err() == nil:
		return fmt.Errorf("emitting a batch: %v", err)
	}
	return err
}

func (b *broken) Get(ctx context.Context, keys []string, readTime time.Time, emit func(string, *record.Record) error) error {
	if b.mode == "gets-the-latest" {
		readTime = time.Time{}
	}
	return b.Extractor.Get(ctx, keys, readTime, emit)
}

// TestBrokenChangeStream runs the suite against the memory source broken
// as $EXTRACTORTEST_BROKEN_CHANGES says ("none": not broken). It is run by
// TestChangeStreamCatchesBrokenSources, in a process of its own, and
// skipped otherwise.
func TestBrokenChangeStream(t *testing.T) {
	mode := os.Getenv(brokenEnv)
	if mode == "" {
		t.Skip("run by TestChangeStreamCatchesBrokenSources")
	}
	wait := 2 * time.Minute
	if mode == "positions-a-microsecond-late" {
		// The last batch's Position is in the future: following from it
		// waits for a batch that never comes, and fails after Wait.
		wait = 2 * time.Second
	}
	extractortest.ChangeStream(t, extractortest.ChangeHarness{
		New: func(t *testing.T) extractortest.ChangeSource {
			ex, err := memory.New(nil, memory.Options{Name: "broken"})
			if err != nil {
				t.Fatal(err)
			}
			return extractortest.ChangeSource{
				Extractor: &broken{Extractor: ex, mode: mode},
				Hints:     extractors.ChangeHints{Collections: []string{"c"}},
				Key:       func(i int) string { return fmt.Sprintf("c/%d", i) },
				Unhinted:  func(i int) string { return fmt.Sprintf("new%d/x", i) },
				Put: func(_ context.Context, key string, fields map[string]record.Value) error {
					_, err := ex.Put(record.Record{Kind: record.KindDocument, Key: key, Fields: fields})
					return err
				},
				Delete: func(_ context.Context, key string) error {
					_, err := ex.Delete(key)
					return err
				},
			}
		},
		Coalesces: os.Getenv(coalescesEnv) != "",
		Window:    memory.DefaultWindow,
		Wait:      wait,
	})
}

// TestChangeStreamCatchesBrokenSources shows that each property the suite
// checks can fail: the memory source, broken one way at a time, fails the
// suite with the message of that property (and, unbroken or coalescing
// under Coalesces, passes it).
func TestChangeStreamCatchesBrokenSources(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("inside the process that runs the broken source")
	}
	for _, c := range []struct {
		mode      string
		coalesces bool
		want      []string // what the failure says; none to pass
	}{
		{mode: "none"},
		{mode: "keeps-each-keys-last-change", coalesces: true},
		{mode: "keeps-each-keys-last-change", want: []string{"version 10 of \"c/5\", committed after the position the stream started from, was never delivered"}},
		{mode: "drops-deletes", want: []string{"the delete of \"c/1\", committed after the position the stream started from, was never delivered"}},
		{mode: "drops-deletes", coalesces: true, want: []string{"\"c/1\" is version 2 in the stream, but absent at the source"}},
		{mode: "reverses-batches", want: []string{"is version 10 of \"c/5\", out of commit order: version 11 of \"c/5\" was delivered before it"}},
		{mode: "heartbeat-from-the-past", want: []string{"ReadTime went back"}},
		{mode: "starts-a-microsecond-early", want: []string{"is version 7 of \"c/4\", committed at or before the position the stream started from"}},
		{mode: "positions-at-the-start", want: []string{"--- FAIL: TestBrokenChangeStream/ResumesFromEveryPosition", "resumed from the Position of batch 1", "committed at or before the position the stream started from"}},
		{mode: "positions-a-microsecond-late", want: []string{"--- FAIL: TestBrokenChangeStream/ResumesFromEveryPosition", "resumed from the Position of batch 0", "committed after the position the stream started from, was never delivered"}},
		{mode: "adds-a-field", want: []string{"the stream's last upsert differs from what Read delivers", "differs from what Get delivers at its commit time"}},
		{mode: "hides-the-context-error", want: []string{"Changes returned stopped following when its context ended; want ctx.Err()"}},
		{mode: "wraps-emit-errors", want: []string{"emit's error: Changes returned emitting a batch"}},
		{mode: "never-expires", want: []string{"want extractors.ErrSnapshotExpired"}},
		{mode: "gets-the-latest", want: []string{"is version 3; it was version 1 then"}},
	} {
		name := c.mode
		if c.coalesces {
			name += "/coalesces"
		}
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChangeStream$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+c.mode, coalescesEnv+"=")
			if c.coalesces {
				cmd.Env = append(cmd.Env, coalescesEnv+"=1")
			}
			out, err := cmd.CombinedOutput()
			switch {
			case len(c.want) == 0 && err != nil:
				t.Fatalf("the suite failed: %v\n%s", err, out)
			case len(c.want) > 0 && err == nil:
				t.Fatalf("the suite passed; want it to fail with %q\n%s", c.want, out)
			case len(c.want) > 0 && !strings.Contains(string(out), "--- FAIL: TestBrokenChangeStream"):
				t.Fatalf("the process failed (%v) without the suite failing:\n%s", err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the suite failed, but without saying %q:\n%s", w, out)
				}
			}
		})
	}
}
