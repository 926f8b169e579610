package firebaseauth

import (
	"fmt"
	"strconv"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// The column layout of `firebase auth:export --format=csv` rows
// (firebase-tools src/accountExporter.ts): no header, and a trailing comma
// after the last column. Older versions wrote only the first 28 columns.
const (
	csvUID = iota
	csvEmail
	csvEmailVerified
	csvPasswordHash
	csvSalt
	csvDisplayName
	csvPhotoURL
	// 7..22: four columns (rawId, email, displayName, photoUrl) for each of
	// google.com, facebook.com, twitter.com, github.com.
	csvCreatedAt   = 23
	csvLastLoginAt = 24
	csvPhoneNumber = 25
	csvDisabled    = 26
	csvCustomAttrs = 27
	// 28..51: apple.com, microsoft.com, gc.apple.com, playgames.google.com,
	// linkedin.com, yahoo.com, four columns each.
	csvOldColumns = 28
	csvNewColumns = 52
)

// csvProviders maps each provider column group's first column to its
// provider id.
var csvProviders = []struct {
	col int
	id  string
}{
	{7, "google.com"}, {11, "facebook.com"}, {15, "twitter.com"}, {19, "github.com"},
	{28, "apple.com"}, {32, "microsoft.com"}, {36, "gc.apple.com"}, {40, "playgames.google.com"},
	{44, "linkedin.com"}, {48, "yahoo.com"},
}

// userFromCSV reads one auth:export CSV row. CSV cannot tell an empty value
// from a missing one: empty columns are read as missing. A row it cannot
// read comes back with Invalid set, for the sink to reject.
func userFromCSV(row []string, line int) record.User {
	n := len(row)
	if (n == csvOldColumns+1 || n == csvNewColumns+1) && row[n-1] == "" {
		n-- // the trailing comma
	}
	u := record.User{UID: row[csvUID]}
	if u.UID == "" {
		u.UID = fmt.Sprintf("#line %d", line)
	}
	if n != csvOldColumns && n != csvNewColumns {
		u.Invalid = fmt.Sprintf("line %d has %d columns; a firebase auth:export CSV row has %d or %d (and a trailing comma) — "+
			"an unquoted comma or line break in a value shifts the columns", line, len(row), csvOldColumns, csvNewColumns)
		return u
	}
	if row[csvUID] == "" {
		u.Invalid = fmt.Sprintf("line %d has no uid in its first column", line)
		return u
	}
	var bad string
	problem := func(format string, args ...any) {
		if bad == "" {
			bad = fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)
		}
	}
	opt := func(col int) *string {
		if row[col] == "" {
			return nil
		}
		s := row[col]
		return &s
	}
	boolean := func(col int, name string) bool {
		switch row[col] {
		case "", "false":
			return false
		case "true":
			return true
		}
		problem("%s is %q, want true or false", name, row[col])
		return false
	}
	millis := func(col int, name string) time.Time {
		if row[col] == "" {
			return time.Time{}
		}
		ms, err := strconv.ParseInt(row[col], 10, 64)
		if err != nil || ms < 0 || ms > 1e15 {
			problem("%s is %q, want milliseconds since 1970", name, row[col])
			return time.Time{}
		}
		return time.UnixMilli(ms).UTC()
	}
	u.Email = opt(csvEmail)
	u.EmailVerified = boolean(csvEmailVerified, "emailVerified")
	u.DisplayName = opt(csvDisplayName)
	u.PhotoURL = opt(csvPhotoURL)
	u.CreatedAt = millis(csvCreatedAt, "createdAt")
	u.LastSignInAt = millis(csvLastLoginAt, "lastSignedInAt")
	u.PhoneNumber = opt(csvPhoneNumber)
	u.Disabled = boolean(csvDisabled, "disabled")
	u.CustomClaims = opt(csvCustomAttrs)
	if row[csvPasswordHash] != "" {
		// auth:export writes only Firebase scrypt hashes (it drops others).
		u.Password = &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: row[csvPasswordHash], Salt: row[csvSalt]}
	} else if row[csvSalt] != "" {
		problem("has a salt but no password hash")
	}
	for _, p := range csvProviders {
		if p.col+3 >= n {
			break
		}
		if row[p.col] == "" {
			if row[p.col+1] != "" || row[p.col+2] != "" || row[p.col+3] != "" {
				problem("%s columns have data but no provider uid", p.id)
			}
			continue
		}
		u.Providers = append(u.Providers, record.Provider{
			ProviderID: p.id, RawID: row[p.col],
			Email: opt(p.col + 1), DisplayName: opt(p.col + 2), PhotoURL: opt(p.col + 3),
		})
	}
	u.Invalid = bad
	return u
}
