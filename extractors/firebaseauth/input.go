package firebaseauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// utf8BOM is the byte order mark some editors and Windows tools put before
// UTF-8 text. It is not part of the data.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// bomLength returns 3 when f starts with a UTF-8 byte order mark, else 0.
func bomLength(f *os.File) int64 {
	var head [3]byte
	if n, _ := f.ReadAt(head[:], 0); n == 3 && bytes.Equal(head[:], utf8BOM) {
		return 3
	}
	return 0
}

// lineCounter numbers the lines of a file at increasing offsets, reading
// each byte once.
type lineCounter struct {
	r    *bufio.Reader
	off  int64
	line int64
}

// newLineCounter starts counting at offset off of f.
func newLineCounter(f *os.File, off, size int64) *lineCounter {
	return &lineCounter{
		r:   bufio.NewReaderSize(io.NewSectionReader(f, off, max(size-off, 0)), 64<<10),
		off: off, line: int64(lineAt(f, off)),
	}
}

// at returns the 1-based line of offset off, which must not be less than
// the offset of the previous call.
func (c *lineCounter) at(off int64) int64 {
	for c.off < off {
		b, err := c.r.ReadByte()
		if err != nil {
			break
		}
		if b == '\n' {
			c.line++
		}
		c.off++
	}
	return c.line
}

// invalidUTF8At returns the index of the first byte of b that is not part
// of valid UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// loneSurrogateAt returns the index in the JSON text b of the first \u
// escape of a UTF-16 surrogate that is not half of a pair, or -1.
// encoding/json decodes such an escape to U+FFFD; JavaScript strings (and
// so Firebase) can hold one, UTF-8 and PostgreSQL cannot.
func loneSurrogateAt(b []byte) int {
	if !bytes.Contains(b, []byte(`\u`)) && !bytes.Contains(b, []byte(`\U`)) {
		return -1
	}
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(b):
			if b[i+1] != 'u' {
				i++ // an escaped character
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				i++
				continue
			}
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
					if low, ok := hex4(b, i+8); ok && low >= 0xDC00 && low < 0xE000 {
						i += 11 // the pair
						continue
					}
				}
				return i
			case r >= 0xDC00 && r < 0xE000:
				return i
			}
			i += 5
		}
	}
	return -1
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// decodeRecord decodes one account's JSON text (valid UTF-8) as
// userFromJSON wants it: numbers kept as json.Number.
func decodeRecord(raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		// raw was already decoded once by the file's decoder.
		return nil
	}
	return v
}

// jsonMember is one member of a JSON object's text: its name as decoded,
// and where its name ends and its value ends in the text.
type jsonMember struct {
	name          string
	nameEnd, end  int
	valueStart    int
	valueIsString bool
}

// jsonMembers lists the members of the JSON object raw; nil when raw is
// not an object.
func jsonMembers(raw []byte) []jsonMember {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		name, _ := tok.(string)
		m := jsonMember{name: name, nameEnd: int(dec.InputOffset())}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		m.end = int(dec.InputOffset())
		m.valueStart = m.end - len(v)
		m.valueIsString = len(v) > 0 && v[0] == '"'
		out = append(out, m)
	}
	return out
}

// userWithInvalidUTF8 is the rejected stand-in for an account whose text
// (raw, starting at file offset start on line line) has a byte that is not
// UTF-8 at index bad. It names the record, the byte's offset and line and
// the field; its uid is the account's when that is valid, else made from
// label.
func userWithInvalidUTF8(raw []byte, bad int, label string, line, start int64) record.User {
	return userWithBadText(raw, bad, invalidUTF8At, label, line, start,
		fmt.Sprintf("is not valid UTF-8 (byte 0x%02x", raw[bad]))
}

// userWithLoneSurrogate is the rejected stand-in for an account whose text
// has, at index bad, a \u escape of half a UTF-16 surrogate pair.
func userWithLoneSurrogate(raw []byte, bad int, label string, line, start int64) record.User {
	return userWithBadText(raw, bad, loneSurrogateAt, label, line, start,
		fmt.Sprintf("holds %s, half of a UTF-16 surrogate pair, which UTF-8 and PostgreSQL cannot hold (", raw[bad:bad+6]))
}

// userWithBadText is the rejected stand-in for an account whose text raw
// (starting at file offset start on line line) has text that cannot be
// stored exactly at index bad, as find finds it; problem says what, and
// opens a parenthesis closed by the byte's offset and line. It names the
// record, the field, and the uid (escaped) when the uid holds the problem;
// its own uid is the account's when that is sound, else made from label.
func userWithBadText(raw []byte, bad int, find func([]byte) int, label string, line, start int64, problem string) record.User {
	u := record.User{UID: "#" + label}
	members := jsonMembers(raw)
	where := ""
	for _, m := range members {
		if m.name != "localId" || !m.valueIsString {
			continue
		}
		text := raw[m.valueStart:m.end]
		if i := find(text); i >= 0 {
			where, bad = "the uid "+strconv.Quote(string(text[1:len(text)-1])), m.valueStart+i
		} else {
			var uid string
			if json.Unmarshal(text, &uid) == nil && uid != "" {
				u.UID = uid
			}
		}
	}
	for _, m := range members {
		if where == "" && bad < m.end {
			where = "field " + strconv.Quote(m.name)
			if bad < m.nameEnd {
				where = "a field name"
			}
		}
	}
	if where == "" {
		where = "the record"
	}
	badLine := line + int64(bytes.Count(raw[:bad], []byte{'\n'}))
	u.Invalid = fmt.Sprintf("%s (line %d): %s %s at byte offset %d, line %d); "+
		"it cannot be stored as it is, so the user is rejected rather than altered",
		label, line, where, problem, start+int64(bad), badLine)
	return u
}

// csvUserWithInvalidUTF8 returns the rejected stand-in for a CSV row, on
// line line, with a field that is not UTF-8; nil when every field is.
func csvUserWithInvalidUTF8(row []string, line int) *record.User {
	for i, f := range row {
		if utf8.ValidString(f) {
			continue
		}
		u := &record.User{UID: row[csvUID]}
		what := fmt.Sprintf("field %d", i+1)
		if !utf8.ValidString(u.UID) || u.UID == "" {
			u.UID = fmt.Sprintf("#line %d", line)
		}
		if i == csvUID {
			what = "the uid " + strconv.Quote(f) + " (field 1)"
		}
		u.Invalid = fmt.Sprintf("line %d: %s is not valid UTF-8; a Firebase export is UTF-8, so the file is damaged or was re-encoded — "+
			"the user is rejected rather than altered", line, what)
		return u
	}
	return nil
}
