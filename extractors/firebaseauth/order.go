package firebaseauth

import (
	"strings"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// The order of the Auth API's listing.
//
// accounts:batchGet lists users in uid order, and its page token is the
// last uid of the previous page. The evidence:
//
//   - The Auth emulator (firebase-tools 15.34.2,
//     lib/emulator/auth/operations.js batchGet and state.js queryUsers)
//     keeps the users whose localId is greater than the page token, sorts
//     them by localId with JavaScript's < — UTF-16 code unit order — and
//     returns the first maxResults with the last one's localId as the next
//     token. TestAPIListsInUIDOrder checks this on the running emulator,
//     with uids whose UTF-16 and byte orders differ, over pages of 2.
//   - Google's service: firebase/firebase-admin-node#404 reports the
//     listing comes sorted by uid (the docs then said by creation time,
//     and were corrected). Its exact collation is not documented; for uids
//     without characters from U+E000 to U+FFFF — every uid Firebase
//     generates, which are ASCII letters and digits — UTF-16 code unit
//     order and byte order are the same.
//
// UTF-16 code unit order differs from byte (code point) order only in
// putting supplementary characters (emoji, U+10000 and up, stored as
// surrogates U+D800–U+DFFF) before U+E000–U+FFFF (private use, CJK
// compatibility, fullwidth forms).

// listingMark is inserted before every character from U+E000 to U+FFFF by
// ListingOrderKey. It is a byte that never occurs in UTF-8 and is greater
// than any lead byte, so the character sorts after every supplementary
// character, as in UTF-16.
const listingMark = "\xf5"

// ListingOrderKey returns a string whose byte order is the order in which
// the Auth API lists uid: UTF-16 code unit order. For uids without
// characters from U+E000 to U+FFFF it is the uid itself.
// UIDFromListingOrderKey reverses it.
func ListingOrderKey(uid string) string {
	if !needsListingMark(uid) {
		return uid
	}
	var b strings.Builder
	b.Grow(len(uid) + 4)
	for i := 0; i < len(uid); {
		r, size := utf8.DecodeRuneInString(uid[i:])
		if size == 3 && r >= 0xE000 && r <= 0xFFFF {
			b.WriteString(listingMark)
		}
		b.WriteString(uid[i : i+size]) // the bytes as they are, valid or not
		i += size
	}
	return b.String()
}

// UIDFromListingOrderKey returns the uid ListingOrderKey made key from.
func UIDFromListingOrderKey(key string) string {
	return strings.ReplaceAll(key, listingMark, "")
}

// needsListingMark reports whether s has a character from U+E000 to
// U+FFFF, whose UTF-8 form starts with 0xEE or 0xEF.
func needsListingMark(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0xEE || s[i] == 0xEF {
			r, size := utf8.DecodeRuneInString(s[i:])
			if size == 3 && r >= 0xE000 && r <= 0xFFFF {
				return true
			}
		}
	}
	return false
}

// CompareUIDs orders uids as the Auth API lists them.
func CompareUIDs(a, b string) int {
	return strings.Compare(ListingOrderKey(a), ListingOrderKey(b))
}

// UIDOrder is the order in which the Auth API lists uids (CompareUIDs),
// for plan and verify, which merge the listing with the target's users
// table read in the same order. Export files come in whatever order they
// were written, so their extractors have no key order.
var UIDOrder record.KeyOrder = uidOrder{}

type uidOrder struct{}

func (uidOrder) Compare(a, b string) int { return CompareUIDs(a, b) }

// OrderBy sorts by byte order (COLLATE "C") after prefixing every
// character from U+E000 to U+FFFF with U+10FFFF, which puts it after the
// supplementary characters as UTF-16 does (exact for uids without
// U+10FFFF itself; the diff checks the order it reads). A uid of ASCII
// only — every uid Firebase generates — is its own key, found by comparing
// its length in bytes and in characters, so only other uids pay for
// regexp_replace (sorting 300,000 ASCII uids costs about a fifth more than
// plain COLLATE "C", against two and a half times with regexp_replace on
// every row). In a database whose encoding is not UTF8, which cannot hold
// such uids as characters, it is plain byte order; the expression names no
// character the encoding lacks, so it works there too.
func (uidOrder) OrderBy(col string) string {
	return `(CASE WHEN octet_length(` + col + `) = char_length(` + col + `) THEN ` + col +
		` WHEN current_setting('server_encoding') = 'UTF8' THEN regexp_replace(` + col +
		`, '([\uE000-\uFFFF])', convert_from('\xf48fbfbf'::bytea, 'UTF8') || '\1', 'g') ELSE ` + col + ` END) COLLATE "C"`
}

// KeyOrder is UIDOrder: the Auth API lists users in uid order.
func (e *apiExtractor) KeyOrder() record.KeyOrder { return UIDOrder }

var _ extractors.KeyOrderer = (*apiExtractor)(nil)
