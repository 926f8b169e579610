package firestoreemu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A database is addressed as projects/{project}/databases/{database}; its
// documents live under that name + "/documents". Inside the emulator a
// document is identified by its path relative to the documents root
// ("users/alice/orders/o1"), and indexed by the key that encodePath makes of
// that path.

// dbID names one database of one project.
type dbID struct {
	project, database string
}

func (d dbID) name() string          { return "projects/" + d.project + "/databases/" + d.database }
func (d dbID) documentsRoot() string { return d.name() + "/documents" }

// parseDatabaseName parses "projects/{p}/databases/{d}".
func parseDatabaseName(name string) (dbID, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "databases" || parts[1] == "" || parts[3] == "" {
		return dbID{}, status.Errorf(codes.InvalidArgument, "invalid database name %q: want projects/{project_id}/databases/{database_id}", name)
	}
	return dbID{parts[1], parts[3]}, nil
}

// parseResourceName splits a name of the form
// projects/{p}/databases/{d}/documents[/{path}] into the database and the
// path segments under the documents root (nil for the root itself).
func parseResourceName(name string) (dbID, []string, error) {
	parts := strings.Split(name, "/")
	if len(parts) < 5 || parts[0] != "projects" || parts[2] != "databases" || parts[4] != "documents" || parts[1] == "" || parts[3] == "" {
		return dbID{}, nil, status.Errorf(codes.InvalidArgument, "invalid resource name %q: want projects/{project_id}/databases/{database_id}/documents[/...]", name)
	}
	segs := parts[5:]
	for i, s := range segs {
		validate := validateID
		if i%2 == 1 {
			validate = validateDocumentID
		}
		if err := validate(s); err != nil {
			return dbID{}, nil, status.Errorf(codes.InvalidArgument, "invalid resource name %q: %v", name, err)
		}
	}
	return dbID{parts[1], parts[3]}, segs, nil
}

// parseDocumentName parses a full document name and checks that it belongs to
// the database db when db is non-zero.
func parseDocumentName(name string, db dbID) ([]string, dbID, error) {
	d, segs, err := parseResourceName(name)
	if err != nil {
		return nil, d, err
	}
	if len(segs) == 0 || len(segs)%2 != 0 {
		return nil, d, status.Errorf(codes.InvalidArgument, "invalid document name %q: a document path has an even number of segments", name)
	}
	if db != (dbID{}) && d != db {
		return nil, d, status.Errorf(codes.InvalidArgument, "document %q is not in database %q", name, db.name())
	}
	return segs, d, nil
}

// parseParentName parses a parent resource (the documents root or a
// document) and checks that it belongs to db when db is non-zero.
func parseParentName(name string, db dbID) ([]string, dbID, error) {
	d, segs, err := parseResourceName(name)
	if err != nil {
		return nil, d, err
	}
	if len(segs)%2 != 0 {
		return nil, d, status.Errorf(codes.InvalidArgument, "invalid parent %q: must be the documents root or a document", name)
	}
	if db != (dbID{}) && d != db {
		return nil, d, status.Errorf(codes.InvalidArgument, "parent %q is not in database %q", name, db.name())
	}
	return segs, d, nil
}

var reservedID = regexp.MustCompile(`^__.*__$`)

// maxIDBytes is Firestore's limit on a document or collection ID.
const maxIDBytes = 1500

// validateDocumentID checks a document ID: the rules of validateID, except
// that legacy numeric IDs (__id<n>__) are allowed.
func validateDocumentID(id string) error {
	if _, ok := numericID(id); ok {
		return nil
	}
	return validateID(id)
}

// numericID returns n for a legacy numeric document ID (imported from
// Datastore, say): "__id" + an int64 in decimal + "__", the number written
// the one way Go and Java print it — no plus sign, no leading zero, no -0.
func numericID(id string) (int64, bool) {
	digits, ok := strings.CutPrefix(id, "__id")
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, "__"); !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// validateID checks a collection ID (or a document ID, see
// validateDocumentID) against Firestore's rules.
func validateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty path segment")
	case id == "." || id == "..":
		return fmt.Errorf("ID %q is not allowed", id)
	case len(id) > maxIDBytes:
		return fmt.Errorf("ID of %d bytes exceeds the maximum of %d bytes", len(id), maxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("ID is not valid UTF-8")
	case reservedID.MatchString(id):
		return fmt.Errorf("ID %q is reserved (__.*__)", id)
	}
	return nil
}

// Path keys. A key is the encoding of a path's segments such that comparing
// two keys as byte strings compares the paths segment by segment, which is
// Firestore's order of document names: numeric IDs (__id<n>__) first, by
// value, then every other segment by its UTF-8 bytes.
//
// A numeric segment is 0x00 0x03 and the 16 lowercase hex digits of n with
// its sign bit flipped, so that the bytes of two such segments compare as
// their numbers. Any other segment is its bytes, with 0x00 turned into
// 0x00 0xFF. Segments are joined with 0x00 0x01.
//
// A numeric segment sorts before every other (which starts with a byte
// above 0x00, or with 0x00 0xFF), and no segment's encoding is the start of
// another's followed by a byte pair up to 0x00 0x02: numeric ones have one
// length and only they start with 0x00 0x03; after the end of a string one,
// another string's continues with a byte above 0x00 or with 0x00 0xFF. So a
// path sorts before its descendants, and all descendants of a path p are the
// keys between childPrefix(p) (inclusive) and childLimit(p) (exclusive).

const (
	keySep      = "\x00\x01"
	keySepLimit = "\x00\x02"
	keyNumeric  = "\x00\x03"
	// numericDigits is the length of a numeric segment's number.
	numericDigits = 16
)

// encodePath returns the key of a path.
func encodePath(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteString(keySep)
		}
		if n, ok := numericID(s); ok {
			b.WriteString(keyNumeric)
			fmt.Fprintf(&b, "%0*x", numericDigits, uint64(n)^(1<<63))
			continue
		}
		if strings.IndexByte(s, 0) < 0 {
			b.WriteString(s)
			continue
		}
		for j := 0; j < len(s); j++ {
			b.WriteByte(s[j])
			if s[j] == 0 {
				b.WriteByte(0xFF)
			}
		}
	}
	return b.String()
}

// decodeKey is the inverse of encodePath.
func decodeKey(key string) []string {
	var segs []string
	var cur []byte
	for i := 0; i < len(key); i++ {
		if strings.HasPrefix(key[i:], keyNumeric) && len(key)-i >= len(keyNumeric)+numericDigits {
			u, _ := strconv.ParseUint(key[i+len(keyNumeric):i+len(keyNumeric)+numericDigits], 16, 64)
			cur = append(cur, "__id"+strconv.FormatInt(int64(u^(1<<63)), 10)+"__"...)
			i += len(keyNumeric) + numericDigits - 1
			continue
		}
		if key[i] == 0 && i+1 < len(key) {
			if key[i+1] == 0x01 {
				segs = append(segs, string(cur))
				cur = cur[:0]
				i++
				continue
			}
			cur = append(cur, 0)
			i++
			continue
		}
		cur = append(cur, key[i])
	}
	return append(segs, string(cur))
}

// childPrefix returns the smallest key of any strict descendant of the path
// with key k ("" for the root: every key).
func childPrefix(k string) string {
	if k == "" {
		return ""
	}
	return k + keySep
}

// childLimit returns a key greater than every descendant of k and less than
// every later sibling ("" means no limit).
func childLimit(k string) string {
	if k == "" {
		return ""
	}
	return k + keySepLimit
}

// relPath joins path segments with "/".
func relPath(segs []string) string { return strings.Join(segs, "/") }
