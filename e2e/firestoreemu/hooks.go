package firestoreemu

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
)

// EmulatorName identifies this emulator on the info hook, so tests can tell
// it from Google's emulator.
const EmulatorName = "baasmigrate-firestoreemu"

// Info is the JSON body of GET /emulator/v1/baasmigrate.
type Info struct {
	Name    string `json:"name"`
	History string `json:"history"`
}

// hooksMux serves the HTTP hooks (see README.md for the contract).
func (e *Emulator) hooksMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Ok\n")
	})
	mux.HandleFunc("GET /emulator/v1/baasmigrate", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Info{Name: EmulatorName, History: e.opts.History.String()})
	})
	mux.HandleFunc("DELETE /emulator/v1/projects/{project}/databases/{database}/documents", func(w http.ResponseWriter, r *http.Request) {
		project, database := r.PathValue("project"), r.PathValue("database")
		e.wipe(project, database)
		q := r.URL.Query()
		if q.Get("faults") == "true" {
			e.faults.clear(project)
		}
		if q.Get("reads") == "true" {
			e.reads.get(project, true)
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("GET /emulator/v1/projects/{project}/reads", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.reads.get(r.PathValue("project"), false))
	})
	mux.HandleFunc("DELETE /emulator/v1/projects/{project}/reads", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.reads.get(r.PathValue("project"), true))
	})
	mux.HandleFunc("GET /emulator/v1/projects/{project}/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.faults.status(r.PathValue("project")))
	})
	mux.HandleFunc("PUT /emulator/v1/projects/{project}/faults", func(w http.ResponseWriter, r *http.Request) {
		var cfg FaultConfig
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("decoding fault config: %w", err))
			return
		}
		project := r.PathValue("project")
		if err := e.faults.set(project, cfg); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, e.faults.status(project))
	})
	mux.HandleFunc("DELETE /emulator/v1/projects/{project}/faults", func(w http.ResponseWriter, r *http.Request) {
		e.faults.clear(r.PathValue("project"))
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("DELETE /emulator/v1/faults", func(w http.ResponseWriter, r *http.Request) {
		e.faults.clear("")
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("POST /emulator/v1/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		writeJSON(w, http.StatusOK, GCStats{HeapAlloc: ms.HeapAlloc, NumGC: ms.NumGC})
	})
	return mux
}

// GCStats is the JSON body of POST /emulator/v1/gc: the emulator's heap
// after the collection, and how many collections it has made.
type GCStats struct {
	HeapAlloc uint64 `json:"heapAlloc"`
	NumGC     uint32 `json:"numGC"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
