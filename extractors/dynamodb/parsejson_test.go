package dynamodb

import (
	"encoding/json"
	"strings"
	"testing"
)

// A malformed value's error says what was expected, never the value: an
// export's values are the app's data, often personal.
func TestParseJSONErrorDoesNotQuoteTheValue(t *testing.T) {
	for _, raw := range []string{`"alice@example.com"`, `{"X":"alice@example.com"}`, `{"S":"alice@example.com","N":"1"}`} {
		_, err := ParseJSON(json.RawMessage(raw))
		if err == nil {
			t.Fatalf("ParseJSON(%s) = nil error", raw)
		}
		if strings.Contains(err.Error(), "alice") {
			t.Errorf("ParseJSON(%s) error quotes the value: %v", raw, err)
		}
	}
}
