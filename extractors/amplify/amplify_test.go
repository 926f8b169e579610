package amplify

import (
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
)

func TestEndpoint(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"", "", ""},
		{"http://127.0.0.1:8000", "http://127.0.0.1:8000", ""},
		{"https://dynamodb.eu-west-1.amazonaws.com", "https://dynamodb.eu-west-1.amazonaws.com", ""},
		{"127.0.0.1:8000", "", "must be an http(s) URL"},
		{"ftp://host", "", "must be an http(s) URL"},
		{"http://key:secret@host", "", "must not carry credentials"},
	} {
		got, err := Endpoint(plugin.Config{DynamoDBEndpointOption.Name: c.in}, DynamoDBEndpointOption)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("Endpoint(%q) error = %v, want one saying %q without the value", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Endpoint(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
