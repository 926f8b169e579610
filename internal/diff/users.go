package diff

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Users adapts user records (record.User) and the users sink's tables
// (loaders/postgres.Users) to the engine.
//
// A user is compared as one item of its schema's users table: every column
// of its users row, its provider_identities rows folded into the field
// providerUserInfo and its mfa_factors rows into mfaInfo, and the hash
// shared parameters its row references (hashParameters). The source side
// is the record laid out by the sink itself (postgres.Users.Layout: the
// same decoding, checks and hash_config_id migrate writes, with this
// command's shared hash parameters), so what is compared is exactly what
// the target should hold, and records the sink would reject are reported
// with its reason. Field names are those of the record shape
// (record.User: displayName, passwordHash, salt, providerUserInfo, ...). Values —
// hashes, salts, the parameters — are only ever checksummed; reports name
// fields, never values.
//
// Users of a source with a key order (extractors.KeyOrderer: an API
// that lists by uid) are merged with a cursor over the table in that
// order; users of other sources (export files) are looked up by uid, 500
// at a time.
type Users struct {
	sink    *postgres.Users
	shared  record.Value    // hashParamsDigest of the shared hash parameters, when given
	order   record.KeyOrder // nil: the source has none
	table   string          // the report's table name: schema.users
	schema  string
	cursors int
	cols    struct{ user, providers, mfa []postgres.UsersColumn }
	// built is the query of the transaction built for, made once per
	// comparison instead of once per lookup.
	built struct {
		tx pgx.Tx
		q  targetQuery
	}
	seen occurrences // keyed by uid
}

var (
	_ KeyLookup   = (*Users)(nil)
	_ KeyComparer = (*Users)(nil)
	_ KeyScanner  = (*Users)(nil)
	_ KeyRouter   = (*Users)(nil)
)

// NewUsers prepares comparing users with the tables cfg describes;
// cfg.SharedHash are the parameters the target should reference. order is
// the order in which the source delivers users (its
// extractors.KeyOrderer), nil when it has none.
func NewUsers(cfg postgres.UsersConfig, order record.KeyOrder) *Users {
	sink := postgres.NewUsers(cfg)
	a := &Users{sink: sink, order: order, schema: sink.Schema()}
	if cfg.SharedHash != nil {
		a.shared = hashParamsDigest(cfg.SharedHash.Algorithm, cfg.SharedHash.Params)
	}
	a.table = a.schema + "." + postgres.UsersTable
	a.cols.user = postgres.UsersColumns(postgres.UsersTable)
	a.cols.providers = postgres.UsersColumns(postgres.ProvidersTable)
	a.cols.mfa = postgres.UsersColumns(postgres.MFATable)
	return a
}

// Kind is "user".
func (a *Users) Kind() string { return string(record.KindUser) }

// Tables is the users table, named with its schema.
func (a *Users) Tables() []string { return []string{a.table} }

// StreamTables is the users table for the one stream of users.
func (a *Users) StreamTables(string) []string { return []string{a.table} }

// Ordered reports whether users come in a key order of the source's.
func (a *Users) Ordered(string) bool { return a.order != nil }

// CompareKeys orders uids in the source's key order (byte order without
// one).
func (a *Users) CompareKeys(x, y []string) int {
	if a.order == nil || len(x) == 0 || len(y) == 0 {
		return CompareKeys(x, y)
	}
	if c := a.order.Compare(x[0], y[0]); c != 0 {
		return c
	}
	return len(x) - len(y)
}

// Names of the compared fields that are not columns of the users table.
const (
	fieldProviders  = "providerUserInfo"
	fieldMFA        = "mfaInfo"
	fieldHashParams = "hashParameters"
)

// fieldNames are the names a column's value is compared under: Firebase's
// own where it has one.
var fieldNames = map[string]map[string]string{
	postgres.UsersTable: {
		"tenant_id": "tenantId", "email": "email", "email_verified": "emailVerified", "phone_number": "phoneNumber",
		"display_name": "displayName", "photo_url": "photoUrl", "disabled": "disabled", "created_at": "createdAt",
		"last_sign_in_at": "lastLoginAt", "last_refresh_at": "lastRefreshAt", "password_updated_at": "passwordUpdatedAt",
		"tokens_valid_after": "validSince", "custom_claims": "customAttributes", "password_algorithm": "passwordAlgorithm",
		"password_hash": "passwordHash", "password_salt": "salt", "password_hash_verbatim": "passwordHashVerbatim",
		"password_salt_verbatim": "saltVerbatim", "password_version": "passwordVersion", "hash_config_id": "hashConfigId",
		"extra": "extra", "password_parameters": "passwordParameters",
	},
	postgres.ProvidersTable: {
		"provider_id": "providerId", "provider_uid": "rawId", "federated_id": "federatedId", "email": "email",
		"display_name": "displayName", "photo_url": "photoUrl", "phone_number": "phoneNumber", "screen_name": "screenName",
		"extra": "extra",
	},
	postgres.MFATable: {
		"enrollment_id": "mfaEnrollmentId", "factor_id": "factorId", "display_name": "displayName",
		"phone_number": "phoneInfo", "unobfuscated_phone_number": "unobfuscatedPhoneInfo", "email": "email",
		"enrolled_at": "enrolledAt", "extra": "extra",
	},
}

func fieldName(table, column string) string {
	if n, ok := fieldNames[table][column]; ok {
		return n
	}
	return column
}

// occurrences remembers where an export file first held each user, to
// report its later occurrences as migrate's rejects (a user's row must be
// compared once). It grows with the file's users; the API lists each uid
// once. The zero value is ready; it is safe for concurrent use.
type occurrences struct {
	mu     sync.Mutex
	firsts map[string]record.Position
}

// repeated returns migrate's reject reason (postgres.RepeatedUIDReason)
// when the user keyed id, whose uid is uid, was first held at another
// position than p, and "" otherwise; p nil (a source without positions)
// is never a repeat.
func (o *occurrences) repeated(id, uid string, p *record.Position) string {
	if p == nil {
		return ""
	}
	o.mu.Lock()
	first, repeated := o.firsts[id]
	if !repeated {
		if o.firsts == nil {
			o.firsts = map[string]record.Position{}
		}
		o.firsts[id] = *p
	}
	o.mu.Unlock()
	if repeated && (first.Record != p.Record || first.File != p.File) {
		return postgres.RepeatedUIDReason(uid, *p, first, false)
	}
	return ""
}

// Route lays the user out as the sink would and names the fields its rows
// should hold.
func (a *Users) Route(rec record.Record) Routed {
	l, reason := a.sink.Layout(rec)
	if reason != "" {
		return Routed{Table: a.table, Reject: reason}
	}
	if reason := a.seen.repeated(l.UID, l.UID, l.Position); reason != "" {
		return Routed{Table: a.table, Reject: reason}
	}
	fields := a.rowFields(postgres.UsersTable, a.cols.user, l.User)
	var providers, mfa []record.Value
	for _, row := range l.Providers {
		providers = append(providers, record.Map(a.rowFields(postgres.ProvidersTable, a.cols.providers, row)))
	}
	for _, row := range l.MFA {
		mfa = append(mfa, record.Map(a.rowFields(postgres.MFATable, a.cols.mfa, row)))
	}
	foldChildren(fields, providers, mfa)
	if _, ok := fields[fieldName(postgres.UsersTable, "hash_config_id")]; ok {
		fields[fieldHashParams] = a.shared
	}
	return Routed{Table: a.table, Item: Item{Key: []string{l.UID}, Label: l.UID, Fields: fields}}
}

// rowFields names the values of one row of table; the uid, the item's key,
// is left out, and so are NULLs.
func (a *Users) rowFields(table string, cols []postgres.UsersColumn, row []any) map[string]record.Value {
	out := make(map[string]record.Value, len(cols))
	for i, c := range cols {
		if c.Name == "uid" || i >= len(row) {
			continue
		}
		if v, ok := columnValue(c, row[i]); ok {
			out[fieldName(table, c.Name)] = v
		}
	}
	return out
}

// foldChildren adds a user's provider identities and MFA factors, each
// list in key order, so that the comparison does not depend on the order
// either side keeps them in.
func foldChildren(fields map[string]record.Value, providers, mfa []record.Value) {
	key := func(v record.Value, names ...string) string {
		var parts []string
		for _, n := range names {
			if f, ok := v.MapValue()[n]; ok && f.Type() == record.TypeString {
				parts = append(parts, f.StringValue())
			}
		}
		return strings.Join(parts, "\x00")
	}
	if len(providers) > 0 {
		sort.SliceStable(providers, func(i, j int) bool {
			return key(providers[i], "providerId", "rawId") < key(providers[j], "providerId", "rawId")
		})
		fields[fieldProviders] = record.Array(providers...)
	}
	if len(mfa) > 0 {
		sort.SliceStable(mfa, func(i, j int) bool { return key(mfa[i], "mfaEnrollmentId") < key(mfa[j], "mfaEnrollmentId") })
		fields[fieldMFA] = record.Array(mfa...)
	}
}

// hashParamsDigest stands for a set of shared hash parameters in the
// compared content (postgres.HashParamsDigest), so that the secrets
// themselves are never part of an item.
func hashParamsDigest(algorithm string, params map[string]string) record.Value {
	return record.Bytes(postgres.HashParamsDigest(algorithm, params))
}

// columnValue turns a column's value — as the sink hands it to pgx, as
// pgx reads it back, or as text — into a compared value; false for NULL.
func columnValue(c postgres.UsersColumn, v any) (record.Value, bool) {
	switch x := v.(type) {
	case nil:
		return record.Value{}, false
	case *time.Time:
		if x == nil {
			return record.Value{}, false
		}
		return record.Timestamp(*x), true
	case time.Time:
		return record.Timestamp(x), true
	case bool:
		return record.Bool(x), true
	case int64:
		return record.Int(x), true
	case int32:
		return record.Int(int64(x)), true
	case int:
		return record.Int(int64(x)), true
	case []byte:
		if x == nil {
			return record.Value{}, false // pgx writes a nil []byte as NULL
		}
		if c.Type == "jsonb" {
			return jsonColumnValue(c.Name, x), true
		}
		return record.Bytes(x), true
	case string:
		return textColumnValue(c, x), true
	case *string:
		if x == nil {
			return record.Value{}, false
		}
		return textColumnValue(c, *x), true
	}
	return record.String(fmt.Sprint(v)), true
}

// textColumnValue reads a column's value given as text (jsonb read as
// text, child rows read as JSON strings). Text that is not what the type
// promises stays text, and so differs from any proper value.
func textColumnValue(c postgres.UsersColumn, s string) record.Value {
	switch c.Type {
	case "jsonb":
		return jsonColumnValue(c.Name, []byte(s))
	case "timestamptz":
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return record.Timestamp(t)
		}
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil {
			return record.Bool(b)
		}
	case "bigint", "integer":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return record.Int(n)
		}
	case "bytea":
		if b, err := hex.DecodeString(strings.TrimPrefix(s, `\x`)); err == nil {
			return record.Bytes(b)
		}
	}
	return record.String(s)
}

// jsonColumnValue reads a jsonb column: custom claims and password
// parameters as canonical JSON text (jsonb reorders keys, drops spaces and
// rewrites numbers), the extra columns as the typed JSON the sink writes.
func jsonColumnValue(column string, text []byte) record.Value {
	if column == "custom_claims" || column == "password_parameters" {
		if c, ok := canonicalJSON(text); ok {
			return record.String(c)
		}
		return record.String(string(text))
	}
	m, err := record.UnmarshalJSONFields(text)
	if err != nil {
		return record.String(string(text))
	}
	return record.Map(m)
}

// canonicalJSON rewrites a JSON document so that documents jsonb holds
// equal have equal text: object keys sorted (the last of duplicates kept),
// no spaces, numbers by value.
func canonicalJSON(text []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", false
	}
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String(), true
}

func writeCanonical(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		b.WriteByte('{')
		for i, k := range record.SortedKeys(x) {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			writeCanonical(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(canonicalNumber(string(x)))
	default:
		vb, _ := json.Marshal(x)
		b.Write(vb)
	}
}

// canonicalNumber writes a JSON number by its value, exactly: 1, 1.0,
// 10e-1 and 0.1e1 all become "0.1e1". Numbers whose exponent does not fit
// an int are kept as written.
func canonicalNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.TrimPrefix(s, "-"), "e")
	if !hasExp {
		mant, expText, hasExp = strings.Cut(mant, "E")
	}
	exp := 0
	if hasExp {
		n, err := strconv.Atoi(expText)
		if err != nil {
			return s
		}
		exp = n
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + exp // value = 0.digits × 10^point
	trimmed := strings.TrimLeft(digits, "0")
	point -= len(digits) - len(trimmed)
	trimmed = strings.TrimRight(trimmed, "0")
	if trimmed == "" {
		return "0"
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + "0." + trimmed + "e" + strconv.Itoa(point)
}

// targetQuery reads users rows with their child rows folded in as JSON
// text and the hash parameters they reference.
type targetQuery struct {
	sql  string
	cols int // the users columns selected first
	// live is the condition of the rows that stand for users (not marked
	// deleted, see loaders.DeletedAtColumn).
	live string
}

// query returns the SELECT of users rows inside tx; a WHERE (with the
// condition live) and an ORDER BY are appended to it.
func (a *Users) query(ctx context.Context, tx pgx.Tx) (targetQuery, error) {
	if a.built.tx == tx && a.built.q.sql != "" {
		return a.built.q, nil
	}
	q, err := a.buildQuery(ctx, tx)
	if err == nil {
		a.built.tx, a.built.q = tx, q
	}
	return q, err
}

func (a *Users) buildQuery(ctx context.Context, tx pgx.Tx) (targetQuery, error) {
	tbl := func(name string) string { return pgx.Identifier{a.schema, name}.Sanitize() }
	exists := map[string]bool{}
	for _, name := range []string{postgres.ProvidersTable, postgres.MFATable, postgres.HashConfigsTable} {
		ok, err := postgres.TableExists(ctx, tx, a.schema, name)
		if err != nil {
			return targetQuery{}, err
		}
		exists[name] = ok
	}
	// Tables of an earlier layout lack password_parameters until migrate
	// upgrades them; they hold none.
	hasParams, err := postgres.ColumnExists(ctx, tx, a.schema, postgres.UsersTable, "password_parameters")
	if err != nil {
		return targetQuery{}, err
	}
	var sel []string
	for _, c := range a.cols.user {
		q := "u." + pgx.Identifier{c.Name}.Sanitize()
		if c.Type == "jsonb" {
			q += "::text" // the text: pgx would decode numbers as float64
		}
		if c.Name == "password_parameters" && !hasParams {
			q = "NULL::text"
		}
		sel = append(sel, q)
	}
	children := func(table string, cols []postgres.UsersColumn) string {
		if !exists[table] {
			return "NULL::text"
		}
		var parts []string
		for _, c := range cols {
			if c.Name == "uid" {
				continue
			}
			q := "c." + pgx.Identifier{c.Name}.Sanitize()
			if c.Type == "timestamptz" {
				q = fmt.Sprintf(`to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, q)
			} else {
				q += "::text"
			}
			parts = append(parts, q)
		}
		return fmt.Sprintf("(SELECT json_agg(json_build_array(%s))::text FROM %s c WHERE c.uid = u.uid)", strings.Join(parts, ", "), tbl(table))
	}
	sel = append(sel, children(postgres.ProvidersTable, a.cols.providers), children(postgres.MFATable, a.cols.mfa))
	from := tbl(postgres.UsersTable) + " u"
	if exists[postgres.HashConfigsTable] {
		var readable bool
		if err := tx.QueryRow(ctx, `SELECT has_table_privilege($1, 'SELECT')`, tbl(postgres.HashConfigsTable)).Scan(&readable); err != nil {
			return targetQuery{}, fmt.Errorf("reading the privileges on %s: %w", tbl(postgres.HashConfigsTable), err)
		}
		if !readable {
			return targetQuery{}, fmt.Errorf("cannot compare the users' hash parameters: this role may not read %s (it holds the signer key); "+
				"run verify as the role that ran migrate, or GRANT SELECT on it", tbl(postgres.HashConfigsTable))
		}
		alg, params, err := postgres.HashConfigExprs(ctx, tx, a.schema, "h")
		if err != nil {
			return targetQuery{}, err
		}
		sel = append(sel, "h.id IS NOT NULL", alg, "("+params+")::text")
		from += " LEFT JOIN " + tbl(postgres.HashConfigsTable) + " h ON h.id = u.hash_config_id"
	} else {
		sel = append(sel, "false", "NULL::text", "NULL::text")
	}
	live, err := postgres.LiveRows(ctx, tx, a.schema, postgres.UsersTable, "u")
	if err != nil {
		return targetQuery{}, err
	}
	return targetQuery{sql: "SELECT " + strings.Join(sel, ", ") + " FROM " + from, cols: len(a.cols.user), live: live}, nil
}

// item rebuilds a user from the values of a query row.
func (a *Users) item(q targetQuery, vals []any) (Item, error) {
	if len(vals) != q.cols+5 {
		return Item{}, fmt.Errorf("reading %s: %d columns, want %d", a.table, len(vals), q.cols+5)
	}
	var uid string
	for i, c := range a.cols.user {
		if c.Name == "uid" {
			uid, _ = vals[i].(string)
		}
	}
	fields := a.rowFields(postgres.UsersTable, a.cols.user, vals[:q.cols])
	var lists [2][]record.Value
	for i, spec := range []struct {
		table string
		cols  []postgres.UsersColumn
	}{{postgres.ProvidersTable, a.cols.providers}, {postgres.MFATable, a.cols.mfa}} {
		text, _ := vals[q.cols+i].(string)
		if text == "" {
			continue
		}
		var rows [][]any
		if err := json.Unmarshal([]byte(text), &rows); err != nil {
			return Item{}, fmt.Errorf("reading the %s of user %q: %w", spec.table, uid, err)
		}
		for _, row := range rows {
			// The JSON arrays hold every column but uid, as text.
			full := make([]any, 0, len(spec.cols))
			for _, c := range spec.cols {
				if c.Name == "uid" || len(row) == 0 {
					full = append(full, nil)
					continue
				}
				full, row = append(full, row[0]), row[1:]
			}
			lists[i] = append(lists[i], record.Map(a.rowFields(spec.table, spec.cols, full)))
		}
	}
	foldChildren(fields, lists[0], lists[1])
	if _, ok := fields[fieldName(postgres.UsersTable, "hash_config_id")]; ok {
		h := vals[q.cols+2:]
		if found, _ := h[0].(bool); found {
			alg, _ := h[1].(string)
			text, _ := h[2].(string)
			var params map[string]string
			if err := json.Unmarshal([]byte(text), &params); err != nil {
				// Not an object of text: differs from any parameters.
				fields[fieldHashParams] = record.String("(hash_configs parameters that are not an object of text)")
			} else {
				fields[fieldHashParams] = hashParamsDigest(alg, params)
			}
		} else {
			fields[fieldHashParams] = record.String("(no such row in hash_configs)")
		}
	}
	return Item{Key: []string{uid}, Label: uid, Fields: fields}, nil
}

// Open opens a cursor over the users table in the source's key order
// (byte order without one), or returns nil when the table does not exist.
func (a *Users) Open(ctx context.Context, tx pgx.Tx, table string) (TargetCursor, error) {
	if table != a.table {
		return nil, nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.schema, postgres.UsersTable)
	if err != nil || !ok {
		return nil, err
	}
	q, err := a.query(ctx, tx)
	if err != nil {
		return nil, err
	}
	order := a.order
	if order == nil {
		order = record.ByteOrder
	}
	a.cursors++
	c, err := postgres.OpenCursor(ctx, tx, fmt.Sprintf("diff_users_%d", a.cursors), q.sql+" WHERE "+q.live+" ORDER BY "+order.OrderBy("u.uid"), 500)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", a.table, err)
	}
	return &userCursor{a: a, q: q, c: c}, nil
}

type userCursor struct {
	a    *Users
	q    targetQuery
	c    *postgres.Cursor
	last *Item
}

func (c *userCursor) Next(ctx context.Context) (Item, bool, error) {
	vals, ok, err := c.c.Next(ctx)
	if err != nil {
		return Item{}, false, fmt.Errorf("reading %s: %w", c.a.table, err)
	}
	if !ok {
		return Item{}, false, nil
	}
	it, err := c.a.item(c.q, vals)
	if err != nil {
		return Item{}, false, err
	}
	if c.last != nil && c.a.CompareKeys(it.Key, c.last.Key) <= 0 {
		return Item{}, false, fmt.Errorf("reading %s: user %q came after %q, not in the source's uid order", c.a.table, it.Label, c.last.Label)
	}
	c.last = &it
	return it, true, nil
}

// Lookup returns the target users of keys, by KeyString of their key.
func (a *Users) Lookup(ctx context.Context, tx pgx.Tx, table string, keys [][]string) (map[string]Item, error) {
	out := map[string]Item{}
	if table != a.table || len(keys) == 0 {
		return out, nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.schema, postgres.UsersTable)
	if err != nil || !ok {
		return out, err
	}
	q, err := a.query(ctx, tx)
	if err != nil {
		return nil, err
	}
	return lookupUsers(ctx, tx, a.table, q.sql+" WHERE "+q.live+" AND u.uid = ANY($1::text[])", keys, func(rows pgx.Rows) (Item, error) {
		vals, err := rows.Values()
		if err != nil {
			return Item{}, fmt.Errorf("looking up users in %s: %w", a.table, err)
		}
		return a.item(q, vals)
	})
}

// lookupUsers runs query, whose $1 is the text array of the one-element
// keys, and returns the users item rebuilds from its rows, by KeyString
// of their key; errors of the query name table.
func lookupUsers(ctx context.Context, tx pgx.Tx, table, query string, keys [][]string, item func(pgx.Rows) (Item, error)) (map[string]Item, error) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k[0]
	}
	rows, err := tx.Query(ctx, query, ids)
	if err != nil {
		return nil, fmt.Errorf("looking up users in %s: %w", table, err)
	}
	defer rows.Close()
	out := make(map[string]Item, len(keys))
	for rows.Next() {
		it, err := item(rows)
		if err != nil {
			return nil, err
		}
		out[KeyString(it.Key)] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up users in %s: %w", table, err)
	}
	return out, nil
}

// Count returns the number of users in the table (rows marked deleted
// excluded); 0 when it does not exist.
func (a *Users) Count(ctx context.Context, tx pgx.Tx, table string) (int64, error) {
	if table != a.table {
		return 0, nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.schema, postgres.UsersTable)
	if err != nil || !ok {
		return 0, err
	}
	live, err := postgres.LiveRows(ctx, tx, a.schema, postgres.UsersTable, "")
	if err != nil {
		return 0, err
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{a.schema, postgres.UsersTable}.Sanitize()+` WHERE `+live).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", a.table, err)
	}
	return n, nil
}

// RouteKey places a uid: the users table, keyed by it.
func (a *Users) RouteKey(uid string) (string, []string, bool) {
	if uid == "" || record.TextProblem(uid) != "" {
		return "", nil, false
	}
	return a.table, []string{uid}, true
}

// ScanUnseen calls fn with every user of the table (rows marked deleted
// excluded) whose key is not in seen (see KeyScanner).
func (a *Users) ScanUnseen(ctx context.Context, tx pgx.Tx, table string, seen pgx.Identifier, fn func(Item) error) error {
	if table != a.table {
		return nil
	}
	ok, err := postgres.TableExists(ctx, tx, a.schema, postgres.UsersTable)
	if err != nil || !ok {
		return err
	}
	q, err := a.query(ctx, tx)
	if err != nil {
		return err
	}
	a.cursors++
	c, err := postgres.OpenCursor(ctx, tx, fmt.Sprintf("diff_users_%d", a.cursors), q.sql+" WHERE "+q.live+
		" AND NOT EXISTS (SELECT 1 FROM "+seen.Sanitize()+" s WHERE s.tbl = "+textLiteral(a.table)+" AND s.k = jsonb_build_array(u.uid))", 500)
	if err != nil {
		return fmt.Errorf("reading %s: %w", a.table, err)
	}
	return eachItem(ctx, c, a.table, func(vals []any) (Item, error) { return a.item(q, vals) }, fn)
}

// eachItem calls fn with every row of c, rebuilt by item, until the
// cursor ends or either returns an error; errors reading c name table.
func eachItem(ctx context.Context, c *postgres.Cursor, table string, item func([]any) (Item, error), fn func(Item) error) error {
	for {
		vals, ok, err := c.Next(ctx)
		if err != nil {
			return fmt.Errorf("reading %s: %w", table, err)
		}
		if !ok {
			return nil
		}
		it, err := item(vals)
		if err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}
