package dynamodb

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/baasmigrate/baasmigrate/internal/record"
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

// TestStreamImageTypes: a stream record's new image becomes the record a
// scan makes of the same item, for every attribute type.
func TestStreamImageTypes(t *testing.T) {
	image := map[string]st.AttributeValue{
		"id":   &st.AttributeValueMemberS{Value: "a/b"},
		"n":    &st.AttributeValueMemberN{Value: "1.50"},
		"b":    &st.AttributeValueMemberB{Value: []byte{0, 1}},
		"ok":   &st.AttributeValueMemberBOOL{Value: true},
		"none": &st.AttributeValueMemberNULL{Value: true},
		"ss":   &st.AttributeValueMemberSS{Value: []string{"b", "a"}},
		"ns":   &st.AttributeValueMemberNS{Value: []string{"10", "9"}},
		"bs":   &st.AttributeValueMemberBS{Value: [][]byte{{2}, {1}}},
		"l":    &st.AttributeValueMemberL{Value: []st.AttributeValue{&st.AttributeValueMemberS{Value: "x"}, &st.AttributeValueMemberN{Value: "2"}}},
		"m":    &st.AttributeValueMemberM{Value: map[string]st.AttributeValue{"k": &st.AttributeValueMemberBOOL{Value: false}}},
	}
	item := map[string]types.AttributeValue{
		"id":   &types.AttributeValueMemberS{Value: "a/b"},
		"n":    &types.AttributeValueMemberN{Value: "1.50"},
		"b":    &types.AttributeValueMemberB{Value: []byte{0, 1}},
		"ok":   &types.AttributeValueMemberBOOL{Value: true},
		"none": &types.AttributeValueMemberNULL{Value: true},
		"ss":   &types.AttributeValueMemberSS{Value: []string{"b", "a"}},
		"ns":   &types.AttributeValueMemberNS{Value: []string{"10", "9"}},
		"bs":   &types.AttributeValueMemberBS{Value: [][]byte{{2}, {1}}},
		"l":    &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "x"}, &types.AttributeValueMemberN{Value: "2"}}},
		"m":    &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberBOOL{Value: false}}},
	}
	keys := [2]string{"id", ""}
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	r := st.Record{EventName: st.OperationTypeInsert, Dynamodb: &st.StreamRecord{NewImage: image, SequenceNumber: aws.String("1")}}
	c, err := change("T", keys, r, at, false)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, err := toRecord("T", keys, item, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Op != record.OpUpsert || c.Record.Key != want.Key || len(c.Record.Fields) != len(want.Fields) {
		t.Fatalf("change %v %q with %d fields; want an upsert of %q with %d", c.Op, c.Record.Key, len(c.Record.Fields), want.Key, len(want.Fields))
	}
	for name, v := range want.Fields {
		if !record.Equal(c.Record.Fields[name], v) {
			t.Errorf("field %s: %v; want %v", name, c.Record.Fields[name], v)
		}
	}
}
