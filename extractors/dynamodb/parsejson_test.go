package dynamodb

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A malformed value's error says what was expected, never the value: an
// export's values are the app's data, often personal.
func TestParseJSONErrorDoesNotQuoteTheValue(t *testing.T) {
	for _, raw := range []string{`"alice@example.com"`, `{"X":"alice@example.com"}`, `{"S":"alice@example.com","N":"1"}`, `{"N":"alice@example.com"}`} {
		_, err := ParseJSON(json.RawMessage(raw))
		if err == nil {
			t.Fatalf("ParseJSON(%s) = nil error", raw)
		}
		if strings.Contains(err.Error(), "alice") {
			t.Errorf("ParseJSON(%s) error quotes the value: %v", raw, err)
		}
	}
	// A number that is not one is found where items are converted (the
	// scan's path too): that error does not quote it either.
	for _, av := range []types.AttributeValue{
		&types.AttributeValueMemberN{Value: "alice@example.com"},
		&types.AttributeValueMemberNS{Value: []string{"1", "alice@example.com"}},
	} {
		_, err := Value(av)
		if err == nil {
			t.Fatalf("Value(%v) = nil error", av)
		}
		if strings.Contains(err.Error(), "alice") {
			t.Errorf("Value(%T) error quotes the value: %v", av, err)
		}
	}
}
