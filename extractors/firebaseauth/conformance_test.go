package firebaseauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	firebasesdk "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/auth"
	"firebase.google.com/go/v4/auth/hash"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/internal/faultnet"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// conformanceConfig reads project from the Auth emulator at host in pages
// of pageSize, giving up on a failing call after two quick attempts.
func conformanceConfig(project, host string, pageSize int) plugin.Config {
	return plugin.Config{
		"firebase-project": project, EmulatorOption.Name: host, PageSizeOption.Name: fmt.Sprint(pageSize),
		"retry-attempts": "2", "retry-backoff": "1ms",
	}
}

// unreachableExtractor returns an extractor of the Auth API at a port
// nothing listens on.
func unreachableExtractor(t *testing.T) extractors.Extractor {
	t.Helper()
	ex, err := New(context.Background(), conformanceConfig("demo-unreachable", faultnet.ClosedAddr(t), 10))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestConformanceAPI runs the extractor conformance suite against the Auth
// emulator, seeded through the Admin SDK's ImportUsers (real scrypt hash
// bytes, providers, claims, metadata) and read in pages of 4: a dozen
// pages, resumed mid-page. The expected records are the ones a single page
// of 1,000 returns, checked first against what was imported.
func TestConformanceAPI(t *testing.T) {
	ctx := context.Background()
	host := testenv.AuthEmulatorHost(t)
	project := testenv.FreshProjectID(t)
	t.Setenv("FIREBASE_AUTH_EMULATOR_HOST", host)
	app, err := firebasesdk.NewApp(ctx, &firebasesdk.Config{ProjectID: project})
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString("jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==")
	type seeded struct {
		email, name string
		hash        []byte
		providers   []string
	}
	seed := map[string]seeded{}
	var imports []*auth.UserToImport
	for i := range 45 {
		uid := fmt.Sprintf("conf-%02d", i)
		s := seeded{email: uid + "@example.test"}
		u := (&auth.UserToImport{}).UID(uid).Email(s.email).
			Metadata(&auth.UserMetadata{CreationTimestamp: 1600000000000 + int64(i)*1000, LastLogInTimestamp: 1700000000000 + int64(i)})
		switch i % 3 {
		case 0:
			s.hash = []byte(fmt.Sprintf("hash-bytes-of-%s", uid))
			u.PasswordHash(s.hash).PasswordSalt([]byte("salt-" + uid))
		case 1:
			s.providers = []string{"google.com/g-" + uid}
			u.ProviderData([]*auth.UserProvider{{ProviderID: "google.com", UID: "g-" + uid, Email: uid + "@gmail.test"}}).
				CustomClaims(map[string]any{"tier": float64(i), "admin": i%2 == 0})
		case 2:
			s.name = "Ünïcödé " + uid
			u.DisplayName(s.name).EmailVerified(true).Disabled(i%4 == 0).PhotoURL("https://example.test/" + uid + ".png")
		}
		seed[uid] = s
		imports = append(imports, u)
	}
	res, err := client.ImportUsers(ctx, imports, auth.WithHash(hash.Scrypt{Key: key, SaltSeparator: []byte{7}, Rounds: 8, MemoryCost: 14}))
	if err != nil || res.FailureCount != 0 {
		t.Fatalf("ImportUsers: %v %+v", err, res)
	}

	whole, err := New(ctx, conformanceConfig(project, host, 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	recs, err := readAll(t, whole, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]record.Record{}
	for _, u := range users(t, recs) {
		s, ok := seed[u.UID]
		if !ok {
			t.Fatalf("the emulator lists %q, which was not imported", u.UID)
		}
		var providers []string
		for _, p := range u.Providers {
			if p.ProviderID != "password" { // the emulator adds one for users with an e-mail and a hash
				providers = append(providers, p.ProviderID+"/"+p.RawID)
			}
		}
		var gotHash []byte
		if u.Password != nil {
			if gotHash, err = firebasescrypt.DecodeBase64(u.Password.Hash); err != nil {
				t.Fatal(err)
			}
		}
		if derefStr(u.Email) != s.email || derefStr(u.DisplayName) != s.name || string(gotHash) != string(s.hash) ||
			!slices.Equal(providers, s.providers) || u.CreatedAt.IsZero() {
			t.Fatalf("%s read as %+v; imported %+v", u.UID, u, s)
		}
	}
	for _, r := range recs {
		r.Cursor = ""
		want[r.Key] = r
	}
	if len(want) != len(seed) {
		t.Fatalf("one page holds %d users; %d were imported", len(want), len(seed))
	}

	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			ex, err := New(ctx, conformanceConfig(project, host, 4))
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
		Want:        want,
		Times:       true,
		ResumeEvery: 3,
		Unreachable: unreachableExtractor,
	})
}

// conformanceUsers are users with every field an auth:export file holds.
func conformanceUsers(n int) []record.User {
	var out []record.User
	for i := range n {
		uid := fmt.Sprintf("file-%03d", i)
		if i%10 == 7 {
			uid = fmt.Sprintf("Fïlé,%03d \"q\"", i) // quoted in CSV
		}
		u := record.User{UID: uid, Email: ptr(fmt.Sprintf("f%03d@example.test", i)), EmailVerified: i%2 == 0,
			CreatedAt: time.UnixMilli(1600000000000 + int64(i)).UTC(), LastSignInAt: time.UnixMilli(1700000000000 + int64(i)*7).UTC()}
		switch i % 4 {
		case 0:
			u.Password = &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: base64.StdEncoding.EncodeToString([]byte("hash-" + uid)), Salt: base64.StdEncoding.EncodeToString([]byte("salt" + uid))}
		case 1:
			u.DisplayName, u.PhotoURL = ptr("Name, "+uid), ptr("https://example.test/"+fmt.Sprint(i))
			u.Providers = []record.Provider{{ProviderID: "google.com", RawID: fmt.Sprint(1000 + i), Email: ptr(fmt.Sprintf("g%d@gmail.test", i))}}
		case 2:
			u.Disabled = true
			u.PhoneNumber = ptr(fmt.Sprintf("+1555000%04d", i))
			u.CustomClaims = ptr(fmt.Sprintf(`{"tier":%d,"role":"r,w"}`, i))
		case 3:
			u.Providers = []record.Provider{{ProviderID: "github.com", RawID: fmt.Sprint(i), DisplayName: ptr("gh " + fmt.Sprint(i))}}
		}
		out = append(out, u)
	}
	return out
}

// authExportJSONOf writes users as `firebase auth:export` JSON does.
func authExportJSONOf(t *testing.T, us []record.User) string {
	t.Helper()
	var parts []string
	for _, u := range us {
		m := map[string]any{"localId": u.UID, "emailVerified": u.EmailVerified, "disabled": u.Disabled,
			"createdAt": fmt.Sprint(u.CreatedAt.UnixMilli()), "lastSignedInAt": fmt.Sprint(u.LastSignInAt.UnixMilli())}
		for k, v := range map[string]*string{"email": u.Email, "displayName": u.DisplayName, "photoUrl": u.PhotoURL,
			"phoneNumber": u.PhoneNumber, "customAttributes": u.CustomClaims} {
			if v != nil {
				m[k] = *v
			}
		}
		if u.Password != nil {
			m["passwordHash"], m["salt"] = u.Password.Hash, u.Password.Salt
		}
		var provs []map[string]any
		for _, p := range u.Providers {
			pm := map[string]any{"providerId": p.ProviderID, "rawId": p.RawID}
			for k, v := range map[string]*string{"email": p.Email, "displayName": p.DisplayName, "photoUrl": p.PhotoURL} {
				if v != nil {
					pm[k] = *v
				}
			}
			provs = append(provs, pm)
		}
		if provs != nil {
			m["providerUserInfo"] = provs
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(b))
	}
	return "{\"users\": [\n" + strings.Join(parts, ",\n") + "]}"
}

// authExportCSVOf writes users as `firebase auth:export --format=csv` does:
// 52 columns and a trailing comma, values with a comma, quote or line
// break quoted, quotes doubled.
func authExportCSVOf(us []record.User) string {
	q := func(s *string) string {
		if s == nil {
			return ""
		}
		if strings.ContainsAny(*s, ",\"\n\r") {
			return `"` + strings.ReplaceAll(*s, `"`, `""`) + `"`
		}
		return *s
	}
	var b strings.Builder
	for _, u := range us {
		row := make([]string, csvNewColumns)
		uid := u.UID
		row[csvUID], row[csvEmail], row[csvEmailVerified] = q(&uid), q(u.Email), fmt.Sprint(u.EmailVerified)
		if u.Password != nil {
			hash, salt := u.Password.Hash, u.Password.Salt
			row[csvPasswordHash], row[csvSalt] = q(&hash), q(&salt)
		}
		row[csvDisplayName], row[csvPhotoURL] = q(u.DisplayName), q(u.PhotoURL)
		for _, p := range u.Providers {
			for _, c := range csvProviders {
				if c.id == p.ProviderID {
					raw := p.RawID
					row[c.col], row[c.col+1], row[c.col+2], row[c.col+3] = q(&raw), q(p.Email), q(p.DisplayName), q(p.PhotoURL)
				}
			}
		}
		if !u.CreatedAt.IsZero() {
			row[csvCreatedAt] = fmt.Sprint(u.CreatedAt.UnixMilli())
		}
		if !u.LastSignInAt.IsZero() {
			row[csvLastLoginAt] = fmt.Sprint(u.LastSignInAt.UnixMilli())
		}
		row[csvPhoneNumber], row[csvDisabled], row[csvCustomAttrs] = q(u.PhoneNumber), fmt.Sprint(u.Disabled), q(u.CustomClaims)
		b.WriteString(strings.Join(row, ",") + ",\n")
	}
	return b.String()
}

// TestConformanceFiles runs the conformance suite over auth:export files,
// JSON and CSV, written from known users: the expected records are those
// users' own records.
func TestConformanceFiles(t *testing.T) {
	us := conformanceUsers(40)
	want := map[string]record.Record{}
	for _, u := range us {
		want[u.UID] = u.Record("")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"users.json": authExportJSONOf(t, us), "users.csv": authExportCSVOf(us)} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimPrefix(filepath.Ext(name), "."), func(t *testing.T) {
			extractortest.Run(t, extractortest.Harness{
				New: func(t *testing.T) extractors.Extractor {
					ex, err := New(context.Background(), plugin.Config{ExportOption.Name: path})
					if err != nil {
						t.Fatal(err)
					}
					return withoutPositions{ex}
				},
				Want:        want,
				Times:       true,
				ResumeEvery: 3,
			})
		})
	}
}

// TestAPIListsInUIDOrder checks the ordering claim plan and verify rely on
// (see order.go) against the running emulator: with pages of two, users
// come in UTF-16 code unit order of their uids — which differs from byte
// order for these uids — and CompareUIDs and ListingOrderKey agree with it.
func TestAPIListsInUIDOrder(t *testing.T) {
	host := testenv.AuthEmulatorHost(t)
	project := testenv.FreshProjectID(t)
	uids := []string{"b", "A", "0", "é", "中", "ｚ-fullwidth", "\ue000-private", "😀-emoji", "𝄞-clef", "z", "\uffee", "a\U0010ffff"}
	var accounts []map[string]any
	for _, uid := range uids {
		accounts = append(accounts, map[string]any{"localId": uid})
	}
	emulatorPost(t, host, "/v1/projects/"+project+"/accounts:batchCreate", map[string]any{"users": accounts})
	e := newEmulatorExtractor(t, host, project, "", 2)
	recs, err := readAll(t, e, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Key)
	}
	utf16Order := slices.Clone(uids)
	slices.SortFunc(utf16Order, func(a, b string) int {
		return slices.Compare(utf16Units(a), utf16Units(b))
	})
	byteOrder := slices.Clone(uids)
	slices.Sort(byteOrder)
	if slices.Equal(utf16Order, byteOrder) {
		t.Fatal("the test's uids do not tell UTF-16 order from byte order")
	}
	if !slices.Equal(got, utf16Order) {
		t.Fatalf("the emulator lists\n %q\nnot in UTF-16 order\n %q", got, utf16Order)
	}
	if !slices.IsSortedFunc(got, CompareUIDs) {
		t.Fatalf("CompareUIDs disagrees with the listing %q", got)
	}
	for i := 1; i < len(got); i++ {
		if ListingOrderKey(got[i-1]) >= ListingOrderKey(got[i]) {
			t.Fatalf("ListingOrderKey(%q) >= ListingOrderKey(%q)", got[i-1], got[i])
		}
	}
	for _, uid := range append(uids, "plain", "bad\xee\x80utf8", "\xef") {
		if back := UIDFromListingOrderKey(ListingOrderKey(uid)); back != uid {
			t.Errorf("UIDFromListingOrderKey(ListingOrderKey(%q)) = %q", uid, back)
		}
	}
	var file extractors.Extractor = mustFile(t, writeFile(t, "u.json", `{"users":[]}`))
	if ko, ok := any(e).(extractors.KeyOrderer); !ok || ko.KeyOrder() != UIDOrder {
		t.Fatal("KeyOrder: the API lists in uid order")
	}
	if _, ok := file.(extractors.KeyOrderer); ok {
		t.Fatal("KeyOrder: files come in no order")
	}
	if !slices.IsSortedFunc(got, UIDOrder.Compare) {
		t.Fatalf("UIDOrder.Compare disagrees with the listing %q", got)
	}

	// Resuming from a checkpoint whose user was deleted continues at the
	// next uid in listing order, also where byte order would disagree.
	at := slices.Index(got, "😀-emoji")
	emulatorPost(t, host, "/v1/projects/"+project+"/accounts:delete", map[string]any{"localId": "😀-emoji"})
	rest, err := readAll(t, e, recs[at].Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != len(got)-at-1 || rest[0].Key != got[at+1] {
		t.Fatalf("resumed after a deleted user: %d records starting %q; want %d starting %q", len(rest), rest[0].Key, len(got)-at-1, got[at+1])
	}
}

func utf16Units(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// withoutPositions drops the position field from the records of a file
// extractor: it holds a plan id no expected record can know.
// TestRecordsCarryTheirPosition checks positions.
type withoutPositions struct{ extractors.Extractor }

func (w withoutPositions) Read(ctx context.Context, p extractors.Partition, readTime time.Time, after string, emit func(record.Record) error) error {
	return w.Extractor.Read(ctx, p, readTime, after, func(r record.Record) error {
		if _, ok := r.Fields[record.UserFieldPosition]; ok {
			r.Fields = maps.Clone(r.Fields)
			delete(r.Fields, record.UserFieldPosition)
		}
		return emit(r)
	})
}
