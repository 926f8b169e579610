package objectstore_test

import (
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// FuzzOpenURL: Open never panics on any --objects URL; a URL carrying
// credentials (in its authority or in its endpoint) is refused, and no
// error ever repeats the secret.
func FuzzOpenURL(f *testing.F) {
	f.Setenv("AWS_ACCESS_KEY_ID", "k")
	f.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for _, s := range []string{
		"s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1", "s3://b", "file:///srv/files", "file://localhost/x",
		"s3://", "ftp://x", "s3://b/prefix", "s3://b?endpoint=127.0.0.1:9000", "s3://b?colour=blue", "file://relative/path",
		"s3://b?endpoint=http%3A%2F%2Fh", "s3://b%zz", "s3:opaque", "file:///a/../b", "s3://b#frag", "s3://[::1]:9000",
	} {
		f.Add(s, "Zq7secretW")
	}
	f.Fuzz(func(t *testing.T, raw, secret string) {
		if s, err := objectstore.Open(raw, objectstore.Options{}); err == nil && strings.Contains(s.String(), "@") {
			t.Errorf("Open(%q) names its target %q, with an authority", raw, s.String())
		}
		// The secret must be recognisable: a long run of letters and
		// digits that the rest of the URL does not hold.
		if len(secret) < 6 || strings.Trim(secret, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" ||
			strings.Contains(raw, secret) || strings.Contains(secret, "REDACTED") {
			return
		}
		for i, u := range []string{
			"s3://user:" + secret + "@" + raw,
			"file://user:" + secret + "@" + raw,
			"s3://b?endpoint=http://u:" + secret + "@" + raw,
			"s3://b?endpoint=http%3A%2F%2Fu%3A" + secret + "%40" + raw,
			raw + "?endpoint=http://u:" + secret + "@h",
		} {
			_, err := objectstore.Open(u, objectstore.Options{})
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("Open(%q): the error repeats the secret: %v", u, err)
			}
			if parsed, perr := url.Parse(u); i < 2 && err == nil && perr == nil && parsed.User != nil {
				t.Errorf("Open(%q) accepted credentials in the URL", u)
			}
		}
	})
}

// FuzzKeyMapping: the object name → target key mapping never panics;
// a name a target accepts maps to a key that stays inside a directory
// target (no "..", not absolute, nothing a path cleaner would change), and
// that an S3-compatible store keeps as it is (so no two accepted names
// are one object there); keys equal but for case or Unicode normalization
// fold to one key on a case-insensitive target, so their collision is
// reported.
func FuzzKeyMapping(f *testing.F) {
	f.Setenv("AWS_ACCESS_KEY_ID", "k")
	f.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	dir := f.TempDir()
	for _, s := range [][3]string{
		{"", "abs", "/abs"}, {"", "Case.txt", "case.txt"}, {"p/", "../up", "up"}, {"", "a//b", "a/b"}, {"", "caf\u00e9", "cafe\u0301"},
		{"x", "/y", "y"}, {"", ".baasmigrate-tmp/x", "x"}, {"", "trail/", "trail"}, {"", "dot/./x", "dot/x"}, {"", "\x00", "nul"},
		{"", "stra\u00dfe", "STRASSE"}, {"", "\u0131", "I"}, {"", "\xff\xfe", "ok"}, {"pre/", "", "x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, prefix, a, b string) {
		targets := map[string]*objectstore.Store{}
		for _, spec := range []struct {
			url  string
			opts objectstore.Options
		}{
			{"file://" + dir, objectstore.Options{Prefix: prefix}},
			{"file://" + dir, objectstore.Options{Prefix: prefix, CaseInsensitive: true}},
			{"s3://bucket?endpoint=http://127.0.0.1:1", objectstore.Options{Prefix: prefix}},
		} {
			s, err := objectstore.Open(spec.url, spec.opts)
			if err != nil {
				t.Fatal(err)
			}
			targets[spec.url+map[bool]string{true: " folded"}[spec.opts.CaseInsensitive]] = s
		}
		for label, s := range targets {
			accepted := map[string]string{} // name → key
			for _, name := range []string{a, b} {
				if s.Problem(record.File{Name: name}) != "" {
					continue
				}
				key := s.Key(name)
				accepted[name] = key
				if !filepath.IsLocal(filepath.FromSlash(key)) || path.Clean(key) != key || strings.HasPrefix(key, "/") {
					t.Errorf("%s: name %q accepted as key %q, which is not a clean relative path", label, name, key)
				}
				for _, seg := range strings.Split(key, "/") {
					if seg == ".." || seg == "." || seg == "" {
						t.Errorf("%s: name %q accepted as key %q, which has a %q segment", label, name, key, seg)
					}
				}
				if strings.HasPrefix(label, "s3") && !utf8.ValidString(key) {
					t.Errorf("%s: key %q is not UTF-8", label, key)
				}
				if fold := s.Fold(key); s.Fold(fold) != fold {
					t.Errorf("%s: folding %q is not idempotent: %q, then %q", label, key, fold, s.Fold(fold))
				}
			}
			ka, okA := accepted[a]
			kb, okB := accepted[b]
			if okA && okB && a != b && ka == kb {
				t.Errorf("%s: names %q and %q map to one key %q", label, a, b, ka)
			}
			if strings.HasSuffix(label, "folded") && okA && utf8.ValidString(ka) {
				for _, twin := range []string{strings.ToUpper(ka), strings.ToLower(ka), norm.NFD.String(ka)} {
					if s.Fold(twin) != s.Fold(ka) {
						t.Errorf("%s: %q and its twin %q fold apart (%q, %q): their collision would go unreported", label, ka, twin, s.Fold(ka), s.Fold(twin))
					}
				}
			}
		}
	})
}
