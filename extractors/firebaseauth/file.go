package firebaseauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Export file formats.
const (
	formatJSON = "json"
	formatCSV  = "csv"
)

// fileExtractor streams the users of one export file: `firebase
// auth:export` JSON or CSV, or the Auth emulator's accounts.json. The file
// is one partition; a record's cursor is the byte offset just after it and
// the number of records up to it, so a resumed read seeks there instead of
// reading the file again.
type fileExtractor struct {
	path   string // absolute
	format string
	tenant string
	hashes
	settings
	// project is --firebase-project, for TargetOwner.
	project string
}

var _ extractors.Extractor = (*fileExtractor)(nil)

func newFile(path, format, tenant string) (*fileExtractor, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", ExportOption.Name, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", ExportOption.Name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("--%s: %s is not a regular file", ExportOption.Name, abs)
	}
	switch format {
	case "", "auto":
		format, err = sniffFormat(abs)
		if err != nil {
			return nil, err
		}
	case formatJSON, formatCSV:
	default:
		return nil, fmt.Errorf("--%s: %q is not json, csv or auto", ExportFormatOption.Name, format)
	}
	return &fileExtractor{path: abs, format: format, tenant: tenant}, nil
}

// sniffFormat decides by extension, then by the first non-blank byte.
func sniffFormat(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return formatJSON, nil
	case ".csv":
		return formatCSV, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", ExportOption.Name, err)
	}
	defer f.Close()
	c, err := firstNonBlank(bufio.NewReader(f))
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if c == '{' || c == '[' {
		return formatJSON, nil
	}
	return formatCSV, nil
}

func firstNonBlank(r io.ByteReader) (byte, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if !isJSONSpace(c) && c != 0xEF && c != 0xBB && c != 0xBF { // skip a UTF-8 BOM too
			return c, nil
		}
	}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Source names the file; runs over the same file resume each other.
func (e *fileExtractor) Source() string { return "firebaseauth-file:" + e.path }

// Close does nothing: files are opened per read.
func (e *fileExtractor) Close() error { return nil }

// Plan returns one stream with one partition covering the file, whose End
// is the file's fingerprint (size and a digest of its first 64 KiB), so
// that resuming over a changed file fails instead of mixing two files,
// and a random plan id, so that every record of a run carries the same
// Position.Read and records of different runs never do.
func (e *fileExtractor) Plan(_ context.Context, _ int, _ time.Time) ([]extractors.Stream, error) {
	fp, err := fingerprint(e.path)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("making a plan id: %w", err)
	}
	return []extractors.Stream{{
		Name: "users", Kind: record.KindUser,
		Partitions: []extractors.Partition{{Stream: "users", ID: "p0000", End: fp + planSeparator + hex.EncodeToString(id[:])}},
	}}, nil
}

// planSeparator separates the file's fingerprint from the plan id in a
// partition's End. The plan id tells one run's reading of the file from
// another's (see Position.Read); runs planned before it existed have none.
const planSeparator = ";plan="

func fingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 64<<10)); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return fmt.Sprintf("size=%d,head=%s", st.Size(), hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// fileCursor is the position after a record: its end offset and how many
// records the file holds up to and including it.
type fileCursor struct {
	Offset, Records int64
}

func (c fileCursor) String() string { return fmt.Sprintf("offset=%d,records=%d", c.Offset, c.Records) }

func parseFileCursor(s string) (fileCursor, error) {
	if s == "" {
		return fileCursor{}, nil
	}
	var c fileCursor
	if _, err := fmt.Sscanf(s, "offset=%d,records=%d", &c.Offset, &c.Records); err != nil || c.Offset < 0 || c.Records < 0 {
		return fileCursor{}, fmt.Errorf("checkpoint %q is not a file position", s)
	}
	return c, nil
}

// Read emits the records after cursor after. A file that cannot be parsed
// any further is an error naming the line and byte offset; a record that
// parses but is not a valid user is emitted with its reason, for the sink
// to reject.
func (e *fileExtractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	cur, err := parseFileCursor(after)
	if err != nil {
		return err
	}
	fp, err := fingerprint(e.path)
	if err != nil {
		return err
	}
	planned, _, _ := strings.Cut(p.End, planSeparator)
	if planned != "" && fp != planned {
		return fmt.Errorf("%s changed since this run was planned (%s, now %s); pass --restart to migrate the new file from the start", e.path, planned, fp)
	}
	read := p.End
	if read == "" {
		read = fp
	}
	f, err := os.Open(e.path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", e.path, err)
	}
	defer f.Close()
	send := func(u record.User, c fileCursor, line int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if u.Invalid == "" && u.TenantID != e.tenant {
			u.Invalid = tenantMismatch(u.TenantID, e.tenant)
		}
		u.Position = &record.Position{File: e.path, Read: read, Record: c.Records, Line: line}
		return emit(u.Record(c.String()))
	}
	if e.format == formatCSV {
		return e.readCSV(f, cur, send)
	}
	return e.readJSON(f, cur, send)
}

func tenantMismatch(got, want string) string {
	name := func(t string) string {
		if t == "" {
			return "the project's own users (no tenant)"
		}
		return "tenant " + strconv.Quote(t)
	}
	return fmt.Sprintf("belongs to %s, but this run migrates %s; migrate each tenant separately with --%s into its own --users-schema",
		name(got), name(want), TenantOption.Name)
}

// readJSON streams the "users" array of a JSON export (or a top-level
// array of users), one account object at a time.
func (e *fileExtractor) readJSON(f *os.File, cur fileCursor, send func(record.User, fileCursor, int64) error) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.path, err)
	}
	// base is the file offset of the decoder's input byte 0.
	var in io.Reader
	var base int64
	topObject := true
	if cur.Offset == 0 {
		base = bomLength(f)
		in = io.NewSectionReader(f, base, st.Size()-base)
	} else {
		// Resume: the text after the checkpoint continues the users array
		// ("," and the next account, or "]"). Feed the decoder a synthetic
		// opening and the rest of the file.
		c, err := firstNonBlank(bufio.NewReader(io.NewSectionReader(f, 0, st.Size())))
		if err != nil {
			return fmt.Errorf("reading %s: %w", e.path, err)
		}
		topObject = c == '{'
		pos, err := afterSeparator(f, cur.Offset, st.Size())
		if err != nil {
			return fmt.Errorf("resuming %s at byte %d: %w", e.path, cur.Offset, err)
		}
		prefix := "["
		if topObject {
			prefix = `{"users":[`
		}
		in = io.MultiReader(strings.NewReader(prefix), io.NewSectionReader(f, pos, st.Size()-pos))
		base = pos - int64(len(prefix))
	}
	dec := json.NewDecoder(in)
	dec.UseNumber()
	fail := func(what string, err error) error {
		off := base + dec.InputOffset()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			off = st.Size()
			err = errors.New("the file ends early (truncated?)")
		}
		return fmt.Errorf("%s: %s: line %d, byte offset %d: %v", e.path, what, lineAt(f, off), off, err)
	}
	tok, err := dec.Token()
	if err != nil {
		return fail("reading the start of the file", err)
	}
	switch tok {
	case json.Delim('['):
		topObject = false
	case json.Delim('{'):
		if err := seekUsers(dec); err != nil {
			return fail(`looking for the "users" array`, err)
		}
	default:
		return fail("reading the start of the file", fmt.Errorf(`want an object with a "users" array, found %v`, tok))
	}
	n := cur.Records
	lines := newLineCounter(f, base+dec.InputOffset(), st.Size())
	for dec.More() {
		var raw json.RawMessage
		before := base + dec.InputOffset()
		if err := dec.Decode(&raw); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				// The decoder's own offset is unreliable after Token
				// calls: find the error by decoding the record alone.
				if off, ok := syntaxErrorAt(f, before, st.Size()); ok {
					return fmt.Errorf("%s: reading record %d: line %d, byte offset %d: %v", e.path, n+1, lineAt(f, off), off, err)
				}
			}
			return fail(fmt.Sprintf("reading record %d", n+1), err)
		}
		n++
		end := base + dec.InputOffset()
		start := end - int64(len(raw))
		line := lines.at(start)
		label := fmt.Sprintf("record %d", n)
		var u record.User
		// encoding/json would turn a byte that is not UTF-8, or an escaped
		// lone surrogate, into U+FFFD: the user would be renamed or
		// altered without a word.
		if bad := invalidUTF8At(raw); bad >= 0 {
			u = userWithInvalidUTF8(raw, bad, label, line, start)
		} else if bad := loneSurrogateAt(raw); bad >= 0 {
			u = userWithLoneSurrogate(raw, bad, label, line, start)
		} else {
			u = userFromJSON(decodeRecord(raw), label)
		}
		if err := send(u, fileCursor{Offset: end, Records: n}, line); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return fail(fmt.Sprintf("reading after record %d", n), err)
	}
	if topObject {
		if err := skipMembers(dec); err != nil {
			return fail(`reading after the "users" array`, err)
		}
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("unexpected %v after the end of the document", tok)
		}
		return fail("reading the end of the file", err)
	}
	return nil
}

// syntaxErrorAt decodes the array element that follows offset from (after
// an optional ',') on its own and returns the file offset of the byte where
// it stops being valid JSON.
func syntaxErrorAt(f *os.File, from, size int64) (int64, bool) {
	r := bufio.NewReader(io.NewSectionReader(f, from, size-from))
	start := from
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, false
		}
		if !isJSONSpace(c) && c != ',' {
			if err := r.UnreadByte(); err != nil {
				return 0, false
			}
			break
		}
		start++
	}
	var v any
	err := json.NewDecoder(r).Decode(&v)
	var syn *json.SyntaxError
	if !errors.As(err, &syn) || syn.Offset < 1 {
		return 0, false
	}
	return start + syn.Offset - 1, true
}

// seekUsers advances dec, just inside the top-level object, to the first
// element of its "users" array, skipping other members.
func seekUsers(dec *json.Decoder) error {
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			return errors.New(`the object has no "users" array: not a Firebase Auth export`)
		}
		if tok == "users" {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			if tok != json.Delim('[') {
				return fmt.Errorf(`"users" is %v, not an array`, tok)
			}
			return nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
}

// skipMembers reads the remaining members of an object up to its '}'.
func skipMembers(dec *json.Decoder) error {
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			return nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
}

// afterSeparator returns the offset at which the users array continues
// after a record ending at off: just after the ',' that follows it, or at
// the ']' that closes the array.
func afterSeparator(f *os.File, off, size int64) (int64, error) {
	r := bufio.NewReader(io.NewSectionReader(f, off, size-off))
	for pos := off; ; pos++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, errors.New("the file ends where the checkpoint expects more; did it change?")
		}
		switch {
		case isJSONSpace(c):
		case c == ',':
			return pos + 1, nil
		case c == ']':
			return pos, nil
		default:
			return 0, fmt.Errorf("found %q where the checkpoint expects ',' or ']'; did the file change?", c)
		}
	}
}

// readCSV streams the rows of an auth:export CSV file.
func (e *fileExtractor) readCSV(f *os.File, cur fileCursor, send func(record.User, fileCursor, int64) error) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.path, err)
	}
	start := cur.Offset
	if start == 0 {
		start = bomLength(f)
	}
	cr := &csvReader{r: bufio.NewReaderSize(io.NewSectionReader(f, start, st.Size()-start), 256<<10), off: start, line: lineAt(f, start)}
	n := cur.Records
	for {
		row, line, err := cr.read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w (the rows after it cannot be read)", e.path, err)
		}
		n++
		u := csvUserWithInvalidUTF8(row, line)
		if u == nil {
			uu := userFromCSV(row, line)
			u = &uu
		}
		if err := send(*u, fileCursor{Offset: cr.off, Records: n}, int64(line)); err != nil {
			return err
		}
	}
}

// csvReader reads the CSV dialect auth:export writes: comma-separated,
// fields quoted when they contain a comma, quote or line break, quotes
// doubled inside them — except that the custom claims column keeps JSON's
// \" undoubled, so there a quote after a backslash is literal. Unlike
// encoding/csv with LazyQuotes, it still fails on a quote that is never
// closed instead of reading the rest of the file into one field.
type csvReader struct {
	r    *bufio.Reader
	off  int64 // file offset of the next byte
	line int   // line number of the next byte
	col  int   // 1-based column of the last byte read
}

var errCSVEnd = errors.New("end of record")

func (c *csvReader) next() (byte, error) {
	b, err := c.r.ReadByte()
	if err != nil {
		return 0, err
	}
	c.off++
	c.col++
	if b == '\n' {
		c.line++
		c.col = 0
	}
	return b, nil
}

// read returns the next record's fields and the line it starts on; io.EOF
// after the last one. Blank lines are skipped.
func (c *csvReader) read() ([]string, int, error) {
	for {
		b, err := c.r.Peek(1)
		if err != nil {
			return nil, 0, io.EOF
		}
		if b[0] != '\n' && b[0] != '\r' {
			break
		}
		if _, err := c.next(); err != nil {
			return nil, 0, err
		}
	}
	startLine := c.line
	var fields []string
	for {
		f, err := c.field(len(fields) == csvCustomAttrs)
		fields = append(fields, f)
		if err == errCSVEnd {
			return fields, startLine, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

// field reads one field and its terminator; errCSVEnd when the record ends
// after it. claims says the field is the custom claims column, where a
// quote after a backslash is literal.
func (c *csvReader) field(claims bool) (string, error) {
	var buf []byte
	b, err := c.next()
	if err == io.EOF {
		return "", errCSVEnd
	}
	if err != nil {
		return "", err
	}
	if b != '"' {
		for {
			switch b {
			case ',':
				return string(buf), nil
			case '\n':
				return string(bytes.TrimSuffix(buf, []byte{'\r'})), errCSVEnd
			}
			buf = append(buf, b)
			if b, err = c.next(); err == io.EOF {
				return string(buf), errCSVEnd
			} else if err != nil {
				return "", err
			}
		}
	}
	openLine, openCol := c.line, c.col
	for {
		b, err := c.next()
		if err == io.EOF {
			return "", fmt.Errorf("line %d, column %d: the quoted field that starts there is never closed", openLine, openCol)
		}
		if err != nil {
			return "", err
		}
		if b != '"' {
			buf = append(buf, b)
			continue
		}
		if claims && len(buf) > 0 && buf[len(buf)-1] == '\\' {
			buf = append(buf, '"') // auth:export's undoubled \" in claims
			continue
		}
		after, err := c.r.Peek(1)
		switch {
		case err != nil: // the quote ends the file
			return string(buf), errCSVEnd
		case after[0] == '"':
			c.next()
			buf = append(buf, '"')
		case after[0] == ',':
			c.next()
			return string(buf), nil
		case after[0] == '\n':
			c.next()
			return string(buf), errCSVEnd
		case after[0] == '\r':
			c.next()
			if nl, err := c.r.Peek(1); err == nil && nl[0] == '\n' {
				c.next()
			}
			return string(buf), errCSVEnd
		default:
			return "", fmt.Errorf("line %d, column %d: a quote inside a quoted field is neither doubled nor followed by a comma or line end", c.line, c.col)
		}
	}
}

// lineAt returns the 1-based line number of byte offset off in f, by
// counting line feeds before it. It is used for messages and to number
// lines after a resume.
func lineAt(f *os.File, off int64) int {
	if off <= 0 {
		return 1
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, off), 256<<10)
	lines := 1
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err != nil {
			return lines
		}
	}
}
