package firestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestChangeStreamContract runs the change-stream suite over fresh projects
// of the emulator: documents of a hinted collection, and root collections
// the hints do not name (found at the next consistent point).
func TestChangeStreamContract(t *testing.T) {
	extractortest.ChangeStream(t, extractortest.ChangeHarness{
		New: func(t *testing.T) extractortest.ChangeSource {
			host, project, client := seedEmulator(t, baseDocs())
			ex := newExtractor(t, host, project, "firestore-discover", "true")
			return extractortest.ChangeSource{
				Extractor: ex,
				Hints:     extractors.ChangeHints{Collections: []string{"items", "a", "b", "c", "k"}},
				Key:       func(i int) string { return fmt.Sprintf("items/k%d", i) },
				Unhinted:  func(i int) string { return fmt.Sprintf("new%d/k", i) },
				Put: func(ctx context.Context, key string, f map[string]record.Value) error {
					m := map[string]any{}
					for k, v := range f {
						switch v.Type() {
						case record.TypeInt:
							m[k] = v.IntValue()
						case record.TypeString:
							m[k] = v.StringValue()
						default:
							return fmt.Errorf("type %v", v.Type())
						}
					}
					_, err := client.Doc(key).Set(ctx, m)
					return err
				},
				Delete: func(ctx context.Context, key string) error {
					_, err := client.Doc(key).Delete(ctx)
					return err
				},
			}
		},
		Coalesces: true,
		Window:    time.Hour,
	})
}
