package authexport

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

// The Firebase scrypt vector (passwords/firebasescrypt/scrypttest,
// firebase/scrypt's README): password "user1password".
const (
	testSignerKey = scrypttest.SignerKey
	testHash      = scrypttest.Hash
	testSalt      = scrypttest.Salt
)

func sp(s string) *string { return &s }

func firebaseCred(withParams bool) *passwords.Credential {
	c := &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt}
	if withParams {
		c.Params = map[string]string{"signer_key": testSignerKey, "salt_separator": "Bw==", "rounds": "8", "mem_cost": "14"}
	}
	return c
}

// users is one user of each case, oldest first.
func users(t *testing.T) []*record.User {
	t.Helper()
	bc, err := bcrypt.GenerateFromPassword([]byte("bcrypt pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	return []*record.User{
		{UID: "fb", Email: sp("A@example.test"), EmailVerified: true, CreatedAt: created, Password: firebaseCred(true),
			CustomClaims: sp(`{"role": "admin"}`), Providers: []record.Provider{{ProviderID: "password", RawID: "a@example.test"}, {ProviderID: "google.com", RawID: "g-1"}}},
		{UID: "fb-noparams", Email: sp("b@example.test"), Password: firebaseCred(false)},
		{UID: "bc", Email: sp("c@example.test"), Disabled: true, Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: string(bc)}},
		{UID: "argon", Email: sp("d@example.test"), Password: &passwords.Credential{Algorithm: "ARGON2ID",
			Hash: "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"}},
		{UID: "pb", Email: sp("e@example.test"), Password: &passwords.Credential{Algorithm: "PBKDF2_SHA256", Hash: "q83vEjRWeJCrze8SNFZ4kA==", Salt: "c2FsdA==",
			Params: map[string]string{"iterations": "1000"}}},
		{UID: "pb-kratos", Email: sp("f@example.test"), Password: &passwords.Credential{Algorithm: "PBKDF2_SHA256",
			Hash: "$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhc2g"}},
		{UID: "none", Email: sp("g@example.test"), Password: &passwords.Credential{Algorithm: passwords.None}},
		{UID: "same-address", Email: sp("a@EXAMPLE.test")},
		{UID: "phone", PhoneNumber: sp("+15555550123")},
		{UID: "nothing"},
	}
}

func export(t *testing.T, format string, opts Options) (map[string]map[string]any, *Exporter) {
	t.Helper()
	e, err := New(format, opts)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, u := range users(t) {
		if err := e.Write(&b, u); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		uid, _ := path(m, "metadata_admin", "firebase_uid").(string)
		if s, ok := path(m, "app_metadata", "firebase_uid").(string); ok {
			uid = s
		}
		out[uid] = m
	}
	if len(out) != e.Stats.Written {
		t.Fatalf("%d lines, Stats.Written %d", len(out), e.Stats.Written)
	}
	return out, e
}

func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestSupabase(t *testing.T) {
	got, e := export(t, "supabase", Options{})
	if ok, err := firebasescrypt.VerifyEncoded([]byte("user1password"), got["fb"]["password_hash"].(string)); !ok || err != nil {
		t.Errorf("the Firebase scrypt hash does not verify: %v", err)
	}
	if h, _ := got["bc"]["password_hash"].(string); bcrypt.CompareHashAndPassword([]byte(h), []byte("bcrypt pw")) != nil || got["bc"]["ban_duration"] != "876000h" {
		t.Errorf("bcrypt user: %v", got["bc"])
	}
	if !strings.HasPrefix(got["argon"]["password_hash"].(string), "$argon2id$v=19$") {
		t.Errorf("argon2id user: %v", got["argon"])
	}
	for _, uid := range []string{"fb-noparams", "pb", "pb-kratos", "none", "phone"} {
		if _, ok := got[uid]["password_hash"]; ok || got[uid] == nil {
			t.Errorf("%s: %v; want exported without a password hash", uid, got[uid])
		}
	}
	if e.Stats.WithHash != 3 || e.Stats.Written != 8 {
		t.Errorf("stats %+v", e.Stats)
	}
	for reason, uids := range map[string]string{
		"already used by an older account":                   "same-address",
		"Supabase needs an e-mail address or a phone number": "nothing",
	} {
		found := false
		for r, u := range e.Stats.Skipped {
			found = found || (strings.Contains(r, reason) && strings.Join(u, ",") == uids)
		}
		if !found {
			t.Errorf("not skipped for %q: %v", reason, e.Stats.Skipped)
		}
	}
	for _, note := range []string{"migrate was given no hash parameters", "PBKDF2_SHA256 hashes cannot be written for supabase", "the source exported no hash"} {
		found := false
		for n := range e.Stats.Notes {
			found = found || strings.Contains(n, note)
		}
		if !found {
			t.Errorf("no note %q: %v", note, e.Stats.Notes)
		}
	}
	if got["fb"]["id"] != SupabaseID("", "fb") || path(got["fb"], "app_metadata", "role") != "admin" || got["phone"]["phone_confirm"] != true {
		t.Errorf("fb %v; phone %v", got["fb"], got["phone"])
	}
	// Every user with a credential the file does not carry is named, not
	// only counted by reason; users without any password are not.
	if w := strings.Join(e.Stats.WithoutPassword, ","); w != "fb-noparams,pb,pb-kratos,none" {
		t.Errorf("without password: %s; want fb-noparams,pb,pb-kratos,none", w)
	}
	var report bytes.Buffer
	e.Stats.Report(&report, "out.jsonl", "supabase")
	if !strings.Contains(report.String(), "4 users exported without their password, who must reset it (uids: fb-noparams, pb, pb-kratos, none)") {
		t.Errorf("the report does not name the users exported without their password:\n%s", report.String())
	}
	if !strings.HasPrefix(report.String(), "wrote 8 users to out.jsonl for supabase (3 with a password hash in a form it verifies natively; no password was checked)") ||
		strings.Contains(report.String(), testSignerKey[:16]) || strings.Contains(report.String(), "example.test") {
		t.Errorf("report:\n%s", report.String())
	}
}

func TestKratos(t *testing.T) {
	got, e := export(t, "kratos", Options{KratosSchemaID: "people", KratosExternalID: true})
	hashOf := func(uid string) string {
		h, _ := path(got[uid], "credentials", "password", "config", "hashed_password").(string)
		return h
	}
	if ok, err := firebasescrypt.VerifyEncoded([]byte("user1password"), hashOf("fb")); !ok || err != nil || !strings.HasPrefix(hashOf("fb"), firebasescrypt.KratosPrefix) {
		t.Errorf("the Firebase scrypt hash does not verify: %v", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hashOf("bc")), []byte("bcrypt pw")) != nil || got["bc"]["state"] != "inactive" {
		t.Errorf("bcrypt user: %v", got["bc"])
	}
	if !strings.HasPrefix(hashOf("argon"), "$argon2id$") || !strings.HasPrefix(hashOf("pb-kratos"), "$pbkdf2-sha256$i=1000,l=32$") {
		t.Errorf("argon2 %q, pbkdf2 in Kratos' form %q", hashOf("argon"), hashOf("pb-kratos"))
	}
	// PBKDF2 given as hash + salt + iterations is converted to Kratos' form
	// (kratos_test.go verifies such conversions).
	if hashOf("pb") != "$pbkdf2-sha256$i=1000,l=16$c2FsdA$q83vEjRWeJCrze8SNFZ4kA" {
		t.Errorf("pbkdf2 as hash + salt + parameters: %q", hashOf("pb"))
	}
	for _, uid := range []string{"fb-noparams", "none", "phone", "nothing"} {
		if hashOf(uid) != "" || got[uid] == nil {
			t.Errorf("%s: %v; want exported without a password hash", uid, got[uid])
		}
	}
	// same-address differs from fb's address only in case: Kratos would
	// answer 409, so it is skipped and reported (TestCaseInsensitiveDuplicates).
	if _, ok := got["same-address"]; ok || len(e.Stats.Skipped) != 1 {
		t.Errorf("same-address: %v, skipped %v; want it skipped", got["same-address"], e.Stats.Skipped)
	}
	if e.Stats.WithHash != 5 || e.Stats.Written != 9 {
		t.Errorf("stats %+v", e.Stats)
	}
	fb := got["fb"]
	if fb["schema_id"] != "people" || fb["external_id"] != "fb" || path(fb, "credentials", "oidc", "config", "providers") == nil ||
		path(fb, "metadata_admin", "created_at") != "2020-01-02T03:04:05Z" || path(fb, "traits", "email") != "A@example.test" {
		t.Errorf("fb: %v", fb)
	}
	if path(got["phone"], "traits", "phone") != "+15555550123" {
		t.Errorf("phone: %v", got["phone"])
	}
	if _, err := New("auth0", Options{}); err == nil {
		t.Error("New accepts an unknown format")
	}
}

// TestNoSecretsInNotes: a note about unusable parameters names no value.
func TestNoSecretsInNotes(t *testing.T) {
	e, _ := New("kratos", Options{})
	c := firebaseCred(true)
	c.Params["signer_key"] = testSignerKey + "!"
	e.Body(&record.User{UID: "x", Password: c})
	for n := range e.Stats.Notes {
		if strings.Contains(n, testSignerKey[:16]) || strings.Contains(n, base64.StdEncoding.EncodeToString([]byte{7})) {
			t.Errorf("note %q quotes a secret", n)
		}
	}
	if len(e.Stats.Notes) != 2 || e.Stats.WithHash != 0 { // the parameters, and the empty traits
		t.Errorf("stats %+v", e.Stats)
	}
}

// TestEncodedFirebaseHash: a Firebase scrypt hash stored in Supabase's or
// Kratos' self-describing form is exported in the form of the format,
// and still verifies.
func TestEncodedFirebaseHash(t *testing.T) {
	p, err := firebasescrypt.ParseParams(testSignerKey, "Bw==", 8, 14)
	if err != nil {
		t.Fatal(err)
	}
	salt, _ := base64.StdEncoding.DecodeString(testSalt)
	hash, _ := base64.StdEncoding.DecodeString(testHash)
	supa, err := p.SupabaseHash(salt, hash)
	if err != nil {
		t.Fatal(err)
	}
	kratos, err := p.KratosHash(salt, hash)
	if err != nil {
		t.Fatal(err)
	}
	for _, stored := range []string{supa, kratos} {
		for format, prefix := range map[string]string{"supabase": firebasescrypt.SupabasePrefix, "kratos": firebasescrypt.KratosPrefix} {
			e, err := New(format, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := e.hashFor(&record.User{UID: "enc", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: stored}})
			if !strings.HasPrefix(got, prefix) || e.Stats.WithHash != 1 {
				t.Errorf("%s of a stored %s hash: prefix %q, notes %v", format, stored[:10], got[:min(len(got), 12)], e.Stats.Notes)
				continue
			}
			if ok, err := firebasescrypt.VerifyEncoded([]byte("user1password"), got); !ok || err != nil {
				t.Errorf("%s of a stored %s hash does not verify: %v", format, stored[:10], err)
			}
		}
	}
}

// TestSupabaseHashTooLong: Supabase's auth.users.encrypted_password is
// varchar(255); a Firebase scrypt credential with a 64-byte salt encodes
// to a longer "$fbscrypt$…" string, so the user is exported without a
// password, listed by uid. Kratos has no such bound and keeps the hash.
func TestSupabaseHashTooLong(t *testing.T) {
	c := firebaseCred(true)
	c.Salt = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 64))
	u := &record.User{UID: "long-salt", Email: sp("h@example.test"), Password: c}
	e, _ := New("supabase", Options{})
	body := e.Body(u)
	if h, ok := body["password_hash"].(string); ok {
		t.Fatalf("a %d-byte password_hash was emitted for a varchar(255) column", len(h))
	}
	found := false
	for note, uids := range e.Stats.Listed {
		found = found || (strings.Contains(note, "255") && strings.Join(uids, ",") == "long-salt")
	}
	if !found || e.Stats.WithHash != 0 {
		t.Errorf("stats %+v; want long-salt listed for a hash over 255 bytes", e.Stats)
	}
	var report bytes.Buffer
	e.Stats.Report(&report, "out.jsonl", "supabase")
	if !strings.Contains(report.String(), "255") || !strings.Contains(report.String(), "long-salt") {
		t.Errorf("report:\n%s", report.String())
	}
	k, _ := New("kratos", Options{})
	if h, _ := path(k.Body(u), "credentials", "password", "config", "hashed_password").(string); len(h) <= 255 {
		t.Errorf("kratos hash %d bytes; want the long one kept", len(h))
	}
	// The usual Firebase salt (12 bytes) fits.
	e, _ = New("supabase", Options{})
	if h, _ := e.Body(&record.User{UID: "fb", Email: sp("a@example.test"), Password: firebaseCred(true)})["password_hash"].(string); h == "" || len(h) > 255 {
		t.Errorf("a usual Firebase hash: %d bytes", len(h))
	}
}

// TestKratosExternalIDTooLong: Kratos' identities.external_id is
// varchar(64) and Firebase uids go to 128 characters. A longer uid is
// never emitted as external_id (one such identity failed a whole batch
// import): it stays in metadata_admin.firebase_uid, listed by uid.
func TestKratosExternalIDTooLong(t *testing.T) {
	long := strings.Repeat("u", 128)
	at64 := strings.Repeat("v", 64)
	e, _ := New("kratos", Options{KratosExternalID: true})
	var b bytes.Buffer
	for _, uid := range []string{long, at64} {
		if err := e.Write(&b, &record.User{UID: uid, Email: sp(uid[:1] + "@example.test")}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || e.Stats.Written != 2 {
		t.Fatalf("%d lines; want both identities written", len(lines))
	}
	var first, second map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if _, ok := first["external_id"]; ok || path(first, "metadata_admin", "firebase_uid") != long {
		t.Errorf("128-character uid: external_id %v, metadata_admin %v", first["external_id"], first["metadata_admin"])
	}
	if second["external_id"] != at64 {
		t.Errorf("64-character uid: external_id %v; want it set", second["external_id"])
	}
	found := false
	for note, uids := range e.Stats.Listed {
		found = found || (strings.Contains(note, "external_id") && strings.Join(uids, ",") == long)
	}
	if !found {
		t.Errorf("listed %v; want the long uid listed for external_id", e.Stats.Listed)
	}
}

// TestSupabaseClaimsExact: custom claims reach the Supabase file exactly
// (they went through float64 and 12345678901234567890 became
// 12345678901234567000), and integers beyond 2^53, which Supabase's admin
// API rounds when it decodes the body, are listed by uid.
func TestSupabaseClaimsExact(t *testing.T) {
	claims := `{"big":12345678901234567890,"nested":{"n":[-9007199254740993]},"edge":9007199254740992,"f":1.5,"s":"x"}`
	e, _ := New("supabase", Options{})
	var b bytes.Buffer
	users := []*record.User{
		{UID: "big", Email: sp("a@example.test"), CustomClaims: sp(claims)},
		{UID: "small", Email: sp("b@example.test"), CustomClaims: sp(`{"n":9007199254740992,"m":-9007199254740992}`)},
	}
	for _, u := range users {
		if err := e.Write(&b, u); err != nil {
			t.Fatal(err)
		}
	}
	out := b.String()
	for _, want := range []string{`"big":12345678901234567890`, `"n":[-9007199254740993]`, `"edge":9007199254740992`, `"f":1.5`} {
		if !strings.Contains(out, want) {
			t.Errorf("file lacks %s:\n%s", want, out)
		}
	}
	var listed []string
	for note, uids := range e.Stats.Listed {
		if strings.Contains(note, "2^53") {
			listed = append(listed, uids...)
		}
	}
	if strings.Join(listed, ",") != "big" {
		t.Errorf("listed for 2^53: %v (all: %v); want only big", listed, e.Stats.Listed)
	}
}

// TestCaseInsensitiveDuplicates: in every format, a later user whose
// address differs from an earlier one's only in case is skipped and
// reported with both uids (never the address), with how the server would
// treat it; both servers lower-case addresses.
func TestCaseInsensitiveDuplicates(t *testing.T) {
	for format, server := range map[string]string{"supabase": "422 email_exists", "kratos": "409 Conflict"} {
		e, _ := New(format, Options{})
		var b bytes.Buffer
		for _, u := range []*record.User{
			{UID: "first", Email: sp("Dup@Example.com")},
			{UID: "second", Email: sp("dup@example.com")},
			{UID: "third", Email: sp(" DUP@EXAMPLE.COM")},
			{UID: "other", Email: sp("other@example.com")},
		} {
			if err := e.Write(&b, u); err != nil {
				t.Fatal(err)
			}
		}
		if e.Stats.Written != 2 || strings.Contains(b.String(), `"second"`) || strings.Contains(b.String(), `"third"`) {
			t.Errorf("%s: wrote %d:\n%s", format, e.Stats.Written, b.String())
		}
		found := false
		for r, uids := range e.Stats.Skipped {
			found = found || (strings.Contains(r, "first uid: first") && strings.Contains(r, server) && strings.Join(uids, ",") == "second,third")
		}
		if !found {
			t.Errorf("%s: skipped %v; want second and third, saying %q", format, e.Stats.Skipped, server)
		}
		var report bytes.Buffer
		e.Stats.Report(&report, "out.jsonl", format)
		if strings.Contains(strings.ToLower(report.String()), "dup@") {
			t.Errorf("%s: the report names an address:\n%s", format, report.String())
		}
	}
}

// TestEmailConfirm: by default every address is written as confirmed,
// so users with an unverified address sign in as they did on Firebase
// (Supabase refuses password sign-in for unconfirmed e-mails); with
// "verified" Firebase's flag decides. Firebase's flag is kept beside it,
// and phone numbers are confirmed either way.
func TestEmailConfirm(t *testing.T) {
	unverified := &record.User{UID: "u", Email: sp("u@example.test")}
	verified := &record.User{UID: "v", Email: sp("v@example.test"), EmailVerified: true}
	phoneOnly := &record.User{UID: "p", PhoneNumber: sp("+15555550123")}
	for _, c := range []struct {
		mode      string
		wantUnver bool
	}{{"", true}, {"all", true}, {"verified", false}} {
		s, err := New("supabase", Options{EmailConfirm: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		k, _ := New("kratos", Options{EmailConfirm: c.mode})
		for _, u := range []*record.User{unverified, verified} {
			want := c.wantUnver || u.EmailVerified
			sb, kr := s.Body(u), k.Body(u)
			if sb["email_confirm"] != want || path(sb, "app_metadata", "firebase_email_verified") != u.EmailVerified {
				t.Errorf("%q supabase %s: %v", c.mode, u.UID, sb)
			}
			addrs, _ := kr["verifiable_addresses"].([]map[string]any)
			status := "pending"
			if want {
				status = "completed"
			}
			if len(addrs) != 1 || addrs[0]["verified"] != want || addrs[0]["status"] != status || addrs[0]["via"] != "email" ||
				path(kr, "metadata_admin", "firebase_email_verified") != u.EmailVerified {
				t.Errorf("%q kratos %s: %v; metadata_admin %v", c.mode, u.UID, addrs, kr["metadata_admin"])
			}
		}
		if sb := s.Body(phoneOnly); sb["phone_confirm"] != true {
			t.Errorf("%q supabase phone: %v", c.mode, sb)
		}
		addrs, _ := k.Body(phoneOnly)["verifiable_addresses"].([]map[string]any)
		if len(addrs) != 1 || addrs[0]["value"] != "+15555550123" || addrs[0]["via"] != "sms" || addrs[0]["verified"] != true || addrs[0]["status"] != "completed" {
			t.Errorf("%q kratos phone: %v", c.mode, addrs)
		}
	}
	if _, err := New("supabase", Options{EmailConfirm: "some"}); err == nil {
		t.Error(`New accepts EmailConfirm "some"`)
	}
}

// TestClaimsNotJSON: claims that are not a JSON object are left out and
// listed by uid, in both formats, rather than dropped silently or failing
// the whole export (json.Marshal refuses an invalid json.RawMessage).
func TestClaimsNotJSON(t *testing.T) {
	for _, format := range Formats {
		e, _ := New(format, Options{})
		var b bytes.Buffer
		if err := e.Write(&b, &record.User{UID: "bad", Email: sp("a@example.test"), CustomClaims: sp(`{"role":`)}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		found := false
		for note, uids := range e.Stats.Listed {
			found = found || (strings.Contains(note, "custom claims not exported") && strings.Join(uids, ",") == "bad")
		}
		if e.Stats.Written != 1 || !found {
			t.Errorf("%s: stats %+v", format, e.Stats)
		}
	}
}

// TestSupabaseIDStable: a user's Supabase id is the UUID version 5 of its
// uid ("tenant/uid" in a tenant) in the documented namespace
// a3f2c6e8-1b47-5d90-8e21-4c7b9f0d6a15 (docs/auth.md; PostgreSQL's
// uuid_generate_v5 gives the same), pinned here so that no change of
// code gives loaded users other ids: the file export and the direct load,
// in any run, must keep landing on the same auth.users rows.
func TestSupabaseIDStable(t *testing.T) {
	for _, c := range []struct{ tenant, uid, want string }{
		{"", "alice", "0d642ca3-a57d-5444-9f9e-91ccb1011aa9"},
		{"tenant-a", "alice", "6719c5a4-9d49-5e4d-87bf-d1ffe5a9b3f0"},
	} {
		if got := SupabaseID(c.tenant, c.uid); got != c.want {
			t.Errorf("SupabaseID(%q, %q) = %s; want %s", c.tenant, c.uid, got, c.want)
		}
		// RFC 9562 version 5, computed here without the uuid package.
		ns, _ := hex.DecodeString("a3f2c6e81b475d908e214c7b9f0d6a15")
		name := c.uid
		if c.tenant != "" {
			name = c.tenant + "/" + c.uid
		}
		h := sha1.Sum(append(ns, name...))
		h[6] = h[6]&0x0f | 0x50
		h[8] = h[8]&0x3f | 0x80
		x := hex.EncodeToString(h[:16])
		if v5 := x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]; v5 != c.want {
			t.Errorf("UUID v5 of %q in the namespace: %s; want %s", name, v5, c.want)
		}
	}
	if a, b := SupabaseID("", "x"), SupabaseID("", "X"); a == b {
		t.Errorf("uids differing in case share an id %s", a)
	}
}
