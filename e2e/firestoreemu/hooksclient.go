package firestoreemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrNotBaasmigrate is returned by Hooks.Info when the emulator at BaseURL
// does not serve this emulator's hooks (for example Google's emulator).
var ErrNotBaasmigrate = errors.New("firestoreemu: the emulator does not serve baasmigrate hooks")

// Hooks is a small client for the emulator's HTTP hooks, for tests of other
// packages. BaseURL is "http://" + the emulator's host:port, e.g.
// HooksFor(os.Getenv("FIRESTORE_EMULATOR_HOST")).
type Hooks struct {
	BaseURL string
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// HooksFor returns hooks for an emulator at host:port.
func HooksFor(hostPort string) *Hooks {
	return &Hooks{BaseURL: "http://" + hostPort}
}

func (h *Hooks) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("firestoreemu hooks: encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(h.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("firestoreemu hooks: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("firestoreemu hooks: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("firestoreemu hooks: reading %s %s: %w", method, path, err)
	}
	if res.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w (%s %s: 404)", ErrNotBaasmigrate, method, path)
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("firestoreemu hooks: %s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("firestoreemu hooks: decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Info reports the emulator's identity; it fails with ErrNotBaasmigrate on
// an emulator without these hooks.
func (h *Hooks) Info(ctx context.Context) (Info, error) {
	var info Info
	err := h.do(ctx, http.MethodGet, "/emulator/v1/baasmigrate", nil, &info)
	if err == nil && info.Name != EmulatorName {
		err = ErrNotBaasmigrate
	}
	return info, err
}

// Reset wipes every database of a project. Faults and read counts stay.
// It uses Google's endpoint with database "-", which only this emulator
// understands; ResetDatabase works on both.
func (h *Hooks) Reset(ctx context.Context, project string) error {
	return h.ResetDatabase(ctx, project, "-")
}

// ResetDatabase wipes one database (Google-compatible endpoint).
func (h *Hooks) ResetDatabase(ctx context.Context, project, database string) error {
	return h.do(ctx, http.MethodDelete, "/emulator/v1/projects/"+url.PathEscape(project)+"/databases/"+url.PathEscape(database)+"/documents", nil, nil)
}

// DocumentsRead returns the billed document reads of a project so far.
func (h *Hooks) DocumentsRead(ctx context.Context, project string) (ReadStats, error) {
	var st ReadStats
	err := h.do(ctx, http.MethodGet, "/emulator/v1/projects/"+url.PathEscape(project)+"/reads", nil, &st)
	return st, err
}

// ResetDocumentsRead zeroes a project's read counter and returns the counts
// it had.
func (h *Hooks) ResetDocumentsRead(ctx context.Context, project string) (ReadStats, error) {
	var st ReadStats
	err := h.do(ctx, http.MethodDelete, "/emulator/v1/projects/"+url.PathEscape(project)+"/reads", nil, &st)
	return st, err
}

// SetFaults replaces the faults injected into a project's calls (project
// "-": every project).
func (h *Hooks) SetFaults(ctx context.Context, project string, cfg FaultConfig) error {
	return h.do(ctx, http.MethodPut, "/emulator/v1/projects/"+url.PathEscape(project)+"/faults", cfg, nil)
}

// Faults returns a project's fault configuration and injection counts.
func (h *Hooks) Faults(ctx context.Context, project string) (FaultStatus, error) {
	var st FaultStatus
	err := h.do(ctx, http.MethodGet, "/emulator/v1/projects/"+url.PathEscape(project)+"/faults", nil, &st)
	return st, err
}

// ClearFaults removes a project's faults.
func (h *Hooks) ClearFaults(ctx context.Context, project string) error {
	return h.do(ctx, http.MethodDelete, "/emulator/v1/projects/"+url.PathEscape(project)+"/faults", nil, nil)
}

// ClearAllFaults removes the faults of every project.
func (h *Hooks) ClearAllFaults(ctx context.Context) error {
	return h.do(ctx, http.MethodDelete, "/emulator/v1/faults", nil, nil)
}

// CollectGarbage makes the emulator run a garbage collection now and
// returns its heap afterwards. Benchmarks call it before each timed phase:
// the emulator holds every project's documents, and a collection of that
// heap costs seconds of CPU, which would otherwise fall at random into one
// phase or another.
func (h *Hooks) CollectGarbage(ctx context.Context) (GCStats, error) {
	var st GCStats
	err := h.do(ctx, http.MethodPost, "/emulator/v1/gc", nil, &st)
	return st, err
}
