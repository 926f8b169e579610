package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/loadertest"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestEvolvingDocumentsConformance runs the sink conformance suite on an
// evolving sink whose mapping starts with the tables of the documents but
// no column: every batch of the suite grows it. Collections without a
// table are rejected (SetNewTables(false)), as the suite expects.
func TestEvolvingDocumentsConformance(t *testing.T) {
	in := mappings.NewInferrer(mappings.InferOptions{Schema: "app"})
	in.Observe("items/x", nil)
	in.Observe("items/x/parts/y", nil)
	m := in.Mapping()
	text, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sinks := 0
	loadertest.Run(t, loadertest.Harness{
		Pool: newPool,
		Sink: func(t *testing.T, pool *pgxpool.Pool) loaders.Sink {
			ctx := context.Background()
			state, err := postgres.OpenState(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			sinks++
			job := fmt.Sprintf("document conformance %d", sinks)
			mu.Unlock()
			if _, err := state.StartRun(ctx, job, record.KindDocument, map[string]string{"mapping": string(text)}, nil); err != nil {
				t.Fatal(err)
			}
			s, err := postgres.NewEvolvingDocuments(m, postgres.EvolveConfig{Mode: postgres.EvolveColumns, Store: postgres.RunMapping(job)})
			if err != nil {
				t.Fatal(err)
			}
			s.SetNewTables(false)
			return s
		},
		Good:     goodDocs,
		Bad:      badDocs,
		Stored:   storedDocs(m, false),
		Versions: storedDocs(m, true),
	})
}
