package pii

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// VaultSchema and VaultTable are where tokens and their clear values live.
// The schema is not baasmigrate's state schema: it can be granted (or live
// in another database, --vault) apart from everything else.
const (
	VaultSchema = "baasmigrate_vault"
	VaultTable  = "tokens"
)

// Querier is what the vault needs of a pgx pool, connection or transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Beginner is a Querier that starts transactions (a pool or connection).
type Beginner interface {
	Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Vault is where tokenize keeps tokens: the table
// baasmigrate_vault.tokens (mac bytea primary key, token text unique, value
// text, created_at), in the target database or in another one.
type Vault struct {
	// DB is the vault's own database; nil means the target database, whose
	// tokens are then written in the transaction of the batch's rows.
	DB Beginner

	mu    sync.Mutex
	ready bool
}

var vaultName = pgx.Identifier{VaultSchema, VaultTable}.Sanitize()

// Ensure creates the vault's schema and table when absent, under an
// advisory lock so concurrent runs do not race on the catalog.
func (v *Vault) Ensure(ctx context.Context, db Beginner) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating the token vault: %w", err)
	}
	defer tx.Rollback(ctx)
	stmts := []string{
		"SELECT pg_advisory_xact_lock(hashtext('baasmigrate_vault'))",
		"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{VaultSchema}.Sanitize(),
		"CREATE TABLE IF NOT EXISTS " + vaultName + " (mac bytea PRIMARY KEY, token text NOT NULL UNIQUE, value text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("creating the token vault: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("creating the token vault: %w", err)
	}
	v.mu.Lock()
	v.ready = true
	v.mu.Unlock()
	return nil
}

// Writer returns the tokenizer of a batch written in tx: on the target
// database's vault, tx itself (tokens commit or roll back with the rows);
// on another database's vault, that database, each token committed before
// the batch's rows (see Tokens).
func (v *Vault) Writer(tx Querier) Tokenizer {
	if v.DB == nil {
		return writer{q: tx}
	}
	return writer{q: v.DB, ensure: v}
}

// Reader returns a lookup-only tokenizer (verify, plan): it reads the
// vault through q (or the vault's own database) and gives NoToken for a
// value the vault does not hold.
func (v *Vault) Reader(q Querier) Tokenizer {
	if v.DB != nil {
		q = v.DB
	}
	return &reader{q: q}
}

type writer struct {
	q      Querier
	ensure *Vault // set for a vault in its own database: created on first use
}

// Tokens gives the token of each request, creating the missing ones: it
// reads the existing tokens, then inserts a random token for each missing
// MAC in MAC order with ON CONFLICT (mac) DO UPDATE … RETURNING, which
// gives back the token a concurrent writer stored first. Every value so
// has exactly one token, and writing one again is idempotent: in another
// database each statement commits on its own before the batch's rows, so a
// batch that fails afterwards leaves tokens no row uses yet, which the
// retried batch finds and reuses.
func (w writer) Tokens(ctx context.Context, reqs []TokenRequest) (map[string]string, error) {
	if w.ensure != nil {
		w.ensure.mu.Lock()
		ready := w.ensure.ready
		w.ensure.mu.Unlock()
		if !ready {
			if err := w.ensure.Ensure(ctx, w.ensure.DB); err != nil {
				return nil, err
			}
		}
	}
	out, err := lookup(ctx, w.q, reqs)
	if err != nil {
		return nil, err
	}
	var missing []TokenRequest
	for _, r := range reqs {
		if _, ok := out[string(r.MAC)]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	slices.SortFunc(missing, func(a, b TokenRequest) int { return bytes.Compare(a.MAC, b.MAC) })
	macs := make([][]byte, len(missing))
	tokens := make([]string, len(missing))
	values := make([]string, len(missing))
	for i, r := range missing {
		t, err := newToken()
		if err != nil {
			return nil, err
		}
		macs[i], tokens[i], values[i] = r.MAC, t, r.Clear
	}
	rows, err := w.q.Query(ctx, "INSERT INTO "+vaultName+" (mac, token, value) SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[]) ORDER BY 1 "+
		"ON CONFLICT (mac) DO UPDATE SET mac = EXCLUDED.mac RETURNING mac, token", macs, tokens, values)
	if err != nil {
		return nil, fmt.Errorf("storing %d tokens in the vault: %w", len(missing), err)
	}
	if err := collect(rows, out); err != nil {
		return nil, fmt.Errorf("storing %d tokens in the vault: %w", len(missing), err)
	}
	return out, nil
}

// reader is Vault.Reader's tokenizer. A comparison asks it once per
// document: the vault's table, once found, is not looked for again.
type reader struct {
	q     Querier
	found atomic.Bool // the vault's table exists
}

func (r *reader) Tokens(ctx context.Context, reqs []TokenRequest) (map[string]string, error) {
	exists := r.found.Load()
	if !exists {
		if err := r.q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", vaultName).Scan(&exists); err != nil {
			return nil, fmt.Errorf("looking for the vault: %w", err)
		}
		r.found.Store(exists)
	}
	out := map[string]string{}
	var err error
	if exists {
		out, err = lookup(ctx, r.q, reqs)
	}
	if err != nil {
		return nil, err
	}
	for _, q := range reqs {
		if _, ok := out[string(q.MAC)]; !ok {
			out[string(q.MAC)] = NoToken
		}
	}
	return out, nil
}

// lookup reads the tokens the vault holds for the requests' MACs.
func lookup(ctx context.Context, q Querier, reqs []TokenRequest) (map[string]string, error) {
	out := map[string]string{}
	macs := make([][]byte, len(reqs))
	for i, r := range reqs {
		macs[i] = r.MAC
	}
	rows, err := q.Query(ctx, "SELECT mac, token FROM "+vaultName+" WHERE mac = ANY($1::bytea[])", macs)
	if err != nil {
		return nil, fmt.Errorf("reading %d tokens from the vault: %w", len(reqs), err)
	}
	if err := collect(rows, out); err != nil {
		return nil, fmt.Errorf("reading %d tokens from the vault: %w", len(reqs), err)
	}
	return out, nil
}

func collect(rows pgx.Rows, out map[string]string) error {
	defer rows.Close()
	for rows.Next() {
		var mac []byte
		var token string
		if err := rows.Scan(&mac, &token); err != nil {
			return err
		}
		out[string(mac)] = token
	}
	return rows.Err()
}

// newToken is "tok_" and 32 random hex digits (128 bits).
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	return "tok_" + hex.EncodeToString(b[:]), nil
}

// Detokenize returns the clear value of token from the vault through q
// (ok false when the vault holds no such token).
func Detokenize(ctx context.Context, q Querier, token string) (value string, ok bool, err error) {
	rows, err := q.Query(ctx, "SELECT value FROM "+vaultName+" WHERE token = $1", token)
	if err != nil {
		return "", false, fmt.Errorf("reading the vault: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&value); err != nil {
			return "", false, fmt.Errorf("reading the vault: %w", err)
		}
		ok = true
	}
	return value, ok, rows.Err()
}
