package firestoreemu

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PartitionQuery splits a collection-group query ordered by __name__ into
// at most partition_count ranges. It returns up to partition_count-1 split
// points, each the name of a document that matches at the read time, in
// ascending order, evenly spaced over the results. Fewer documents than
// partitions give fewer split points. The page token carries the read time,
// so every page splits the same snapshot.
func (s *server) PartitionQuery(ctx context.Context, req *pb.PartitionQueryRequest) (*pb.PartitionQueryResponse, error) {
	parent, id, err := parseParentName(req.GetParent(), dbID{})
	if err != nil {
		return nil, err
	}
	if len(parent) != 0 {
		return nil, status.Error(codes.InvalidArgument, "PartitionQuery parent must be the documents root")
	}
	sq := req.GetStructuredQuery()
	q, err := compileQuery(id, parent, sq)
	if err != nil {
		return nil, err
	}
	if !q.allDescendants {
		return nil, status.Error(codes.InvalidArgument, "PartitionQuery needs a collection group query (all_descendants)")
	}
	if !q.nameOrdered() || q.orders[0].desc || q.filter != nil || q.start != nil || q.end != nil || q.limit >= 0 || q.offset > 0 {
		return nil, status.Error(codes.InvalidArgument, "PartitionQuery needs a query ordered by __name__ ascending, without filters, cursors, limit or offset")
	}
	if req.PartitionCount <= 0 {
		return nil, status.Error(codes.InvalidArgument, "partition_count must be positive")
	}
	db := s.emu.database(id)
	var t int64
	offset := 0
	if req.PageToken != "" {
		t, offset, err = parsePartitionToken(req.PageToken)
		if err != nil {
			return nil, err
		}
		if t < s.emu.horizon() {
			return nil, status.Error(codes.FailedPrecondition, "partition page token is older than the history window")
		}
	} else {
		rc, err := s.readAt(ctx, db, nil, nil, req.GetReadTime())
		if err != nil {
			return nil, err
		}
		t = rc.t
	}
	// Collect the names at t; cheap for a test emulator, and exact.
	db.mu.RLock()
	docs, err := db.runQueryAll(&compiledQuery{
		db: q.db, parent: q.parent, parentKey: q.parentKey, collectionID: q.collectionID,
		allDescendants: true, orders: q.orders, limit: -1, hasProjection: true, projection: [][]string{{nameField}},
	}, t)
	db.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	points := splitPoints(len(docs), int(min(req.PartitionCount, int64(len(docs)))))
	if offset > len(points) {
		offset = len(points)
	}
	points = points[offset:]
	res := &pb.PartitionQueryResponse{}
	if req.PageSize > 0 && int(req.PageSize) < len(points) {
		points = points[:req.PageSize]
		res.NextPageToken = fmt.Sprintf("%d:%d", t, offset+len(points))
	}
	for _, i := range points {
		res.Partitions = append(res.Partitions, &pb.Cursor{Values: []*pb.Value{refValue(docs[i].Name)}})
	}
	s.emu.reads.add(db.id.project, "PartitionQuery", 1)
	return res, nil
}

// splitPoints returns the indexes of the split points that cut n ordered
// results into parts contiguous ranges of near-equal size (none when
// parts < 2).
func splitPoints(n, parts int) []int {
	var out []int
	for i := 1; i < parts; i++ {
		p := i * n / parts
		if p > 0 && (len(out) == 0 || p > out[len(out)-1]) {
			out = append(out, p)
		}
	}
	return out
}

func parsePartitionToken(tok string) (int64, int, error) {
	ts, off, ok := strings.Cut(tok, ":")
	t, err1 := strconv.ParseInt(ts, 10, 64)
	o, err2 := strconv.Atoi(off)
	if !ok || err1 != nil || err2 != nil || o < 0 {
		return 0, 0, status.Errorf(codes.InvalidArgument, "invalid page_token %q", tok)
	}
	return t, o, nil
}
