package dynamodb

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestItemID: document IDs of hash and hash+range keys of every key type,
// with the characters a path or the joint would misread percent-encoded,
// and the cursor round-tripping the key.
func TestItemID(t *testing.T) {
	for _, c := range []struct {
		keys [2]string
		item map[string]types.AttributeValue
		want string
	}{
		{[2]string{"id", ""}, map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "a/b|c%d ü"}}, "a%2Fb%7Cc%25d ü"},
		{[2]string{"pk", "sk"}, map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "USER#1"}, "sk": &types.AttributeValueMemberN{Value: "1.50E+1"}}, "USER#1|15"},
		{[2]string{"b", ""}, map[string]types.AttributeValue{"b": &types.AttributeValueMemberB{Value: []byte{0xfb, 0xff}}}, "-_8"},
	} {
		id, key, err := itemID(c.keys, c.item)
		if err != nil || id != c.want {
			t.Errorf("itemID(%v) = %q, %v; want %q", c.item, id, err, c.want)
			continue
		}
		cur, err := encodeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeKey(cur)
		if err != nil {
			t.Fatal(err)
		}
		id2, _, err := itemID(c.keys, back)
		if err != nil || id2 != id {
			t.Errorf("cursor %s gives back %q, %v; want %q", cur, id2, err, id)
		}
	}
	if _, _, err := itemID([2]string{"id", ""}, map[string]types.AttributeValue{"x": &types.AttributeValueMemberS{Value: "a"}}); err == nil || !strings.Contains(err.Error(), `"id"`) {
		t.Errorf("an item without its key: %v", err)
	}
}

// TestValueSets: sets come sorted, numbers exact.
func TestValueSets(t *testing.T) {
	v, err := Value(&types.AttributeValueMemberNS{Value: []string{"1E+20", "-3", "0.5", "2"}})
	want := record.Array(record.Int(-3), record.Decimal("0.5"), record.Int(2), record.Decimal("100000000000000000000"))
	if err != nil || !record.Equal(v, want) {
		t.Errorf("NS = %v, %v; want %v", v, err, want)
	}
	if _, err := Value(&types.AttributeValueMemberN{Value: "1,5"}); err == nil {
		t.Error("N 1,5 was taken")
	}
}
