package firestoreemu

import (
	"fmt"
	"regexp"
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
	for _, s := range segs {
		if err := validateID(s); err != nil {
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

// validateID checks a document or collection ID against Firestore's rules.
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
// two keys as byte strings compares the paths segment by segment (each
// segment by its UTF-8 bytes), which is Firestore's order of document names.
// Within a segment the byte 0x00 becomes 0x00 0xFF; segments are joined
// with 0x00 0x01. So a path sorts before its descendants, and all
// descendants of a path p are the keys between childPrefix(p) (inclusive) and
// childLimit(p) (exclusive).

const (
	keySep      = "\x00\x01"
	keySepLimit = "\x00\x02"
)

// encodePath returns the key of a path.
func encodePath(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteString(keySep)
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
