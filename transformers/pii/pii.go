// Package pii applies a mapping's field transforms for personal data
// (drop, mask, hash, tokenize, truncate; see mappings.Transform and
// docs/compliance.md) to document records, before anything else sees them:
// the row, its overflow, a reject, a comparison. migrate and sync apply them
// in the sink (loaders/postgres.Documents), verify and plan to the source
// side of the comparison (internal/diff.Documents), so all three see the
// same transformed values.
//
// Nothing this package returns holds a clear value of a transformed field:
// errors name the field, the transform and the value's type, never the
// value; a record whose transform failed comes back with that field
// removed.
package pii

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Set is the compiled field transforms of a mapping. It is immutable and
// safe for concurrent use.
type Set struct {
	tables   map[string]*table // collection pattern → its transforms
	tokenize bool
}

type table struct {
	fields []field
}

type field struct {
	segs []string
	path string // formatted field path, for errors
	t    *mappings.Transform
	drop bool
	key  []byte // HMAC key of hash and tokenize
}

// Compile reads the transforms of m (validated) and the HMAC keys they name
// from the environment through lookup (os.LookupEnv when nil). A key that is
// unset or empty is an error naming the variable, never showing a value.
func Compile(m *mappings.Mapping, lookup func(string) (string, bool)) (*Set, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	s := &Set{tables: map[string]*table{}}
	for _, t := range m.Tables {
		tt := &table{}
		for _, d := range t.Drop {
			segs, err := mappings.ParseFieldPath(d.Field)
			if err != nil {
				return nil, fmt.Errorf("table %q, dropped field %s: %w", t.Name, d.Field, err)
			}
			tt.fields = append(tt.fields, field{segs: segs, path: mappings.FormatFieldPath(segs), drop: true})
		}
		for _, c := range t.Columns {
			if c.Transform == nil {
				continue
			}
			segs, err := mappings.ParseFieldPath(c.Field)
			if err != nil {
				return nil, fmt.Errorf("table %q, column %q: %w", t.Name, c.Name, err)
			}
			f := field{segs: segs, path: mappings.FormatFieldPath(segs), t: c.Transform}
			if c.Transform.Kind == mappings.TransformHash || c.Transform.Kind == mappings.TransformTokenize {
				k, ok := lookup(c.Transform.KeyEnv)
				if !ok || k == "" {
					return nil, fmt.Errorf("table %q, field %s (transform %s): the environment variable %s holding its HMAC key is not set", t.Name, f.path, c.Transform.Kind, c.Transform.KeyEnv)
				}
				f.key = []byte(k)
				if c.Transform.Kind == mappings.TransformTokenize {
					s.tokenize = true
				}
			}
			tt.fields = append(tt.fields, f)
		}
		if len(tt.fields) > 0 {
			s.tables[t.Collection] = tt
		}
	}
	return s, nil
}

// Empty reports whether the mapping transforms nothing.
func (s *Set) Empty() bool { return s == nil || len(s.tables) == 0 }

// Tokenizes reports whether some field is tokenized (a vault is needed).
func (s *Set) Tokenizes() bool { return s != nil && s.tokenize }

// FieldError is a transform that could not be applied to one field of one
// record. It never holds the value.
type FieldError struct {
	Field     string // field path
	Transform string
	Reason    string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("field %s (transform %s): %s; the field is left out of this record", e.Field, e.Transform, e.Reason)
}

// TokenRequest asks for the token of one clear value: MAC is
// HMAC-SHA-256(key, "baasmigrate-token\x00" + value), the vault's lookup key.
type TokenRequest struct {
	MAC   []byte
	Clear string
}

// Tokenizer gives tokens: for every request, the token the vault holds for
// its MAC, creating it (random) when absent — or, for a lookup-only
// tokenizer, NoToken when absent. The map is keyed by string(MAC).
type Tokenizer interface {
	Tokens(ctx context.Context, reqs []TokenRequest) (map[string]string, error)
}

// NoToken is what a lookup-only tokenizer (verify) gives for a value the
// vault holds no token for; it is no token's form, so it differs from every
// stored value.
const NoToken = "(no token in the vault)"

// Apply transforms the records. out[i] is recs[i] with its transforms
// applied (recs[i] itself when nothing applies; the input is never
// modified); errs[i], when not nil, says why a field of record i could not
// be transformed (a value of a type the transform does not take, the vault
// failing): that field is then absent from out[i], and the caller rejects
// the record. tok may be nil when no field is tokenized.
func (s *Set) Apply(ctx context.Context, recs []record.Record, tok Tokenizer) (out []record.Record, errs []error) {
	out = make([]record.Record, len(recs))
	copy(out, recs)
	if s.Empty() {
		return out, nil
	}
	errs = make([]error, len(recs))
	type pending struct {
		i   int
		f   *field
		mac string
	}
	var waiting []pending
	var reqs []TokenRequest
	seen := map[string]bool{}
	for i, rec := range recs {
		if rec.Kind != record.KindDocument {
			continue
		}
		pattern, _, err := mappings.PatternOf(rec.Key)
		if err != nil {
			continue
		}
		tt := s.tables[pattern]
		if tt == nil {
			continue
		}
		fields := maps.Clone(rec.Fields)
		for fi := range tt.fields {
			f := &tt.fields[fi]
			edit(fields, f.segs, func(v record.Value) (record.Value, bool) {
				if f.drop {
					return v, false
				}
				if v.IsNull() {
					return v, true
				}
				if f.t.Kind == mappings.TransformTokenize {
					if v.Type() != record.TypeString {
						errs[i] = joinErr(errs[i], &FieldError{f.path, f.t.Kind, "tokenize takes strings, the value is a " + v.Type().String()})
						return v, false
					}
					mac := TokenMAC(f.key, v.StringValue())
					if !seen[string(mac)] {
						seen[string(mac)] = true
						reqs = append(reqs, TokenRequest{MAC: mac, Clear: v.StringValue()})
					}
					waiting = append(waiting, pending{i, f, string(mac)})
					return v, true // replaced below
				}
				nv, err := transform(f, v)
				if err != nil {
					errs[i] = joinErr(errs[i], &FieldError{f.path, f.t.Kind, err.Error()})
					return v, false
				}
				return nv, true
			})
		}
		out[i].Fields = fields
	}
	if len(waiting) > 0 {
		var tokens map[string]string
		var terr error
		if tok == nil {
			terr = errors.New("no vault is configured")
		} else {
			tokens, terr = tok.Tokens(ctx, reqs)
		}
		for _, p := range waiting {
			fields := out[p.i].Fields
			token, ok := tokens[p.mac]
			if terr == nil && !ok {
				terr = errors.New("the vault gave no token")
			}
			edit(fields, p.f.segs, func(v record.Value) (record.Value, bool) {
				if terr != nil {
					return v, false
				}
				return record.String(token), true
			})
			if terr != nil {
				errs[p.i] = joinErr(errs[p.i], &FieldError{p.f.path, mappings.TransformTokenize, "getting its token from the vault: " + terr.Error()})
			}
		}
	}
	return out, errs
}

// edit replaces the value at segs in m (a private copy; maps on the way are
// copied before they change) by fn's result, or removes it when fn says
// not to keep it. A path that does not exist, or runs through a value that
// is not a map, is left alone.
func edit(m map[string]record.Value, segs []string, fn func(record.Value) (record.Value, bool)) {
	v, ok := m[segs[0]]
	if !ok {
		return
	}
	if len(segs) == 1 {
		if nv, keep := fn(v); keep {
			m[segs[0]] = nv
		} else {
			delete(m, segs[0])
		}
		return
	}
	if v.Type() != record.TypeMap {
		return
	}
	sub := maps.Clone(v.MapValue())
	if sub == nil {
		return
	}
	edit(sub, segs[1:], fn)
	m[segs[0]] = record.Map(sub)
}

// transform applies a mask, hash or truncate to a non-null value.
func transform(f *field, v record.Value) (record.Value, error) {
	t := f.t
	switch t.Kind {
	case mappings.TransformMask:
		if v.Type() != record.TypeString {
			return v, fmt.Errorf("mask takes strings, the value is a %s", v.Type())
		}
		return record.String(Mask(t, v.StringValue())), nil
	case mappings.TransformHash:
		switch v.Type() {
		case record.TypeString:
			return record.String(Hash(f.key, v.StringValue())), nil
		case record.TypeInt:
			return record.String(Hash(f.key, strconv.FormatInt(v.IntValue(), 10))), nil
		}
		return v, fmt.Errorf("hash takes strings and integers, the value is a %s", v.Type())
	case mappings.TransformTruncate:
		return Truncate(t, v)
	}
	return v, fmt.Errorf("unknown transform")
}

// Mask masks s as t says, replacing code points by '*' (so the length in
// code points is kept):
//   - keep_first F / keep_last L: the first F and last L code points are
//     kept; a string of at most F+L code points is masked whole, so a
//     short value is never shown entire.
//   - email: the local part (before the last '@') is masked and the domain
//     kept; a string without '@', or with an empty local part or domain,
//     is masked whole.
//
// Invalid UTF-8 bytes count as one code point each.
func Mask(t *mappings.Transform, s string) string {
	n := utf8.RuneCountInString(s)
	if t.Email {
		at := strings.LastIndexByte(s, '@')
		if at <= 0 || at == len(s)-1 {
			return strings.Repeat("*", n)
		}
		return strings.Repeat("*", utf8.RuneCountInString(s[:at])) + s[at:]
	}
	if n <= t.KeepFirst+t.KeepLast {
		return strings.Repeat("*", n)
	}
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i < t.KeepFirst || i >= n-t.KeepLast {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
		i++
	}
	return b.String()
}

// Hash is the hex HMAC-SHA-256 of value under key: the same value gives the
// same hash in every run, field and kind of record hashed with that key,
// so joins on it still work.
func Hash(key []byte, value string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(value))
	return hex.EncodeToString(h.Sum(nil))
}

// TokenMAC is the vault's lookup key of a clear value: HMAC-SHA-256 under
// key of "baasmigrate-token", a NUL byte and the value (domain-separated,
// so it never equals the hash of the same value).
func TokenMAC(key []byte, value string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("baasmigrate-token\x00"))
	h.Write([]byte(value))
	return h.Sum(nil)
}

// Truncate coarsens v: a timestamp to the start (UTC) of its unit, a geo
// point to the south-west corner of its grid cell (latitude and longitude
// rounded down to a multiple of grid degrees), a number toward zero to
// Digits decimal places (negative: tens, hundreds, … for integers and
// doubles alike). NaN and ±Infinity stay as they are.
func Truncate(t *mappings.Transform, v record.Value) (record.Value, error) {
	switch v.Type() {
	case record.TypeTimestamp:
		if t.Grid != 0 || t.HasDigits {
			break
		}
		return record.Timestamp(truncateTime(v.TimeValue(), t.TruncateUnit())), nil
	case record.TypeGeoPoint:
		if t.Grid <= 0 {
			break
		}
		g := v.GeoValue()
		return record.Geo(gridFloor(g.Lat, t.Grid), gridFloor(g.Lng, t.Grid)), nil
	case record.TypeInt:
		if !t.HasDigits {
			break
		}
		if t.Digits >= 0 {
			return v, nil
		}
		p := int64(math.Pow10(-t.Digits))
		return record.Int(v.IntValue() / p * p), nil
	case record.TypeDouble:
		if !t.HasDigits {
			break
		}
		return record.Double(truncateFloat(v.DoubleValue(), t.Digits)), nil
	}
	return v, fmt.Errorf("truncate (%s) does not take a %s", strings.TrimSuffix(strings.TrimPrefix(t.Describe(), "truncate ("), ")"), v.Type())
}

func truncateTime(ts time.Time, unit string) time.Time {
	ts = ts.UTC()
	y, m, d := ts.Date()
	switch unit {
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	case "month":
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	case "day":
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case "hour":
		return time.Date(y, m, d, ts.Hour(), 0, 0, 0, time.UTC)
	case "minute":
		return time.Date(y, m, d, ts.Hour(), ts.Minute(), 0, 0, time.UTC)
	default: // second
		return time.Date(y, m, d, ts.Hour(), ts.Minute(), ts.Second(), 0, time.UTC)
	}
}

// gridFloor rounds x down to a multiple of grid, written with the grid's
// decimals so that 0.1-grids give 48.8, not 48.800000000000004.
func gridFloor(x, grid float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v := math.Floor(x/grid) * grid
	dec := 0
	if s := strconv.FormatFloat(grid, 'f', -1, 64); strings.Contains(s, ".") {
		dec = len(s) - strings.IndexByte(s, '.') - 1
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', dec, 64), 64)
	if err != nil {
		return v
	}
	if r == 0 {
		return 0
	}
	return r
}

// truncateFloat cuts f's shortest decimal form toward zero to digits
// decimal places (negative: zeroes that many integer digits).
func truncateFloat(f float64, digits int) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	neg := f < 0
	s := strconv.FormatFloat(math.Abs(f), 'f', -1, 64)
	ip, fp, _ := strings.Cut(s, ".")
	if digits >= 0 {
		if len(fp) > digits {
			fp = fp[:digits]
		}
	} else {
		fp = ""
		z := -digits
		if len(ip) <= z {
			ip = "0"
		} else {
			ip = ip[:len(ip)-z] + strings.Repeat("0", z)
		}
	}
	if fp != "" {
		ip += "." + fp
	}
	r, err := strconv.ParseFloat(ip, 64)
	if err != nil || r == 0 {
		return 0
	}
	if neg {
		return -r
	}
	return r
}

// Applied lists, per table, the transformed fields and what is done to
// each, as the audit manifest records them (no key, no value): e.g.
// {"users": {"email": "hash (HMAC-SHA-256, key from $PII_KEY)", "ssn": "drop"}}.
func Applied(m *mappings.Mapping) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, t := range m.Tables {
		add := func(path, what string) {
			if out[t.Name] == nil {
				out[t.Name] = map[string]string{}
			}
			out[t.Name][path] = what
		}
		for _, d := range t.Drop {
			add(d.Field, mappings.TransformDrop)
		}
		for _, c := range t.Columns {
			if c.Transform != nil {
				add(c.Field, c.Transform.Describe())
			}
		}
	}
	return out
}

// joinErr adds b to a on one line ("; "): reasons are stored with rejects.
func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%w; %w", a, b)
}
