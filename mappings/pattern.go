package mappings

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Placeholder is the pattern segment that stands for a document ID.
const idPlaceholder = "{}"

// PatternOf splits a document path relative to the database root
// ("users/u1/orders/o1") into its collection pattern ("users/{}/orders":
// collection IDs kept, document IDs replaced by "{}") and its document IDs,
// outermost first (["u1", "o1"]).
//
// It fails when path is not a document path: empty, an odd number of
// segments (a collection), an empty segment (leading, trailing or doubled
// slash), or a collection ID that a pattern cannot name ("{}", invalid UTF-8,
// a NUL byte). Document IDs are returned exactly as they are; whether a
// target can hold them is the transformer's concern.
func PatternOf(docPath string) (pattern string, ids []string, err error) {
	if docPath == "" {
		return "", nil, errors.New("empty document path")
	}
	segs := strings.Split(docPath, "/")
	if len(segs)%2 != 0 {
		return "", nil, fmt.Errorf("%q is not a document path: it has an odd number of segments (a collection path?)", docPath)
	}
	colls := make([]string, 0, len(segs)/2)
	ids = make([]string, 0, len(segs)/2)
	for i, s := range segs {
		if s == "" {
			return "", nil, fmt.Errorf("%q is not a document path: segment %d is empty", docPath, i+1)
		}
		if i%2 == 1 {
			ids = append(ids, s)
			continue
		}
		if err := checkCollectionID(s); err != nil {
			return "", nil, fmt.Errorf("document path %q: %w", docPath, err)
		}
		colls = append(colls, s)
	}
	return joinPattern(colls), ids, nil
}

// checkCollectionID reports why a collection ID cannot appear in a pattern.
func checkCollectionID(s string) error {
	switch {
	case s == "":
		return errors.New("empty collection ID")
	case s == idPlaceholder:
		return fmt.Errorf("collection ID %q cannot be told apart from a document ID placeholder in a pattern", s)
	case strings.ContainsRune(s, '/'):
		return fmt.Errorf("collection ID %q contains a slash", s)
	case !utf8.ValidString(s):
		return fmt.Errorf("collection ID %q is not valid UTF-8", s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("collection ID %q contains a NUL byte", s)
	}
	return nil
}

// patternCollections returns the collection IDs of a pattern, outermost
// first, or an error saying why pattern is not one.
func patternCollections(pattern string) ([]string, error) {
	if pattern == "" {
		return nil, errors.New("empty collection pattern")
	}
	segs := strings.Split(pattern, "/")
	if len(segs)%2 == 0 {
		return nil, fmt.Errorf("collection pattern %q must end with a collection ID, not a document ID", pattern)
	}
	var colls []string
	for i, s := range segs {
		if i%2 == 1 {
			if s != idPlaceholder {
				return nil, fmt.Errorf("collection pattern %q: segment %d must be {} (document IDs are not part of a pattern), got %q", pattern, i+1, s)
			}
			continue
		}
		if err := checkCollectionID(s); err != nil {
			return nil, fmt.Errorf("collection pattern %q: %w", pattern, err)
		}
		colls = append(colls, s)
	}
	return colls, nil
}

func joinPattern(colls []string) string {
	return strings.Join(colls, "/"+idPlaceholder+"/")
}

// parentPattern returns the pattern of the collection holding the parent
// document of pattern's documents, or "" for a root collection.
func parentPattern(pattern string) string {
	i := strings.LastIndex(pattern, "/"+idPlaceholder+"/")
	if i < 0 {
		return ""
	}
	return pattern[:i]
}

// DocumentPath builds the path of the document with the given IDs (outermost
// first) in a collection pattern; it is the inverse of PatternOf. It fails
// when the number of IDs does not match the pattern.
func DocumentPath(pattern string, ids []string) (string, error) {
	colls, err := patternCollections(pattern)
	if err != nil {
		return "", err
	}
	if len(ids) != len(colls) {
		return "", fmt.Errorf("collection pattern %q needs %d document IDs, got %d", pattern, len(colls), len(ids))
	}
	var b strings.Builder
	for i, c := range colls {
		if ids[i] == "" || strings.ContainsRune(ids[i], '/') {
			return "", fmt.Errorf("document ID %q cannot be a path segment", ids[i])
		}
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c)
		b.WriteByte('/')
		b.WriteString(ids[i])
	}
	return b.String(), nil
}
