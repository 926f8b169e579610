package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
)

// occurrence is one user of a batch as the users sinks' bookkeeping of
// repeated uids sees it: key is what its positions are stored by (Users:
// the uid; SupabaseUsers: the auth.users id), uid its Firebase uid, pos
// where an export file held it (nil for users from the API).
type occurrence struct {
	key, uid string
	pos      *record.Position
}

// repeat is an occurrence of a uid after its first in the same run of the
// same file: record index, whose first occurrence was first (record
// firstIndex of this batch, or -1 when an earlier batch loaded it).
type repeat struct {
	index      int
	occ        occurrence
	first      record.Position
	firstIndex int
}

// splitRepeats goes through a batch in order; occs[i] is record i's user,
// nil for a record already rejected. It returns the records to write: the
// first occurrence of each uid in the batch, unless admit (nil admits all)
// gives a reason to reject it, with which it is rejected on out (it still
// counts as its uid's first occurrence). An occurrence whose key, file and
// reading kept holds (loaded by an earlier batch) at another record, or
// that repeats a uid within the batch in the same file, is returned as a
// repeat, to pass to rejectRepeats once the batch is written; a repeat
// within the batch of which one side has no position is rejected on out.
func splitRepeats(occs []*occurrence, kept map[occurrenceKey]record.Position, admit func(i int) string, out *loaders.Outcome) (index []int, repeats []repeat) {
	seen := map[string]int{} // uid → index in occs of its first occurrence
	for i, o := range occs {
		if o == nil {
			continue
		}
		if o.pos != nil {
			if k, ok := kept[occurrenceKey{o.key, o.pos.File, o.pos.Read}]; ok && k.Record != o.pos.Record {
				// Loaded by an earlier batch of this run.
				repeats = append(repeats, repeat{index: i, occ: *o, first: k, firstIndex: -1})
				continue
			}
		}
		if j, dup := seen[o.uid]; dup {
			if first := occs[j]; first.pos != nil && o.pos != nil {
				repeats = append(repeats, repeat{index: i, occ: *o, first: *first.pos, firstIndex: j})
			} else {
				out.Reject(i, repeatedInBatchReason(o.uid, j))
			}
			continue
		}
		seen[o.uid] = i
		if admit != nil {
			if reason := admit(i); reason != "" {
				out.Reject(i, reason)
				continue
			}
		}
		index = append(index, i)
	}
	return index, repeats
}

// rejectRepeats rejects repeats on out with RepeatedUIDReason, naming both
// occurrences, and returns the keys and positions of those whose first
// occurrence is loaded (not rejected on out), which the sink records for
// Warnings.
func rejectRepeats(repeats []repeat, out *loaders.Outcome) (keys []string, cols positionColumns) {
	for _, r := range repeats {
		_, firstRejected := out.Rejects[r.firstIndex]
		firstRejected = firstRejected && r.firstIndex >= 0
		out.Reject(r.index, RepeatedUIDReason(r.occ.uid, *r.occ.pos, r.first, firstRejected))
		if firstRejected {
			continue
		}
		keys = append(keys, r.occ.key)
		cols.add(r.occ.uid, *r.occ.pos)
	}
	return keys, cols
}

// splitLoaded sorts the users a batch loaded into those from the API
// (their keys, whose file positions the sink forgets) and those from a
// file (their keys and positions, which it records).
func splitLoaded(loaded []occurrence) (fromAPI, keys []string, cols positionColumns) {
	for _, o := range loaded {
		if o.pos == nil {
			fromAPI = append(fromAPI, o.key)
			continue
		}
		keys = append(keys, o.key)
		cols.add(o.uid, *o.pos)
	}
	return fromAPI, keys, cols
}

// writeIsolating writes the records of recs that index lists, in that
// order, with write, which writes all of what it is given or nothing, and
// adds what it changed with count. When refused gives a reason for its
// error, it writes each of them alone instead, to find the ones refused,
// and rejects those on out with their reason. Any other error is returned
// with the index in recs of the one record it is about, or -1 for the
// whole batch.
func writeIsolating[R, C any](recs []R, index []int, out *loaders.Outcome, write func([]R) (C, error), count func(C), refused func(error) (string, bool)) (int, error) {
	if len(index) == 0 {
		return -1, nil
	}
	batch := make([]R, len(index)) // batch[j] is recs[index[j]]
	for j, i := range index {
		batch[j] = recs[i]
	}
	changed, err := write(batch)
	if err == nil {
		count(changed)
		return -1, nil
	}
	if _, ok := refused(err); !ok {
		return -1, err
	}
	for j, i := range index {
		changed, err := write(batch[j : j+1])
		if err == nil {
			count(changed)
			continue
		}
		reason, ok := refused(err)
		if !ok {
			return i, err
		}
		out.Reject(i, reason)
	}
	return -1, nil
}

// repeatSamples reads rows of repeated uids — (uid, file, record and line
// of the loaded occurrence, records and lines of the rejected ones, total
// count of such uids) — and words each as a sample for a warning. It
// returns the total (0 without rows) and the samples.
func repeatSamples(rows pgx.Rows) (int64, []string, error) {
	var (
		total, line int64
		samples     []string
		uid, file   string
		first       record.Position
		recs, lines []int64
	)
	_, err := pgx.ForEachRow(rows, []any{&uid, &file, &first.Record, &first.Line, &recs, &lines, &total}, func() error {
		var rejected []string
		for i, r := range recs {
			line = 0
			if i < len(lines) {
				line = lines[i]
			}
			rejected = append(rejected, record.Position{Record: r, Line: line}.String())
		}
		samples = append(samples, fmt.Sprintf("%q: %s migrated, %s rejected (%s)", uid, first, strings.Join(rejected, ", "), file))
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("looking for uids that appear more than once: %w", err)
	}
	return total, samples, nil
}
