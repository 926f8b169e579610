package kratosimport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Results of one identity, as the report names them.
const (
	// Created: Kratos created the identity (IdentityID) in this run or an
	// earlier one.
	Created = "created"
	// Present: Kratos already held this identity — created by an earlier,
	// interrupted run whose answer was lost, or by another import — found
	// by looking it up after Kratos answered 409 (IdentityID).
	Present = "present"
	// Refused: Kratos refused the identity; Status and Reason say why.
	Refused = "refused"
)

// Entry is one line of the report: a run's start (Kind "run") or one
// identity's result (Kind "identity"). Entries never hold a hash, a
// request body or a token.
type Entry struct {
	Kind string `json:"kind"`

	// Run entries.
	Started     string `json:"started,omitempty"`
	InputSHA256 string `json:"input_sha256,omitempty"`
	URL         string `json:"url,omitempty"`

	// Identity entries. Line is the 1-based line of the input file.
	Line        int    `json:"line,omitempty"`
	FirebaseUID string `json:"firebase_uid,omitempty"`
	Result      string `json:"result,omitempty"`
	IdentityID  string `json:"identity_id,omitempty"`
	Status      int    `json:"status,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// journal is the report file opened for appending: each batch's entries
// are written and fsynced together, so after a crash the file holds every
// answer Kratos gave up to the last fsync, and nothing half-written
// beyond a final partial line, which openJournal drops.
type journal struct {
	f    *os.File
	last map[int]Entry // by input line: the latest identity entry
	runs []Entry
}

// openJournal opens (creating) the report at path and reads the entries
// an earlier run wrote. A final line without its newline (a write cut by
// a crash) is cut off the file.
func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the report: %w", err)
	}
	j := &journal{f: f, last: map[int]Entry{}}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading the report: %w", err)
	}
	good := bytes.LastIndexByte(data, '\n') + 1
	sc := bufio.NewScanner(bytes.NewReader(data[:good]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading the report, line %d: not a report entry (%v)", n, err)
		}
		switch e.Kind {
		case "run":
			j.runs = append(j.runs, e)
		case "identity":
			j.last[e.Line] = e
		default:
			f.Close()
			return nil, fmt.Errorf("reading the report, line %d: unknown kind %q", n, e.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("reading the report: %w", err)
	}
	if good < len(data) {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, fmt.Errorf("cutting a partial line off the report: %w", err)
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// append writes entries and fsyncs the file.
func (j *journal) append(entries ...Entry) error {
	var buf bytes.Buffer
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("syncing the report: %w", err)
	}
	for _, e := range entries {
		if e.Kind == "identity" {
			j.last[e.Line] = e
		}
	}
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return errors.New("report already closed")
	}
	err := j.f.Close()
	j.f = nil
	return err
}
