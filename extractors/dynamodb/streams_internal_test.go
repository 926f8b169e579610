package dynamodb

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// TestShardLineage: a shard is read only once its parent was read to its
// end, or when its parent is no longer listed; shards read to their end
// are not read again.
func TestShardLineage(t *testing.T) {
	shard := func(id, parent string) st.Shard {
		s := st.Shard{ShardId: aws.String(id)}
		if parent != "" {
			s.ParentShardId = aws.String(parent)
		}
		return s
	}
	tb := &followed{shards: map[string]st.Shard{
		"root":     shard("root", ""),
		"child":    shard("child", "root"),
		"grand":    shard("grand", "child"),
		"orphan":   shard("orphan", "trimmed"),
		"finished": shard("finished", ""),
	}}
	tp := &tablePosition{Shards: map[string]*shardPosition{"finished": {Done: true}}}
	want := map[string]bool{"root": true, "child": false, "grand": false, "orphan": true, "finished": false}
	check := func(when string) {
		t.Helper()
		for id, w := range want {
			if got := readable(tb, tp, id); got != w {
				t.Errorf("%s: readable(%s) = %v, want %v", when, id, got, w)
			}
		}
	}
	check("at the start")
	tp.Shards["root"] = &shardPosition{Seq: "000000000000000000010"}
	check("with the root read in part")
	tp.Shards["root"] = &shardPosition{Done: true}
	want["root"], want["child"] = false, true
	check("with the root read to its end")
	tp.Shards["child"] = &shardPosition{Done: true}
	want["child"], want["grand"] = false, true
	check("with the child read to its end")
}

// TestStreamPositionRoundTrip: a position reads back as it was written,
// and PositionAt needs a time.
func TestStreamPositionRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	p := &streamPosition{Since: at.Add(-time.Hour), At: at, Tables: map[string]*tablePosition{
		"Todo": {Stream: "arn:x", Shards: map[string]*shardPosition{"s1": {Seq: "000000000000000000042"}, "s0": {Done: true}, "s2": {Skipping: true}}},
	}}
	got, err := parseStreamPosition(p.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.encode() != p.encode() || !got.At.Equal(at) || got.Tables["Todo"].Shards["s1"].Seq != "000000000000000000042" {
		t.Errorf("read back %s; wrote %s", got.encode(), p.encode())
	}
	var e Extractor
	if _, err := e.PositionAt(time.Time{}); err == nil {
		t.Error("PositionAt(zero time) gave a position")
	}
	for _, bad := range []string{"", "2026-12-07T00:00:00Z", "ddbstreams1:{", `ddbstreams1:{"at":"2026-12-07T00:00:00Z"}`} {
		if _, err := parseStreamPosition(bad); err == nil {
			t.Errorf("parseStreamPosition(%q) accepted it", bad)
		}
	}
}
