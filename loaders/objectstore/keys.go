package objectstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// KeyComparison is how a target tells keys apart: two keys with the same
// Fold are the same object there.
type KeyComparison int

// Key comparisons, from the strictest.
const (
	// Exact targets keep every distinct key apart (S3, Linux file systems).
	Exact KeyComparison = iota
	// Normalizing targets treat keys equal under Unicode normalization as
	// one (macOS APFS and HFS+: "é" precomposed and decomposed).
	Normalizing
	// CaseInsensitive targets also treat keys equal but for case as one
	// (macOS and Windows defaults, FAT): "Case.txt" and "case.txt".
	CaseInsensitive
)

func (c KeyComparison) String() string {
	switch c {
	case Exact:
		return "exact"
	case Normalizing:
		return "normalization-insensitive"
	case CaseInsensitive:
		return "case-insensitive"
	}
	return fmt.Sprintf("KeyComparison(%d)", int(c))
}

// foldKey returns key as a target comparing keys with c sees it: itself
// when Exact, its NFC form when Normalizing, and when CaseInsensitive its
// NFC form case-folded (Unicode full case folding, then upper- and
// lower-cased, so that letters file systems upcase alike — "ı" and "I" on
// NTFS — fold alike, then NFC again). Two keys land on one object when
// their folds are equal; folding more than a file system does only
// reports more collisions, never fewer.
func foldKey(c KeyComparison, key string) string {
	switch c {
	case Normalizing:
		return norm.NFC.String(key)
	case CaseInsensitive:
		folded := cases.Fold().String(norm.NFC.String(key))
		return norm.NFC.String(strings.ToLower(strings.ToUpper(folded)))
	}
	return key
}

// probeComparison finds out how the directory of root compares file names,
// by creating a file in dir (a directory in root this process owns) and
// looking it up under a name that differs only in case, then only in
// Unicode normalization. It removes what it created.
func probeComparison(root *os.Root, dir string) (KeyComparison, error) {
	base := path.Join(dir, "probe-"+randomName())
	// "Ab" + precomposed é: its case twin and its decomposed twin.
	name, caseTwin, normTwin := base+"-Ab\u00e9", base+"-aB\u00e9", base+"-Ab"+"e\u0301"
	fh, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Exact, fmt.Errorf("creating a probe file: %w", err)
	}
	fh.Close()
	defer root.Remove(name)
	seen := func(twin string) (bool, error) {
		_, err := root.Lstat(twin)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		}
		// A file system refusing the decomposed name holds only one form.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return false, nil
		}
		return false, err
	}
	ci, err := seen(caseTwin)
	if err != nil {
		return Exact, err
	}
	if ci {
		return CaseInsensitive, nil
	}
	ni, err := seen(normTwin)
	if err != nil {
		return Exact, err
	}
	if ni {
		return Normalizing, nil
	}
	return Exact, nil
}

// segmentProblem says why key is not a plain relative path of names: an
// empty, "." or ".." segment (so a leading, trailing or doubled "/"). A
// directory cannot hold such a key as a file, and S3-compatible stores
// that keep objects as files (MinIO) drop a leading "/", merge "//" and
// refuse or resolve "." and "..", so "abs" and "/abs" would be one object
// there: such keys are refused rather than mapped, so that no two accepted
// names share an object. "" when key is plain.
func segmentProblem(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		switch {
		case s == "" && i == 0:
			return "it starts with \"/\" (an empty first path segment)"
		case s == "" && i == len(segs)-1:
			return "it ends with \"/\", so it would be a directory, not a file"
		case s == "":
			return "it has an empty path segment (\"//\")"
		case s == "." || s == "..":
			return fmt.Sprintf("it has a %q path segment", s)
		}
	}
	return ""
}
