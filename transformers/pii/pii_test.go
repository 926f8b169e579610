package pii

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		tr      mappings.Transform
		in, out string
	}{
		{mappings.Transform{KeepLast: 4}, "+33612345678", "********5678"},
		{mappings.Transform{KeepLast: 4}, "5678", "****"}, // too short: masked whole
		{mappings.Transform{KeepLast: 4}, "12", "**"},
		{mappings.Transform{KeepLast: 4}, "", ""},
		{mappings.Transform{KeepFirst: 1, KeepLast: 2}, "Zoë Ångström", "Z*********öm"},
		{mappings.Transform{KeepFirst: 2, KeepLast: 2}, "abcd", "****"},
		{mappings.Transform{}, "secret", "******"},
		{mappings.Transform{Email: true}, "alice.smith@example.com", "***********@example.com"},
		{mappings.Transform{Email: true}, "a@b@example.com", "***@example.com"}, // last @
		{mappings.Transform{Email: true}, "no-at-sign", "**********"},
		{mappings.Transform{Email: true}, "@example.com", "************"},
		{mappings.Transform{Email: true}, "alice@", "******"},
	} {
		tc.tr.Kind = mappings.TransformMask
		if got := Mask(&tc.tr, tc.in); got != tc.out {
			t.Errorf("%s of %q = %q, want %q", tc.tr.Describe(), tc.in, got, tc.out)
		}
	}
}

// TestHash checks HMAC-SHA-256 against RFC 4231's test case 2, and that
// the hash depends on the key.
func TestHash(t *testing.T) {
	if got := Hash([]byte("Jefe"), "what do ya want for nothing?"); got != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Hash = %s", got)
	}
	if Hash([]byte("k1"), "x") == Hash([]byte("k2"), "x") {
		t.Error("two keys gave the same hash")
	}
	if string(TokenMAC([]byte("k"), "x")) == Hash([]byte("k"), "x") {
		t.Error("the token MAC is the hash")
	}
}

func TestTruncate(t *testing.T) {
	ts := time.Date(2024, 5, 17, 13, 45, 12, 345678000, time.FixedZone("x", 3*3600))
	for _, tc := range []struct {
		tr      mappings.Transform
		in, out record.Value
	}{
		{mappings.Transform{}, record.Timestamp(ts), record.Timestamp(time.Date(2024, 5, 17, 0, 0, 0, 0, time.UTC))},
		{mappings.Transform{Unit: "year"}, record.Timestamp(ts), record.Timestamp(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))},
		{mappings.Transform{Unit: "month"}, record.Timestamp(ts), record.Timestamp(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))},
		{mappings.Transform{Unit: "hour"}, record.Timestamp(ts), record.Timestamp(time.Date(2024, 5, 17, 10, 0, 0, 0, time.UTC))},
		{mappings.Transform{Unit: "second"}, record.Timestamp(ts), record.Timestamp(time.Date(2024, 5, 17, 10, 45, 12, 0, time.UTC))},
		{mappings.Transform{Grid: 0.1}, record.Geo(48.8584, 2.2945), record.Geo(48.8, 2.2)},
		{mappings.Transform{Grid: 0.1}, record.Geo(-33.8568, -151.2153), record.Geo(-33.9, -151.3)},
		{mappings.Transform{Grid: 5}, record.Geo(48.8584, -2.2945), record.Geo(45, -5)},
		{mappings.Transform{Digits: -3, HasDigits: true}, record.Int(123456), record.Int(123000)},
		{mappings.Transform{Digits: -3, HasDigits: true}, record.Int(-123456), record.Int(-123000)},
		{mappings.Transform{Digits: 2, HasDigits: true}, record.Int(7), record.Int(7)},
		{mappings.Transform{Digits: 2, HasDigits: true}, record.Double(3.14159), record.Double(3.14)},
		{mappings.Transform{Digits: 2, HasDigits: true}, record.Double(-0.129), record.Double(-0.12)},
		{mappings.Transform{Digits: 0, HasDigits: true}, record.Double(0.5), record.Double(0)},
		{mappings.Transform{Digits: -2, HasDigits: true}, record.Double(1234.5), record.Double(1200)},
	} {
		tc.tr.Kind = mappings.TransformTruncate
		got, err := Truncate(&tc.tr, tc.in)
		if err != nil || !record.Equal(got, tc.out) {
			t.Errorf("%s of %v = %v, %v; want %v", tc.tr.Describe(), tc.in, got, err, tc.out)
		}
	}
	if _, err := Truncate(&mappings.Transform{Kind: mappings.TransformTruncate}, record.String("2024-05-17")); err == nil || strings.Contains(err.Error(), "2024") {
		t.Errorf("truncate of a string: %v", err)
	}
}

func compile(t *testing.T, yaml string, env map[string]string) *Set {
	t.Helper()
	m, err := mappings.Parse([]byte(yaml), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(m, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const testMapping = `version: 1
tables:
  - collection: people
    table: people
    id_column: id
    columns:
      - {field: phone, column: phone, type: text, transform: mask, mask: {keep_last: 2}}
      - {field: contact.email, column: email, type: text, transform: hash, hash: {key_env: K}}
      - {field: ssn, column: ssn, type: text, transform: tokenize, tokenize: {key_env: K}}
      - {field: notes.private, transform: drop}
      - {field: diary, transform: drop}
`

// TestApply transforms records without touching the input, drops fields
// (nested ones too), passes nulls through, and reports a value of the
// wrong type by field and type, removing it, never showing it.
func TestApply(t *testing.T) {
	s := compile(t, testMapping, map[string]string{"K": "key"})
	if s.Empty() || !s.Tokenizes() {
		t.Fatal("no transforms compiled")
	}
	in := []record.Record{
		{Kind: record.KindDocument, Key: "people/a", Fields: map[string]record.Value{
			"phone":   record.String("0612345678"),
			"contact": record.Map(map[string]record.Value{"email": record.String("a@example.com"), "kept": record.Int(1)}),
			"notes":   record.Map(map[string]record.Value{"private": record.String("diary entry"), "public": record.String("hi")}),
			"diary":   record.String("dear diary"),
		}},
		{Kind: record.KindDocument, Key: "people/b", Fields: map[string]record.Value{
			"phone":   record.Map(map[string]record.Value{"home": record.String("0698765432")}),
			"contact": record.Null(),
		}},
		{Kind: record.KindDocument, Key: "others/c", Fields: map[string]record.Value{"phone": record.String("0612345678")}},
	}
	out, errs := s.Apply(context.Background(), in, nil)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("errors: %v", errs)
	}
	a := out[0].Fields
	if got := a["phone"].StringValue(); got != "********78" {
		t.Errorf("phone: %q", got)
	}
	if got := a["contact"].MapValue()["email"].StringValue(); got != Hash([]byte("key"), "a@example.com") {
		t.Errorf("email: %q", got)
	}
	if _, ok := a["diary"]; ok {
		t.Error("diary not dropped")
	}
	if n := a["notes"].MapValue(); len(n) != 1 || n["public"].StringValue() != "hi" {
		t.Errorf("notes: %v", a["notes"])
	}
	if in[0].Fields["phone"].StringValue() != "0612345678" || len(in[0].Fields["notes"].MapValue()) != 2 || in[0].Fields["contact"].MapValue()["email"].StringValue() != "a@example.com" {
		t.Error("the input record was modified")
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "field phone (transform mask): mask takes strings, the value is a map") || strings.Contains(errs[1].Error(), "0698765432") {
		t.Errorf("record b: %v", errs[1])
	}
	if _, ok := out[1].Fields["phone"]; ok {
		t.Error("the untransformable value stayed in the record")
	}
	if !out[1].Fields["contact"].IsNull() {
		t.Error("null not passed through")
	}
	if out[2].Fields["phone"].StringValue() != "0612345678" {
		t.Error("a collection without transforms was changed")
	}
}

// TestApplyWithoutVault: a tokenized field with no vault makes its record
// fail, with the field removed and the value nowhere in the error.
func TestApplyWithoutVault(t *testing.T) {
	s := compile(t, testMapping, map[string]string{"K": "key"})
	out, errs := s.Apply(context.Background(), []record.Record{{Kind: record.KindDocument, Key: "people/a", Fields: map[string]record.Value{"ssn": record.String("123-45-6789")}}}, nil)
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "field ssn (transform tokenize)") || strings.Contains(errs[0].Error(), "123-45") {
		t.Errorf("error: %v", errs[0])
	}
	if _, ok := out[0].Fields["ssn"]; ok {
		t.Error("the clear value stayed in the record")
	}
}

func TestCompileNeedsKeys(t *testing.T) {
	m, err := mappings.Parse([]byte(testMapping), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(m, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "environment variable K") {
		t.Errorf("Compile without the key: %v", err)
	}
}
