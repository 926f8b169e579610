// Package erasure reads erasure lists: the records that must not be moved
// to the target (pending deletion requests), given to migrate, sync, plan,
// verify and cutover with --exclude-from FILE.
//
// A list has one entry per line: a kind prefix and a record key.
//
//	# pending deletion requests, 2026-12-06
//	user:Xo3Lk1…          a user, by uid
//	doc:users/alice       a document by path, and every document under it
//	file:avatars/alice.png an object, by name
//	row:"public"."t" ["1"] a row of a tables copy, by its record key
//
// Blank lines and lines starting with # are ignored; the rest of a line
// after the prefix is the key, exactly (no trimming inside it, so keys with
// spaces work; trailing carriage returns are dropped). A line without a
// known prefix is an error naming its line number only: the entries are
// personal data, so nothing here puts one in an error or a log.
package erasure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Prefixes of a list's entries, per kind of record.
var Prefixes = map[string]record.Kind{
	"user:": record.KindUser,
	"doc:":  record.KindDocument,
	"file:": record.KindFile,
	"row:":  record.KindTable,
}

// List is a parsed erasure list. The zero List and a nil *List exclude
// nothing.
type List struct {
	keys   map[record.Kind]map[string]struct{}
	n      int
	digest string
}

// Load reads and parses the list in path.
func Load(path string) (*List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the erasure list: %w", err)
	}
	l, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("erasure list %s: %w", path, err)
	}
	return l, nil
}

// Parse parses a list's bytes. Its Digest is the SHA-256 of exactly these
// bytes.
func Parse(data []byte) (*List, error) {
	sum := sha256.Sum256(data)
	l := &List{keys: map[record.Kind]map[string]struct{}{}, digest: hex.EncodeToString(sum[:])}
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(strings.TrimSpace(s), "#") {
			continue
		}
		s = strings.TrimLeft(s, " \t")
		kind, key, ok := cut(s)
		if !ok {
			return nil, fmt.Errorf("line %d: an entry starts with user:, doc:, file: or row: (the entry is not shown: it is personal data)", i+1)
		}
		if key == "" {
			return nil, fmt.Errorf("line %d: the entry names no key after its prefix", i+1)
		}
		if kind == record.KindDocument {
			key = strings.Trim(key, "/")
		}
		m := l.keys[kind]
		if m == nil {
			m = map[string]struct{}{}
			l.keys[kind] = m
		}
		if _, dup := m[key]; !dup {
			m[key] = struct{}{}
			l.n++
		}
	}
	return l, nil
}

func cut(s string) (record.Kind, string, bool) {
	for p, k := range Prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return k, rest, true
		}
	}
	return "", "", false
}

// Len is the number of distinct entries.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return l.n
}

// Digest is the hex SHA-256 of the list file's bytes ("" for a nil list):
// what runs and manifests store instead of the entries.
func (l *List) Digest() string {
	if l == nil {
		return ""
	}
	return l.digest
}

// Excludes reports whether the record of kind with key is excluded. A
// document is excluded when its path or the path of one of its ancestor
// documents is listed (a listed document takes its subcollections with
// it); other kinds match their key exactly.
func (l *List) Excludes(kind record.Kind, key string) bool {
	if l == nil {
		return false
	}
	m := l.keys[kind]
	if len(m) == 0 {
		return false
	}
	if _, ok := m[key]; ok {
		return true
	}
	if kind != record.KindDocument {
		return false
	}
	// Ancestor documents: the path up to each even-numbered slash
	// ("users/alice" of "users/alice/orders/o1"), looked up as a slice of
	// key, as this runs for every document read.
	slashes := 0
	for i := 0; i < len(key); i++ {
		if key[i] != '/' {
			continue
		}
		if slashes++; slashes%2 == 0 {
			if _, ok := m[key[:i]]; ok {
				return true
			}
		}
	}
	return false
}

// For returns the exclusion test of one kind of record (nil when the list
// excludes nothing of that kind), the form the engines take.
func (l *List) For(kind record.Kind) func(key string) bool {
	if l == nil || len(l.keys[kind]) == 0 {
		return nil
	}
	return func(key string) bool { return l.Excludes(kind, key) }
}
