package firestore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

var _ extractors.Getter = (*Extractor)(nil)

// getBatch is how many documents one BatchGetDocuments call asks for.
const getBatch = 300

// Get reads documents by key (paths relative to the database root, as
// records have them) at readTime (zero: now) with BatchGetDocuments, up to
// 300 keys a call, each call retried under the --retry-* policy, and calls
// emit once per key in the order given: with the record as Read builds it,
// or nil when no document has that path at readTime (a missing parent
// included). Firestore bills 1 read per key, found or not. A read time
// older than Firestore keeps gives ErrSnapshotExpired (wrapped).
func (e *Extractor) Get(ctx context.Context, keys []string, readTime time.Time, emit func(key string, rec *record.Record) error) error {
	for _, k := range keys {
		if segs := strings.Split(k, "/"); k == "" || len(segs)%2 != 0 || containsEmpty(segs) {
			return fmt.Errorf("reading documents by key: %q is not a document path (collection/id[/collection/id...])", k)
		}
	}
	database := strings.TrimSuffix(e.root, "/documents")
	for len(keys) > 0 {
		chunk := keys[:min(getBatch, len(keys))]
		keys = keys[len(chunk):]
		var names []string
		seen := map[string]bool{}
		for _, k := range chunk {
			if !seen[k] {
				seen[k] = true
				names = append(names, e.root+"/"+k)
			}
		}
		found := map[string]*record.Record{}
		what := fmt.Sprintf("reading %d documents by key from %s", len(names), chunk[0])
		err := e.do(ctx, what, func(ctx context.Context) error {
			clear(found)
			req := &pb.BatchGetDocumentsRequest{Database: database, Documents: names}
			if !readTime.IsZero() {
				req.ConsistencySelector = &pb.BatchGetDocumentsRequest_ReadTime{ReadTime: timestamppb.New(readTime)}
			}
			stream, err := e.client.BatchGetDocuments(ctx, req)
			if err != nil {
				return err
			}
			n := 0
			defer func() { e.reads.Add(int64(n)) }()
			for {
				resp, err := stream.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				retry.Alive(ctx)
				switch r := resp.Result.(type) {
				case *pb.BatchGetDocumentsResponse_Found:
					n++
					rec, err := e.toRecord(r.Found)
					if err != nil {
						return retry.Mark(err, false)
					}
					found[rec.Key] = &rec
				case *pb.BatchGetDocumentsResponse_Missing:
					n++
				}
			}
		})
		if isExpired(err, readTime) {
			return fmt.Errorf("%s at %s: %w", what, readTime.Format(time.RFC3339Nano), extractors.ErrSnapshotExpired)
		}
		if err != nil {
			return err
		}
		for _, k := range chunk {
			if err := emit(k, found[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func containsEmpty(segs []string) bool {
	for _, s := range segs {
		if s == "" {
			return true
		}
	}
	return false
}
